"""policies.receipts: which message a receipt is about when its SMSC gave the id to several."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from connectors.smpp.receipts import receipt_facts
from policies.receipts import receipt_owner, same_number, sent_again


def test_one_number_written_as_systems_write_it_is_the_same_number():
    for a, b in [("46701234567", "+46701234567"), ("46701234567", "0701234567"), ("0046701234567", "46701234567"),
                 ("+1 (555) 010-9999", "15550109999")]:
        assert same_number(a, b) and same_number(b, a), (a, b)


def test_other_numbers_and_empty_ones_are_not():
    assert not same_number("46701234567", "46701234568")
    assert not same_number("46701234567", "")
    assert not same_number("", "")
    assert not same_number("12", "12")  # too few digits to tell anything


def test_the_newest_message_sent_to_the_receipts_number():
    numbers = ["46701234561", "46701234562", "46701234561"]
    assert receipt_owner("0701234561", numbers, [True, True, True]) == 2  # two to that number: the newer
    assert receipt_owner("+46701234562", numbers, [True, True, True]) == 1
    assert receipt_owner("46701234561", numbers, [True, True, False]) == 0  # the newer has ended: the one waiting
    assert receipt_owner("46701234562", numbers, [True, False, True]) == 1  # the number first, ended or not


def test_no_number_or_no_message_to_it_is_the_newest_that_waits_else_the_newest():
    numbers = ["46701234561", "46701234562"]
    assert receipt_owner("", numbers, [True, True]) == 1  # as when ids are never given again
    assert receipt_owner("46709999999", numbers, [True, True]) == 1
    assert receipt_owner("", numbers, [True, False]) == 0  # a receipt for an id a new message has, ended
    assert receipt_owner("", numbers, [False, False]) == 1
    assert receipt_owner("46701234561", ["", "46701234562"], [False, True]) == 1  # the older no longer stored


def test_an_id_that_names_one_message_is_its_whatever_number_the_receipt_gives():
    assert receipt_owner("46709999999", ["46701234561"], [False]) == 0


@given(st.lists(st.tuples(st.text("0123456789+ ", max_size=14), st.booleans()), min_size=1, max_size=5),
       st.text("0123456789+", max_size=14))
def test_the_owner_is_sent_to_the_number_when_any_is_and_waits_when_any_of_those_does(named, number):
    numbers, waiting = [n for n, _ in named], [w for _, w in named]
    i = receipt_owner(number, numbers, waiting)
    assert 0 <= i < len(numbers)
    if len(numbers) == 1:
        return
    pool = [j for j, n in enumerate(numbers) if number and n and same_number(number, n)] or list(range(len(numbers)))
    assert i in pool
    waits = [j for j in pool if waiting[j]]
    assert i == (max(waits) if waits else max(pool))


def test_a_receipt_naming_an_ended_messages_number_is_that_ones_sent_again():
    assert sent_again("0701234561", "46701234561")
    assert not sent_again("", "46701234561")  # no number: maybe the next message's, held for it
    assert not sent_again("46701234562", "46701234561")


def test_the_receipt_carries_the_number_its_deliver_sm_names():
    facts = receipt_facts("op", "id:7 sub:001 dlvrd:001 stat:DELIVRD err:000", {}, number="46701234567")
    assert facts.keys[0] == "7" and facts.number == "46701234567"
