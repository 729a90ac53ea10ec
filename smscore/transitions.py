"""What happens to a stored message when the outside world reports something about it.

These are pure functions over a snapshot (the message and the state of its parts): every store
(in-memory, SQLite, PostgreSQL) calls them inside its own transaction and writes what they return.
Keeping the rules here, once, is what lets a receipt that arrives at any node be applied the same
way, atomically, against the stored message.

Rules (SPEC §5, §7):
- a message becomes ``submitted`` when the SMSC accepted every one of its parts;
- it is ``delivered`` when every part has a DELIVRD receipt;
- a failed receipt for any part (or a permanent submit error) is an attempt that failed on that
  operator: if the profile has an operator not tried yet, the history gets a non-final ``failed``
  event and the message goes back to ``queued`` for the next operator; otherwise it is ``failed``;
- temporary conditions (phone off) make it ``buffered``;
- an event is a change of the message's status (SPEC §4: one event, and one status callback, per
  change): a receipt that changes only a part (one part of several delivered) or nothing (an
  intermediate ENROUTE, a duplicate) adds no event; the part's state is still stored;
- a receipt for a message already final changes nothing (duplicates, late receipts).

A submit and a receipt run these for every message sent, so they ask ``FINAL_STATUSES`` rather
than ``Status.final`` (the same answer without a property call).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from connectors.api import ReceiptFacts, ReceiptOutcome
from smscore.model import FINAL_STATUSES, Event, Message, Status

# The state of each part, one character each so a message's parts store as one short string.
PART_PENDING = "p"
PART_SUBMITTED = "s"
PART_DELIVERED = "d"
PART_BUFFERED = "b"
PART_FAILED = "f"


@dataclass(slots=True)
class Transition:
    """The result of applying something to a message: its new status and the events to append.

    ``requeue`` is true when the message must be sent again (through the next operator);
    ``part_status`` is the new status of the part the report was about (or None); ``pushes`` is
    set by the store: how many status callbacks it queued for these events.
    """

    message: Message
    events: list[Event] = field(default_factory=list)
    requeue: bool = False
    part_status: str | None = None
    pushes: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.events)


#: ``untried(message) -> operators`` of the message's profile not yet tried, in choice order.
UntriedOperators = Callable[[Message], Sequence[str]]


def _set(message: Message, status: Status, at: float, operator: str | None, detail: str,
         events: list[Event], final: bool | None = None) -> None:
    message.status = status
    message.updated_at = at
    events.append(Event(at=at, status=status, operator=operator, detail=detail,
                        final=status in FINAL_STATUSES if final is None else final))


def _attempt_failed(message: Message, operator: str, detail: str, at: float,
                    untried: UntriedOperators, events: list[Event]) -> bool:
    """Record a failed attempt; returns True when the message goes on to another operator."""
    if operator not in message.tried:
        message.tried = message.tried + (operator,)
    message.error = detail or "failed"
    if untried(message):
        _set(message, Status.FAILED, at, operator, detail, events, final=False)
        message.operator = None
        _set(message, Status.QUEUED, at, None, f"next operator after {operator}", events)
        return True
    message.operator = operator  # the last operator tried, as after a failed receipt (its SMSC may have refused it)
    _set(message, Status.FAILED, at, operator, detail, events)
    return False


#: The part states of a message whose every part is delivered (as a set: ``on_receipt``).
_ALL_DELIVERED = frozenset({PART_DELIVERED})

#: What a submit response may make ``submitted`` (see ``on_submitted``).
SUBMITTABLE = frozenset({Status.QUEUED, Status.PAUSED})


def on_submitted(message: Message, operator: str, parts: list[str], at: float, detail: str = "",
                 keys: Sequence[str] = (), cost: Decimal | None = None) -> Transition:
    """Every part of ``message`` was accepted by ``operator``'s SMSC. The attempt's cost (the
    operator's cost for the destination, per part) adds to the message's cost; the event says
    the SMSC ids and the cost.

    A ``paused`` message is submitted too: the node that held it submitted it before it learned
    of the pause (at its next lease renewal, docs/postgresql.md). It went out, so it no longer
    waits: left ``paused``, a resume would send it a second time. Any other status (cancelled
    meanwhile, submitted already) changes nothing."""
    t = Transition(message)
    if message.status not in SUBMITTABLE:
        return t
    message.operator = operator
    if operator not in message.tried:
        message.tried = message.tried + (operator,)
    if cost is not None:
        message.cost += cost
    notes = (detail, f"ids={','.join(keys)}" if keys else "", f"cost={cost}" if cost is not None else "")
    _set(message, Status.SUBMITTED, at, operator, " ".join(filter(None, notes)), t.events)
    return t


#: What ops and customers may do to a message not yet submitted: action -> (from statuses, to).
OPS_ACTIONS = {
    "approve": (frozenset({Status.PENDING_APPROVAL}), Status.QUEUED),
    "refuse": (frozenset({Status.PENDING_APPROVAL}), Status.STOPPED),
    "cancel": (frozenset({Status.SCHEDULED, Status.QUEUED, Status.PAUSED, Status.PENDING_APPROVAL}), Status.STOPPED),
    "pause": (frozenset({Status.QUEUED}), Status.PAUSED),
    "resume": (frozenset({Status.PAUSED}), Status.QUEUED),
    # the gateway's own: a message whose validity ended before it could be submitted
    "expire": (frozenset({Status.SCHEDULED, Status.QUEUED, Status.PAUSED, Status.PENDING_APPROVAL}), Status.EXPIRED),
    # the gateway's own: no operator can ever take it (its profile was removed by a reload, or
    # no operator of it has a cost for the number)
    "unroutable": (frozenset({Status.SCHEDULED, Status.QUEUED}), Status.FAILED),
}


def on_ops(message: Message, action: str, at: float, detail: str, now: float) -> Transition | None:
    """``action`` on a message; None when its status does not allow it (409 for the API).

    An approved or resumed message whose ``send_at`` is still ahead goes back to ``scheduled``.
    """
    allowed, target = OPS_ACTIONS[action]
    if message.status not in allowed:
        return None
    if target is Status.QUEUED and message.send_at is not None and message.send_at > now:
        target = Status.SCHEDULED
    t = Transition(message)
    if target in (Status.FAILED, Status.EXPIRED):  # the gateway's own end: ``error`` says why, as for an attempt
        message.error = detail
    _set(message, target, at, None, detail, t.events)
    return t


def on_submit_failed(message: Message, operator: str, detail: str, at: float,
                     untried: UntriedOperators) -> Transition:
    """A permanent submit error from ``operator``."""
    t = Transition(message)
    if message.status.final:
        return t
    t.requeue = _attempt_failed(message, operator, detail, at, untried, t.events)
    return t


def on_receipt(message: Message, parts: list[str], part_index: int, operator: str,
               receipt: ReceiptFacts, at: float, untried: UntriedOperators) -> Transition:
    """A receipt for part ``part_index`` of ``message``; ``parts`` holds every part's status
    (updated in place).

    Only a receipt that changes the message's status is an event; the event that does (the last
    part delivered, a part failed) says which part in its detail. ``part_status`` is set whenever
    the part's own state moved, so the store keeps it.
    """
    t = Transition(message)
    if message.status in FINAL_STATUSES or message.operator != operator:
        # Late or duplicate receipt, or one from an operator we already moved away from.
        return t
    outcome = receipt.outcome
    detail = receipt.detail
    if message.parts > 1:
        detail = f"part {part_index + 1}/{message.parts} {detail}".rstrip()
    if outcome is ReceiptOutcome.DELIVERED:
        parts[part_index] = PART_DELIVERED
        t.part_status = PART_DELIVERED
        if {*parts} == _ALL_DELIVERED:  # every part
            message.error = None
            _set(message, Status.DELIVERED, at, operator, detail, t.events)
    elif outcome is ReceiptOutcome.FAILED:
        parts[part_index] = PART_FAILED
        t.part_status = PART_FAILED
        t.requeue = _attempt_failed(message, operator, detail, at, untried, t.events)
    elif outcome in (ReceiptOutcome.UNKNOWN, ReceiptOutcome.EXPIRED):
        # The SMSC gave up on the phone (validity ran out) or does not know: another operator
        # would reach the same phone, so this is final.
        parts[part_index] = PART_FAILED
        t.part_status = PART_FAILED
        message.error = detail
        status = Status.EXPIRED if outcome is ReceiptOutcome.EXPIRED else Status.UNKNOWN
        _set(message, status, at, operator, detail, t.events)
    elif outcome is ReceiptOutcome.BUFFERED:
        parts[part_index] = PART_BUFFERED
        t.part_status = PART_BUFFERED
        if message.status is not Status.BUFFERED:
            _set(message, Status.BUFFERED, at, operator, detail, t.events)
    # ReceiptOutcome.ACCEPTED (ENROUTE without an error, ACCEPTD): the SMSC took it on; nothing
    # changes, and a part delivered while another is not yet moves only the part.
    return t


def on_receipt_timeout(message: Message, at: float, waited: float) -> Transition:
    """No final receipt within ``receipt_timeout`` of the last change: the status is ``unknown``."""
    t = Transition(message)
    if message.status not in (Status.SUBMITTED, Status.BUFFERED):
        return t
    message.error = f"no final receipt within {waited:g} s"
    _set(message, Status.UNKNOWN, at, message.operator, message.error, t.events)
    return t
