"""The SMPP server for customers' own ESMEs (SPEC §13): binds, submits, queries and cancels in;
receipts and MO out as deliver_sm.

Why this module exists: customers that speak SMPP bind to the gateway instead of calling HTTP.
Their ESMEs are strangers on the network: they guess passwords, open connections and drop them,
stop reading, send nonsense. This server is the one place that lets them in (authentication,
``max_binds``), turns their requests into calls on the application with plain values (never an
SMPP field: ``submit_fields`` reads a submit, the ``Refused`` reasons are the HTTP API's error
codes), answers only once the application has answered (a ``submit_sm_resp`` after durable
storage), and carries receipts and MO back without losing track of any: every item handed to
``deliver`` ends in a ``DeliveryResult``. What to store, resend or refuse is the application's.

Theory of operation
-------------------
One ``SMPPProtocol(SMSC, handler=self)`` per TCP connection, as in the simulated SMSC; the
protocol rules are the ``Session``'s: a submit before a bind or on a receiver gets
ESME_RINVBNDSTS, a second bind ESME_RALYBND, a command an ESME never sends ESME_RINVCMDID, an
undecodable PDU a generic_nack, a command_length over 64 KiB (0xFFFFFFFF, say) a generic_nack and
the connection closed; enquire_link and unbind are answered by the session. The server sees:

* **Binds.** ``authenticate(system_id, password)`` names the account (or None; it may return a
  Deferred). Unknown system_id and wrong password get the same ESME_RBINDFAIL, as does a bind over
  the account's ``max_binds(account)`` live sessions; the refusal is logged with the system_id and
  the peer's address (never the password) and the connection is closed, so a password guesser
  pays a TCP connection per guess. A connection not bound within ``bind_timeout`` is closed.
  A bound session is a ``ClientSession``; binding a receiver or transceiver calls
  ``handler.receiver_bound(session)`` so the application sends what waited for it.
* **Requests.** submit_sm and data_sm are read by ``submit_fields.read_submit`` (a refusal there
  is answered at once, the application never sees the PDU), then ``handler.submit(session,
  CustomerSubmit)``; query_sm → ``handler.query(session, message_id)``; cancel_sm →
  ``handler.cancel(session, message_id)``. The response is written when the handler's Deferred
  fires: submit with the message id, query with a ``deliver_fields.QueryAnswer``, cancel with
  anything. It fails with ``Refused(reason)`` for an answer of ``REFUSALS[reason]`` (query_sm and
  cancel_sm answer every refusal but ``rate_limited`` and ``unavailable`` with their own
  ESME_RQUERYFAIL / ESME_RCANCELFAIL, so an unknown id and another account's look the same). Any
  other failure answers ESME_RSYSERR and is logged with its traceback: the application did not
  say "refused", so the ESME must not take it for a final no, and nothing was promised stored.
  More than ``max_pending`` requests of one session waiting for the handler: ESME_RMSGQFUL, so an
  ESME that does not wait for its responses cannot pile up work. replace_sm → ESME_RINVCMDID.
* **Deliveries.** ``deliver(account, DeliverSm, then, arg)`` calls ``then(DeliveryResult, arg)``
  once, through the ``Outbox`` (``outbox.py``): round robin over the account's live receiving
  sessions, ``window`` deliver_sm outstanding per session, the rest waiting in order in memory; ``done``
  when the ESME answered ESME_ROK or ESME_RX_P_APPN, not done otherwise (timeout, other status,
  connection lost, no receiver, stopping). The durable queue and the resending are the
  application's; ``capacity(account)`` says how much more would go out at once.
* **Keep-alive.** ``SMPPProtocol`` sends enquire_link to a session idle for ``enquire_link``
  seconds and closes it when the answer does not come within ``response_timeout``. A watchdog
  (one ``LoopingCall`` for the server, running while there are connections) aborts a connection
  that is still silent a little later: a dead peer or one that stopped reading would otherwise
  hold a ``loseConnection`` (and our unsent bytes) forever.

``sessions()``, ``session_counts()`` (for ``smsgw_smpp_server_sessions{account,bind}``),
``connection_count``, ``queued()`` and ``capacity()`` read the state; ``stop()`` unbinds everyone.
``listen(reactor, factory, "host:port", tls_cert, tls_key)`` (``listener.py``) opens the listener,
plain or TLS; the refusal reasons and their statuses are ``refusals.py``.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import structlog
from twisted.internet.defer import Deferred, DeferredList, ensureDeferred, maybeDeferred
from twisted.internet.protocol import ServerFactory
from twisted.internet.task import LoopingCall
from twisted.python.failure import Failure

from .codec import PDU, EncodeError
from .defs import BODIES, ESME_RBINDFAIL, ESME_RINVBNDSTS, ESME_RINVCMDID, ESME_RMSGQFUL, ESME_ROK, ESME_RSYSERR, status_name
from .deliver_fields import DeliverSm, query_sm_resp_params
from .listener import listen
from .outbox import DeliveryResult, Outbox, Then
from .protocol import SMPPProtocol, close_politely
from .refusals import REFUSALS, Refused, refusal_status
from .session import SMSC, State
from .submit_fields import CustomerSubmit, SubmitRefused, read_submit

__all__ = ["ClientSession", "CustomerHandler", "CustomerSMPPServer", "DeliveryResult", "REFUSALS", "Refused", "listen"]

#: bind command → the bind kind of ``ClientSession.bind`` and of the sessions metric.
BIND_KINDS = {"bind_transmitter": "transmitter", "bind_receiver": "receiver",
              "bind_transceiver": "transceiver"}
_RECEIVING = frozenset({"receiver", "transceiver"})
#: The longest message_id a query_sm_resp carries (its C-string size less the NUL).
MAX_MESSAGE_ID = next(f.size for f in BODIES["query_sm_resp"] if f.name == "message_id") - 1

@dataclass(frozen=True, slots=True)
class ClientSession:
    """One bound session as the application sees it: whose (``account``, bound as ``system_id``),
    how (``bind``: "transmitter", "receiver" or "transceiver"), from where (``peer``,
    "host:port") and its name in the logs (``label``)."""

    account: str
    system_id: str
    bind: str
    peer: str
    label: str

    @property
    def receives(self) -> bool:
        return self.bind in _RECEIVING


class CustomerHandler(Protocol):
    """What the server calls; each Deferred may fire whenever the application is ready.

    ``submit`` fires with the message id (str) once the message is durably stored, ``query``
    with a ``QueryAnswer``, ``cancel`` with anything once cancelled; each fails with ``Refused``
    to refuse. ``receiver_bound`` is told of every new receiver or transceiver session. An
    optional ``pdu_counts(account)`` is where the connections of the account's sessions count
    their PDUs for ``pdus_total`` (``SMPPProtocol.pdus``): each one read ("in") or written ("out")
    on a connection that binds, those before the bind (the bind itself included) once it has
    bound; a connection that never binds counts none (it has no account to name, and a stranger
    must not mint label values).
    """

    def submit(self, session: ClientSession, message: CustomerSubmit) -> Deferred: ...

    def query(self, session: ClientSession, message_id: str) -> Deferred: ...

    def cancel(self, session: ClientSession, message_id: str) -> Deferred: ...

    def receiver_bound(self, session: ClientSession) -> None: ...


class _Connection:
    """What the server keeps per TCP connection: the bound session (None before a bind), the
    account it receives for (None: not a receiver), when it connected, how many of its requests
    wait for the handler, and whoever waits for it to close.
    Its PDUs before the bind are in its protocol's own counts (``proto.pdus``: keyed by command
    names, so a peer that never binds cannot make them grow) until it binds as an account."""

    __slots__ = ("proto", "peer", "connected_at", "session", "receives_for", "waiting", "aborted", "closed")

    def __init__(self, proto: SMPPProtocol, peer: str, connected_at: float) -> None:
        self.proto = proto
        self.peer = peer
        self.connected_at = connected_at
        self.session: ClientSession | None = None
        self.receives_for: str | None = None
        self.waiting = 0
        self.aborted = False
        self.closed: list[Deferred] = []

    @property
    def live(self) -> bool:
        """Bound, and neither unbound nor closing."""
        proto = self.proto
        return (self.session is not None and proto.session.is_bound and not proto.closed
                and not proto.close_reason)


class _Factory(ServerFactory):
    def __init__(self, server: CustomerSMPPServer) -> None:
        self.server = server

    def buildProtocol(self, addr):
        return self.server.build_protocol(addr)


class CustomerSMPPServer:
    """The SMPP server customers' ESMEs bind to; see the module docstring.

    Why one object for every connection: an account's sessions share its ``max_binds`` and its
    deliveries, which go round robin across them and must survive any one of them dropping.
    """

    #: On ``stop``, seconds to wait for each unbind_resp, then for each connection to close.
    unbind_timeout = 1.0

    def __init__(self, reactor, *, authenticate: Callable, max_binds: Callable[[str], int],
                 handler: CustomerHandler, enquire_link: float = 30.0, window: int = 100,
                 response_timeout: float = 30.0, bind_timeout: float = 30.0,
                 max_pending: int = 100, system_id: str = "smsgw", tick: float = 1.0) -> None:
        if not 0 < len(system_id) <= 15:
            raise ValueError(f"system_id must be 1 to 15 characters, not {system_id!r}")
        if window < 1 or max_pending < 1:
            raise ValueError(f"window ({window}) and max_pending ({max_pending}) must be >= 1")
        self.reactor = reactor
        self.authenticate = authenticate
        self.max_binds = max_binds
        self.handler = handler
        self.enquire_link = enquire_link
        self.window = window
        self.response_timeout = response_timeout
        self.bind_timeout = bind_timeout
        self.max_pending = max_pending
        self.system_id = system_id
        self.tick = tick
        self.factory = _Factory(self)
        self.log = structlog.get_logger(component="smpp-server")
        self._connections: dict[SMPPProtocol, _Connection] = {}
        self._outbox = Outbox(self._receivers, self.log)
        self._labels = itertools.count(1)
        self._watchdog: LoopingCall | None = None
        self._pdu_counts = getattr(handler, "pdu_counts", None)
        self._stopping = False

    # -- reading the state -------------------------------------------------------------------------
    @property
    def connection_count(self) -> int:
        """Open TCP connections, bound or not."""
        return len(self._connections)

    def sessions(self, account: str | None = None) -> list[ClientSession]:
        """The live bound sessions, of ``account`` or of everyone."""
        return [c.session for c in self._connections.values()
                if c.live and (account is None or c.session.account == account)]

    def session_counts(self) -> dict[tuple[str, str], int]:
        """(account, bind) → live sessions: ``smsgw_smpp_server_sessions{account,bind}``."""
        return dict(Counter((s.account, s.bind) for s in self.sessions()))

    def queued(self, account: str) -> int:
        """Deliveries of ``account`` waiting for a free window slot."""
        return self._outbox.queued(account)

    def capacity(self, account: str) -> int:
        """How many more deliveries of ``account`` would be sent at once."""
        return self._outbox.capacity(account)

    # -- connections -------------------------------------------------------------------------------
    def build_protocol(self, addr=None) -> SMPPProtocol:
        """The protocol of one new connection (what the factory builds; tests call it too)."""
        return SMPPProtocol(SMSC, self, self.reactor, window=self.window,
                            response_timeout=self.response_timeout,
                            enquire_link=self.enquire_link, tick=self.tick,
                            label=f"esme#{next(self._labels)}")

    def connection_made(self, proto: SMPPProtocol) -> None:
        peer = proto.transport.getPeer()
        where = f"{peer.host}:{peer.port}" if hasattr(peer, "port") else str(peer)
        self._connections[proto] = _Connection(proto, where, self.reactor.seconds())
        if self._watchdog is None:
            self._watchdog = LoopingCall(self._watch)
            self._watchdog.clock = self.reactor
            self._watchdog.start(self.tick, now=False)

    def connection_closed(self, proto: SMPPProtocol, reason: str) -> None:
        conn = self._connections.pop(proto, None)
        if conn is None:
            return
        session = conn.session
        if session is not None:
            self.log.info("esme gone", session=session.label, account=session.account,
                          bind=session.bind, peer=conn.peer, reason=reason)
            if session.receives and not self._receivers(session.account):
                self._outbox.receivers_gone(session.account)
        if not self._connections and self._watchdog is not None:
            self._watchdog.stop()
            self._watchdog = None
        for d in conn.closed:
            d.callback(None)

    def peer_unbound(self, proto: SMPPProtocol) -> None:
        conn = self._connections.get(proto)
        if conn is not None and conn.session is not None:
            self.log.info("esme unbound", session=conn.session.label)

    def protocol_error(self, proto: SMPPProtocol, event) -> None:
        # Never log the event itself: a refused second bind carries a password.
        pdu = getattr(event, "pdu", None)
        self.log.info("protocol error from esme", session=proto.label,
                      peer=self._peer(proto), kind=type(event).__name__,
                      command=pdu.command if pdu is not None else "",
                      status=status_name(getattr(event, "status", None) or 0),
                      reason=getattr(event, "reason", ""))

    def _peer(self, proto: SMPPProtocol) -> str:
        conn = self._connections.get(proto)
        return conn.peer if conn is not None else ""

    def _watch(self) -> None:
        """Abort what should have closed: no bind in time, or silent past the keep-alive."""
        now = self.reactor.seconds()
        silent_limit = self.enquire_link + self.response_timeout + 2 * self.tick
        for conn in list(self._connections.values()):
            if conn.aborted or conn.proto.closed:
                continue
            if conn.session is None and now - conn.connected_at >= self.bind_timeout:
                self._abort(conn, "no bind in time")
            elif now - conn.proto.session.last_received >= silent_limit:
                self._abort(conn, "peer silent: no answer to enquire_link")

    def _abort(self, conn: _Connection, reason: str) -> None:
        conn.aborted = True
        self.log.warning("closing esme connection", session=conn.proto.label, peer=conn.peer,
                         account=conn.session.account if conn.session else "", reason=reason)
        conn.proto.close(reason)
        transport = conn.proto.transport
        if transport is not None and hasattr(transport, "abortConnection"):
            transport.abortConnection()

    # -- requests ----------------------------------------------------------------------------------
    def request_received(self, proto: SMPPProtocol, pdu: PDU) -> None:
        command = pdu.command
        if command in BIND_KINDS:
            self._on_bind(proto, pdu)
        elif command in _CALLS:
            self._on_call(proto, pdu)
        else:  # replace_sm: a request ESMEs may send that the gateway does not offer
            proto.respond(pdu, ESME_RINVCMDID)

    def _on_bind(self, proto: SMPPProtocol, pdu: PDU) -> None:
        system_id = str(pdu.params.get("system_id", ""))
        if self._stopping:
            self._refuse_bind(proto, pdu, system_id, "server stopping")
            return
        d = maybeDeferred(self.authenticate, system_id, str(pdu.params.get("password", "")))
        d.addCallback(self._authenticated, proto, pdu, system_id)
        d.addErrback(self._bind_failed, proto, pdu, system_id)

    def _bind_failed(self, failure, proto: SMPPProtocol, pdu: PDU, system_id: str) -> None:
        """``authenticate``, ``max_binds`` or ``receiver_bound`` raised: refuse the bind if it is
        not answered yet. Only the exception's type and message are logged (no locals)."""
        self.log.error("bind handling failed", system_id=system_id[:16], peer=self._peer(proto),
                       error=f"{failure.type.__name__}: {failure.getErrorMessage()}")
        if proto.session.state is State.BINDING and not proto.closed:
            self._refuse_bind(proto, pdu, system_id, "server error")

    def _authenticated(self, account: str | None, proto: SMPPProtocol, pdu: PDU,
                       system_id: str) -> None:
        conn = self._connections.get(proto)
        if conn is None or proto.closed:
            return  # gone while we were checking
        if account is None:
            self._refuse_bind(proto, pdu, system_id, "unknown system_id or wrong password")
            return
        limit = self.max_binds(account)
        if len(self.sessions(account)) >= limit:
            self._refuse_bind(proto, pdu, system_id, "max_binds reached", account=account,
                              max_binds=limit)
            return
        session = ClientSession(account, system_id, BIND_KINDS[pdu.command], conn.peer,
                                f"{account}/{proto.label}")
        conn.session = session
        conn.receives_for = account if session.receives else None
        if self._pdu_counts is not None:  # the bind and whatever came before it, now that we know whose
            counts = self._pdu_counts(account)
            counts.update(proto.pdus)
            proto.pdus = counts
        proto.respond(pdu, ESME_ROK, {"system_id": self.system_id}, {"sc_interface_version": 0x34})
        self.log.info("esme bound", session=session.label, account=account, system_id=system_id,
                      bind=session.bind, peer=conn.peer)
        if session.receives:
            self.handler.receiver_bound(session)

    def _refuse_bind(self, proto: SMPPProtocol, pdu: PDU, system_id: str, reason: str,
                     **context) -> None:
        proto.respond(pdu, ESME_RBINDFAIL)
        self.log.info("bind refused", system_id=system_id[:16], peer=self._peer(proto),
                      reason=reason, **context)
        proto.close(f"bind refused: {reason}")

    def _on_call(self, proto: SMPPProtocol, pdu: PDU) -> None:
        conn = self._connections.get(proto)
        session = conn.session if conn is not None else None
        if session is None:  # the session's rules say bound; be safe if we disagree
            proto.respond(pdu, ESME_RINVBNDSTS)
            return
        if conn.waiting >= self.max_pending:
            self.log.info("esme has too many requests waiting", session=session.label,
                          waiting=conn.waiting)
            proto.respond(pdu, ESME_RMSGQFUL)
            return
        try:
            d = _CALLS[pdu.command](self, session, pdu)
        except SubmitRefused as exc:
            self._refused(proto, pdu, session, exc.status, exc.reason)
            return
        except Refused as exc:
            self._refused(proto, pdu, session, refusal_status(pdu.command, exc.reason), str(exc))
            return
        except Exception:  # a bug reading the PDU: answer it, keep the session
            self.log.exception("request handling failed", session=session.label,
                               command=pdu.command)
            proto.respond(pdu, ESME_RSYSERR)
            return
        conn.waiting += 1
        d.addCallbacks(self._answer, self._answer_failure, callbackArgs=(proto, pdu, conn),
                       errbackArgs=(proto, pdu, session, conn))

    def _submit(self, session: ClientSession, pdu: PDU) -> Deferred:
        # Called inside _on_call's try: what the handler raises is answered there, as its failures are.
        d = self.handler.submit(session, read_submit(pdu, self.reactor.seconds()))
        return d.addCallback(lambda message_id: {"message_id": str(message_id)})

    def _query(self, session: ClientSession, pdu: PDU) -> Deferred:
        message_id = _message_id(pdu)
        d = maybeDeferred(self.handler.query, session, message_id)
        return d.addCallback(lambda answer: query_sm_resp_params(message_id, answer))

    def _cancel(self, session: ClientSession, pdu: PDU) -> Deferred:
        message_id = _message_id(pdu)
        d = maybeDeferred(self.handler.cancel, session, message_id)
        return d.addCallback(lambda _: {})

    def _answer(self, params: dict, proto: SMPPProtocol, pdu: PDU, conn: _Connection) -> None:
        """What this (or ``_answer_failure``) raises is logged here: no errback follows them."""
        try:
            conn.waiting -= 1
            try:
                proto.respond(pdu, ESME_ROK, params)
            except EncodeError as exc:
                self.log.error("answer does not fit its PDU", session=proto.label,
                               command=pdu.command, error=str(exc))
                proto.respond(pdu, ESME_RSYSERR)
        except Exception:  # noqa: BLE001 - a bug: logged, the session goes on
            self._bug(Failure(), pdu.command)

    def _answer_failure(self, failure, proto: SMPPProtocol, pdu: PDU,
                        session: ClientSession, conn: _Connection) -> None:
        try:
            conn.waiting -= 1
            if failure.check(Refused):
                exc = failure.value
                self._refused(proto, pdu, session, refusal_status(pdu.command, exc.reason), str(exc))
                return
            self.log.error("handler failed", session=session.label, command=pdu.command,
                           error=failure.getTraceback())
            proto.respond(pdu, ESME_RSYSERR)
        except Exception:  # noqa: BLE001 - a bug: logged, the session goes on
            self._bug(Failure(), pdu.command)

    def _refused(self, proto: SMPPProtocol, pdu: PDU, session: ClientSession, status: int,
                 reason: str) -> None:
        self.log.info(f"{pdu.command} refused", session=session.label, status=status_name(status),
                      reason=reason)
        proto.respond(pdu, status)

    def _bug(self, failure, what: str) -> None:
        self.log.error("smpp server error", what=what, error=failure.getTraceback())

    # -- deliveries --------------------------------------------------------------------------------
    def deliver(self, account: str, item: DeliverSm, then: Then, arg=None) -> None:
        """Send ``item`` to a receiving session of ``account``; ``then(DeliveryResult, arg)`` is
        called once it ended. See ``outbox.py``."""
        self._outbox.deliver(account, item, then, arg)

    def _receivers(self, account: str) -> list[SMPPProtocol]:
        return [c.proto for c in self._connections.values() if c.receives_for == account and c.live]

    # -- stopping ----------------------------------------------------------------------------------
    def stop(self) -> Deferred:
        """Refuse new binds, fail queued deliveries (not done), unbind every bound ESME (waiting
        ``unbind_timeout`` for its unbind_resp), close every connection. Stopping the listener
        is the caller's (it opened it)."""
        return ensureDeferred(self._stop())

    async def _stop(self) -> None:
        self._stopping = True
        self._outbox.close("server stopping")
        closing = [ensureDeferred(self._close(c)) for c in list(self._connections.values())]
        await DeferredList(closing, consumeErrors=True)

    async def _close(self, conn: _Connection) -> None:
        proto = conn.proto
        if proto.closed:
            return
        closed: Deferred = Deferred()
        conn.closed.append(closed)
        await close_politely(proto, closed, unbind=conn.live, timeout=self.unbind_timeout, clock=self.reactor,
                             reason="server stopping")


def _message_id(pdu: PDU) -> str:
    """The message_id a query_sm or cancel_sm names; ``Refused("not_found")`` when it names
    none, or one longer than any id we give: the codec accepts a NUL-terminated id of any length,
    and echoing it in the query_sm_resp would not fit its field."""
    message_id = str(pdu.params.get("message_id", ""))
    if not message_id:
        raise Refused("not_found", f"{pdu.command} without a message_id")
    if len(message_id) > MAX_MESSAGE_ID:
        raise Refused("not_found", f"{pdu.command} message_id over {MAX_MESSAGE_ID} characters")
    return message_id


#: The requests passed to the handler, by command.
_CALLS = {"submit_sm": CustomerSMPPServer._submit, "data_sm": CustomerSMPPServer._submit,
          "query_sm": CustomerSMPPServer._query, "cancel_sm": CustomerSMPPServer._cancel}
