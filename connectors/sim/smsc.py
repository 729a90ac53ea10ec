"""The simulated SMSC: an SMPP 3.4 server that accepts binds and submits and sends receipts and MOs.

Why it exists: the gateway must run, be demonstrated and be tested end to end without a real
operator (SPEC §2: two simulated operators in-process). So the simulation behaves like a real
SMSC where the gateway can get it wrong: receipts come on any receiver session of the account,
not necessarily the one that submitted; a receipt no receiver is there for is held until one
binds; a receipt the ESME refuses or leaves unanswered is sent again later; every part of a
concatenated message has its own id and receipt; a throttled submit gets no receipt.

Theory of operation
-------------------
One ``SMPPProtocol(SMSC, handler=self)`` per TCP connection; the protocol rules (bind states,
enquire_link, unbind, generic_nack) are the ``Session``'s. ``SimulatedSMSC`` is the handler of
every connection and keeps what spans them: who is bound as which ``system_id``, the receipts
waiting for a receiver (``_outbox``, per system_id), the message id counter, the throttle window.
Time is the injected reactor's (``callLater``, ``seconds``), so tests drive it with a ``Clock``.

Scenarios (misbehaving SMSCs, ``connectors/sim/scenarios.py``) subclass and override one hook
each, leaving the core alone: ``bind_status``, ``submit_status``, ``new_message_id``,
``answer_submit``, ``outcome_for``, ``receipt_delay_for``, ``receipt_for``, ``choose_receiver``,
``receipt_acknowledged``; ``queue_receipt`` sends a receipt (again). Knobs of the code rather
than of a deployment (retry delay and attempts, timeouts, window) are class attributes.
"""

from __future__ import annotations

import itertools
import random
import socket
from collections import deque
from dataclasses import dataclass
from typing import NamedTuple

import structlog
from twisted.internet.defer import Deferred, DeferredList, ensureDeferred, maybeDeferred, succeed
from twisted.internet.protocol import ServerFactory

from connectors.sim.mo import mo_parts
from connectors.sim.receipts import (
    DELIVERED,
    UNDELIVERABLE,
    Outcome,
    message_text,
    receipt_fields,
    wants_receipt,
)
from connectors.sim.settings import SimSettings
from connectors.smpp import SMSC, LocalProtocolError, status_name
from connectors.smpp.codec import PDU, EncodeError
from connectors.smpp.defs import (
    ESME_RBINDFAIL,
    ESME_RCANCELFAIL,
    ESME_RINVBNDSTS,
    ESME_RINVCMDID,
    ESME_RINVDSTADR,
    ESME_RINVPASWD,
    ESME_RINVSYSID,
    ESME_ROK,
    ESME_RQUERYFAIL,
    ESME_RREPLACEFAIL,
    ESME_RTHROTTLED,
)
from connectors.smpp.protocol import RequestFailed, SMPPProtocol, close_politely

__all__ = ["Binding", "PendingReceipt", "SimulatedSMSC", "SubmitRecord"]

_BINDS = frozenset({"bind_transmitter", "bind_receiver", "bind_transceiver"})
_RECEIVES = frozenset({"bind_receiver", "bind_transceiver"})
_SUBMITS = frozenset({"submit_sm", "data_sm"})
_RESPONSES = frozenset({"deliver_sm_resp", "enquire_link_resp", "generic_nack"})
#: Requests the simulation does not implement, answered with the failure each command has.
_UNSUPPORTED = {"query_sm": ESME_RQUERYFAIL, "cancel_sm": ESME_RCANCELFAIL,
                "replace_sm": ESME_RREPLACEFAIL}


class SubmitRecord(NamedTuple):
    """One accepted submit_sm or data_sm (one part), as tests read it from ``submits``: what
    an operator's SMSC would judge it by (data_sm has no validity_period: empty)."""

    system_id: str
    session: str
    source_addr: str
    destination_addr: str
    data_coding: int
    esm_class: int
    short_message: bytes
    tlvs: dict
    message_id: str
    service_type: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    validity_period: str = ""


@dataclass(frozen=True, slots=True)
class Binding:
    """How one connection is bound: as which ``system_id``, with which bind command, and the
    bind's ``system_type`` and ``address_range`` (kept for tests, in ``binds``)."""

    system_id: str
    command: str
    system_type: str = ""
    address_range: str = ""

    @property
    def receives(self) -> bool:
        return self.command in _RECEIVES


@dataclass(slots=True)
class PendingReceipt:
    """A receipt due to an ESME: the deliver_sm to send, how often it was tried and the session
    (label) its submit came on."""

    system_id: str
    message_id: str
    params: dict
    tlvs: dict
    attempts: int = 0
    session: str = ""


class _Factory(ServerFactory):
    def __init__(self, sim: SimulatedSMSC) -> None:
        self.sim = sim

    def buildProtocol(self, addr):
        return self.sim.build_protocol(addr)


class SimulatedSMSC:
    """An SMSC on loopback for the gateway, its tests and newcomers' first five minutes.

    Why one object per simulated operator and not per connection: receipts cross connections
    (submitted on one bind, delivered on another of the same account) and must outlive them.
    See the module docstring for the behaviour and the hooks scenarios override.
    """

    #: A refused or unanswered receipt is sent again after this many seconds ...
    receipt_retry_delay = 5.0
    #: ... at most this many times in all; then it is dropped (and logged).
    receipt_max_attempts = 5
    #: Seconds an ESME has to answer a deliver_sm (receipt or MO) or an unbind.
    response_timeout = 10.0
    #: On ``stop``, seconds to wait for each unbind_resp, then for the connection to close.
    unbind_timeout = 1.0
    window = 10
    enquire_link = 30.0

    def __init__(self, settings: SimSettings, reactor, name: str = "sim", *,
                 first_message_id: int | None = None) -> None:
        self.settings = settings
        self.reactor = reactor
        self.name = name
        # Lazy: configured by whoever configures structlog, even after this object is built.
        self.log = structlog.get_logger(component="smsc-sim", sim=name)
        self.factory = _Factory(self)
        #: Every accepted submit, in order (tests read it).
        self.submits: list[SubmitRecord] = []
        #: Every accepted bind, in order (tests read it).
        self.binds: list[Binding] = []
        self.receipts_acked = 0
        self.receipts_dropped = 0
        self.mo_acked = 0
        self.throttled = 0
        self._next_id = (random.randrange(0x100000, 0x1000000) if first_message_id is None
                         else first_message_id)
        self._mo_ref = random.randrange(256)
        self._labels = itertools.count(1)
        self._connections: dict[SMPPProtocol, Binding | None] = {}
        self._closed_waiters: dict[SMPPProtocol, list[Deferred]] = {}
        self._outbox: dict[str, deque[PendingReceipt]] = {}
        self._round_robin = itertools.count()
        self._accepted_at: deque[float] = deque()
        self._timers: set = set()
        self._port = None
        self._stopping = False

    # -- public API --------------------------------------------------------------------------------
    def listen(self, host: str, port: int, fd: int | None = None) -> Deferred:
        """Listen on ``host:port`` (0: any free port), or on the listening IPv4 socket ``fd`` (which
        another process opened: kept open there, so a restart finds the same port); fires with the
        actual port."""
        def start() -> int:
            if fd is not None:
                self._port = self.reactor.adoptStreamPort(fd, socket.AF_INET, self.factory)
            else:
                self._port = self.reactor.listenTCP(port, self.factory, interface=host)
            return self._port.getHost().port
        return maybeDeferred(start)

    def build_protocol(self, addr=None) -> SMPPProtocol:
        """The protocol of one new connection (what the factory builds; tests call it directly)."""
        return SMPPProtocol(SMSC, self, self.reactor, window=self.window,
                            response_timeout=self.response_timeout,
                            enquire_link=self.enquire_link,
                            label=f"{self.name}#{next(self._labels)}")

    def inject_mo(self, sender: str, to: str, text: str) -> Deferred:
        """Send an MO to a bound receiver; fires with the outcome: "delivered" when the ESME
        answered every part ROK, "no receiver bound", "receiver busy" (every window full),
        "refused: ESME_…" or "failed: <reason>". Raises ``InvalidMO`` (a ValueError) at once
        for a bad address or text. Every part goes on the same session, one after the other."""
        parts = mo_parts(sender, to, text, self._mo_ref)
        self._mo_ref = (self._mo_ref + 1) % 256
        receivers = self._receivers(None)
        if not receivers:
            return succeed("no receiver bound")
        ready = [p for p in receivers if p.can_send()]
        if not ready:
            return succeed("receiver busy")
        proto = ready[next(self._round_robin) % len(ready)]
        return ensureDeferred(self._deliver_mo(proto, parts))

    def stop(self) -> Deferred:
        """Stop listening, unbind every bound ESME (waiting briefly for its unbind_resp), close
        every connection. Receipts not yet delivered are forgotten."""
        return ensureDeferred(self._stop())

    @property
    def address(self) -> tuple[str, int] | None:
        """(host, port) it listens on; None before ``listen`` and after ``stop``."""
        if self._port is None:
            return None
        host = self._port.getHost()
        return host.host, host.port

    @property
    def bound(self) -> list[tuple[str, str, str]]:
        """(session label, system_id, bind command) of every bound connection."""
        return [(p.label, b.system_id, b.command) for p, b in self._connections.items() if b]

    @property
    def receipts_pending(self) -> int:
        """Receipts due and waiting for a receiver (or for a free window slot)."""
        return sum(len(q) for q in self._outbox.values())

    # -- hooks for scenarios -----------------------------------------------------------------------
    def bind_status(self, pdu: PDU) -> int:
        """The bind_resp status for a bind request: system_id, then password, per the settings."""
        s = self.settings
        if s.system_id is not None and pdu.params.get("system_id") != s.system_id:
            return ESME_RINVSYSID
        if s.password is not None and pdu.params.get("password") != s.password:
            return ESME_RINVPASWD
        return ESME_ROK

    def submit_status(self, pdu: PDU) -> int:
        """The status for a submit_sm / data_sm before it is accepted: throttle, destination."""
        tps = self.settings.throttle_tps
        if tps:
            now = self.reactor.seconds()
            window = self._accepted_at
            while window and window[0] <= now - 1.0:
                window.popleft()
            if len(window) >= tps:
                self.throttled += 1
                return ESME_RTHROTTLED
        if not pdu.params.get("destination_addr"):
            return ESME_RINVDSTADR
        return ESME_ROK

    def new_message_id(self) -> str:
        """The next message id: a counter, lowercase hex or decimal per the settings."""
        n = self._next_id
        self._next_id += 1
        return f"{n:x}" if self.settings.message_id_format == "hex" else str(n)

    def answer_submit(self, proto: SMPPProtocol, pdu: PDU, record: SubmitRecord) -> None:
        """Send the response to an accepted submit: ESME_ROK with its message id. The submit is
        accepted (in ``submits``, its receipt scheduled) whether or when this answers it."""
        proto.respond(pdu, ESME_ROK, {"message_id": record.message_id})

    def outcome_for(self, record: SubmitRecord) -> Outcome:
        """How the message ends: UNDELIV for an unreachable prefix, else DELIVRD."""
        if record.destination_addr.startswith(self.settings.unreachable_prefixes):
            return UNDELIVERABLE
        return DELIVERED

    def receipt_delay_for(self, record: SubmitRecord) -> float:
        """Seconds from the submit_sm_resp to the receipt."""
        return self.settings.receipt_delay

    def receipt_for(self, record: SubmitRecord, submit: dict, outcome: Outcome,
                    submitted_at: float, done_at: float) -> tuple[dict, dict]:
        """The receipt deliver_sm's (params, tlvs); ``submit`` is the submit's mandatory params."""
        text = message_text(record.short_message, record.data_coding, record.esm_class)
        return receipt_fields(submit, record.message_id, outcome, submitted_at, done_at, text)

    def choose_receiver(self, receipt: PendingReceipt,
                        ready: list[SMPPProtocol]) -> SMPPProtocol | None:
        """The session, among ``ready`` (bound receivers of its system_id with a free window
        slot, never empty), that gets ``receipt`` now: round robin. None holds it, and the
        receipts queued behind it, until the next flush (a bind, a response, a new receipt)."""
        return ready[next(self._round_robin) % len(ready)]

    def receipt_acknowledged(self, proto: SMPPProtocol, receipt: PendingReceipt) -> None:
        """The ESME answered ``receipt`` ESME_ROK on ``proto``; nothing more to do by default."""

    def queue_receipt(self, receipt: PendingReceipt) -> None:
        """Hold ``receipt`` for its system_id and send what can go now (a scenario may call it
        to send a receipt again)."""
        self._outbox.setdefault(receipt.system_id, deque()).append(receipt)
        self._flush(receipt.system_id)

    # -- handler callbacks (SMPPProtocol) ----------------------------------------------------------
    def connection_made(self, proto: SMPPProtocol) -> None:
        self._connections[proto] = None

    def connection_closed(self, proto: SMPPProtocol, reason: str) -> None:
        binding = self._connections.pop(proto, None)
        if binding is not None:
            self.log.info("esme gone", session=proto.label, system_id=binding.system_id,
                          reason=reason)
        for d in self._closed_waiters.pop(proto, []):
            d.callback(None)

    def peer_unbound(self, proto: SMPPProtocol) -> None:
        if self._connections.get(proto) is not None:
            self._connections[proto] = None

    def pdu_seen(self, proto: SMPPProtocol, command: str, direction: str) -> None:
        # Any response in (to an MO, an enquire_link ...) frees a window slot: held receipts go.
        if direction == "in" and command in _RESPONSES:
            binding = self._connections.get(proto)
            if binding is not None and binding.receives and self._outbox.get(binding.system_id):
                self._flush(binding.system_id)

    def protocol_error(self, proto: SMPPProtocol, event) -> None:
        self.log.info("protocol error from esme", session=proto.label,
                      kind=type(event).__name__)

    def request_received(self, proto: SMPPProtocol, pdu: PDU) -> None:
        command = pdu.command
        if command in _SUBMITS:
            self._on_submit(proto, pdu)
        elif command in _BINDS:
            self._on_bind(proto, pdu)
        else:
            proto.respond(pdu, _UNSUPPORTED.get(command, ESME_RINVCMDID))

    # -- binds -------------------------------------------------------------------------------------
    def _on_bind(self, proto: SMPPProtocol, pdu: PDU) -> None:
        system_id = str(pdu.params.get("system_id", ""))
        status = ESME_RBINDFAIL if self._stopping else self.bind_status(pdu)
        if status != ESME_ROK:
            proto.respond(pdu, status)
            self.log.info("bind refused", session=proto.label, system_id=system_id,
                          status=status_name(status))
            return
        # bind_resp.system_id is a C-string of 16 octets with its NUL.
        proto.respond(pdu, ESME_ROK, {"system_id": self.name[:15]})
        binding = Binding(system_id, pdu.command, str(pdu.params.get("system_type", "")),
                          str(pdu.params.get("address_range", "")))
        self._connections[proto] = binding
        self.binds.append(binding)
        self.log.info("esme bound", session=proto.label, system_id=system_id, bind=pdu.command)
        if binding.receives:
            self._flush(system_id)

    # -- submits and receipts ----------------------------------------------------------------------
    def _on_submit(self, proto: SMPPProtocol, pdu: PDU) -> None:
        binding = self._connections.get(proto)
        status = ESME_RINVBNDSTS if binding is None else self.submit_status(pdu)
        if status != ESME_ROK:
            proto.respond(pdu, status)
            return
        message_id = self.new_message_id()
        now = self.reactor.seconds()
        if self.settings.throttle_tps:
            self._accepted_at.append(now)
        params = pdu.params
        payload = params.get("short_message") or pdu.tlvs.get("message_payload") or b""
        record = SubmitRecord(
            binding.system_id, proto.label, str(params.get("source_addr", "")),
            str(params.get("destination_addr", "")), int(params.get("data_coding", 0)),
            int(params.get("esm_class", 0)), bytes(payload), dict(pdu.tlvs), message_id,
            str(params.get("service_type", "")), int(params.get("source_addr_ton", 0)),
            int(params.get("source_addr_npi", 0)), int(params.get("dest_addr_ton", 0)),
            int(params.get("dest_addr_npi", 0)), str(params.get("validity_period", "")))
        self.submits.append(record)
        self.log.info(f"{pdu.command} accepted", session=proto.label, system_id=record.system_id,
                      smsc_message_id=message_id, source_addr=record.source_addr,
                      destination_addr=record.destination_addr, esm_class=record.esm_class,
                      registered_delivery=params.get("registered_delivery", 0))
        self.answer_submit(proto, pdu, record)
        outcome = self.outcome_for(record)
        if wants_receipt(int(params.get("registered_delivery", 0)), outcome):
            self._later(self.receipt_delay_for(record), self._receipt_due, record, params,
                        outcome, now)

    def _receipt_due(self, record: SubmitRecord, submit: dict, outcome: Outcome,
                     submitted_at: float) -> None:
        params, tlvs = self.receipt_for(record, submit, outcome, submitted_at,
                                        self.reactor.seconds())
        self.queue_receipt(PendingReceipt(record.system_id, record.message_id, params, tlvs,
                                          session=record.session))

    def _receivers(self, system_id: str | None) -> list[SMPPProtocol]:
        # A connection we are closing is no receiver any more: what is sent there would be lost.
        return [p for p, b in self._connections.items()
                if b is not None and b.receives and not p.close_reason
                and (system_id is None or b.system_id == system_id)]

    def _flush(self, system_id: str) -> None:
        """Send the held receipts of ``system_id`` round robin over its receivers with room."""
        queue = self._outbox.get(system_id)
        while queue and not self._stopping:
            ready = [p for p in self._receivers(system_id) if p.can_send()]
            if not ready:
                return
            proto = self.choose_receiver(queue[0], ready)
            if proto is None:
                return
            self._send_receipt(proto, queue.popleft())

    def _send_receipt(self, proto: SMPPProtocol, receipt: PendingReceipt) -> None:
        try:
            d = proto.request("deliver_sm", receipt.params, receipt.tlvs)
        except EncodeError as exc:  # e.g. a data_sm address too long for deliver_sm
            self.receipts_dropped += 1
            self.log.warning("receipt cannot be encoded, dropped", smsc_message_id=receipt.message_id,
                             error=str(exc))
            return
        except LocalProtocolError:  # lost the race for the window slot: hold it again
            self._outbox[receipt.system_id].appendleft(receipt)
            return
        receipt.attempts += 1
        d.addCallbacks(self._receipt_acked, self._receipt_failed,
                       callbackArgs=(receipt, proto), errbackArgs=(receipt, proto.label))

    def _receipt_acked(self, _pdu: PDU, receipt: PendingReceipt, proto: SMPPProtocol) -> None:
        self.receipts_acked += 1
        self.receipt_acknowledged(proto, receipt)
        self._flush(receipt.system_id)

    def _receipt_failed(self, failure, receipt: PendingReceipt, session: str) -> None:
        failure.trap(RequestFailed)
        exc = failure.value
        if exc.reason == "connection lost":  # not the ESME's refusal: the next receiver gets it
            receipt.attempts -= 1
            self._outbox[receipt.system_id].appendleft(receipt)
        elif receipt.attempts >= self.receipt_max_attempts:
            self.receipts_dropped += 1
            self.log.warning("receipt dropped", smsc_message_id=receipt.message_id, session=session,
                             attempts=receipt.attempts, error=str(exc))
        else:
            self.log.info("receipt not acknowledged, will retry", smsc_message_id=receipt.message_id,
                          session=session, attempts=receipt.attempts, error=str(exc),
                          retry_in=self.receipt_retry_delay)
            self._later(self.receipt_retry_delay, self.queue_receipt, receipt)
        self._flush(receipt.system_id)

    def _later(self, delay: float, f, *args) -> None:
        if self._stopping:
            return

        def fire() -> None:
            self._timers.discard(call)
            f(*args)
        call = self.reactor.callLater(delay, fire)
        self._timers.add(call)

    # -- MO ----------------------------------------------------------------------------------------
    async def _deliver_mo(self, proto: SMPPProtocol, parts: list[dict]) -> str:
        for params in parts:
            try:
                await proto.request("deliver_sm", params)
            except RequestFailed as exc:
                if exc.status is not None and exc.status != ESME_ROK:
                    return f"refused: {status_name(exc.status)}"
                return f"failed: {exc.reason}"
            except LocalProtocolError as exc:  # unbound or window full since it was chosen
                return f"failed: {exc}"
            self.mo_acked += 1
        return "delivered"

    # -- stop --------------------------------------------------------------------------------------
    async def _stop(self) -> None:
        self._stopping = True
        for call in list(self._timers):
            if call.active():
                call.cancel()
        self._timers.clear()
        port, self._port = self._port, None
        if port is not None:
            await port.stopListening()
        await DeferredList([ensureDeferred(self._close(p)) for p in list(self._connections)],
                           consumeErrors=True)
        self.log.info("simulated SMSC stopped", submits=len(self.submits))

    async def _close(self, proto: SMPPProtocol) -> None:
        if proto.closed:
            return
        closed: Deferred = Deferred()
        self._closed_waiters.setdefault(proto, []).append(closed)
        await close_politely(proto, closed, unbind=self._connections.get(proto) is not None,
                             timeout=self.unbind_timeout, clock=self.reactor, reason="simulated SMSC stopping")
