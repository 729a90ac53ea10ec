"""The account rules at acceptance (policies.admission): stop lists, daily volume, pause, prepaid."""

from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies.admission import (PAUSED, PENDING_APPROVAL, QUEUED, SCHEDULED, STOPPED, Change, Facts,
                                InsufficientBalance, New, NoPrice, Terms, admit, held_back, parts_allowed, refund)

PRICES = {"4670": D("0.50"), "4790": D(250)}


def price(number):
    return next((p for prefix, p in PRICES.items() if number.startswith(prefix)), None)


PREPAID = Terms(prepaid=True, price=price)


def statuses(admission, messages):
    return [c.status if c else m.status for m, c in zip(messages, admission.changes)]


def test_nothing_to_decide_leaves_every_message_as_it_came():
    ms = [New("46701", QUEUED), New("46702", SCHEDULED)]
    out = admit("acme", ms, Facts(), Terms())
    assert out.changes == [None, None] and out.charges == [0, 0] and not out.counted


def test_stop_list_and_do_not_call_without_consent_stop_the_message():
    """SPEC §7: listed numbers are stopped unless the account holds consent, whichever the list."""
    facts = Facts(stop_listed=frozenset({"46701", "46704"}), do_not_call=frozenset({"46702", "46703", "46704"}),
                  consented=frozenset({"46703", "46704", "46705"}))
    ms = [New("46701", QUEUED), New("46702", QUEUED), New("46703", QUEUED), New("46704", QUEUED), New("46705", QUEUED)]
    out = admit("acme", ms, facts, Terms())
    assert out.changes == [Change(STOPPED, "the number is on the account's stop list", "stop list"),
                           Change(STOPPED, "the number is on the do-not-call list", "do-not-call"), None, None, None]


def test_the_messages_over_the_daily_volume_wait_stopped_ones_do_not_count():
    facts = Facts(sent_today=2, stop_listed=frozenset({"46700"}))
    ms = [New("46700", QUEUED), New("46701", QUEUED), New("46702", PENDING_APPROVAL), New("46703", SCHEDULED)]
    out = admit("acme", ms, facts, Terms(daily_volume_limit=3))
    assert statuses(out, ms) == [STOPPED, QUEUED, PENDING_APPROVAL, PENDING_APPROVAL]
    assert out.changes[2] is None  # already waiting (for its links): its own reason stays
    assert out.changes[3].detail == "over the daily volume limit of 3"
    assert out.counted and out.sent_today == 5


def test_a_paused_account_holds_its_queued_messages():
    ms = [New("46701", QUEUED), New("46702", SCHEDULED)]
    out = admit("acme", ms, Facts(paused=True), Terms())
    assert statuses(out, ms) == [PAUSED, SCHEDULED]


def test_prepaid_charges_per_part_and_refuses_whole():
    ms = [New("46701", QUEUED, parts=2), New("4790001", QUEUED), New("46702", STOPPED)]
    out = admit("acme", ms, Facts(balance=D(300)), PREPAID)
    assert out.charges == [D(1), D(250), 0] and out.balance == D(49)
    with pytest.raises(InsufficientBalance) as refused:
        admit("acme", ms, Facts(balance=D(250)), PREPAID)
    assert refused.value.needed == D(251) and refused.value.balance == D(250)
    with pytest.raises(NoPrice):
        admit("acme", [New("4412", QUEUED)], Facts(balance=D(300)), PREPAID)
    # A number on the stop list costs nothing and needs no price.
    stopped = admit("acme", [New("4412", QUEUED)], Facts(balance=D(1), stop_listed=frozenset({"4412"})), PREPAID)
    assert stopped.charges == [0] and stopped.balance == D(1)


def test_held_back_stops_or_pauses_a_message_becoming_queued():
    assert held_back("46701", Facts()) is None
    assert held_back("46701", Facts(paused=True)) == Change(PAUSED, "account paused by ops")
    assert held_back("46701", Facts(paused=True, stop_listed=frozenset({"46701"}))).status == STOPPED


def test_refund_only_before_any_operator_was_tried():
    assert refund(D(2), (), [STOPPED]) == D(2)
    assert refund(D(2), ("cheap",), [STOPPED]) == 0
    assert refund(D(2), (), [QUEUED]) == 0
    assert refund(D(0), (), [STOPPED]) == 0
    # expired before submission, or failed with no operator able to take it: nothing went out
    assert refund(D(2), (), ["expired"]) == refund(D(2), (), ["failed"]) == D(2)
    assert refund(D(2), ("cheap",), ["failed"]) == refund(D(2), ("cheap",), ["expired"]) == 0


@given(st.integers(0, 20), st.integers(1, 20), st.lists(st.sampled_from([QUEUED, SCHEDULED]), max_size=15))
def test_never_more_than_the_limit_go_without_approval(sent, limit, incoming):
    ms = [New(f"467{i}", s) for i, s in enumerate(incoming)]
    out = admit("acme", ms, Facts(sent_today=sent), Terms(daily_volume_limit=limit))
    going = sum(1 for s in statuses(out, ms) if s != PENDING_APPROVAL)
    assert going == max(0, min(len(ms), limit - sent))
    # The ones waiting are the last ones.
    waiting = [s == PENDING_APPROVAL for s in statuses(out, ms)]
    assert waiting == sorted(waiting)


def test_what_a_message_costs_its_account():
    """SPEC §14: the cost a customer sees is its own price, never the operators' cost."""
    from policies.admission import account_cost

    half = D("0.50")
    assert account_cost(prepaid=True, charged=D("1.00"), price=half, parts=2, tried=(), status="queued") == 1
    assert account_cost(prepaid=True, charged=D(0), price=half, parts=2, tried=(), status="stopped") == 0
    assert account_cost(prepaid=False, charged=D(0), price=half, parts=3, tried=("a",), status="delivered") == D("1.50")
    assert account_cost(prepaid=False, charged=D(0), price=half, parts=1, tried=(), status="stopped") == 0
    assert account_cost(prepaid=False, charged=D(0), price=half, parts=1, tried=("a",), status="stopped") == half
    assert account_cost(prepaid=False, charged=D(0), price=None, parts=1, tried=("a",), status="delivered") == 0


def test_the_parts_cap_is_hard_and_the_account_and_the_request_only_lower_it():
    assert parts_allowed(3) == 3  # a reply of no account: the cap alone
    assert parts_allowed(3, 10) == 3 and parts_allowed(3, 10, 8) == 3  # never past the cap
    assert parts_allowed(6, 4) == 4 and parts_allowed(6, 4, 2) == 2 and parts_allowed(6, 4, 5) == 4
