"""The account rules every store applies the same way: the glue between the config, the pure
decisions of ``policies`` and a store's own way of reading facts and saving outcomes.

No I/O here. A store hands in a ``facts_for(account, numbers, now, terms)`` reader and saves what
comes back (the daily count, the balance, the jobs), inside its own transaction.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Container, Iterable, Sequence
from datetime import datetime, timezone
from decimal import Decimal

from connectors.api import ReceiptFacts
from policies.admission import Admission, Facts, New, Terms, admit, held_back
from policies.billing import notices
from policies.receipts import receipt_owner, sent_again
from smscore import transitions as tr
from smscore.model import FINAL_STATUSES, Event, Message, PushJob, Status, rfc3339

#: Idempotency keys are kept this long (SPEC §11).
IDEMPOTENCY_TTL = 24 * 3600.0
#: the retention purge takes at most this many messages (and MO) a transaction: a few statements,
#: a short turn for the other writes, and called again until nothing old is left
PURGE_CHUNK = 1000
#: The account name of the do-not-call list (it holds numbers for every account).
DO_NOT_CALL = "*"
#: A receipt comes after its submit went out, and its submit's response at most a response
#: timeout after that: a receipt held as an orphan is given to a submit answered at most this long
#: after it came (minutes: room for the clocks of several nodes), never to a later one.
EARLY_RECEIPT_WINDOW = 300.0


def answers(orphan_at: float, submitted_at: float) -> bool:
    """Whether a receipt held since ``orphan_at`` may be one for a submit answered at
    ``submitted_at``. An SMSC reuses its ids (after a restart, or when they wrap): a receipt the
    message that had the id before was sent again must not end the message that has it now."""
    return orphan_at >= submitted_at - EARLY_RECEIPT_WINDOW


def held_for_next(message: Message, t: tr.Transition, receipt_number: str = "") -> bool:
    """Whether a receipt that found ``message`` through its SMSC id is also held as an orphan: it
    changed nothing (``t``) of a message that had ended, so it may be for the next message the SMSC
    gave that id, come before that submit's response (SPEC §8: still matched; ``answers``); not
    when it names the message's number (``policies.receipts.sent_again``)."""
    return (not t.events and not t.part_status and message.status in FINAL_STATUSES
            and not sent_again(receipt_number, message.to))


def waits_for(message: Message, operator: str) -> bool:
    """Whether ``message`` still waits for a receipt from ``operator``: not ended, and not gone on
    to another operator (``transitions.on_receipt`` ignores that one's receipt). What
    ``policies.receipts`` asks of each message one SMSC id names."""
    return message.status not in FINAL_STATUSES and message.operator == operator


def name_id(named: list[tuple[float, str, int]], at: float, message_id: str, part: int) -> None:
    """An SMSC id was given to ``message_id``'s ``part`` at ``at``: added to what it ``named``
    before, ``(given at, message id, part)`` oldest first, once a message (as ``smsc_ids``'s key)."""
    if all(mid != message_id for _, mid, _ in named):
        named.append((at, message_id, part))
        named.sort()


def id_owner(receipt: ReceiptFacts, named: Sequence[tuple[float, str, int]],
             message: Callable[[str], Message | None]) -> tuple[str, int]:
    """(message id, part) of the message a receipt is about among those its SMSC id ``named``
    (``message(id)``: each as it stands now, None when no longer stored): ``policies.receipts``."""
    if len(named) > 1:
        messages = [message(message_id) for _, message_id, _ in named]
        numbers = [m.to if m is not None else "" for m in messages]
        waiting = [m is not None and waits_for(m, receipt.operator) for m in messages]
        named = named[receipt_owner(receipt.number, numbers, waiting):]
    _, message_id, part = named[0]
    return message_id, part


class NotFound(Exception):
    """No such message (or not the account's)."""


class CommitUnknown(Exception):
    """The connection to the store was lost while it committed: the writes may be stored or not
    (PostgreSQL restarted under the node). Nobody may be told they were not."""


class BeingSubmitted(Exception):
    """A customer's cancel came while the message was on its way to an operator from the node
    that answers: too late (SPEC §4: 409 once submitted)."""

    def __init__(self, message_id: str) -> None:
        super().__init__(message_id)
        self.message_id = message_id


class Conflict(Exception):
    """The message's status does not allow the action."""

    def __init__(self, status: Status | None) -> None:
        super().__init__("the key was used with another body" if status is None else f"the message is {status.value}")
        self.status = status


def kept_answer(kept: tuple | None, body_hash: str, at: float) -> dict | None:
    """What an idempotency key kept, ``(body_hash, response JSON, created_at)`` or None, answers a
    request with ``body_hash`` at ``at``: the first response when the same body came in the last
    24 h (SPEC §11), None when the key is free (never used, or older); Conflict(None) for another
    body."""
    if kept is None or at - kept[2] >= IDEMPOTENCY_TTL:
        return None
    if kept[0] != body_hash:
        raise Conflict(None)
    return json.loads(kept[1])


def day_of(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%d")


def terms_of(config, account: str) -> Terms:
    acc = config.accounts.get(account)
    if acc is None:
        return Terms()
    return Terms(prepaid=acc.billing == "prepaid", price=acc.prices.lookup, daily_volume_limit=acc.daily_volume_limit)


def admit_messages(config, messages: Sequence[Message],
                   facts_for: Callable[[str, list[str], float, Terms], Facts]) -> list[tuple[str, Facts, Admission]]:
    """``policies.admission.admit`` for each account's customer messages, applied to them (status,
    first event, error, charge). Returns ``(account, facts, outcome)`` for the store to save the
    daily count and the balance; raises when a request is refused whole."""
    now = messages[0].created_at if messages else 0.0
    by_account: dict[str, list[Message]] = {}
    for m in messages:
        if m.origin == "api":
            by_account.setdefault(m.account, []).append(m)
    out = []
    for account, ms in by_account.items():
        terms = terms_of(config, account)
        facts = facts_for(account, [m.to for m in ms], now, terms)
        outcome = admit(account, [New(m.to, m.status._value_, m.parts) for m in ms], facts, terms)
        for m, change, charge in zip(ms, outcome.changes, outcome.charges):
            if change is not None:
                m.status, m.error = Status(change.status), change.error or m.error
                m.events = [Event(at=m.created_at, status=m.status, detail=change.detail, final=m.status.final)]
            if charge:
                m.charged = charge
        out.append((account, facts, outcome))
    return out


def hold_back(t: tr.Transition, facts: Facts) -> None:
    """``policies.admission.held_back`` applied to a change that makes a message ``queued``."""
    m = t.message
    change = held_back(m.to, facts)
    if change is None:
        return
    at = t.events[-1].at
    t.requeue = False  # a failover held back waits (paused) or ends (stopped): not sent on now
    m.status = Status(change.status)
    if change.error:
        m.error = change.error
    t.events.append(Event(at=at, status=m.status, detail=change.detail, final=m.status.final))


def needs_hold_back_check(t: tr.Transition) -> bool:
    """A customer's message becomes ``queued`` (send_at came, ops approved it, a pause ended, or an
    operator failed it and it goes on to the next): the stop lists and the pause are checked again.
    A failover is a new submission: an account paused since, or a number that said STOP since,
    holds it back as it would a first one (before, a failover went on while the account was paused)."""
    m = t.message
    return (m.status is Status.QUEUED and bool(t.events) and t.events[-1].status is Status.QUEUED
            and m.origin == "api")


def lessons(transitions: Iterable[tr.Transition]) -> list[tuple[str, str | None, list[tuple[str, float]], float]]:
    """What the changes teach, for ``policies.learning.learn``: ``(number, delivered by, failed, at)``."""
    out = []
    for t in transitions:  # plain loops: every change of every message comes here (no comprehension's call)
        failed, delivered = [], None
        for e in t.events:
            if e.operator:
                if e.status is Status.FAILED:
                    failed.append((e.operator, e.at))
                elif delivered is None and e.status is Status.DELIVERED:
                    delivered = e.operator
        if failed or delivered:
            out.append((t.message.to, delivered, failed, t.events[-1].at))
    return out


def wants_block(m: Message, untried: Callable[[Message], Sequence[str]]) -> bool:
    """Whether the store loads block evidence for ``m``: it has no operator of its own to use (none
    learned, or that one was tried for it) and its profile leaves a choice (two operators or more
    untried). One operator, or the number's own: the numbers around it cannot change the order."""
    return (m.preferred is None or m.preferred in m.tried) and len(untried(m)) > 1


def block_lessons(transitions: Iterable[tr.Transition], untried: Callable[[Message], Sequence[str]],
                  numbers: Container[str]) -> list[tuple[str, str, list[str], float]]:
    """What deliveries teach the numbers' blocks, for ``policies.blocks.lesson``: ``(number,
    delivered by, operators tried before it, at)``, only for ``numbers`` (those the delivery gave a
    new operator: the block counts numbers, not messages, so one lesson a number: the first delivery
    of a batch, which gave it the operator) and messages whose profile had a choice."""
    out, taught = [], set()
    for t in transitions:
        m = t.message
        if m.to not in numbers or m.to in taught:
            continue
        for e in t.events:  # the first delivery's operator (a loop: no generator's calls)
            if e.status is Status.DELIVERED and e.operator:
                by = e.operator
                break
        else:
            continue
        if len(m.tried) + len(untried(m)) < 2:
            continue
        taught.add(m.to)
        out.append((m.to, by, [op for op in m.tried if op != by], t.events[-1].at))
    return out


def balance_notice_jobs(config, account: str, before: Decimal, after: Decimal, at: float) -> list[PushJob]:
    """The balance notices (``policies.billing.notices``) a change of balance sends the account."""
    acc = config.accounts.get(account) if config else None
    if acc is None or not acc.callback_url:
        return []
    return [PushJob("balance", account, f"balance:{account}", acc.callback_url, {
        "type": "balance", "account": account, "balance": float(after), "threshold": float(level),
        "at": rfc3339(at)}) for level in notices(before, after)]


def working(m: Message) -> Message:
    """A copy of a message to decide on (its history list too), so that a decision that is not
    kept leaves the caller's message as it was."""
    w = m.copy()
    w.events = list(m.events)
    return w


def settle(work: list[Message], messages: Sequence[Message]) -> None:
    """The callers' messages get what their stored copies became (status, history, charge, what
    was learned for the destination)."""
    for m, w in zip(messages, work):
        m.status, m.events, m.error, m.charged = w.status, w.events, w.error, w.charged
        m.preferred, m.recent_failures, m.block = w.preferred, w.recent_failures, w.block
