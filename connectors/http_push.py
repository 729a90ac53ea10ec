"""HTTP push to customer backends (SPEC §4 "Push"): one signed JSON POST, and what came of it.

The core owns the durable retry queue and the schedule (``policies/retry.py``); a ``Pusher`` makes
exactly one attempt per ``push()`` call and answers with a ``PushResult``, never with a failure, so
the caller has one path for every outcome.

Theory of operation
-------------------
- The body is compact UTF-8 JSON (``ensure_ascii=False``); those exact bytes are signed and sent.
  ``X-Smsgw-Timestamp`` is Unix seconds from the injected reactor; ``X-Smsgw-Signature`` is
  ``sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>``, present only when a secret is set.
- One timer covers the whole attempt: connecting, waiting for the status line, reading the body.
  When it fires the attempt is cancelled, which aborts the connection, so a backend that answers
  its headers and then trickles the body is cut too.
- Redirects are not followed: a 3xx is a failure like any non-2xx.
- ``ok`` is exactly "the backend answered 2xx": the backend took the push, so it must not be sent
  again even when its body turned out unusable (too large, cut by the timeout, bad JSON); such a
  problem leaves ``reply`` None and is named in ``error``. Without a 2xx, ``ok`` is False and
  ``error`` says why ("timeout", "connection refused", "http 500", ...).
- ``reply`` is the SMS text a 2xx answer asks for: ``{"reply": "<string>"}`` as JSON, or a
  ``text/plain`` body; stripped, and None when empty.
- The response body is read at most ``max_reply_bytes`` far, also for a non-2xx (read and dropped
  so the pooled connection can be reused); beyond that the connection is dropped.
- The secret is never logged; the log line names the target without its query or credentials.

The agent is injectable: tests pass ``treq.testing.RequestTraversalAgent`` (the agent inside
``StubTreq``) and a ``Clock`` as the reactor, so no socket and no real time is involved.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from decimal import Decimal
from importlib import metadata
from urllib.parse import urlsplit

import structlog
from treq.client import HTTPClient
from twisted.internet import error as net_error
from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure
from twisted.web.client import (
    Agent,
    HTTPConnectionPool,
    ResponseDone,
    ResponseFailed,
    ResponseNeverReceived,
)
from twisted.web.error import SchemeNotSupported
from twisted.web.http import PotentialDataLoss
from twisted.web.iweb import UNKNOWN_LENGTH, IBodyProducer
from zope.interface import implementer

__all__ = ["PushResult", "Pusher", "encode_body", "parse_reply", "sign", "USER_AGENT"]


def _version() -> str:
    try:
        return metadata.version("smsgw")
    except metadata.PackageNotFoundError:  # running from a tree that was not installed
        return "0+unknown"


USER_AGENT = f"smsgw/{_version()}"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Smsgw-Signature`` value: ``sha256=`` + hex HMAC-SHA256(secret, timestamp "." body)."""
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def _json_default(value):
    if isinstance(value, Decimal):  # balances and prices; the same rendering as the HTTP API
        return float(value)
    raise TypeError(f"cannot serialise {type(value).__name__} in a push payload")


def encode_body(payload: dict) -> bytes:
    """The bytes that are signed and sent: compact JSON, UTF-8, non-ASCII kept as is."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False,
                      default=_json_default).encode("utf-8")


@dataclass(frozen=True, slots=True)
class PushResult:
    """What one push attempt came to.

    ``ok``: the backend answered 2xx (do not retry). ``status``: the HTTP status, None when none
    arrived. ``reply``: the reply SMS text a 2xx asked for, else None. ``error``: why it failed, or
    a note about an unusable 2xx body; None when all went well. ``elapsed``: seconds taken.
    """

    ok: bool
    status: int | None
    reply: str | None
    error: str | None
    elapsed: float


# --- reading the answer ---------------------------------------------------------------------------
def _media_type(content_type: str | None) -> tuple[str | None, str | None]:
    """``"Text/Plain; charset=UTF-8"`` → ``("text/plain", "utf-8")``."""
    if not content_type:
        return None, None
    media, *params = content_type.split(";")
    charset = None
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip("'\"").lower() or None
    return media.strip().lower() or None, charset


def parse_reply(content_type: str | None, body: bytes) -> tuple[str | None, str | None]:
    """The reply text of a 2xx body, and a note when the body could not be used: (reply, error).

    JSON (``application/json`` or ``*/*+json``) must be an object whose ``reply`` is a string;
    ``text/plain`` is the reply itself, decoded per its charset (UTF-8 by default). A body with no
    Content-Type is read as JSON if it is JSON, and otherwise ignored. Any other type is ignored.
    """
    media, charset = _media_type(content_type)
    if media == "text/plain":
        try:
            text = body.decode(charset or "utf-8", errors="replace")
        except LookupError:  # an unknown charset name
            text = body.decode("utf-8", errors="replace")
        return text.strip() or None, None
    is_json = media is not None and (media == "application/json" or media.endswith("+json"))
    if not is_json and media is not None:
        return None, None
    if not body.strip():
        return None, None
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None, ("invalid reply json" if is_json else None)
    if not isinstance(document, dict) or document.get("reply") is None:
        return None, None
    reply = document["reply"]
    if not isinstance(reply, str):
        return None, "reply is not a string"
    return reply.strip() or None, None


@dataclass(frozen=True, slots=True)
class _Body:
    data: bytes
    too_large: bool


class _BodyReader(Protocol):
    """Collects a response body up to a limit; past it, drops the connection."""

    def __init__(self, limit: int, expected_length) -> None:
        self.limit = limit
        self.expected_length = expected_length
        self.done: Deferred = Deferred(self._abort)  # Deferred[_Body]
        self.chunks: list[bytes] = []
        self.size = 0

    def connectionMade(self) -> None:
        if self.expected_length is not UNKNOWN_LENGTH and self.expected_length > self.limit:
            self._too_large()

    def dataReceived(self, data: bytes) -> None:
        if self.done.called:
            return
        self.size += len(data)
        if self.size > self.limit:
            self._too_large()
        else:
            self.chunks.append(data)

    def connectionLost(self, reason: Failure) -> None:
        if self.done.called:
            return
        if reason.check(ResponseDone, PotentialDataLoss):
            self.done.callback(_Body(b"".join(self.chunks), too_large=False))
        else:
            self.done.errback(reason)

    def _too_large(self) -> None:
        self.chunks.clear()
        self.transport.stopProducing()  # closes the connection: the rest is never read
        if not self.done.called:
            self.done.callback(_Body(b"", too_large=True))

    def _abort(self, _deferred: Deferred) -> None:
        """Canceller of ``done``: the attempt was stopped while the body was arriving."""
        if self.transport is not None:
            self.transport.stopProducing()


def _read_body(response, limit: int) -> Deferred:
    """Deferred[_Body] for ``response``; cancelling it drops the connection."""
    reader = _BodyReader(limit, response.length)
    response.deliverBody(reader)
    return reader.done


@implementer(IBodyProducer)
class _BytesBody:
    """A request body that is already in memory, written at once (no cooperator, no real time)."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self.length = len(data)

    def startProducing(self, consumer):
        consumer.write(self._data)
        return succeed(None)

    def stopProducing(self) -> None:
        pass

    def pauseProducing(self) -> None:
        pass

    def resumeProducing(self) -> None:
        pass


# --- naming what went wrong -----------------------------------------------------------------------
_NETWORK_ERRORS: list[tuple[type[BaseException], str]] = [
    (net_error.ConnectionRefusedError, "connection refused"),
    (net_error.DNSLookupError, "dns lookup failed"),
    (net_error.NoRouteError, "no route to host"),
    (net_error.TCPTimedOutError, "timeout"),
    (net_error.TimeoutError, "timeout"),
    (SchemeNotSupported, "invalid url"),
    (net_error.ConnectionLost, "connection lost"),
    (net_error.ConnectionDone, "connection lost"),
]


_TLS_MODULES = ("OpenSSL", "service_identity", "twisted.protocols.tls", "ssl")


def _describe(failure: Failure) -> str:
    """A short, stable name for why no status arrived."""
    reasons = [failure]
    if failure.check(ResponseNeverReceived, ResponseFailed):
        reasons = list(failure.value.reasons) or [failure]
    for reason in reasons:
        for kind, name in _NETWORK_ERRORS:
            if reason.check(kind):
                return name
        if type(reason.value).__module__.startswith(_TLS_MODULES):
            return "tls error"
    if failure.check(ResponseNeverReceived, ResponseFailed):
        return "connection lost"
    if failure.check(ValueError, TypeError):  # an unparseable URL, from treq or hyperlink
        return "invalid url"
    return f"error: {type(failure.value).__name__}"


def _loggable(url: str) -> str:
    """scheme://host[:port]/path: no query, fragment or credentials in logs."""
    try:
        parts = urlsplit(url)
        if not parts.scheme or not parts.hostname:
            return "<invalid url>"
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{host}{port}{parts.path}"
    except ValueError:
        return "<invalid url>"


# --- the pusher -----------------------------------------------------------------------------------
class Pusher:
    """Makes one signed JSON POST per ``push()`` and reports it as a ``PushResult``.

    Connections are pooled and kept alive across pushes (one backend usually receives many).
    ``reactor`` gives time (the timestamp header, the timeout) and, unless ``agent`` is given,
    the network. Call ``close()`` on shutdown to drop idle pooled connections.
    """

    def __init__(self, reactor, *, timeout: float = 10.0, agent=None,
                 max_reply_bytes: int = 64 * 1024) -> None:
        self._reactor = reactor
        self.timeout = timeout
        self.max_reply_bytes = max_reply_bytes
        self._pool: HTTPConnectionPool | None = None
        if agent is None:
            self._pool = HTTPConnectionPool(reactor, persistent=True)
            self._pool.maxPersistentPerHost = 10
            agent = Agent(reactor, connectTimeout=timeout, pool=self._pool)
        self._client = HTTPClient(agent)
        # Lazy: configured by whoever configures structlog, even after this object is built.
        self.log = structlog.get_logger(component="push")

    def close(self) -> Deferred:
        """Close idle pooled connections; fires when they are closed."""
        return self._pool.closeCachedConnections() if self._pool is not None else succeed(None)

    def headers(self, timestamp: str, body: bytes, secret: str | None) -> dict[str, str]:
        """The request headers for ``body`` signed at ``timestamp``."""
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Smsgw-Timestamp": timestamp,
        }
        if secret is not None:
            headers["X-Smsgw-Signature"] = sign(secret, timestamp, body)
        return headers

    def push(self, url: str, payload: dict, secret: str | None) -> Deferred:
        """POST ``payload`` to ``url``: Deferred[PushResult], which never fails.

        A payload that cannot be encoded as JSON is the caller's bug, not an outcome: it raises
        ``TypeError`` at once, before anything is sent.
        """
        body = encode_body(payload)
        attempt = _Attempt(self, url)
        request = maybeDeferred(
            self._client.request, "POST", url,
            headers=self.headers(str(int(attempt.started)), body, secret),
            data=_BytesBody(body), allow_redirects=False, unbuffered=True, reactor=self._reactor)
        return attempt.run(request)


class _Attempt:
    """One push in flight: the timer, what has arrived so far, and the one result it ends with."""

    def __init__(self, pusher: Pusher, url: str) -> None:
        self.pusher = pusher
        self.reactor = pusher._reactor
        self.url = url
        self.started = self.reactor.seconds()
        self.status: int | None = None  # set once the status line arrived
        self.stopped_by: str | None = None  # "timeout" or "cancelled"
        self.result: Deferred = Deferred(lambda _: self._stop("cancelled"))
        self.request: Deferred | None = None
        self.timer = None

    def run(self, request: Deferred) -> Deferred:
        self.request = request
        self.timer = self.reactor.callLater(self.pusher.timeout, self._stop, "timeout")
        request.addCallback(self._got_response)
        request.addBoth(self._settle)
        return self.result

    def _got_response(self, response):
        self.status = response.code
        read = _read_body(response, self.pusher.max_reply_bytes)
        return read.addCallback(lambda body: (response, body))

    def _stop(self, why: str) -> None:
        """The timeout struck, or the caller cancelled: abort whatever is in flight."""
        self.stopped_by = why
        if self.timer.active():
            self.timer.cancel()
        self.request.cancel()  # aborts the connect, the wait for the answer or the body read
        if not self.result.called:  # in case the abort did not settle synchronously
            self._deliver(self._stopped(self._elapsed()))

    def _settle(self, outcome) -> None:
        if self.timer.active():
            self.timer.cancel()
        if not self.result.called:
            self._deliver(self._outcome(outcome, self._elapsed()))

    def _deliver(self, pushed: PushResult) -> None:
        self.pusher.log.debug("push", target=_loggable(self.url), ok=pushed.ok, status=pushed.status,
                              error=pushed.error, elapsed=round(pushed.elapsed, 3))
        self.result.callback(pushed)

    def _elapsed(self) -> float:
        return self.reactor.seconds() - self.started

    def _outcome(self, outcome, elapsed: float) -> PushResult:
        code = self.status
        if isinstance(outcome, Failure):
            if self.stopped_by is not None:
                return self._stopped(elapsed)
            if code is None:
                return PushResult(False, None, None, _describe(outcome), elapsed)
            if not 200 <= code < 300:
                return PushResult(False, code, None, f"http {code}", elapsed)
            return PushResult(True, code, None, "reply lost", elapsed)  # connection dropped mid-body
        response, read = outcome
        if not 200 <= code < 300:
            return PushResult(False, code, None, f"http {code}", elapsed)
        if read.too_large:
            return PushResult(True, code, None, "reply too large", elapsed)
        content_type = response.headers.getRawHeaders("content-type", [None])[-1]
        reply, note = parse_reply(content_type, read.data)
        return PushResult(True, code, reply, note, elapsed)

    def _stopped(self, elapsed: float) -> PushResult:
        """The result of an attempt cut short, by what had arrived when it was cut."""
        why = self.stopped_by
        code = self.status
        if code is None:
            return PushResult(False, None, None, why, elapsed)
        if not 200 <= code < 300:
            return PushResult(False, code, None, f"http {code}", elapsed)
        return PushResult(True, code, None, f"reply {why}", elapsed)  # "reply timeout"
