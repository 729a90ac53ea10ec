"""The operator link: every SMPP session the gateway keeps with one operator's SMSC.

Why this module exists: the core thinks in messages, keys and receipts (``connectors.api``); an SMSC
thinks in binds, windows, sequence numbers, throttling and esm_class bits. ``OperatorLink`` is the
one place that translates, so the core never sees an SMPP field and the SMPP code never sees a store.

Theory of operation
-------------------
Sessions. ``binds`` sessions, each a bind_transceiver (label ``telia/1``) or a pair of
bind_transmitter + bind_receiver (``telia/1-tx``, ``telia/1-rx``). Each session is a Twisted
``ClientService`` around an ``SMPPProtocol`` (role ESME): the bind (with the operator's
``address_range``) is sent as soon as TCP is up; a refused bind (or one that times out) closes the
connection and the service reconnects. An SMSC with ``alternates`` is reached at ``host:port`` first
and at the next address on each reconnect, in turn; TLS checks its certificate against ``tls_ca``
(else the platform's CAs) and shows ``tls_cert`` when given (``connectors.smpp.endpoints``). The
retry policy is ``backoffPolicy(reconnect_min, reconnect_max, factor 2, jitter)`` indexed by the
number of consecutive attempts that did not end bound (TCP refused, bind refused, connection lost
before the bind) — counted by the policy itself, because ``ClientService`` resets its own counter
whenever TCP connects, which would make a refused bind retry at the shortest delay forever. A
session that was bound and dropped reconnects after ``reconnect_min`` (+ jitter). Binding is not
done in ``prepareConnection``: with Twisted 26.10 a connection lost while it is pending, or closed
after it failed, hits a missing transition of the service's state machine (``NoTransition``).
Each failed attempt is one warning line naming the address tried, the error and the next delay
(``connectors.smpp.binds``); the service itself logs nothing (``QuietClientService``).
``bind_states()`` lists every session, bound or not, from the start (``smsgw_bind_up``).

Submitting. ``submit`` makes the message's parts, one submit_sm each (``connectors.smpp.outgoing``:
encoding, concatenation, addresses, validity). Parts wait in one queue per link and go out, oldest
first, on the bound transmitting session with the most free window slots, each taking a token of the
link's tps bucket (``tps`` tokens a second, holding at most 0.1 s worth: a short burst, then an even
pace; tps 0: no bucket). A submit while no transmitting session is bound fails TRANSIENT at once.
The Deferred (``submit_to``'s callback: the core's way, without a Deferred a message) fires with one
key per part (``receipts.keys_for_submit``) when every part was answered ESME_ROK. The first error
fails the whole message and drops its unsent parts; parts already accepted by the SMSC stay
accepted, and the core sends the message again whole (the handset may see those parts twice).

``capacity()`` counts messages the core may hand over now: free window slots of bound transmitting
sessions, at most the whole tokens available (tps bucket, adaptive cap), minus parts already queued;
0 while no session is bound, while backing off after throttling, or once stopped.
``listener.link_ready`` is called whenever it may have grown: a response or a response timeout, a
session bound, the end of a throttle back-off, a bucket refilled after it ran dry (a timer is
scheduled only then). How fast the link may go, and those two timers: ``connectors.smpp.pacer``.

Throttling (ESME_RTHROTTLED, ESME_RMSGQFUL): the message fails THROTTLED and the link sends nothing
for a while (``pacing.BackOff``: 1 s, doubling up to 30 s while it goes on); throttled again soon
after, it goes on capped at 0.9 x what the SMSC accepted over a second, a cap that doubles a second
after 5 s and goes once it holds nothing back (``pacing.AdaptivePace``): it settles near the SMSC's
rate instead of sending a whole window into refusals after every back-off. A TRANSIENT answer from the SMSC (ESME_RSYSERR, a
generic_nack ...) backs the link off the same way, without a cap: the SMSC's trouble of the moment,
which a message sent again at once meets again at once (``SubmitError.answered`` lets the core count
how often one message met it: ``policies.retry.refused_too_often``).

Error table (``SUBMIT_STATUS_KINDS``, data): THROTTLED as above; TRANSIENT for ESME_RSYSERR,
ESME_RX_T_APPN, ESME_RINVBNDSTS (the session is also closed so that it rebinds), a response timeout,
a lost connection and a generic_nack; PERMANENT for the address, data coding, esm_class, length,
TLV and "submit failed" errors listed, and for every status not in the table (vendor codes included):
the core then tries the next operator instead of retrying one that keeps refusing forever. Text the
link cannot encode, or that needs more than 255 parts, is PERMANENT as well.

Encoding per operator and addresses (TON/NPI chosen per message unless the operator sets its own):
``connectors.smpp.addressing``; the tps bucket, back-off and cap: ``connectors.smpp.pacing``; one
session and its bind: ``connectors.smpp.binds``; the settings and the error table:
``connectors.smpp.link_settings``.

Receiving. What the SMSC sends on a bound session (receipts, MO), each answered once the core
stored it: ``connectors.smpp.inbound``.

Keep-alive. ``SMPPProtocol`` sends enquire_link when the line is idle but ignores an unanswered one;
the link closes a bound session that has received nothing for enquire_link + response_timeout
(+ 1 s), so a silently dead SMSC is reconnected instead of timing every submit out.

Stopping. ``stop()`` fails queued parts (TRANSIENT), sends unbind on every bound session, waits for
unbind_resp (at most ``min(5 s, response_timeout)``), then closes the connections (``proto.close``:
a TLS one would not end on the service's own close) and stops the services. Window entries of a
session that drops fail at once with TRANSIENT "connection lost" (``SMPPProtocol`` fails them; the
message accounting here takes the first failure of a message).
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable

import structlog
from twisted.application.internet import ClientService, backoffPolicy
from twisted.internet.defer import Deferred, DeferredList, succeed
from twisted.internet.endpoints import clientFromString, quoteStringArgument, wrapClientTLS
from twisted.internet.task import LoopingCall

from connectors.api import SubmitError, SubmitRequest
from connectors.smpp import defs
from connectors.smpp.binds import TIMEOUTS_BEFORE_REBIND, BindSession, QuietClientService, SessionFactory, rfc3339
from connectors.smpp.codec import PDU, EncodeError, SMPPError
from connectors.smpp.endpoints import Alternates, ClientTls, NotingFailures
from connectors.smpp.link_settings import (
    DEFAULT_STATUS_KIND,
    ESME_RINVDCS,
    PERMANENT,
    SUBMIT_STATUS_KINDS,
    THROTTLED,
    TRANSIENT,
    LinkSettings,
)
from connectors.smpp.defs import status_name
from connectors.smpp.inbound import InboundRequests
from connectors.smpp.outgoing import OutgoingMessage, OutgoingPart, PartBuilder
from connectors.smpp.protocol import RequestFailed, SMPPProtocol
from connectors.smpp.pacer import LinkPacer
from connectors.smpp.receipts import ID_FORMATS, keys_for_submit

__all__ = ["ESME_RINVDCS", "LinkSettings", "OperatorLink", "SUBMIT_STATUS_KINDS"]

RECONNECT_FACTOR = 2.0
UNBIND_TIMEOUT = 5.0
#: How often bound sessions are checked for a silent SMSC (seconds).
LIVENESS_CHECK = 1.0


class OperatorLink:
    """All the sessions with one operator, offered to the core as one link (``connectors.api``).

    ``endpoint_factory(reactor, description)`` makes the client endpoint of each session
    (default ``clientFromString``); ``jitter()`` the random seconds added to each reconnect delay
    (default uniform in ``[0, reconnect_min)``).
    """

    def __init__(self, name: str, settings: LinkSettings, listener, reactor, *,
                 endpoint_factory: Callable | None = None,
                 jitter: Callable[[], float] | None = None) -> None:
        if settings.receipt_id_format not in ID_FORMATS:
            raise ValueError(f"receipt_id_format {settings.receipt_id_format!r} is not one of "
                             f"{', '.join(ID_FORMATS)}")
        if settings.bind not in ("transceiver", "transmitter+receiver"):
            raise ValueError(f"bind {settings.bind!r} is not transceiver or transmitter+receiver")
        self.name = name
        self.settings = settings
        self.listener = listener
        self.reactor = reactor
        self.log = structlog.get_logger(component="smpp", operator=name)
        self._endpoint_factory = endpoint_factory or clientFromString
        if jitter is None:
            jitter = lambda: random.random() * settings.reconnect_min  # noqa: E731
        self._backoff = backoffPolicy(initialDelay=settings.reconnect_min,
                                      maxDelay=settings.reconnect_max, factor=RECONNECT_FACTOR,
                                      jitter=jitter)
        self._sessions: list[BindSession] = []
        for i in range(1, settings.binds + 1):
            if settings.bind == "transceiver":
                self._sessions.append(BindSession(self, f"{name}/{i}", "bind_transceiver", True))
            else:
                self._sessions.append(BindSession(self, f"{name}/{i}-tx", "bind_transmitter", True))
                self._sessions.append(BindSession(self, f"{name}/{i}-rx", "bind_receiver", False))
        self._max_in_flight = settings.window * sum(1 for s in self._sessions if s.transmits)
        self._queue: deque[OutgoingPart] = deque()
        # tps, back-off, adaptive cap, submits/s, and the timers that end a wait for them
        self._pacer = LinkPacer(settings.tps, reactor, self.log, self._capacity_may_have_grown)
        self._parts = PartBuilder(settings)
        self._draining = False
        self._started = False
        self._stopped = False
        self._liveness = LoopingCall(self._check_liveness)
        self._liveness.clock = reactor
        self._inbound = InboundRequests(name, settings, listener, self.log)  # what the sessions receive

    # -- life cycle ---------------------------------------------------------------------------
    @staticmethod
    def endpoint_description(host: str, port: int) -> str:
        """The TCP endpoint of one SMSC address (TLS, when on, is layered over it)."""
        return f"tcp:host={quoteStringArgument(host)}:port={port}"

    def _endpoint(self, tls: ClientTls | None) -> Alternates:
        """One session's endpoint: the SMSC's addresses in turn, each over TLS when on."""
        endpoints = []
        for host, port in self.settings.addresses():
            endpoint = self._endpoint_factory(self.reactor, self.endpoint_description(host, port))
            address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            endpoints.append((address, endpoint if tls is None else wrapClientTLS(tls.creator(host), endpoint)))
        return Alternates(endpoints)

    def start(self) -> None:
        """Connect and bind every session (reconnecting with backoff for as long as it runs).
        TLS files that cannot be loaded any more (the config check read them) leave the link
        down, logged, rather than raise at the caller."""
        if self._started or self._stopped:
            return
        s = self.settings
        try:
            tls = ClientTls(s.tls_ca, s.tls_cert, s.tls_key) if s.tls else None
        except ValueError as e:
            self.log.error("TLS files cannot be loaded: the link stays down", error=str(e))
            return
        self._started = True
        for session in self._sessions:
            session.addresses = self._endpoint(tls)
            session.service = QuietClientService(NotingFailures(session.addresses, session.connect_failed),
                                                 SessionFactory(session), retryPolicy=session.retry_delay,
                                                 clock=self.reactor)
            session.service.startService()
        self._liveness.start(LIVENESS_CHECK, now=False)

    def stop(self) -> Deferred:
        """Unbind every bound session cleanly and stop reconnecting; fires when all are closed."""
        if self._stopped:
            return succeed(None)
        self._stopped = True
        self._pacer.stop()
        if self._liveness.running:
            self._liveness.stop()
        self._fail_queued("link stopping")
        if not self._started:
            return succeed(None)
        d = DeferredList([self._stop_session(s) for s in self._sessions], consumeErrors=True)
        d.addCallback(lambda _: None)
        return d

    def _stop_session(self, session: BindSession) -> Deferred:
        service = session.service
        proto = session.proto
        if proto is None or proto.closed or not proto.session.is_bound:
            return self._close_and_stop(service, proto)
        try:
            d = proto.request("unbind")
        except SMPPError:
            return self._close_and_stop(service, proto)
        d.addTimeout(min(UNBIND_TIMEOUT, self.settings.response_timeout), self.reactor)
        d.addErrback(lambda f: session.log.info("no unbind_resp", error=f.getErrorMessage()))
        d.addCallback(lambda _: self._close_and_stop(service, proto))
        return d

    @staticmethod
    def _close_and_stop(service: ClientService, proto: SMPPProtocol | None) -> Deferred:
        """Close the session's connection the SMPP way (``SMPPProtocol.close``, which a TLS
        connection needs to end), then stop reconnecting; fires once it is closed."""
        if proto is not None and not proto.closed:
            proto.close("link stopping")
        return service.stopService()

    def _check_liveness(self) -> None:
        """Close a bound session that has heard nothing for longer than an enquire_link and its
        answer take: ``SMPPProtocol`` sends the enquire_link but ignores its timeout, so without
        this a silently dead SMSC would keep the session "bound" and every submit timing out."""
        s = self.settings
        limit = s.enquire_link + s.response_timeout + LIVENESS_CHECK
        now = self.reactor.seconds()
        for session in self._sessions:
            proto = session.proto
            if (session.bound and proto is not None and not proto.closed
                    and now - proto.session.last_received > limit):
                session.log.warning("the SMSC stopped answering: closing", silent_for=limit)
                proto.close("no answer to enquire_link")
                proto.transport.abortConnection()  # a dead peer must not hold the close up

    # -- what the core asks -------------------------------------------------------------------
    def describe(self) -> dict:
        """The binds as ops see them (``GET /v1/admin/binds``): no credentials. Times are RFC 3339
        UTC strings of the reactor's clock; ``submits_per_second`` is the submit_sm written over
        the last ``RATE_WINDOW`` seconds, per second; ``paced_at`` the adaptive cap (or None)."""
        now = self.reactor.seconds()
        sessions = [{"session": s.label, "bound": s.bound, "transmits": s.transmits,
                     "in_flight": len(s.proto.session.window) if s.proto is not None and s.bound else 0,
                     "reconnect_failures": s.failures, "since": rfc3339(s.since),
                     "last_error": None if s.last_error is None else {"at": rfc3339(s.last_error[0]),
                                                                      "reason": s.last_error[1]}}
                    for s in self._sessions]
        pace = self._pacer.describe(now)
        return {
            "operator": self.name, "up": self.is_up(), "host": self.settings.host, "port": self.settings.port,
            "tls": self.settings.tls, "bind": self.settings.bind, "window": self.settings.window,
            "binds": self.settings.binds, "tps": self.settings.tps or None, "throttled_for": pace["throttled_for"], "paced_at": pace["paced_at"],
            "queued_parts": len(self._queue), "in_flight": sum(s["in_flight"] for s in sessions),
            "submits_per_second": pace["submits_per_second"], "sessions": sessions,
        }

    def bind_states(self) -> list[tuple[str, bool]]:
        """(session label, bound) of every session this link keeps, bound or not, from the
        start: what ``smsgw_bind_up`` exports (a session never bound is one ops must see)."""
        up = not self._stopped
        return [(s.label, up and s.bound) for s in self._sessions]

    def max_in_flight(self) -> int:
        """Submits that may be outstanding at once: window x transmitting sessions, fixed for the
        link's life (other binds or another window make a new link: a reload, a cluster share)."""
        return self._max_in_flight

    # is_up and capacity are asked for every message: loops, not any() or sum() over a generator
    def is_up(self) -> bool:
        if not self._stopped:
            for s in self._sessions:
                if s.can_submit():
                    return True
        return False

    def capacity(self) -> int:
        if self._stopped:
            return 0
        room = 0
        for s in self._sessions:
            room += s.free()
        if room <= 0:
            return 0
        room = self._pacer.room(room, self.reactor.seconds())  # back-off, tps, adaptive cap
        return max(0, room - len(self._queue))

    def submit(self, request: SubmitRequest) -> Deferred:
        """Send one message; fires with a key per part, or fails with ``SubmitError``."""
        d: Deferred = Deferred()
        self.submit_to(request, d.callback, d.errback)
        return d

    def submit_to(self, request: SubmitRequest, callback: Callable, errback: Callable, *args) -> None:
        """``submit`` without a Deferred (the core's, for every message): ``callback(keys, *args)``,
        or ``errback(SubmitError, *args)``, once; at once when the message cannot be sent."""
        try:
            if self._stopped:
                raise SubmitError(TRANSIENT, "link stopped")
            if not self.is_up():
                raise SubmitError(TRANSIENT, "no bound session")
            message, parts = self._parts.build(request, self.reactor.seconds(), (callback, errback, args))
        except SubmitError as e:
            errback(e, *args)
            return
        except Exception as e:  # a bug: never raise at the core
            self.log.error("submit could not be built", message_id=request.message_id, error=repr(e))
            errback(SubmitError(PERMANENT, f"cannot build submit_sm: {e!r}"), *args)
            return
        self._queue.extend(parts)
        self._drain()

    # -- sending ------------------------------------------------------------------------------
    def _least_loaded(self) -> BindSession | None:
        best, most = None, 0
        for s in self._sessions:
            free = s.free()
            if free > most:
                best, most = s, free
        return best

    def _drain(self) -> None:
        """Send queued parts while a session has room and the pace allows (``LinkPacer.take``).
        Re-entrant calls (a Deferred fired while sending submits again) return at once: the
        running loop picks their parts up."""
        if self._draining:
            return
        self._draining = True
        try:
            while self._queue and not self._stopped:
                now = self.reactor.seconds()
                session = self._least_loaded()
                if session is None or not self._pacer.take(now):
                    return
                self._send(session, self._queue.popleft(), now)
        finally:
            self._draining = False

    def _send(self, session: BindSession, part: OutgoingPart, now: float) -> None:
        proto = part.proto = session.proto
        part.link = self
        try:
            proto.request_to(part, "submit_sm", part.params)  # the part is the waiter of its answer
        except EncodeError as e:
            self._message_failed(part.message, SubmitError(PERMANENT, f"cannot encode: {e}"))
            return
        except SMPPError as e:
            self._message_failed(part.message, SubmitError(TRANSIENT, str(e)))
            return
        part.sent_at = now
        self._pacer.sent(now)

    def _part_accepted(self, resp: PDU, part: OutgoingPart, proto: SMPPProtocol | None = None) -> None:
        if proto is not None:
            proto.timeouts_in_a_row = 0
        self._pacer.accepted(part.sent_at)
        key = keys_for_submit(str(resp.params.get("message_id", "")), self.settings.receipt_id_format)
        if not key:
            self.log.warning("submit_sm_resp without message_id: its receipt cannot be matched",
                             message_id=part.message.request.message_id)
        part.message.part_ok(part.index, key)
        self._capacity_may_have_grown()

    def _part_refused(self, exc: Exception, part: OutgoingPart, proto: SMPPProtocol) -> None:
        answered = True
        if not isinstance(exc, RequestFailed):
            self.log.error("submit failed oddly", error=repr(exc))
            error = SubmitError(TRANSIENT, repr(exc))
        elif exc.reason == "status":
            proto.timeouts_in_a_row = 0
            kind = SUBMIT_STATUS_KINDS.get(exc.status, DEFAULT_STATUS_KIND)
            error = SubmitError(kind, status_name(exc.status), answered=True)
            if kind in (THROTTLED, TRANSIENT):
                # ESME_RSYSERR and the like are the SMSC's trouble of the moment too: sent again
                # at once they came back at once, thousands of times a second
                self._pacer.refused(part.sent_at, status_name(exc.status), kind == THROTTLED)
            if exc.status == defs.ESME_RINVBNDSTS:
                proto.close("the SMSC says we are not bound")
        elif exc.reason == "timeout":
            error = SubmitError(TRANSIENT, "response timeout", maybe_sent=True)
            # A session whose responses stopped (a stream that lost its framing without us
            # noticing, an SMSC stuck on this bind) is closed and bound again.
            proto.timeouts_in_a_row = getattr(proto, "timeouts_in_a_row", 0) + 1
            if proto.timeouts_in_a_row >= TIMEOUTS_BEFORE_REBIND:
                proto.close(f"{proto.timeouts_in_a_row} submit responses in a row timed out")
        elif exc.reason == "generic_nack":
            error = SubmitError(TRANSIENT, f"generic_nack {status_name(exc.status or 0)}", answered=True)
            self._pacer.refused(part.sent_at, error.detail, False)
        else:
            answered = False
            error = SubmitError(TRANSIENT, exc.reason, maybe_sent=True)  # written, unanswered
        self._message_failed(part.message, error)
        if answered:
            self._capacity_may_have_grown()

    def _message_failed(self, message: OutgoingMessage, error: SubmitError) -> None:
        if message.done:
            return
        message.done = True
        if any(p.message is message for p in self._queue):
            self._queue = deque(p for p in self._queue if p.message is not message)
        _, errback, args = message.answer
        errback(error, *args)

    def _fail_queued(self, detail: str) -> None:
        messages = list(dict.fromkeys(p.message for p in self._queue))
        self._queue.clear()
        for m in messages:
            self._message_failed(m, SubmitError(TRANSIENT, detail))

    def _capacity_may_have_grown(self) -> None:
        if self._stopped:
            return
        self._drain()
        self.listener.link_ready(self.name)

    # -- sessions up and down -------------------------------------------------------------------
    def _session_up(self, session: BindSession) -> None:
        self.listener.bind_changed(self.name, session.label, True)
        if session.transmits:
            self._capacity_may_have_grown()

    def _session_down(self, session: BindSession) -> None:
        self.listener.bind_changed(self.name, session.label, False)
        if session.transmits and not any(s.can_submit() for s in self._sessions):
            self._fail_queued("connection lost")
