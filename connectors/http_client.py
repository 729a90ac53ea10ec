"""Keep-alive HTTP/1.1 client connections (the transport under ``connectors.http_push``).

Theory of operation
-------------------
- ``target(url)`` parses a URL once (cached) into what a connection and a request line need:
  (scheme, host, port) as the pool key, the Host header, the request target. A URL that cannot be
  an http(s) target (scheme, host, port, characters) is None.
- ``Pool`` keeps connections per (scheme, host, port): ``take(key)`` an idle one (most recent
  first), ``connect(key)`` a new one through ``endpoint_for(scheme, host, port)`` (a Twisted client
  endpoint: TCP to an IP literal without a name lookup, HostnameEndpoint for names, TLS with host
  verification for https; tests pass one that connects in memory). Given an address check, the
  endpoint resolves names itself and connects only to an address the check allows (SPEC §15).
- ``Connection`` carries one exchange at a time (no pipelining): ``send(request_bytes, limit,
  done)``; httptools (llhttp, C) parses the answer; ``done(answer, failure)`` is called once, when the
  answer is complete or the connection ended first. A body over ``limit`` is cut and the connection
  dropped; a kept-alive connection goes back to the pool.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import quote, urlsplit

import httptools
from twisted.internet.defer import CancelledError, Deferred, DeferredList, succeed
from twisted.internet.endpoints import HostnameEndpoint, TCP4ClientEndpoint, TCP6ClientEndpoint, wrapClientTLS
from twisted.internet.error import ConnectError, DNSLookupError
from twisted.internet.interfaces import IResolutionReceiver
from twisted.internet.protocol import Factory, Protocol
from twisted.python.failure import Failure
from zope.interface import implementer

from connectors.tcp import no_delay

__all__ = ["Answer", "Connection", "Pool", "RefusedAddress", "Target", "default_endpoint_for", "target"]


# --- where a request goes ------------------------------------------------------------------------
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"


@dataclass(frozen=True, slots=True)
class Target:
    """A parsed URL: the connection key and the request line's target."""

    scheme: str
    host: str  # as connected to: an IP literal, or an IDNA-encoded name
    port: int
    authority: bytes  # the Host header
    target: bytes  # path?query

    @property
    def key(self) -> tuple[str, str, int]:
        return self.scheme, self.host, self.port


@lru_cache(maxsize=1024)  # a gateway pushes to few URLs, each many times
def target(url: str) -> Target | None:
    """The URL as a push target, or None when it cannot be one (scheme, host, port, characters)."""
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            return None
        port = parts.port or (443 if scheme == "https" else 80)
        host = parts.hostname
        try:
            ipaddress.ip_address(host)
        except ValueError:
            host = host.encode("idna").decode("ascii")
        if any(c in host for c in " \t\r\n/\\@"):
            return None
        shown = f"[{host}]" if ":" in host else host
        authority = shown if parts.port is None else f"{shown}:{port}"
        target = quote(parts.path or "/", safe=_PATH_SAFE)
        if parts.query:
            target += "?" + quote(parts.query, safe=_PATH_SAFE + "?")
        return Target(scheme, host, port, authority.encode("ascii"), target.encode("ascii"))
    except (ValueError, UnicodeError):
        return None


class RefusedAddress(ConnectError):
    """The push's target address is one the gateway may not connect to (SPEC §15)."""


#: ``check(address, port)``: why the gateway must not connect there, or None when it may
AddressCheck = Callable[[str, int], "str | None"]


def default_endpoint_for(reactor, timeout: float, check: AddressCheck | None = None
                         ) -> Callable[[str, str, int], object]:
    """Client endpoints on ``reactor``: TCP to IP literals without a name lookup, names through
    HostnameEndpoint, TLS (with hostname verification) for https. With ``check``, every address is
    checked before it is connected to, names included (``_CheckedEndpoint``)."""
    from twisted.internet.ssl import optionsForClientTLS

    def endpoint_for(scheme: str, host: str, port: int):
        if check is not None:
            ep = _CheckedEndpoint(reactor, host, port, timeout, check)
        else:
            try:
                ip = ipaddress.ip_address(host)
            except ValueError:
                ep = HostnameEndpoint(reactor, host.encode("ascii"), port, timeout=timeout)
            else:
                ep = _tcp(reactor, ip, port, timeout)
        if scheme == "https":
            ep = wrapClientTLS(optionsForClientTLS(host), ep)
        return ep

    return endpoint_for


def _tcp(reactor, ip, port: int, timeout: float):
    cls = TCP4ClientEndpoint if ip.version == 4 else TCP6ClientEndpoint
    return cls(reactor, str(ip), port, timeout=timeout)


class _CheckedEndpoint:
    """Connects only to addresses ``check`` allows: the name is resolved here, every address it gives
    is checked, and the connection goes to the first allowed one by its address (so what was checked
    is what is connected to; a name that resolves again to another address cannot slip past). The
    next allowed address is tried when a connect fails."""

    def __init__(self, reactor, host: str, port: int, timeout: float, check: AddressCheck) -> None:
        self.reactor, self.host, self.port, self.timeout, self.check = reactor, host, port, timeout, check

    def connect(self, factory) -> Deferred:
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            d = self._resolve()
        else:
            d = succeed([self.host])
        d.addCallback(self._allowed)
        d.addCallback(self._connect_first, factory)
        return d

    def _resolve(self) -> Deferred:
        addresses: list[str] = []
        done: Deferred = Deferred()

        @implementer(IResolutionReceiver)
        class _Receiver:
            def resolutionBegan(self, resolution) -> None:
                pass

            def addressResolved(self, address) -> None:
                addresses.append(address.host)

            def resolutionComplete(self) -> None:
                done.callback(addresses)

        self.reactor.nameResolver.resolveHostName(_Receiver(), self.host, portNumber=self.port)
        return done

    def _allowed(self, addresses: list[str]) -> list[str]:
        if not addresses:
            raise DNSLookupError(f"{self.host} has no address")
        problems = [self.check(a, self.port) for a in addresses]
        allowed = [a for a, problem in zip(addresses, problems) if problem is None]
        if not allowed:
            raise RefusedAddress(self.host, problems[0])
        return allowed

    def _connect_first(self, addresses: list[str], factory) -> Deferred:
        d = _tcp(self.reactor, ipaddress.ip_address(addresses[0].split("%", 1)[0]), self.port,
                 self.timeout).connect(factory)
        if len(addresses) > 1:
            d.addErrback(lambda f: f if f.check(CancelledError) else self._connect_first(addresses[1:], factory))
        return d


# --- the connection -------------------------------------------------------------------------------
class Answer:
    """What arrived of one response so far."""

    __slots__ = ("status", "content_type", "chunks", "size", "too_large", "complete", "length", "chunked",
                 "headers_done")

    def __init__(self) -> None:
        self.status: int | None = None
        self.content_type: str | None = None
        self.chunks: list[bytes] = []
        self.size = 0
        self.too_large = False
        self.complete = False
        self.length: int | None = None
        self.chunked = False
        self.headers_done = False


class Connection(Protocol):
    """One keep-alive HTTP/1.1 connection to a backend; one exchange at a time.

    ``send(request, limit, done)``: ``done(answer, failure)`` is called once, when the answer is
    complete (failure None) or the connection ended first (failure says how).
    """

    def __init__(self, pool: Pool, key) -> None:
        self.pool = pool
        self.key = key
        self.parser = httptools.HttpResponseParser(self)
        self.answer: Answer | None = None
        self.done: Callable | None = None
        self.limit = 0
        self.open = False
        self.reused = False  # had served an exchange before this one

    # -- driving it
    def send(self, request: bytes, limit: int, done: Callable) -> None:
        self.answer = Answer()
        self.limit = limit
        self.done = done
        self.transport.write(request)

    def abort(self) -> None:
        self.done = None
        if self.open:
            self.transport.abortConnection()

    # -- Protocol
    def connectionMade(self) -> None:
        no_delay(self.transport)  # a request waits for nothing (connectors/tcp.py)
        self.open = True

    def dataReceived(self, data: bytes) -> None:
        if self.done is None:  # nothing asked for: an idle backend talking nonsense
            self.transport.abortConnection()
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._end(Failure(httptools.HttpParserError("unexpected upgrade")))
        except httptools.HttpParserError:
            self._end(Failure())

    def connectionLost(self, reason: Failure = None) -> None:
        self.open = False
        self.pool.lost(self)
        answer = self.answer
        if self.done is None or answer is None:
            return
        if answer.headers_done and not answer.chunked and answer.length is None:
            answer.complete = True  # a body delimited by the end of the connection
            self._end(None, keep=False)
        else:
            self._end(reason)

    # -- httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        lower = name.lower()
        if lower == b"content-type":
            self.answer.content_type = value.decode("latin-1")
        elif lower == b"content-length" and value.strip().isdigit():
            self.answer.length = int(value)
        elif lower == b"transfer-encoding" and b"chunked" in value.lower():
            self.answer.chunked = True

    def on_headers_complete(self) -> None:
        answer = self.answer
        answer.status = self.parser.get_status_code()
        answer.headers_done = True
        if answer.length is not None and answer.length > self.limit:
            self._too_large()

    def on_body(self, body: bytes) -> None:
        answer = self.answer
        if answer is None or answer.too_large:
            return
        answer.size += len(body)
        if answer.size > self.limit:
            self._too_large()
        else:
            answer.chunks.append(body)

    def on_message_complete(self) -> None:
        if self.answer is None or self.answer.too_large:
            return
        self.answer.complete = True
        self._end(None, keep=self.parser.should_keep_alive())

    # -- endings
    def _too_large(self) -> None:
        self.answer.too_large = True
        self.answer.chunks.clear()
        self._end(None, keep=False)

    def _end(self, failure: Failure | None, keep: bool = False) -> None:
        done, answer = self.done, self.answer
        self.done, self.answer = None, None
        if not keep and self.open:
            self.transport.loseConnection() if failure is None else self.transport.abortConnection()
        elif keep:
            self.reused = True
            self.parser = httptools.HttpResponseParser(self)
            self.pool.idle(self)
        if done is not None:
            done(answer, failure)


class Pool:
    """Keep-alive connections by (scheme, host, port): idle ones are reused, most recent first."""

    def __init__(self, endpoint_for, max_idle_per_host: int = 64) -> None:
        self.endpoint_for = endpoint_for
        self.max_idle = max_idle_per_host
        self._idle: dict[tuple, list[Connection]] = {}
        self._all: set[Connection] = set()

    def take(self, key) -> Connection | None:
        idle = self._idle.get(key)
        return idle.pop() if idle else None

    def connect(self, key) -> Deferred:
        """Deferred[Connection] to a new connection; cancelling it stops the connect."""
        scheme, host, port = key
        pool = self

        class _Factory(Factory):
            def buildProtocol(self, addr):
                return Connection(pool, key)

        d = self.endpoint_for(scheme, host, port).connect(_Factory())
        d.addCallback(self._opened)
        return d

    def _opened(self, conn: Connection) -> Connection:
        self._all.add(conn)
        return conn

    def idle(self, conn: Connection) -> None:
        idle = self._idle.setdefault(conn.key, [])
        if len(idle) >= self.max_idle:
            conn.transport.loseConnection()
        else:
            idle.append(conn)

    def lost(self, conn: Connection) -> None:
        self._all.discard(conn)
        idle = self._idle.get(conn.key)
        if idle and conn in idle:
            idle.remove(conn)

    def close(self) -> Deferred:
        """Close idle connections; fires when they are closed."""
        waits = []
        for idle in self._idle.values():
            for conn in idle:
                d: Deferred = Deferred()
                conn.pool = _Closing(self, d)
                conn.transport.loseConnection()
                waits.append(d)
        self._idle.clear()
        return DeferredList(waits)


class _Closing:
    """Stands in for the pool of a connection being closed, to tell when it is gone."""

    def __init__(self, pool: Pool, d: Deferred) -> None:
        self.pool = pool
        self.d = d

    def lost(self, conn) -> None:
        self.pool.lost(conn)
        if not self.d.called:
            self.d.callback(None)

    def idle(self, conn) -> None:
        conn.transport.loseConnection()
