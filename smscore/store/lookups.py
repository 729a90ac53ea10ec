"""What the admin look-ups of SPEC §14 ask the store and get back, shared by every store.

Ops answer "where is my message to 4670…?" across accounts: messages and MO by account, status,
number, operator and time; what the gateway knows of one number (what it learned, its stop-list
entries and consents); the accounts' balances. These are reads only, on indexes (schema version
10 adds the ones a number look-up needs), newest first and paged by id: ids sort by creation time,
so the last id seen is a cursor that continues without repeats or gaps however many messages
arrive meanwhile (new ones are newer than the first page, not inside later ones).
"""

from __future__ import annotations

from dataclasses import dataclass

from policies.learning import Learned


@dataclass(frozen=True)
class MessageQuery:
    """Which messages: every filter given must hold. ``since``/``until`` bound the creation time
    (``since`` included, ``until`` not), read from the id, which carries it to the millisecond."""

    account: str | None = None
    status: str | None = None
    to: str | None = None
    operator: str | None = None
    since: float | None = None
    until: float | None = None


@dataclass(frozen=True)
class MoQuery:
    """Which MO: of ``account`` (routed to it), for ``keyword``, from the phone ``sender``."""

    account: str | None = None
    keyword: str | None = None
    sender: str | None = None


@dataclass(frozen=True)
class StopEntry:
    """One stop-list entry: ``account`` is ``DO_NOT_CALL`` ("*") for the do-not-call list."""

    account: str
    number: str
    added_at: float | None
    source: str


@dataclass(frozen=True)
class ConsentEntry:
    """One consent: ``account`` may send to ``number`` although it is on the do-not-call list or on
    the account's stop list (a stop entry added later withdraws it)."""

    account: str
    number: str
    added_at: float | None


@dataclass(frozen=True)
class NumberFacts:
    """What the store keeps about one number besides its messages."""

    learned: Learned | None
    stop: tuple[StopEntry, ...]  # the do-not-call entry included
    consents: tuple[tuple[str, float | None], ...]  # (account, added_at)
    block: tuple = ()  # the block evidence of its prefixes (policies.blocks.Tally rows)


@dataclass(frozen=True)
class AccountState:
    """An account as the store keeps it (the config holds the rest)."""

    balance: object  # Decimal
    paused: bool
    sent_today: int  # counted only for accounts with a daily_volume_limit


def id_floor(ts: float) -> str:
    """The smallest message id created at ``ts`` or later (ids start with 12 hex digits of ms)."""
    return f"{int(ts * 1000) & 0xFFFFFFFFFFFF:012x}"


def matches(m, query: MessageQuery) -> bool:
    """Whether message ``m`` passes ``query`` (the memory store's filter; SQL says the same)."""
    return ((query.account is None or m.account == query.account)
            and (query.status is None or m.status.value == query.status)
            and (query.to is None or m.to == query.to)
            and (query.operator is None or m.operator == query.operator)
            and (query.since is None or m.id >= id_floor(query.since))
            and (query.until is None or m.id < id_floor(query.until)))


def mo_matches(mo, query: MoQuery) -> bool:
    """Whether MO ``mo`` passes ``query``."""
    return ((query.account is None or mo.account == query.account)
            and (query.keyword is None or mo.keyword == query.keyword)
            and (query.sender is None or mo.sender == query.sender))
