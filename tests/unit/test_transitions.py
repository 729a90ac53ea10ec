"""smscore.transitions on their own (the stores' contract, tests/store_contract.py, runs them
through every store): what a submit's event says, when a message of several parts is delivered,
and that every event's ``final`` is its status's."""

from __future__ import annotations

from decimal import Decimal

import pytest

from connectors.api import ReceiptFacts, ReceiptOutcome
from smscore import transitions as tr
from smscore.model import Message, Status


def message(parts=1, status=Status.QUEUED) -> Message:
    return Message(id="m1", account="acme", to="46701234567", sender="ACME", text="hi", encoding="gsm7",
                   parts=parts, profile="standard", status=status)


@pytest.mark.parametrize(("detail", "keys", "cost", "says"), [
    ("", ("abc",), Decimal("0.10"), "ids=abc cost=0.10"),
    ("", ("p1", "p2"), None, "ids=p1,p2"),
    ("", (), None, ""),
    ("resent", (), Decimal("0"), "resent cost=0"),
    ("resent", ("x",), None, "resent ids=x"),
])
def test_a_submit_event_says_the_smsc_ids_and_the_cost(detail, keys, cost, says):
    m = message()
    t = tr.on_submitted(m, "op", ["p"], 5.0, detail, keys, cost)
    assert [(e.status, e.detail, e.final) for e in t.events] == [(Status.SUBMITTED, says, False)]
    assert m.cost == (cost or 0) and m.tried == ("op",)


def test_a_message_of_several_parts_is_delivered_with_its_last_part():
    m = message(parts=3)
    parts = [tr.PART_SUBMITTED] * 3
    tr.on_submitted(m, "op", parts, 1.0)
    delivered = ReceiptFacts("op", ("k",), ReceiptOutcome.DELIVERED, stat="DELIVRD")
    for i, moved in ((2, False), (0, False), (0, False), (1, True)):
        t = tr.on_receipt(m, parts, i, "op", delivered, 2.0, lambda _: [])
        assert t.part_status == tr.PART_DELIVERED and bool(t.events) is moved
    assert m.status is Status.DELIVERED and t.events[0].final and t.events[0].detail == "part 2/3 stat=DELIVRD"
    assert not tr.on_receipt(m, parts, 1, "op", delivered, 3.0, lambda _: []).events  # final: nothing changes


@pytest.mark.parametrize("status", list(Status))
def test_an_events_final_flag_is_its_statuss(status):
    events = []
    tr._set(message(), status, 1.0, None, "", events)
    assert events[0].final is status.final
