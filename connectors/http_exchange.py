"""One HTTP exchange on the lean keep-alive client (``connectors.http_client``): a request, its
answer, one timer, and a short stable name for every way it can fail.

Why a module of its own: customers' pushes (``connectors.http_push``) and number look-ups
(``connectors.number_lookup``) both send one request on a kept-alive connection and must end exactly
once whatever happens (the answer, a connection lost half-way, the timeout, the caller cancelling);
the state machine that guarantees it is written here once, and each caller says what the ends mean.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import httptools
from twisted.internet import error as net_error
from twisted.internet.defer import CancelledError, Deferred
from twisted.python.failure import Failure

from connectors.http_client import Answer, Connection, Pool, RefusedAddress

__all__ = ["Exchange", "describe_failure"]

_NETWORK_ERRORS: list[tuple[type[BaseException], str]] = [
    (net_error.ConnectionRefusedError, "connection refused"),
    (net_error.DNSLookupError, "dns lookup failed"),
    (net_error.NoRouteError, "no route to host"),
    (net_error.TCPTimedOutError, "timeout"),
    (net_error.TimeoutError, "timeout"),
    (net_error.ConnectionLost, "connection lost"),
    (net_error.ConnectionDone, "connection lost"),
]

_TLS_MODULES = ("OpenSSL", "service_identity", "twisted.protocols.tls", "ssl")


def describe_failure(failure: Failure) -> str:
    """A short, stable name for why an HTTP exchange got no answer (pushes and look-ups name them alike)."""
    if failure.check(RefusedAddress):
        return f"refused address: {failure.value.args[-1]}"
    for kind, name in _NETWORK_ERRORS:
        if failure.check(kind):
            return name
    if type(failure.value).__module__.startswith(_TLS_MODULES):
        return "tls error"
    if failure.check(httptools.HttpParserError):
        return "invalid http answer"
    return f"error: {type(failure.value).__name__}"


class Exchange(ABC):
    """One request and its answer on a kept-alive connection of ``pool``, under one timer: what a
    push and a look-up both do, so they do it one way.

    ``run(key, request)`` takes an idle connection to ``key`` or opens one, and sends. It ends once,
    through one of three methods a subclass gives meaning to (each must fire ``result``):

    - ``answered(answer)``: the whole answer came;
    - ``cut(status, why)``: its status line came and the rest did not (``why``: "lost", "timeout",
      "cancelled");
    - ``failed(reason)``: no answer at all (``describe_failure``'s words, "timeout" or "cancelled").

    A reused idle connection the server had closed before any byte of the answer is replaced once by
    a fresh one. The timer (``timeout`` seconds for the whole exchange) and cancelling ``result``
    abort whatever is in flight.
    """

    def __init__(self, reactor, pool: Pool, timeout: float, max_answer_bytes: int) -> None:
        self.reactor = reactor
        self.pool = pool
        self.timeout = timeout
        self.max_answer_bytes = max_answer_bytes
        self.result: Deferred = Deferred(lambda _: self._stop("cancelled"))
        self.connecting: Deferred | None = None
        self.conn: Connection | None = None
        self.timer = None
        self.request = b""
        self.key = None

    @abstractmethod
    def answered(self, answer: Answer) -> None:
        """The whole answer came."""

    @abstractmethod
    def cut(self, status: int, why: str) -> None:
        """The status line came, the rest did not."""

    @abstractmethod
    def failed(self, reason: str) -> None:
        """No answer at all."""

    def run(self, key, request: bytes) -> None:
        self.key, self.request = key, request
        self.timer = self.reactor.callLater(self.timeout, self._stop, "timeout")
        conn = self.pool.take(key)
        if conn is not None:
            self._send(conn)
        else:
            self._connect()

    def cancel_timer(self) -> None:
        if self.timer is not None and self.timer.active():
            self.timer.cancel()

    def _connect(self) -> None:
        try:
            self.connecting = self.pool.connect(self.key)
        except Exception:  # noqa: BLE001 - an endpoint that raises is a failed connect
            self.failed(describe_failure(Failure()))
            return
        self.connecting.addCallbacks(self._connected, self._connect_failed)

    def _connected(self, conn: Connection) -> None:
        self.connecting = None
        if self.result.called:  # stopped meanwhile
            conn.transport.loseConnection()
            return
        self._send(conn)

    def _connect_failed(self, failure: Failure) -> None:
        self.connecting = None
        if not self.result.called and not failure.check(CancelledError):
            self.failed(describe_failure(failure))

    def _send(self, conn: Connection) -> None:
        self.conn = conn
        conn.send(self.request, self.max_answer_bytes, self._answered)

    def _answered(self, answer: Answer | None, failure: Failure | None) -> None:
        conn, self.conn = self.conn, None
        if self.result.called:
            return
        if failure is None:
            self.answered(answer)
        elif answer is not None and answer.status is not None:
            self.cut(answer.status, "lost")
        elif conn is not None and conn.reused and answer is not None and answer.size == 0:
            self._connect()  # a kept-alive connection the server had closed: once more, fresh
        else:
            self.failed(describe_failure(failure))

    def _stop(self, why: str) -> None:
        """The timer struck, or the caller cancelled: abort whatever is in flight."""
        if self.result.called:
            return
        conn, self.conn = self.conn, None
        status = None
        if conn is not None:
            status = conn.answer.status if conn.answer is not None else None
            conn.abort()
        if self.connecting is not None:
            connecting, self.connecting = self.connecting, None
            connecting.cancel()
        if status is None:
            self.failed(why)
        else:
            self.cut(status, why)
