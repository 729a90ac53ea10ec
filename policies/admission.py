"""What becomes of an account's new messages at acceptance (SPEC §3, §5, §7): pure decisions.

The store loads the facts (the account's balance and pause, what it sent today, which of the
numbers are on its stop list, on the do-not-call list, or have its consent), calls ``admit`` and
saves the outcome in the same transaction. In order:

1. a number on the account's stop list or on the do-not-call list is ``stopped``, unless the
   account holds consent for it (SPEC §7; a stop entry added after a consent withdraws it, so
   the later of the two wins: the store's part);
2. the rest count against ``daily_volume_limit``: those over it wait in ``pending_approval``
   (only messages still ``queued`` or ``scheduled``: one already waiting for its links stays so);
3. a paused account's ``queued`` messages wait as ``paused``;
4. a prepaid account is charged per part at its price for each destination; a request the
   balance does not cover, or with a destination it has no price for, is refused whole.

``held_back`` is the same check for a message accepted earlier that becomes ``queued`` now (its
``send_at`` came, ops approved it, the pause ended); ``refund`` says what a message that ended is
given back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from policies.approval import over_daily_volume
from policies.billing import charge_for

# Statuses as their SPEC names (policies do not import smscore).
QUEUED, SCHEDULED, PAUSED, PENDING_APPROVAL, STOPPED, REJECTED = (
    "queued", "scheduled", "paused", "pending_approval", "stopped", "rejected")
#: The final statuses a message can reach without any operator being tried (cancelled, refused,
#: stop-listed; its validity ended first; no operator could take it).
UNSENT_ENDS = (STOPPED, REJECTED, "expired", "failed")


class InsufficientBalance(Exception):
    """A prepaid account's balance does not cover the request (nothing is stored)."""

    def __init__(self, account: str, balance: Decimal, needed: Decimal) -> None:
        super().__init__(f"balance {balance} does not cover {needed}")
        self.account, self.balance, self.needed = account, balance, needed


class NoPrice(Exception):
    """A prepaid account has no price for a destination."""

    def __init__(self, number: str) -> None:
        super().__init__(f"no price for {number}")
        self.number = number


@dataclass(frozen=True, slots=True)
class Facts:
    """What the store knows about one account and the numbers of a request."""

    balance: Decimal = Decimal(0)
    paused: bool = False
    sent_today: int = 0
    stop_listed: frozenset[str] = frozenset()
    do_not_call: frozenset[str] = frozenset()
    consented: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Terms:
    """What the account's config says."""

    prepaid: bool = False
    price: Callable[[str], Decimal | None] = lambda number: None
    daily_volume_limit: int | None = None


@dataclass(frozen=True, slots=True)
class New:
    """A new message as admission sees it."""

    to: str
    status: str
    parts: int = 1


@dataclass(frozen=True, slots=True)
class Change:
    """A message's status at acceptance is not the one it came with: its first event says why."""

    status: str
    detail: str
    error: str | None = None


@dataclass(slots=True)
class Admission:
    """The outcome for one account's new messages, in the order they came."""

    changes: list[Change | None]
    charges: list[Decimal]  # per message (0 when not charged)
    balance: Decimal  # after the charges
    sent_today: int  # after counting these
    counted: bool = field(default=False)  # the daily volume moved (it is kept only with a limit)


def stop_reason(number: str, facts: Facts) -> Change | None:
    """Why a message to ``number`` must not go (a stop list), or None: the account's consent lets
    it through either list."""
    if number in facts.consented:
        return None
    if number in facts.stop_listed:
        return Change(STOPPED, "the number is on the account's stop list", "stop list")
    if number in facts.do_not_call:
        return Change(STOPPED, "the number is on the do-not-call list", "do-not-call")
    return None


def admit(account: str, messages: Sequence[New], facts: Facts, terms: Terms) -> Admission:
    """Decide on an account's new messages (see the module doc); raises InsufficientBalance or
    NoPrice when the request must be refused whole."""
    changes: list[Change | None] = [stop_reason(m.to, facts) for m in messages]
    status = [c.status if c else m.status for m, c in zip(messages, changes)]
    live = [i for i, s in enumerate(status) if s != STOPPED]
    sent = facts.sent_today
    counted = terms.daily_volume_limit is not None and bool(live)
    if counted:
        over = over_daily_volume(sent, len(live), terms.daily_volume_limit)
        for i in live[len(live) - over:]:
            if status[i] in (QUEUED, SCHEDULED):
                changes[i] = Change(PENDING_APPROVAL, f"over the daily volume limit of {terms.daily_volume_limit}")
                status[i] = PENDING_APPROVAL
        sent += len(live)
    if facts.paused:
        for i in live:
            if status[i] == QUEUED:
                changes[i] = Change(PAUSED, "account paused by ops")
                status[i] = PAUSED
    charges = [Decimal(0)] * len(messages)
    balance = facts.balance
    if terms.prepaid and live:
        for i in live:
            charge = charge_for(terms.price(messages[i].to), messages[i].parts)
            if charge is None:
                raise NoPrice(messages[i].to)
            charges[i] = charge
        total = sum((charges[i] for i in live), Decimal(0))
        if total > balance:
            raise InsufficientBalance(account, balance, total)
        balance -= total
    return Admission(changes, charges, balance, sent, counted)


def held_back(number: str, facts: Facts) -> Change | None:
    """A message accepted earlier becomes ``queued`` now: a stop list entry added meanwhile
    stops it, a paused account holds it (None: it may go)."""
    reason = stop_reason(number, facts)
    if reason is not None:
        return reason
    if facts.paused:
        return Change(PAUSED, "account paused by ops")
    return None


def refund(charged: Decimal, tried: Iterable[str], statuses: Iterable[str]) -> Decimal:
    """What a prepaid message is given back after a change: all it was charged when it ended
    before any operator was tried (``UNSENT_ENDS``: nothing went out, nothing is owed), else
    nothing."""
    if charged and not tuple(tried) and any(s in UNSENT_ENDS for s in statuses):
        return charged
    return Decimal(0)


def account_cost(*, prepaid: bool, charged: Decimal, price: Decimal | None, parts: int,
                 tried: Iterable[str], status: str) -> Decimal:
    """What a message costs its account, the ``cost`` its customer sees (SPEC §14: never what the
    operators cost the gateway). Prepaid: what it was charged (nothing once refunded). Postpaid:
    its price for its parts, nothing when it ended as a refunded prepaid one would (``refund``)
    or the account has no price for its destination."""
    if prepaid:
        return charged
    due = charge_for(price, parts)
    if due is None or refund(due, tried, (status,)):
        return Decimal(0)
    return due


def over_backlog(queued: int, incoming: int, max_backlog: int) -> bool:
    """SPEC §15 load shedding: a request whose ``incoming`` queued messages would take the cluster's
    ``queued`` backlog past ``max_backlog`` is refused whole (one that queues nothing never is)."""
    return incoming > 0 and queued + incoming > max_backlog


def parts_allowed(cap: int, account_max_parts: int | None = None, requested: int | None = None) -> int:
    """The most parts a message may take (SPEC §3): ``[gateway] max_parts_cap`` is a hard cap for
    any account; an account's ``max_parts`` (none for a reply of no account) and a request's own
    ``max_parts`` only lower it."""
    most = cap if account_max_parts is None else min(cap, account_max_parts)  # every request asks: no genexpr
    return most if requested is None else min(most, requested)
