"""A lean HTTP/1.1 server for the gateway's API: httptools (llhttp, C) parses, Twisted carries bytes.

The API's busiest call is ``POST /v1/messages`` with a body of a few hundred bytes; twisted.web spends
more on each such request (header objects, a Request with dozens of attributes, form sniffing,
producers) than the gateway spends on the message itself. This server does only what the API
needs, and gives the handler the part of twisted.web's ``Request`` that the API uses (``method``,
``path``, ``args``, ``getHeader``, ``content``, ``setResponseCode``, ``setHeader``, ``write``,
``finish``), so a resource written for twisted.web renders here unchanged.

Theory of operation
-------------------
- One ``HTTPServerProtocol`` per connection. Bytes go to an ``httptools.HttpRequestParser``; a
  request is dispatched once its body is complete. Requests are answered in the order they came
  (pipelining): a request waits until the one before it has finished.
- ``handler.render(request)`` returns the body (bytes), or ``NOT_DONE_YET`` and later calls
  ``request.write`` / ``request.finish``. The answer is written as one buffer at ``finish`` with a
  ``Content-Length``; the connection is kept alive unless the client or an error asks to close it.
- Limits answer before the handler runs, and close the connection: a request line over
  ``max_line`` → 414; a header section over ``max_header_bytes`` or ``max_headers`` fields → 431; a
  body over ``max_body`` → 413; bytes that are not HTTP → 400. The body of those answers comes from
  ``error_body(status, code, message)``, so the API keeps its own error shape.
- ``Expect: 100-continue`` is answered at once when the body will be read.
- A connection with no request in progress for ``idle_timeout`` seconds is closed, and so is one
  whose request takes longer than that to arrive (a client that sends a byte a second).
- Back-pressure: a client that sends requests and does not read the answers gets no more read
  from it (its requests wait in the kernel) once ``MAX_WAITING`` requests wait for their turn or
  the answers not yet taken by the socket pass the transport's buffer; answers stop being made
  meanwhile. Answers it does not take for ``idle_timeout`` seconds close the connection. (Before,
  such a client grew a worker by 250 MB a second.)
- Half-close: a client that shuts down its sending side after its requests (``nc -N``,
  ``shutdown(SHUT_WR)``) gets every answer, then the connection closes.
"""

from __future__ import annotations

import email.utils
import re
from collections import deque
from collections.abc import Callable
from io import BytesIO
from urllib.parse import parse_qs

import httptools
from twisted.internet.interfaces import IHalfCloseableProtocol, IPushProducer
from twisted.internet.protocol import Factory, Protocol
from twisted.web.server import NOT_DONE_YET
from zope.interface import implementer

from connectors.tcp import no_delay

__all__ = ["HTTPServerFactory", "Limits", "Request", "NOT_DONE_YET"]

#: requests of one connection parsed and waiting for their turn before nothing more is read from it
MAX_WAITING = 64
#: headers a request may carry once (RFC 9112 §3.2: two Host fields are a 400; a second key is no list)
_ONCE = frozenset({b"host", b"authorization"})

_REASONS = {
    100: b"Continue", 200: b"OK", 201: b"Created", 202: b"Accepted", 204: b"No Content", 302: b"Found",
    304: b"Not Modified", 400: b"Bad Request",
    401: b"Unauthorized", 402: b"Payment Required", 403: b"Forbidden", 404: b"Not Found",
    405: b"Method Not Allowed", 409: b"Conflict", 413: b"Content Too Large", 414: b"URI Too Long",
    422: b"Unprocessable Content", 429: b"Too Many Requests", 431: b"Request Header Fields Too Large",
    500: b"Internal Server Error", 501: b"Not Implemented", 503: b"Service Unavailable",
}


class Limits:
    """What one request may carry before the server refuses it (defaults: SPEC §15)."""

    def __init__(self, *, max_line: int = 8192, max_header_bytes: int = 16384, max_headers: int = 100,
                 max_body: int = 1 << 20, idle_timeout: float = 60.0) -> None:
        self.max_line = max_line
        self.max_header_bytes = max_header_bytes
        self.max_headers = max_headers
        self.max_body = max_body
        self.idle_timeout = idle_timeout


#: a request line: a method (an RFC 9110 token), a target and a version
_REQUEST_LINE = re.compile(rb"(?:^|\n)[!#$%&'*+\-.^_`|~0-9A-Za-z]+ [^ \r\n]+ HTTP/\d\.\d\r?\n")


class _Refused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class Request:
    """One request and its answer: the part of ``twisted.web.server.Request`` the API uses."""

    __slots__ = ("channel", "method", "uri", "path", "_args", "headers", "content", "code", "_out_headers",
                 "_body", "finished", "_disconnected", "keep_alive", "http10")

    def __init__(self, channel: HTTPServerProtocol, method: bytes, uri: bytes, headers: dict[bytes, bytes],
                 body: bytes, keep_alive: bool, http10: bool) -> None:
        self.channel = channel
        self.method = method
        self.uri = uri
        self.path = uri.split(b"?", 1)[0]
        self._args = None
        self.headers = headers
        self.content = BytesIO(body)
        self.code = 200
        self._out_headers: list[tuple[bytes, bytes]] = []
        self._body: list[bytes] = []
        self.finished = False
        self._disconnected = False
        self.keep_alive = keep_alive
        self.http10 = http10

    @property
    def args(self) -> dict[bytes, list[bytes]]:
        """Query parameters, as twisted.web gives them (bytes keys, lists of bytes values)."""
        if self._args is None:
            _, _, query = self.uri.partition(b"?")
            self._args = _parse_query(query) if query else {}
        return self._args

    def getHeader(self, name: bytes) -> bytes | None:
        return self.headers.get(name.lower())

    def setResponseCode(self, code: int) -> None:
        self.code = code

    def setHeader(self, name: bytes, value: bytes) -> None:
        lower = name.lower()
        self._out_headers = [(n, v) for n, v in self._out_headers if n.lower() != lower]
        self._out_headers.append((name, value))

    def write(self, data: bytes) -> None:
        if data:
            self._body.append(data)

    def finish(self) -> None:
        if self.finished:
            return
        self.finished = True
        if not self._disconnected:
            self.channel._answer(self)


def _parse_query(query: bytes) -> dict[bytes, list[bytes]]:
    """``parse_qs`` for any bytes: percent-escapes of non-UTF-8 or non-ASCII bytes come back as the
    bytes they name (``parse_qs`` on bytes raises UnicodeEncodeError for them)."""
    pairs = parse_qs(query.decode("utf-8", "surrogateescape"), keep_blank_values=True,
                     encoding="utf-8", errors="surrogateescape")
    return {k.encode("utf-8", "surrogateescape"): [v.encode("utf-8", "surrogateescape") for v in vs]
            for k, vs in pairs.items()}


@implementer(IHalfCloseableProtocol, IPushProducer)
class HTTPServerProtocol(Protocol):
    """One client connection (see the module's theory of operation). It is the producer of its
    answers: the transport pauses it while the client does not take them."""

    def __init__(self, factory: HTTPServerFactory) -> None:
        self.factory = factory
        self.limits = factory.limits
        self.parser = httptools.HttpRequestParser(self)
        self.queue: deque[Request] = deque()
        self.current: Request | None = None
        self.closing = False
        self.refused = False  # a limit or bad HTTP: nothing more is read, the answer closes
        self._dispatching = False
        self._reset()
        self._idle_call = None
        self._last = 0.0
        self._input_done = False  # the client shut down its sending side
        self._blocked_since = None  # since when the answers wait for the client to read them
        self._not_reading = False  # reading from the socket is paused
        self._producing = False  # registered with the transport as the producer of the answers

    def _reset(self) -> None:
        self._url: list[bytes] = []
        self._url_len = 0
        self._headers: dict[bytes, bytes] = {}
        self._header_bytes = 0
        self._header_count = 0
        self._body: list[bytes] = []
        self._body_len = 0
        self._skip = False  # the request was refused: ignore what is left of it
        self._began = None  # when the request being read began to arrive

    # -- Protocol --------------------------------------------------------------------------------
    def connectionMade(self) -> None:
        no_delay(self.transport)  # an answer waits for nothing (connectors/tcp.py)
        self.transport.registerProducer(self, True)
        self._producing = True
        self._last = self.factory.clock.seconds()
        self._arm_idle(self.limits.idle_timeout)

    def dataReceived(self, data: bytes) -> None:
        if self.closing or self.refused:
            return
        self._last = self.factory.clock.seconds()
        try:
            self._feed(data)
        except httptools.HttpParserUpgrade:
            # CONNECT: the parser completed the request before saying so; the refusal is its
            # answer, not a second one after it.
            if self.queue and not self.queue[-1].finished:
                self.queue.pop()
            self._refuse(_Refused(400, "invalid_request", "CONNECT is not supported."))
        except httptools.HttpParserInvalidMethodError:
            # RFC 9110 §9.1: a request line with a method the server does not know is 501; the
            # parser says the same of a line that is no request line at all ("GET" alone), a 400
            self._refuse(_Refused(501, "not_implemented", "The request method is not one this server implements.")
                         if _REQUEST_LINE.search(data) else
                         _Refused(400, "invalid_request", "The request is not valid HTTP/1.1."))
        except httptools.HttpParserError as exc:
            refused = exc.__context__  # what a callback raised travels as the parser's error's context
            self._refuse(refused if isinstance(refused, _Refused)
                         else _Refused(400, "invalid_request", "The request is not valid HTTP/1.1."))
        self._next()
        self._reading()

    def _feed(self, data: bytes) -> None:
        """Parse ``data``. An upgrade a request offers (``Upgrade: h2c``, a WebSocket) is ignored
        (RFC 9110 §7.8): the request is answered over HTTP/1.1, what follows it is the next one."""
        while True:
            try:
                return self.parser.feed_data(data)
            except httptools.HttpParserUpgrade as exc:
                if self.parser.get_method() == b"CONNECT" or not exc.args:
                    raise
                data = data[exc.args[0]:]
                self.parser = httptools.HttpRequestParser(self)
                if not data:
                    return None

    def readConnectionLost(self) -> None:
        """The client will send nothing more: answer what came, then close."""
        self._input_done = True
        if self.current is None and not self.queue and not self.closing:
            self._close()

    def writeConnectionLost(self) -> None:
        """The client takes no more: ``connectionLost`` follows and ends what is left."""

    def _close(self) -> None:
        """Close once what was written has gone (a paused producer would hold the close back)."""
        self.closing = True
        if self._producing:
            self._producing = False
            self.transport.unregisterProducer()
        self.transport.loseConnection()

    # -- back-pressure (IPushProducer, called by the transport) ---------------------------------
    def pauseProducing(self) -> None:
        if self._blocked_since is None:
            self._blocked_since = self.factory.clock.seconds()
        self._reading()

    def resumeProducing(self) -> None:
        self._blocked_since = None
        self._next()
        self._reading()

    def stopProducing(self) -> None:
        """The transport is closing: ``connectionLost`` follows and drops what waits."""

    def _reading(self) -> None:
        """Read from the socket only while answers flow and few requests wait."""
        stop = self._blocked_since is not None or len(self.queue) >= MAX_WAITING
        if stop != self._not_reading and not self.closing:
            self._not_reading = stop
            if stop:
                self.transport.pauseProducing()
            else:
                self.transport.resumeProducing()

    def connectionLost(self, reason=None) -> None:
        self.closing = True
        if self._idle_call is not None and self._idle_call.active():
            self._idle_call.cancel()
        for request in ([self.current] if self.current is not None else []) + list(self.queue):
            request._disconnected = True
        self.queue.clear()
        self.current = None

    # -- idle connections --------------------------------------------------------------------------
    def _arm_idle(self, delay: float) -> None:
        if self.limits.idle_timeout:
            self._idle_call = self.factory.clock.callLater(delay, self._idle_check)

    def _idle_check(self) -> None:
        if self.closing:
            return
        now = self.factory.clock.seconds()
        quiet = now - self._last
        if self.current is None and not self.queue and quiet >= self.limits.idle_timeout:
            self._close()
            return
        late = [since for since in (self._blocked_since, self._began) if since is not None]
        if late and now - min(late) >= self.limits.idle_timeout:
            # the client takes no answer, or sends a request a byte at a time (slowloris): its
            # connection goes, whatever it holds
            self.closing = True
            self.transport.abortConnection()
            return
        self._arm_idle(max(0.1, min([self.limits.idle_timeout - quiet] + [s + self.limits.idle_timeout - now
                                                                          for s in late])))

    # -- httptools callbacks -------------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._reset()
        self._began = self.factory.clock.seconds()

    def on_url(self, url: bytes) -> None:
        self._url_len += len(url)
        # the whole request line, CRLF aside: method, space, target, space, "HTTP/1.1"
        if len(self.parser.get_method()) + self._url_len + 10 > self.limits.max_line:
            raise _Refused(414, "uri_too_long", f"The request line is over {self.limits.max_line} bytes.")
        self._url.append(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        self._header_bytes += len(name) + len(value) + 4
        if self._header_count > self.limits.max_headers or self._header_bytes > self.limits.max_header_bytes:
            raise _Refused(431, "headers_too_large",
                           f"The header section is over {self.limits.max_header_bytes} bytes or "
                           f"{self.limits.max_headers} fields.")
        name = name.lower()
        if name in _ONCE and name in self._headers:
            raise _Refused(400, "invalid_request", f"The request has more than one {name.decode()} header.")
        self._headers[name] = value

    def on_headers_complete(self) -> None:
        if b"host" not in self._headers and self.parser.get_http_version() == "1.1":
            raise _Refused(400, "invalid_request", "An HTTP/1.1 request needs a Host header.")
        length = self._headers.get(b"content-length")
        if length is not None and length.strip().isdigit() and int(length) > self.limits.max_body:
            raise _Refused(413, "too_large", f"The request body is over {self.limits.max_body} bytes.")
        expect = self._headers.get(b"expect")
        if expect is not None and expect.lower() == b"100-continue" and self.parser.get_http_version() == "1.1":
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self._body_len += len(body)
        if self._body_len > self.limits.max_body:
            raise _Refused(413, "too_large", f"The request body is over {self.limits.max_body} bytes.")
        self._body.append(body)

    def on_message_complete(self) -> None:
        parser = self.parser
        target = b"".join(self._url)
        if not target.startswith(b"/"):
            target = _origin_form(target)
        request = Request(self, parser.get_method(), target, self._headers, b"".join(self._body),
                          parser.should_keep_alive(), parser.get_http_version() == "1.0")
        self._reset()
        self.queue.append(request)  # dispatched once feed_data returns, not inside the parser

    # -- dispatch and answers ----------------------------------------------------------------
    def _next(self) -> None:
        if self._dispatching:
            return
        self._dispatching = True
        try:
            while self.current is None and self.queue and not self.closing and self._blocked_since is None:
                request = self.current = self.queue.popleft()
                if request.finished:  # the server's own refusal: written as is, then closed
                    self._answer(request)
                    continue
                try:
                    body = self.factory.handler.render(request)
                except Exception:  # noqa: BLE001 - the handler could not even answer 500 itself
                    request.keep_alive = False
                    request.setResponseCode(500)
                    request._out_headers = [(b"Content-Type", b"application/json")]
                    request._body = [self.factory.error_body(500, "internal_error", "The gateway failed to answer.")]
                    request.finish()
                    continue
                if body is not NOT_DONE_YET:
                    request.write(body)
                    request.finish()
        finally:
            self._dispatching = False

    def _answer(self, request: Request) -> None:
        if request is not self.current or self.closing:
            return
        body = b"".join(request._body)
        keep = request.keep_alive and not self.closing
        head = [b"HTTP/1.0 " if request.http10 else b"HTTP/1.1 ", b"%d " % request.code,
                _REASONS.get(request.code, b"Unknown"), b"\r\n"]
        for name, value in request._out_headers:
            if name.lower() not in (b"content-length", b"connection"):
                head += [name, b": ", value, b"\r\n"]
        head += [b"Date: ", self.factory.date(), b"\r\nContent-Length: ", b"%d" % len(body), b"\r\n"]
        if not keep:
            head.append(b"Connection: close\r\n")
        elif request.http10:
            head.append(b"Connection: keep-alive\r\n")
        head.append(b"\r\n")
        if request.method != b"HEAD":
            head.append(body)
        self.transport.write(b"".join(head))
        self.current = None
        if not keep or (self._input_done and not self.queue):
            self._close()
            return
        self._next()  # an answer finished later (a Deferred): the next request in line
        self._reading()

    def _refuse(self, exc: _Refused) -> None:
        """Answer a refused request after whatever is being answered, and close."""
        self.refused = True
        request = Request(self, b"", b"/", {}, b"", False, False)
        request.setResponseCode(exc.status)
        request.setHeader(b"Content-Type", b"application/json")
        request.write(self.factory.error_body(exc.status, exc.code, exc.message))
        request.finished = True
        self.queue.append(request)


def _origin_form(target: bytes) -> bytes:
    """The path and query of an absolute-form target (RFC 9112 §3.2.2: a server MUST accept
    ``GET http://host/path``); any other form (``*``, an authority) is a 400."""
    scheme, sep, rest = target.partition(b"://")
    if not sep or scheme.lower() not in (b"http", b"https"):
        raise _Refused(400, "invalid_request", "The request target must be a path or an absolute URL.")
    cut = min((i for i in (rest.find(b"/"), rest.find(b"?")) if i >= 0), default=len(rest))
    path = rest[cut:]
    return path if path.startswith(b"/") else b"/" + path


class HTTPServerFactory(Factory):
    """Serves ``handler`` (an object with ``render(request)``, e.g. a twisted.web leaf resource).

    ``error_body(status, code, message) -> bytes`` renders the answers the server gives on its own
    (limits, bad HTTP); ``clock`` gives time for the idle timeout and the Date header.
    """

    def __init__(self, handler, *, clock, error_body: Callable[[int, str, str], bytes],
                 limits: Limits | None = None) -> None:
        self.handler = handler
        self.clock = clock
        self.error_body = error_body
        self.limits = limits or Limits()
        self._date_second = -1
        self._date = b""

    def buildProtocol(self, addr) -> HTTPServerProtocol:
        return HTTPServerProtocol(self)

    def date(self) -> bytes:
        """The Date header's value, computed at most once a second."""
        now = int(self.clock.seconds())
        if now != self._date_second:
            self._date_second = now
            self._date = email.utils.formatdate(now, usegmt=True).encode("ascii")
        return self._date
