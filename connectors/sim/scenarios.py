"""Misbehaving SMSCs: one small ``SimulatedSMSC`` subclass per way a real SMSC gets SMPP wrong.

Why this module exists: the gateway's promises (SPEC §7, §8, §10: no accepted message lost, no
false failure, a duplicate only where a submit got no response) matter most when the operator
misbehaves, and real operators cannot be made to misbehave on demand. jasmin keeps such a
catalogue (``tests/protocols/smpp/smsc_simulator.py``); here each scenario overrides one or two of
``SimulatedSMSC``'s hooks (``bind_status``, ``answer_submit``, ``new_message_id``, ``receipt_for``,
``choose_receiver``, ``receipt_acknowledged``, ``queue_receipt``) and leaves the SMSC core alone, so
time stays the injected reactor's and every scenario runs as well under a ``Clock`` as on loopback.
``docs/smsc-scenarios.md`` says, per scenario, what the gateway must do and what the store must show;
``tests/integration/test_misbehaving_smscs.py`` checks it.

Every constructor takes ``SimulatedSMSC``'s arguments (``settings, reactor, name``, keyword
``first_message_id``) followed by the scenario's own keyword arguments. What a scenario did (binds
refused, submits left unanswered, PDUs the ESME answered ...) is kept in public attributes for tests.
"""

from __future__ import annotations

import struct
from collections import Counter, deque
from collections.abc import Iterable, Sequence
from dataclasses import replace

from connectors.sim.receipts import Outcome
from connectors.sim.settings import SimSettings
from connectors.sim.smsc import PendingReceipt, SimulatedSMSC, SubmitRecord
from connectors.smpp.codec import PDU, encode
from connectors.smpp.defs import COMMAND_IDS, ESME_RBINDFAIL, ESME_RSYSERR
from connectors.smpp.protocol import SMPPProtocol
from connectors.smpp.session import UnexpectedResponse

__all__ = [
    "BindRefused",
    "DropMidWindow",
    "DuplicateReceipts",
    "GarbagePDUs",
    "HexDecMixing",
    "NoResponse",
    "ReceiptBeforeResponse",
    "ReceiptsOnAnotherSession",
    "ReusedIds",
    "SCENARIOS",
    "SlowResponses",
    "SystemErrors",
    "Throttling",
    "UnknownCommandId",
    "sm_length_past_end",
    "tlv_past_end",
    "truncated_body",
    "unframeable",
    "unknown_command",
]


class BindRefused(SimulatedSMSC):
    """Refuses the first ``refusals`` binds with ``status`` (ESME_RBINDFAIL), then accepts.

    Imitates an SMSC that is restarting, over its connection limit, or still waking up after a
    maintenance window: TCP connects, the bind is answered with an error. The gateway must back off
    (growing delays, not a tight loop) and keep its messages queued; none may fail.
    """

    def __init__(self, settings: SimSettings, reactor, name: str = "sim", *, refusals: int = 3,
                 status: int = ESME_RBINDFAIL, **kw) -> None:
        super().__init__(settings, reactor, name, **kw)
        self.refusals = refusals
        self.status = status
        #: Every bind received, refused or not.
        self.bind_attempts = 0
        #: ``reactor.seconds()`` of each bind received (tests read the back-off from it).
        self.bind_times: list[float] = []

    def bind_status(self, pdu: PDU) -> int:
        self.bind_attempts += 1
        self.bind_times.append(self.reactor.seconds())
        if self.bind_attempts <= self.refusals:
            return self.status
        return super().bind_status(pdu)


class SlowResponses(SimulatedSMSC):
    """Answers every submit after ``delay`` seconds (and sends its receipt that much later too).

    Imitates an SMSC under load whose submit_sm_resp takes a while but comes within the ESME's
    response timeout. The gateway must simply wait: no resend, no duplicate.
    """

    def __init__(self, settings: SimSettings, reactor, name: str = "sim", *, delay: float = 0.3,
                 **kw) -> None:
        super().__init__(settings, reactor, name, **kw)
        self.delay = delay

    def answer_submit(self, proto: SMPPProtocol, pdu: PDU, record: SubmitRecord) -> None:
        self._later(self.delay, super().answer_submit, proto, pdu, record)

    def receipt_delay_for(self, record: SubmitRecord) -> float:
        return super().receipt_delay_for(record) + self.delay


class NoResponse(SimulatedSMSC):
    """Never answers the first submit to each destination of ``silent_for``; answers later ones.

    Imitates an SMSC that takes a message and loses its submit_sm_resp (a crashed worker, a
    response dropped under load). The message was accepted, so its receipt still comes, for an id
    the ESME never learned. The gateway must time out, count the submit in
    ``smsgw_submit_unanswered_total`` and send it again: this is the one allowed duplicate.
    """

    def __init__(self, settings: SimSettings, reactor, name: str = "sim", *,
                 silent_for: Iterable[str] = (), **kw) -> None:
        super().__init__(settings, reactor, name, **kw)
        self.silent_for = frozenset(silent_for)
        #: The submits never answered.
        self.unanswered: list[SubmitRecord] = []

    def answer_submit(self, proto: SMPPProtocol, pdu: PDU, record: SubmitRecord) -> None:
        to = record.destination_addr
        if to in self.silent_for and all(r.destination_addr != to for r in self.unanswered):
            self.unanswered.append(record)
            return
        super().answer_submit(proto, pdu, record)


class Throttling(SimulatedSMSC):
    """Answers ESME_RTHROTTLED to every submit beyond ``tps`` accepted within one second.

    Imitates the commonest real limit: an operator account with a contracted rate. (The knob is
    ``SimSettings.throttle_tps``; this class only sets it.) The gateway must slow down and send
    the refused messages again later; a throttled submit is never a failure.
    """

    def __init__(self, settings: SimSettings, reactor, name: str = "sim", *, tps: int = 5,
                 **kw) -> None:
        super().__init__(replace(settings, throttle_tps=tps), reactor, name, **kw)


class SystemErrors(SimulatedSMSC):
    """Answers ESME_RSYSERR to the first ``errors`` submits, then takes them.

    Imitates an SMSC with a passing internal fault (a database failover, a restarting worker):
    a temporary error, not a throttle. The gateway must back off as for throttling (sent again at
    once, the submits met the error again at once, thousands a second) and send them again; the
    errors are ``transient`` attempts, never a failure while they are fewer than five in a row
    for one message (``policies.retry.refused_too_often``).
    """

    def __init__(self, settings: SimSettings, reactor, name: str = "sim", *, errors: int = 3, **kw) -> None:
        super().__init__(settings, reactor, name, **kw)
        self.errors = errors
        #: when each ESME_RSYSERR was answered
        self.refused_at: list[float] = []

    def submit_status(self, pdu: PDU) -> int:
        if len(self.refused_at) < self.errors:
            self.refused_at.append(self.reactor.seconds())
            return ESME_RSYSERR
        return super().submit_status(pdu)


class DropMidWindow(SimulatedSMSC):
    """Takes the first ``hold`` submits of its first connection without answering them, then closes
    that connection; later connections behave.

    Imitates an SMSC that crashes or fails over with a window of submits in flight (or a load
    balancer that cuts idle-looking connections). It took those messages, so their receipts come
    later, for ids the ESME never learned. The gateway must send them again as soon as it has
    rebound, each counted in ``smsgw_submit_unanswered_total``.
    """

    def __init__(self, settings: SimSettings, reactor, name: str = "sim", *, hold: int = 3,
                 **kw) -> None:
        super().__init__(settings, reactor, name, **kw)
        self.hold = hold
        #: The submits taken and never answered on the dropped connection.
        self.unanswered: list[SubmitRecord] = []
        #: How many connections this SMSC closed itself.
        self.drops = 0

    def answer_submit(self, proto: SMPPProtocol, pdu: PDU, record: SubmitRecord) -> None:
        if proto.close_reason:  # closing: whatever else was on its way gets no answer either
            self.unanswered.append(record)
            return
        if self.drops:
            super().answer_submit(proto, pdu, record)
            return
        self.unanswered.append(record)
        if len(self.unanswered) >= self.hold:
            self.drops += 1
            self.log.info("scenario: dropping the connection mid-window", session=proto.label,
                          unanswered=len(self.unanswered))
            proto.close("scenario: dropped mid-window")


# --- PDUs a well-behaved SMSC never sends -------------------------------------------------------
def _deliver_sm(sequence: int, tlvs: dict | None = None) -> bytes:
    return encode(PDU("deliver_sm", sequence, 0, {
        "source_addr": "46700000000", "destination_addr": "ACME", "esm_class": 0,
        "short_message": b"hello"}, tlvs or {}))


def _with_length(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data[4:]


def truncated_body(sequence: int) -> bytes:
    """A deliver_sm whose frame ends inside its mandatory fields (a C-string without its NUL):
    the header is sane, so the ESME answers generic_nack ESME_RINVCMDLEN and carries on."""
    return _with_length(_deliver_sm(sequence)[:16 + 5])


def sm_length_past_end(sequence: int) -> bytes:
    """A deliver_sm whose sm_length promises more octets than the frame holds (ESME_RINVMSGLEN)."""
    return _with_length(_deliver_sm(sequence)[:-2])


def tlv_past_end(sequence: int) -> bytes:
    """A deliver_sm whose last TLV's length runs past the frame (ESME_RINVOPTPARSTREAM)."""
    return _with_length(_deliver_sm(sequence, {"user_message_reference": 7})[:-1])


def unknown_command(sequence: int, command_id: int = 0x00000999, body: bytes = b"\x00\x01") -> bytes:
    """A request with a command id SMPP 3.4 does not define (ESME_RINVCMDID)."""
    if command_id in COMMAND_IDS.values():
        raise ValueError(f"0x{command_id:08X} is a defined command id")
    return struct.pack(">IIII", 16 + len(body), command_id, 0, sequence) + body


def unframeable(command_length: int) -> bytes:
    """Four octets of a command_length the ESME cannot frame (< 16 or over its maximum), then
    a few more: the byte stream is lost, the ESME must close the connection (and rebind)."""
    return struct.pack(">I", command_length) + b"\x00\x00\x00\x05garbage"


class _Interjecting(SimulatedSMSC):
    """Writes raw bytes (``interjections``, one after each submit_sm_resp until none is left) and
    keeps the responses the ESME sends back to them in ``answers``."""

    def __init__(self, settings: SimSettings, reactor, name: str = "sim", *,
                 interjections: Sequence[bytes] = (), **kw) -> None:
        super().__init__(settings, reactor, name, **kw)
        self.interjections = deque(interjections)
        #: Responses from the ESME that answer no request of ours: its answers to the bytes above.
        self.answers: list[PDU] = []

    def answer_submit(self, proto: SMPPProtocol, pdu: PDU, record: SubmitRecord) -> None:
        super().answer_submit(proto, pdu, record)
        if self.interjections and proto.transport is not None and not proto.close_reason:
            proto.transport.write(self.interjections.popleft())

    def protocol_error(self, proto: SMPPProtocol, event) -> None:
        super().protocol_error(proto, event)
        if isinstance(event, UnexpectedResponse):
            self.answers.append(event.pdu)


class GarbagePDUs(_Interjecting):
    """After a submit_sm_resp, sends a malformed PDU: by default a deliver_sm cut inside its
    mandatory fields, one whose sm_length runs past its end and one whose TLV does; or, given
    ``interjections=[unframeable(3)]``, a command_length nobody can frame.

    Imitates buggy SMSC software and middleboxes that mangle PDUs. A sane header with a bad body
    must be answered generic_nack (with its sequence number) and the session must go on; a broken
    frame must close the connection (after a generic_nack ESME_RINVCMDLEN) and rebind. No message
    may fail; only submits cut off by the close may be sent twice (and are counted).
    """

    #: Sequence numbers of the default malformed PDUs (far from the SMSC's own counter).
    SEQUENCES = (0x7FFF0001, 0x7FFF0002, 0x7FFF0003)

    def __init__(self, settings: SimSettings, reactor, name: str = "sim", *,
                 interjections: Sequence[bytes] | None = None, **kw) -> None:
        if interjections is None:
            a, b, c = self.SEQUENCES
            interjections = (truncated_body(a), sm_length_past_end(b), tlv_past_end(c))
        super().__init__(settings, reactor, name, interjections=interjections, **kw)


class UnknownCommandId(_Interjecting):
    """After a submit_sm_resp, sends a PDU with a command id SMPP 3.4 does not define (by default
    0x00000999 and 0x00010203, the sequence numbers in ``SEQUENCES``).

    Imitates an SMSC speaking a vendor extension or a later SMPP version. The ESME must answer
    generic_nack ESME_RINVCMDID with the PDU's sequence number and carry on with the session.
    """

    SEQUENCES = (0x7FFF0101, 0x7FFF0102)
    COMMAND_IDS = (0x00000999, 0x00010203)

    def __init__(self, settings: SimSettings, reactor, name: str = "sim", *,
                 interjections: Sequence[bytes] | None = None, **kw) -> None:
        if interjections is None:
            interjections = tuple(unknown_command(s, c)
                                  for s, c in zip(self.SEQUENCES, self.COMMAND_IDS))
        super().__init__(settings, reactor, name, interjections=interjections, **kw)


class ReceiptBeforeResponse(SimulatedSMSC):
    """Holds each submit_sm_resp until the ESME has acknowledged that message's receipt.

    Imitates an SMSC whose delivery path is faster than its response path (responses queued
    behind a slow component, receipts sent by another process). The receipt names an id the
    ESME has not seen yet; the gateway must store it durably, acknowledge it, and match it when
    the submit_sm_resp comes (SPEC §8).
    """

    def __init__(self, settings: SimSettings, reactor, name: str = "sim", **kw) -> None:
        super().__init__(settings, reactor, name, **kw)
        self._held: dict[str, tuple[SMPPProtocol, PDU, SubmitRecord]] = {}
        #: Message ids whose response went out after their receipt was acknowledged.
        self.answered_after_receipt: list[str] = []

    def answer_submit(self, proto: SMPPProtocol, pdu: PDU, record: SubmitRecord) -> None:
        if not int(pdu.params.get("registered_delivery", 0)) & 0x03:
            super().answer_submit(proto, pdu, record)  # no receipt will come: answer now
            return
        self._held[record.message_id] = (proto, pdu, record)

    def receipt_acknowledged(self, proto: SMPPProtocol, receipt: PendingReceipt) -> None:
        held = self._held.pop(receipt.message_id, None)
        if held is not None:
            self.answered_after_receipt.append(receipt.message_id)
            super().answer_submit(*held)


class HexDecMixing(SimulatedSMSC):
    """Gives message ids in one base in submit_sm_resp and prints them in the other in receipts.

    Imitates a common SMSC inconsistency: the id is a number, formatted once in hex (often upper
    case, zero-padded) and once in decimal, by different components. ``response_base`` and
    ``receipt_base`` are ``"hex"`` or ``"dec"``; ``response_width`` / ``receipt_width`` pad with
    leading zeros; with ``tlv`` the receipted_message_id TLV carries the receipt's form too,
    without it only the receipt text has the id. With ``receipt_id_format = "auto"`` the gateway
    must match every receipt.
    """

    def __init__(self, settings: SimSettings, reactor, name: str = "sim", *,
                 response_base: str = "hex", receipt_base: str = "dec", response_width: int = 0,
                 receipt_width: int = 0, upper: bool = True, tlv: bool = False, **kw) -> None:
        for base in (response_base, receipt_base):
            if base not in ("hex", "dec"):
                raise ValueError(f"base must be 'hex' or 'dec', not {base!r}")
        super().__init__(settings, reactor, name, **kw)
        self.response_base = response_base
        self.receipt_base = receipt_base
        self.response_width = response_width
        self.receipt_width = receipt_width
        self.upper = upper
        self.tlv = tlv
        self._numbers: dict[str, int] = {}

    def _format(self, n: int, base: str, width: int) -> str:
        text = f"{n:0{width}x}" if base == "hex" else f"{n:0{width}d}"
        return text.upper() if self.upper else text

    def receipt_id(self, message_id: str) -> str:
        """How this SMSC prints in a receipt the id it answered ``message_id``."""
        return self._format(self._numbers[message_id], self.receipt_base, self.receipt_width)

    def new_message_id(self) -> str:
        n = self._next_id
        self._next_id += 1
        message_id = self._format(n, self.response_base, self.response_width)
        self._numbers[message_id] = n
        return message_id

    def receipt_for(self, record: SubmitRecord, submit: dict, outcome: Outcome,
                    submitted_at: float, done_at: float) -> tuple[dict, dict]:
        other = self.receipt_id(record.message_id)
        params, tlvs = super().receipt_for(record._replace(message_id=other), submit, outcome,
                                           submitted_at, done_at)
        if not self.tlv:
            tlvs.pop("receipted_message_id", None)
        return params, tlvs


class ReceiptsOnAnotherSession(SimulatedSMSC):
    """Sends every receipt on a bound receiver session other than the one its submit came on,
    holding it until there is one.

    Imitates SMSCs that deliver receipts on whichever bind of the account they like (often a
    dedicated receiver, or after a reconnect a session the message was never sent on). The
    gateway must match receipts by operator and id, not by session.
    """

    def __init__(self, settings: SimSettings, reactor, name: str = "sim", **kw) -> None:
        super().__init__(settings, reactor, name, **kw)
        #: (message_id, session of the submit, session of the receipt) for each receipt acked.
        self.crossed: list[tuple[str, str, str]] = []

    def choose_receiver(self, receipt: PendingReceipt,
                        ready: list[SMPPProtocol]) -> SMPPProtocol | None:
        others = [p for p in ready if p.label != receipt.session]
        return super().choose_receiver(receipt, others) if others else None

    def receipt_acknowledged(self, proto: SMPPProtocol, receipt: PendingReceipt) -> None:
        self.crossed.append((receipt.message_id, receipt.session, proto.label))


class DuplicateReceipts(SimulatedSMSC):
    """Sends every receipt ``copies`` times: right after one another (``at_once``) or each copy
    once the previous one was acknowledged.

    Imitates SMSCs that resend a receipt whose deliver_sm_resp they think was lost, and receipt
    paths that fan out twice. The gateway must acknowledge every copy and record one ``delivered``.
    """

    def __init__(self, settings: SimSettings, reactor, name: str = "sim", *, copies: int = 2,
                 at_once: bool = False, **kw) -> None:
        super().__init__(settings, reactor, name, **kw)
        self.copies = copies
        self.at_once = at_once
        #: How many copies of each message id's receipt were queued.
        self.sent = Counter()

    def _copy(self, receipt: PendingReceipt) -> PendingReceipt:
        return replace(receipt, attempts=0, params=dict(receipt.params), tlvs=dict(receipt.tlvs))

    def queue_receipt(self, receipt: PendingReceipt) -> None:
        first = receipt.message_id not in self.sent
        if receipt.attempts == 0 or first:
            self.sent[receipt.message_id] += 1
        super().queue_receipt(receipt)
        if first and self.at_once:
            for _ in range(self.copies - 1):
                self.sent[receipt.message_id] += 1
                super().queue_receipt(self._copy(receipt))

    def receipt_acknowledged(self, proto: SMPPProtocol, receipt: PendingReceipt) -> None:
        if not self.at_once and self.sent[receipt.message_id] < self.copies:
            self.queue_receipt(self._copy(receipt))


class ReusedIds(SimulatedSMSC):
    """Gives its message ids from the start again after every ``every`` submits, and sends the
    receipt of a submit to a number of ``late_for`` ``late`` seconds after the others.

    Imitates an SMSC restarted (or failed over to a standby) whose id counter starts again while
    messages it took before still wait for their receipts (a phone switched off): one id then
    names an older message and a newer one. Each receipt says the number it is about (its
    source_addr); the gateway must give it to the message sent to that number.
    """

    def __init__(self, settings: SimSettings, reactor, name: str = "sim", *, every: int = 2,
                 late_for: Iterable[str] = (), late: float = 1.0, **kw) -> None:
        super().__init__(settings, reactor, name, **kw)
        self.every = every
        self.late_for = frozenset(late_for)
        self.late = late
        self._first_id = self._next_id
        self._issued = 0
        #: How many submits each id was given to.
        self.given: Counter = Counter()

    def new_message_id(self) -> str:
        message_id = str(self._first_id + self._issued % self.every)
        self._issued += 1
        self.given[message_id] += 1
        return message_id

    def receipt_delay_for(self, record: SubmitRecord) -> float:
        late = self.late if record.destination_addr in self.late_for else 0.0
        return super().receipt_delay_for(record) + late


#: Every scenario by name (for tools and the catalogue's tests).
SCENARIOS: dict[str, type[SimulatedSMSC]] = {cls.__name__: cls for cls in (
    BindRefused, SlowResponses, NoResponse, Throttling, DropMidWindow, GarbagePDUs,
    UnknownCommandId, ReceiptBeforeResponse, HexDecMixing, ReceiptsOnAnotherSession,
    DuplicateReceipts, ReusedIds)}
