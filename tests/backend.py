"""A customer backend for push tests: records what the gateway POSTs and answers as the test says.

``BackendResource`` is a twisted.web ``Resource``; put it behind ``MemoryNetwork`` (iosim) for unit
tests (no sockets) or serve it with ``PushBackend.listening(reactor)`` on 127.0.0.1, an
OS-chosen port, for integration tests. Every request is recorded (method, path, headers, body) with
a signature check done here, independently of ``connectors.http_push.sign``: the HMAC is computed
from the SPEC text, so a wrong ``sign`` cannot vouch for itself.

How it answers is switched at run time::

    backend.reply_json("Thanks")   # 200 {"reply": "Thanks"}       (the default, reply "ok")
    backend.reply_text("Thanks")   # 200 text/plain
    backend.no_content()           # 204, empty
    backend.slow(12)               # the current answer, 12 s late (callLater on the given reactor)
    backend.stall()                # 200 and the first bytes of a body that never ends
    backend.failing(500)           # 500
    backend.garbage()              # 200 application/json that is not JSON
    backend.answer(Answer(...))    # anything else (a redirect, a huge body ...)
    backend.answer_at("/slow", Answer(delay=600))   # one path answers its own way
    await backend.refuse()         # stop listening and drop open connections: connects are refused
    backend.accept()               # listen again on the same port

``await backend.wait_for_requests(n, timeout)`` fires with the first n requests once they arrived
(a Deferred; nothing polls or sleeps).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, replace

from twisted.internet.defer import Deferred, ensureDeferred, succeed
from twisted.protocols.policies import WrappingFactory
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Site

__all__ = ["Answer", "BackendResource", "MemoryNetwork", "PushBackend", "RecordedRequest", "expected_signature"]


def expected_signature(secret: str, timestamp: str, body: bytes) -> str:
    """The signature SPEC §4 asks for, computed here on its own."""
    message = timestamp.encode("ascii") + b"." + body
    return "sha256=" + hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the backend saw it. ``headers``: lower-case names, last value of each.
    ``signature_valid``: None when the backend has no secret, else whether the signature checks."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    signature_valid: bool | None

    def json(self):
        return json.loads(self.body)


@dataclass(frozen=True)
class Answer:
    """How to answer: status, Content-Type (None: no header), body; ``delay`` seconds before
    answering at all; ``stall``: send the headers and the first bytes of the body, then hang."""

    status: int = 200
    content_type: str | None = "application/json"
    body: bytes = b'{"reply":"ok"}'
    delay: float = 0.0
    stall: bool = False
    headers: tuple[tuple[str, str], ...] = ()


class BackendResource(Resource):
    """The backend itself: records, verifies, answers per ``self.behaviour``."""

    isLeaf = True

    def __init__(self, reactor, secret: str | None = None) -> None:
        super().__init__()
        self.reactor = reactor
        self.secret = secret
        self.behaviour = Answer()
        self.by_path: dict[str, Answer] = {}  # paths that answer their own way
        self.requests: list[RecordedRequest] = []
        self._waiters: list[tuple[int, Deferred]] = []
        self._pending: set = set()  # delayed answers not yet sent

    # --- behaviours --------------------------------------------------------------------------------
    def answer(self, answer: Answer) -> None:
        self.behaviour = answer

    def answer_at(self, path: str, answer: Answer) -> None:
        self.by_path[path] = answer

    def reply_json(self, reply: str = "ok") -> None:
        body = json.dumps({"reply": reply}, ensure_ascii=False).encode("utf-8")
        self.answer(Answer(body=body))

    def reply_text(self, reply: str) -> None:
        self.answer(Answer(content_type="text/plain; charset=utf-8", body=reply.encode("utf-8")))

    def no_content(self) -> None:
        self.answer(Answer(status=204, content_type=None, body=b""))

    def slow(self, seconds: float) -> None:
        self.answer(replace(self.behaviour, delay=seconds))

    def stall(self) -> None:
        self.answer(Answer(body=b'{"reply":', stall=True))

    def failing(self, status: int = 500) -> None:
        self.answer(Answer(status=status, content_type="text/plain", body=b"internal error"))

    def garbage(self) -> None:
        self.answer(Answer(body=b"<html>this is not json</html>"))

    # --- waiting -----------------------------------------------------------------------------------
    def wait_for_requests(self, n: int, timeout: float = 5.0) -> Deferred:
        """Deferred[list[RecordedRequest]]: the first ``n`` requests, once they have arrived;
        fails with ``twisted.internet.defer.TimeoutError`` after ``timeout`` seconds."""
        if len(self.requests) >= n:
            return succeed(self.requests[:n])
        d: Deferred = Deferred()
        self._waiters.append((n, d))
        return d.addTimeout(timeout, self.reactor)

    def _recorded(self) -> None:
        waiting, self._waiters = self._waiters, []
        for n, d in waiting:
            if d.called:
                continue
            if len(self.requests) >= n:
                d.callback(self.requests[:n])
            else:
                self._waiters.append((n, d))

    # --- serving -----------------------------------------------------------------------------------
    def _verify(self, headers: dict[str, str], body: bytes) -> bool | None:
        if self.secret is None:
            return None
        timestamp = headers.get("x-smsgw-timestamp")
        signature = headers.get("x-smsgw-signature")
        if timestamp is None or signature is None:
            return False
        return hmac.compare_digest(expected_signature(self.secret, timestamp, body), signature)

    def render(self, request):
        body = request.content.read()
        headers = {name.decode("latin-1").lower(): values[-1].decode("latin-1")
                   for name, values in request.requestHeaders.getAllRawHeaders()}
        self.requests.append(RecordedRequest(
            method=request.method.decode("ascii"), path=request.path.decode("latin-1"),
            headers=headers, body=body, signature_valid=self._verify(headers, body)))
        self._recorded()
        answer = self.by_path.get(request.path.decode("latin-1"), self.behaviour)
        if answer.delay > 0:
            call = self.reactor.callLater(answer.delay, self._late, request, answer)
            self._pending.add(call)
            request.notifyFinish().addErrback(lambda _: call.active() and call.cancel())
            return NOT_DONE_YET
        return self._respond(request, answer)

    def _late(self, request, answer: Answer) -> None:
        self._pending = {call for call in self._pending if call.active()}
        body = self._respond(request, answer)
        if body is not NOT_DONE_YET:
            request.write(body)
            request.finish()

    def _respond(self, request, answer: Answer):
        request.setResponseCode(answer.status)
        if answer.content_type is None:
            request.defaultContentType = None  # twisted.web would say text/html
        else:
            request.setHeader(b"Content-Type", answer.content_type.encode("latin-1"))
        for name, value in answer.headers:
            request.setHeader(name.encode("latin-1"), value.encode("latin-1"))
        if answer.stall:
            request.write(answer.body)  # the status line and headers go out with it
            return NOT_DONE_YET
        return answer.body

    def cancel_pending(self) -> None:
        for call in self._pending:
            if call.active():
                call.cancel()
        self._pending.clear()


class _Connections(WrappingFactory):
    """The site behind a wrapper that knows its open connections, so they can be dropped."""

    def __init__(self, site) -> None:
        super().__init__(site)
        self._closed: list[Deferred] = []
        self.opened = 0  # connections accepted so far

    def registerProtocol(self, p) -> None:
        super().registerProtocol(p)
        self.opened += 1

    def unregisterProtocol(self, p) -> None:
        super().unregisterProtocol(p)
        if not self.protocols:
            closed, self._closed = self._closed, []
            for d in closed:
                if not d.called:  # not timed out meanwhile
                    d.callback(None)

    def all_closed(self) -> Deferred:
        """Fires once no connection is open (at once if none is)."""
        if not self.protocols:
            return succeed(None)
        d: Deferred = Deferred()
        self._closed.append(d)
        return d

    def drop_all(self) -> Deferred:
        closed = self.all_closed()
        for p in list(self.protocols):
            p.transport.abortConnection()
        return closed


class PushBackend:
    """``BackendResource`` served over real TCP on 127.0.0.1; the behaviours are the resource's."""

    def __init__(self, reactor, secret: str | None = None, port: int = 0) -> None:
        self.reactor = reactor
        self.resource = BackendResource(reactor, secret)
        site = Site(self.resource)
        site.displayTracebacks = False
        self.factory = _Connections(site)
        self.port = port
        self._listening = None

    @classmethod
    def listening(cls, reactor, secret: str | None = None) -> PushBackend:
        backend = cls(reactor, secret)
        backend.accept()
        return backend

    def __getattr__(self, name):  # behaviours, requests, wait_for_requests: the resource's
        return getattr(self.resource, name)

    @property
    def connections_opened(self) -> int:
        """TCP connections accepted so far (a pooled client opens one for many pushes)."""
        return self.factory.opened

    def connections_closed(self, timeout: float = 5.0) -> Deferred:
        """Fires once every connection to the backend is closed (the client hung up)."""
        return self.factory.all_closed().addTimeout(timeout, self.reactor)

    def url(self, path: str = "/push") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def accept(self) -> None:
        """Listen (again, on the same port once one was chosen)."""
        if self._listening is None:
            self._listening = self.reactor.listenTCP(self.port, self.factory, interface="127.0.0.1")
            self.port = self._listening.getHost().port

    def refuse(self) -> Deferred:
        """Stop listening and drop every open connection: new connects are refused."""
        return ensureDeferred(self._refuse())

    async def _refuse(self) -> None:
        if self._listening is not None:
            listening, self._listening = self._listening, None
            await listening.stopListening()
        self.resource.cancel_pending()
        await self.factory.drop_all()

    def stop(self) -> Deferred:
        """Refuse, for good: what a test's teardown waits for."""
        return self.refuse()


class MemoryNetwork:
    """Push clients connected in memory to a twisted.web resource (``twisted.test.iosim``): give
    ``endpoint_for`` to ``Pusher`` for unit tests without sockets, and ``flush()`` to move bytes.

    ``refuse_with(exc)`` makes every later connect fail with ``exc``; ``connections`` counts the
    connections opened so far.
    """

    def __init__(self, resource, clock) -> None:
        self.site = Site(resource, reactor=clock, timeout=None)
        self.site.displayTracebacks = False
        self.clock = clock
        self.pumps: list = []
        self.failure: BaseException | None = None
        self.raise_now = False
        self.connections = 0

    def refuse_with(self, exc: BaseException, raise_now: bool = False) -> None:
        self.failure, self.raise_now = exc, raise_now

    def endpoint_for(self, scheme: str, host: str, port: int):
        return _MemoryEndpoint(self, host, port)

    def flush(self) -> None:
        for pump in list(self.pumps):
            pump.flush(advanceClock=False)


class _MemoryEndpoint:
    def __init__(self, network: MemoryNetwork, host: str, port: int) -> None:
        self.network, self.host, self.port = network, host, port

    def connect(self, factory) -> Deferred:
        from twisted.internet.address import IPv4Address
        from twisted.internet.defer import fail
        from twisted.test import iosim

        net = self.network
        if net.failure is not None:
            if net.raise_now:
                raise net.failure
            return fail(net.failure)
        client_addr, server_addr = IPv4Address("TCP", "10.0.0.1", 40000 + net.connections), IPv4Address(
            "TCP", "10.0.0.2", self.port)
        client = factory.buildProtocol(server_addr)
        server = net.site.buildProtocol(client_addr)
        net.connections += 1
        pump = iosim.connect(server, iosim.FakeTransport(server, True, server_addr, client_addr),
                             client, iosim.FakeTransport(client, False, client_addr, server_addr),
                             greet=False, clock=net.clock)
        net.pumps.append(pump)
        return succeed(client)
