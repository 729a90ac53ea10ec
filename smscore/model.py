"""The message model: what a message is, its statuses and its history.

It knows no protocol: no SMPP field, no HTTP detail. The store persists these objects, the pipeline
moves them along, the HTTP API renders them. Times are POSIX seconds (floats) everywhere inside the
gateway and are rendered as RFC 3339 only at the edge.
"""

from __future__ import annotations

import math
import operator
import os
import random
import time
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from decimal import Decimal
from enum import Enum

from connectors.smpp.halves import join_parts


#: the wire names of the statuses in which a message's life has ended (SPEC §5)
_FINAL_NAMES = frozenset({"delivered", "failed", "expired", "unknown", "stopped", "rejected"})


class Status(str, Enum):
    """The statuses of SPEC §5, with their wire names."""

    SCHEDULED = "scheduled"
    PENDING_APPROVAL = "pending_approval"
    PAUSED = "paused"
    QUEUED = "queued"
    SUBMITTED = "submitted"
    BUFFERED = "buffered"
    DELIVERED = "delivered"
    FAILED = "failed"
    EXPIRED = "expired"
    UNKNOWN = "unknown"
    STOPPED = "stopped"
    REJECTED = "rejected"

    #: The wire name, read without ``Enum``'s own ``value`` (a property written in Python, two
    #: calls a read): the stores, the metrics and the callbacks read it for every status change.
    value = property(operator.attrgetter("_value_"))

    def __init__(self, wire_name: str) -> None:
        #: whether a message's life ends in this status (an attribute for the same reason)
        self.final = wire_name in _FINAL_NAMES


FINAL_STATUSES = frozenset(s for s in Status if s.final)

#: A status by its wire name: ``Status(name)`` without the Enum call (rows read in the hot path).
STATUS_BY_NAME = {s.value: s for s in Status}

#: The wire names of the statuses, in SPEC §5 order (what ``callback_statuses`` may list).
STATUS_NAMES = tuple(s.value for s in Status)

#: Statuses in which the gateway still has work to do for the message (sending it).
SENDABLE_STATUSES = frozenset({Status.QUEUED})


@dataclass(frozen=True, slots=True)
class Event:
    """One change in a message's history (SPEC §5)."""

    at: float
    status: Status
    operator: str | None = None
    detail: str = ""
    final: bool = False


#: the detail of the event a customer's cancel writes (``DELETE /v1/messages/{id}``, ``cancel_sm``)
CANCELLED_BY_CUSTOMER = "cancelled by the customer"


def is_cancel(e: Event) -> bool:
    """Whether ``e`` is a customer's cancel: the message stopped, and its detail says cancelled
    (an ESME's receipt and ``query_sm`` then say DELETED, SPEC §13)."""
    return e.status is Status.STOPPED and e.detail.startswith("cancelled")


@dataclass(slots=True)
class Message:
    """An MT message as the gateway keeps it.

    ``tried`` lists the operators already attempted (in order), so failover can pick the next one.
    ``parts`` is the number of SMS parts the text takes with its chosen encoding.
    """

    id: str
    account: str
    to: str
    sender: str
    text: str
    encoding: str
    parts: int
    profile: str
    status: Status = Status.QUEUED
    reference: str | None = None
    callback_url: str | None = None
    operator: str | None = None
    cost: Decimal = Decimal(0)
    error: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    send_at: float | None = None
    tried: tuple[str, ...] = ()
    events: list[Event] = field(default_factory=list)
    #: "api" for messages customers sent; "reply" for replies the gateway sends from a shortcode
    #: (no status callbacks, not charged).
    origin: str = "api"
    #: what the account was charged at acceptance (prepaid), refunded if it ends before submission
    charged: Decimal = Decimal(0)
    #: which status events are pushed (a ``policies.callbacks`` selection the request chose), or
    #: None: the account's ``callback_statuses`` at the time of each event
    callback_statuses: str | None = None
    #: a part a customer's ESME concatenated itself: its UDH, sent with it as it came (SPEC §13)
    udh: bytes = b""
    #: not sent after this moment (a submit's validity_period): ``expired`` instead
    expires_at: float | None = None
    #: learned for the destination (not stored with the message): the operator that last delivered
    #: to it, and operators that failed for it lately
    preferred: str | None = None
    recent_failures: tuple[str, ...] = ()
    #: what the numbers around the destination taught (``policies.blocks.Tally`` rows of its
    #: prefixes; not stored with the message), loaded only when it has no operator of its own to use
    block: tuple = ()
    #: the operators an HLR/MNP look-up says reach the destination (``smscore.number_lookup``; not
    #: stored): None when none was asked for this message, empty when the answer named none
    reach: frozenset | None = None
    #: temporary refusals in a row by the SMSC of the operator it is sent to (``policies.retry.
    #: refused_too_often``; not stored: a restart starts the count again)
    refusals: int = 0

    def copy(self) -> Message:
        """A shallow copy (the same ``events`` list), without ``copy.copy``'s generic machinery:
        the stores copy every message they change. Every field, in order, to the constructor."""
        return Message(*_message_fields(self))


_message_fields = operator.attrgetter(*(f.name for f in fields(Message)))


@dataclass(slots=True)
class MoMessage:
    """A mobile-originated message as stored: whole (reassembled when it came in parts).

    ``note`` says what is odd about it, e.g. parts missing when the reassembly timed out.
    """

    id: str
    operator: str
    sender: str
    to: str
    text: str
    received_at: float
    parts: int = 1
    note: str = ""
    account: str | None = None
    keyword: str = ""
    payload: str = ""
    outcome: str = "received"
    seq: int | None = None
    events: list[MoEvent] = field(default_factory=list)
    #: set when routing ran in the transaction that stored it: what it decided (not persisted as such)
    routing: MoRouting | None = None


@dataclass(frozen=True, slots=True)
class MoEvent:
    """One step in an MO's history: received, routed, replied, pushed, push failed, ..."""

    at: float
    status: str
    detail: str = ""


#: the ``callback_url`` of messages whose receipts go to the account's ESMEs (SPEC §13), and the
#: ``url`` of those push jobs
SMPP_TARGET = "smpp"


@dataclass(slots=True)
class PushJob:
    """An HTTP push to a customer backend, kept durably until it succeeds or its time runs out.

    ``subject`` is the message or MO id: jobs of one subject are delivered in order. ``first_at``
    is when the job was queued until its first attempt fails, and from then on when that attempt
    was made: the start of its ``[push] retry_for`` window (``Store.finish_pushes`` ``tried_at``).
    """

    kind: str  # "mo" | "status" | "balance"
    account: str
    subject: str
    url: str
    body: dict
    id: int | None = None
    attempts: int = 0
    first_at: float = 0.0


@dataclass(slots=True)
class MoRouting:
    """What routing decided for one MO, applied by the store in the transaction that stores it."""

    outcome: str  # keyword | unknown_keyword | stop | over_cap | no_shortcode
    account: str | None = None
    keyword: str = ""
    payload: str = ""
    events: list[tuple[str, str]] = field(default_factory=list)  # (status, detail)
    inbox: bool = False
    spend: tuple[str, str, str, Decimal] | None = None  # shortcode, number, "YYYY-MM", amount
    stop: tuple[tuple[str, ...], str] | None = None  # accounts, number
    push: PushJob | None = None
    replies: list[Message] = field(default_factory=list)


def assemble_mo(parts: list[tuple[int, str]], total: int) -> tuple[str, str]:
    """The text of a concatenated MO from its (sequence, text) parts, and a note when some are
    missing (the reassembly timed out)."""
    present = dict(parts)
    # a character a phone split between two parts is put back together (connectors.smpp.halves)
    text = join_parts([present.get(seq, "") for seq in range(1, max(total, *present) + 1)])
    missing = [seq for seq in range(1, total + 1) if seq not in present]
    note = ""
    if missing:
        note = (f"reassembly timed out: {len(present)} of {total} parts received, "
                f"missing part(s) {', '.join(map(str, missing))}")
    return text, note


_last_ms = 0
_counter = 0
# Seeded from the OS once: ids need to be unique and hard to enumerate, not secret (another
# account's id answers 404 anyway), and os.urandom per id costs a system call.
_random = random.Random(os.urandom(16))


def new_message_id(now: float | None = None) -> str:
    """A 24-character hex id that sorts by creation time (good index locality) and is unguessable.

    48 bits of milliseconds, 16 bits of a per-process counter, 32 random bits.
    """
    global _last_ms, _counter
    ms = int((time.time() if now is None else now) * 1000)
    if ms == _last_ms:
        _counter = (_counter + 1) & 0xFFFF
    else:
        _last_ms, _counter = ms, 0
    return f"{(ms & 0xFFFFFFFFFFFF) << 48 | _counter << 32 | _random.getrandbits(32):024x}"


#: the last whole second ``rfc3339`` wrote, and its text up to the milliseconds (replaced whole:
#: the writer threads format too)
_second: tuple[int, str] = (-1, "")


def rfc3339(ts: float | None) -> str | None:
    """Render POSIX seconds as RFC 3339 UTC with milliseconds.

    The date and time of day are made once a second: a status callback, an event and a message
    rendered at load mostly fall in the second before (the main worker's lists runs spent 1.7 % of
    their time here). The microseconds are rounded as ``datetime.fromtimestamp`` rounds them."""
    if ts is None:
        return None
    global _second
    fraction, whole = math.modf(ts)
    micro, second = round(fraction * 1e6), int(whole)  # half to even, as fromtimestamp
    if micro >= 1_000_000:
        micro, second = micro - 1_000_000, second + 1
    elif micro < 0:  # before 1970
        micro, second = micro + 1_000_000, second - 1
    known, text = _second
    if known != second:
        d = datetime.fromtimestamp(second, tz=timezone.utc)  # by hand: isoformat and replace cost 25 % more
        text = "%04d-%02d-%02dT%02d:%02d:%02d." % (d.year, d.month, d.day, d.hour, d.minute, d.second)
        _second = (second, text)
    return "%s%03dZ" % (text, micro // 1000)
