"""The protocol-neutral boundary between the connectors and the core.

smscore hands an operator link a ``SubmitRequest`` and gets SMSC ids back; a link hands smscore
``ReceiptFacts`` and ``MoFacts``. No SMPP field crosses this boundary: data_coding, esm_class, TON/NPI,
command ids and status codes stay inside ``connectors/smpp``.

An operator link (``connectors.smpp.client.OperatorLink``, or a test double) offers:

- ``name``: the operator's name from the config;
- ``capacity() -> int``: how many more messages it can take right now (free window slots of its
  bound sessions, within its tps budget); 0 while down or saturated;
- ``is_up() -> bool``: at least one session is bound and can submit;
- ``submit(request) -> Deferred``: fires with a list of keys, one per part, the normalized SMSC
  message ids to correlate receipts by; fails with ``SubmitError``;
- ``submit_to(request, callback, errback, *args)``: the same without a Deferred (the pipeline's
  way, for every message): ``callback(keys, *args)`` or ``errback(error, *args)``, once;
- ``start()`` and ``stop() -> Deferred`` (clean unbind of every session).

and calls its ``LinkListener``: ``link_ready(name)`` whenever capacity may have become available,
``receipt_received(receipt) -> Deferred`` and ``mo_received(mo) -> Deferred`` (the SMSC is answered
only when that Deferred fires: success means stored durably; failure means answer with a temporary
error so the SMSC delivers it again), and ``bind_changed(name, session, up)``; its connections count
their PDUs into ``pdu_counts(name)``, a ``Counter`` of (command, direction) read by the metrics.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from twisted.internet.defer import Deferred


class ReceiptOutcome(str, Enum):
    """What a delivery receipt says, without SMPP's words for it."""

    DELIVERED = "delivered"
    FAILED = "failed"  # the operator could not deliver (UNDELIV, REJECTD): try the next operator
    EXPIRED = "expired"  # validity ran out at the SMSC
    BUFFERED = "buffered"  # temporary: phone off, no coverage, still trying
    ACCEPTED = "accepted"  # intermediate (ENROUTE/ACCEPTD): nothing changes
    UNKNOWN = "unknown"


@dataclass(slots=True)
class ReceiptFacts:
    """A delivery receipt as a link hands it to the core.

    ``keys`` are the normalized SMSC message ids to look the message up by, best candidate first
    (an SMSC may print in decimal an id it gave in hex). ``number``: the phone number the receipt
    is about, as the SMSC wrote it (the deliver_sm's ``source_addr``), "" when unknown; it tells
    apart two messages the SMSC gave one id (``policies.receipts``).
    """

    operator: str
    keys: tuple[str, ...]
    outcome: ReceiptOutcome
    stat: str = ""
    err: str = ""
    raw_id: str = ""
    number: str = ""

    @property
    def detail(self) -> str:
        parts = []
        if self.stat:
            parts.append(f"stat={self.stat}")
        if self.err:
            parts.append(f"err={self.err}")
        if self.raw_id:
            parts.append(f"id={self.raw_id}")
        return " ".join(parts)


@dataclass(frozen=True, slots=True)
class MoFacts:
    """A mobile-originated SMS as a link hands it to the core: a whole one, or one part of a
    concatenated one (``concat`` = (reference, total, sequence), from the UDH or the SAR TLVs);
    the core stores parts durably and reassembles them."""

    operator: str
    sender: str
    to: str
    text: str
    concat: tuple[int, int, int] | None = None


@dataclass(slots=True)
class SubmitRequest:
    """One MT message to submit; the link splits it into parts with the given encoding."""

    message_id: str
    to: str
    sender: str
    text: str
    encoding: str  # "gsm7" | "latin1" | "ucs2"
    #: a part concatenated by the customer: sent as one SMS with this UDH (esm_class UDHI)
    udh: bytes = b""
    #: the validity the operator gets (epoch seconds), or None for its default
    expires_at: float | None = None


class SubmitError(Exception):
    """A submit that did not succeed.

    ``kind``: ``"throttled"`` (slow down and send again later; never a failure), ``"transient"``
    (timeout, connection lost, temporary SMSC error: send again), or ``"permanent"`` (this operator
    will not take it: try the next operator).
    """

    THROTTLED = "throttled"
    TRANSIENT = "transient"
    PERMANENT = "permanent"

    def __init__(self, kind: str, detail: str, *, maybe_sent: bool = False, answered: bool = False) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail
        #: the submit_sm was written and no response came (timeout, connection lost): the SMSC
        #: may have taken it, so sending it again may deliver it twice.
        self.maybe_sent = maybe_sent
        #: the SMSC answered the submit_sm with this error (its status, a generic_nack): it saw the
        #: message and refused it for now, unlike a timeout or a lost connection
        self.answered = answered


class LinkListener(Protocol):
    """What a link calls back into (implemented by the pipeline)."""

    def link_ready(self, operator: str) -> None: ...

    def receipt_received(self, receipt: ReceiptFacts) -> Deferred: ...

    def mo_received(self, mo: MoFacts) -> Deferred: ...

    def bind_changed(self, operator: str, session: str, up: bool) -> None: ...

    def pdu_counts(self, operator: str) -> Counter[tuple[str, str]]:
        """The counts of ``operator``'s PDUs by (command, direction), which its connections add to."""
