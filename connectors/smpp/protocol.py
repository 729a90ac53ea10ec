"""The thin Twisted adapter around the sans-I/O ``Session``: bytes to and from a transport,
Deferreds for requests, a timer for response timeouts and keep-alives.

Used by both sides: the gateway's operator links (role ESME) and the simulated SMSC (role SMSC).
All protocol rules live in ``session.py``; this file only moves bytes, fires Deferreds, and asks
its ``handler`` what to do with requests from the peer:

- ``handler.request_received(proto, pdu)``: answer it (now or later) with ``proto.respond``;
- ``handler.connection_closed(proto, reason)``: the connection is gone (outstanding requests have
  already failed with ``ConnectionDone``-like ``RequestFailed``); ``reason`` is our own reason for
  closing, else the transport's message, and ``proto.lost`` the transport's Failure (a TLS
  handshake's error, for one);
- optional ``handler.pdu_seen(proto, command, direction)``: every PDU, for a handler that acts on
  them (the simulated SMSC sends held receipts when a response frees a window slot).

Every PDU read ("in") and every PDU written ("out") is counted in ``proto.pdus`` by (its command's
name, direction): the session's own answers (enquire_link_resp, unbind_resp, a rejection, a
generic_nack) are "out"; an undecodable PDU is "in" by its command's name, or "unknown" when SMPP
defines no such command_id (``GenericNackSent.command``). The counts are the connection's own
unless it is given others to add to (``pdus=``, or assigned later: the SMPP server counts an ESME's
PDUs under its account once it has bound), where the metrics read them at scrape time: one dict
operation a PDU instead of a call chain.
"""

from __future__ import annotations

from collections import Counter
from typing import Protocol as TypingProtocol

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IHandshakeListener
from twisted.internet.protocol import Protocol
from twisted.internet.task import LoopingCall
from twisted.protocols.tls import TLSMemoryBIOProtocol
from zope.interface import implementer

from connectors.smpp.codec import NEED_DATA, PDU, LocalProtocolError
from connectors.smpp.defs import ESME_ROK, RESPONSE_OF, response_to, status_name
from connectors.smpp.session import (
    EnquireLinkAnswered,
    GenericNackSent,
    MustClose,
    PeerUnbound,
    RequestReceived,
    RequestRejected,
    ResponseReceived,
    Session,
    UnexpectedResponse,
)
from connectors.tcp import no_delay


class RequestFailed(Exception):
    """A request got no usable response: ``reason`` is "timeout", "connection lost",
    "generic_nack" or "status"; ``status`` the command_status when there was one."""

    def __init__(self, reason: str, status: int | None = None, pdu: PDU | None = None) -> None:
        detail = f"{reason}" if status is None else f"{reason} {status_name(status)}"
        super().__init__(detail)
        self.reason = reason
        self.status = status
        self.pdu = pdu


class Waiter(TypingProtocol):
    """Where the answer to one request goes (``SMPPProtocol.request_to``), once: ``callback`` with
    the response PDU (status ESME_ROK), or ``errback`` with a ``RequestFailed``. A Deferred is one;
    a plain object must not raise (what it raises would reach the connection's dataReceived)."""

    def callback(self, pdu: PDU) -> object: ...

    def errback(self, failed: RequestFailed) -> object: ...


async def close_politely(proto: SMPPProtocol, closed: Deferred, *, unbind: bool, timeout: float, clock,
                         reason: str) -> None:
    """Unbind first (when ``unbind``, waiting ``timeout`` for the unbind_resp), then close; abort the
    connection when it is not gone ``timeout`` later. ``closed`` is a Deferred the caller fires
    from its handler's ``connection_closed`` for this protocol."""
    if unbind:
        try:
            unbound = proto.request("unbind")
        except LocalProtocolError:
            pass
        else:
            unbound.addTimeout(timeout, clock)
            try:
                await unbound
            except Exception:  # no answer, an error, or the peer closed first: close anyway
                pass
    proto.close(reason)
    closed.addTimeout(timeout, clock)
    try:
        await closed
    except Exception:
        if proto.transport is not None and hasattr(proto.transport, "abortConnection"):
            proto.transport.abortConnection()


class _ReadingPaused:
    """The transport's own reading as the producer of its writes (see ``connectionMade``)."""

    def __init__(self, transport) -> None:
        self.transport = transport

    def pauseProducing(self) -> None:
        self.transport.pauseProducing()

    def resumeProducing(self) -> None:
        self.transport.resumeProducing()

    def stopProducing(self) -> None:
        pass


@implementer(IHandshakeListener)
class SMPPProtocol(Protocol):
    """One TCP connection speaking SMPP through a Session."""

    def __init__(self, role: str, handler, clock, *, window: int = 10, response_timeout: float = 30.0,
                 enquire_link: float = 30.0, tick: float = 1.0, label: str = "",
                 pdus: Counter[tuple[str, str]] | None = None) -> None:
        self.role = role
        self.handler = handler
        self.clock = clock
        self.session = Session(role, now=clock.seconds(), window_size=window,
                               response_timeout=response_timeout, enquire_link_interval=enquire_link)
        self.label = label
        self._pending: dict[int, Waiter] = {}
        self._tick = tick
        self._timer: LoopingCall | None = None
        #: PDUs read and written, by (command, direction): see the module docstring
        self.pdus: Counter[tuple[str, str]] = Counter() if pdus is None else pdus
        self._seen = getattr(handler, "pdu_seen", None)
        self.closed = False
        self.close_reason = ""
        #: the Failure the transport ended the connection with (set before the handler hears of it)
        self.lost = None
        self._producing = False  # the backpressure producer is registered (connectionMade)

    # -- connection -------------------------------------------------------------------------
    def connectionMade(self) -> None:
        no_delay(self.transport)  # a PDU waits for nothing (connectors/tcp.py)
        # Backpressure: while the peer does not read what we write (the kernel's buffer and
        # Twisted's are full), we stop reading its requests, so a peer that sends and never
        # reads cannot make us hold an unbounded pile of answers. Over TLS only once the
        # handshake is done: TLS holds what is written before (an ESME's bind) and pauses the
        # producer meanwhile, which would stop the very reading the handshake waits on.
        if not isinstance(self.transport, TLSMemoryBIOProtocol):
            self.handshakeCompleted()
        self._timer = LoopingCall(self._on_tick)
        self._timer.clock = self.clock
        self._timer.start(self._tick, now=False)
        made = getattr(self.handler, "connection_made", None)
        if made is not None:
            made(self)

    def handshakeCompleted(self) -> None:
        """The connection may carry SMPP both ways now (at once over plain TCP)."""
        self.transport.registerProducer(_ReadingPaused(self.transport), True)
        self._producing = True

    def connectionLost(self, reason) -> None:
        self.closed = True
        self.lost = reason
        if self._timer is not None and self._timer.running:
            self._timer.stop()
        self.session.connection_lost()
        pending, self._pending = self._pending, {}
        for d in pending.values():
            d.errback(RequestFailed("connection lost"))
        self.handler.connection_closed(self, self.close_reason or reason.getErrorMessage())

    def close(self, reason: str) -> None:
        """Close the connection after writing what is queued (a TLS transport waits for its
        producer to go before it closes: the backpressure producer goes first)."""
        if not self.close_reason:
            self.close_reason = reason
        if self.transport is not None:
            if self._producing:
                self._producing = False
                self.transport.unregisterProducer()
            self.transport.loseConnection()

    # -- bytes in ----------------------------------------------------------------------------
    def dataReceived(self, data: bytes) -> None:
        # Once closing, nothing more is read, as the transport itself stops reading: else what
        # followed a refused bind in the same segment would be served (one more password guess
        # per PDU), and a peer's PDUs would be answered or not depending on how TCP cut them.
        if self.close_reason:
            return
        session = self.session
        session.receive_data(data, self.clock.seconds())
        seen = self._seen
        # ``self.pdus`` is read at each count, not once: a handler may hand the connection other
        # counts while this loop runs (an ESME's bind that succeeded at once).
        while not self.close_reason:
            event = session.next_event()
            if event is NEED_DATA:
                return
            kind = type(event)
            if kind is ResponseReceived:
                pdu = event.pdu
                self.pdus[pdu.command, "in"] += 1
                if seen:
                    seen(self, pdu.command, "in")
                d = self._pending.pop(pdu.sequence, None)
                if d is None:
                    continue
                if pdu.command == "generic_nack":
                    d.errback(RequestFailed("generic_nack", pdu.status, pdu))
                elif pdu.status != ESME_ROK:
                    d.errback(RequestFailed("status", pdu.status, pdu))
                else:
                    d.callback(pdu)
            elif kind is RequestReceived:
                self.pdus[event.pdu.command, "in"] += 1
                if seen:
                    seen(self, event.pdu.command, "in")
                self.handler.request_received(self, event.pdu)
            elif kind is EnquireLinkAnswered:
                self._count("enquire_link", "in")
                self._count("enquire_link_resp", "out")
                self.transport.write(event.reply)
            elif kind is PeerUnbound:
                self._count("unbind", "in")
                self._count("unbind_resp", "out")
                self.transport.write(event.reply)
                unbound = getattr(self.handler, "peer_unbound", None)
                if unbound is not None:
                    unbound(self)
                self.close("peer unbound")
                return
            elif kind is RequestRejected or kind is GenericNackSent:
                if kind is GenericNackSent:
                    self._count(event.command, "in")
                    self._count("generic_nack", "out")
                else:
                    self._count(event.pdu.command, "in")
                    self._count(response_to(event.pdu.command), "out")
                self.transport.write(event.reply)
                rejected = getattr(self.handler, "protocol_error", None)
                if rejected is not None:
                    rejected(self, event)
            elif kind is UnexpectedResponse:
                self._count(event.pdu.command, "in")
                unexpected = getattr(self.handler, "protocol_error", None)
                if unexpected is not None:
                    unexpected(self, event)
            elif kind is MustClose:
                if event.reply:  # no PDU was read: only the generic_nack is counted
                    self._count("generic_nack", "out")
                    self.transport.write(event.reply)
                self.close(f"framing lost: {event.reason}")
                return

    def _count(self, command: str, direction: str) -> None:
        """One PDU of the paths no message takes (the others count inline: a call less a PDU)."""
        self.pdus[command, direction] += 1
        if self._seen:
            self._seen(self, command, direction)

    # -- requests out ------------------------------------------------------------------------
    def can_send(self) -> int:
        """Free window slots (0 when not bound or closing)."""
        if self.closed or not self.session.is_bound:
            return 0
        return self.session.window.free

    def request(self, command: str, params: dict | None = None, tlvs: dict | None = None) -> Deferred:
        """Send a request; the Deferred fires with the response PDU (status ROK) or fails with
        RequestFailed. Raises the session's LocalProtocolError/WindowFull/EncodeError at once."""
        d: Deferred = Deferred()
        self.request_to(d, command, params, tlvs)
        return d

    def request_to(self, waiter: Waiter, command: str, params: dict | None = None,
                   tlvs: dict | None = None) -> None:
        """``request`` with the answer going to ``waiter`` (a Deferred is one): for the paths that
        send a PDU per message and would otherwise make and fire a Deferred for each."""
        sequence, data = self.session.send_request(command, params, tlvs, now=self.clock.seconds())
        self._pending[sequence] = waiter
        self.transport.write(data)
        self.pdus[command, "out"] += 1
        if self._seen:
            self._seen(self, command, "out")

    def respond(self, request: PDU, status: int = ESME_ROK, params: dict | None = None,
                tlvs: dict | None = None) -> None:
        """Answer a peer's request (a no-op once the connection is gone)."""
        if self.closed:
            return
        self.transport.write(self.session.send_response(request, status, params, tlvs))
        answer = RESPONSE_OF[request.command]  # there is one: send_response refuses a request without
        self.pdus[answer, "out"] += 1
        if self._seen:
            self._seen(self, answer, "out")

    def send(self, command: str, params: dict | None = None, tlvs: dict | None = None) -> None:
        """Send a request whose response nobody waits for (its failure is only logged by the
        window expiry)."""
        d = self.request(command, params, tlvs)
        d.addErrback(lambda _: None)

    # -- time ----------------------------------------------------------------------------------
    def _on_tick(self) -> None:
        now = self.clock.seconds()
        for entry in self.session.window.expired(now):
            d = self._pending.pop(entry.sequence, None)
            if d is not None:
                d.errback(RequestFailed("timeout"))
        if self.session.needs_enquire_link(now):
            d = self.request("enquire_link")
            d.addErrback(self._keepalive_failed)

    def _keepalive_failed(self, failure) -> None:
        """No answer to enquire_link: the peer is dead even if TCP says otherwise."""
        if failure.check(RequestFailed) and failure.value.reason == "timeout":
            self.close("no answer to enquire_link")
