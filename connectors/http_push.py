"""HTTP push to customer backends (SPEC §4 "Push"): one signed JSON POST, and what came of it.

The core owns the durable retry queue and the schedule (``policies/retry.py``); a ``Pusher`` makes
exactly one attempt per ``push()`` call and answers with a ``PushResult``, never with a failure, so
the caller has one path for every outcome.

Theory of operation
-------------------
- The body is compact UTF-8 JSON (orjson); those exact bytes are signed and sent.
  ``X-Smsgw-Timestamp`` is Unix seconds from the injected reactor; ``X-Smsgw-Signature`` is
  ``sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>``, present only when a secret is set.
- The client is a lean HTTP/1.1 one (``connectors.http_client``): a request is written as one
  buffer, the answer is parsed by httptools (llhttp, C), and connections are kept alive and reused
  per (scheme, host, port). A push is the gateway's most frequent outgoing call (one per status
  callback), so nothing else runs per request: no cookies, no content decoding, no URL objects, no
  name resolution for IP literals.
- One exchange at a time per connection (no pipelining). A reused idle connection that the backend
  closed before any byte of the answer arrived is replaced once by a fresh one: the request never
  reached a backend that was still listening on it.
- One timer covers the whole attempt: connecting, waiting for the status line, reading the body.
  When it fires the attempt is stopped, which aborts the connection, so a backend that answers its
  headers and then trickles the body is cut too.
- Redirects are not followed: a 3xx is a failure like any non-2xx.
- ``ok`` is exactly "the backend answered 2xx": the backend took the push, so it must not be sent
  again even when its body turned out unusable (too large, cut by the timeout, bad JSON); such a
  problem leaves ``reply`` None and is named in ``error``. Without a 2xx, ``ok`` is False and
  ``error`` says why ("timeout", "connection refused", "http 500", ...).
- ``reply`` is the SMS text a 2xx answer asks for: ``{"reply": "<string>"}`` as JSON, or a
  ``text/plain`` body; stripped, and None when empty.
- The response body is read at most ``max_reply_bytes`` far, also for a non-2xx (read and dropped
  so the connection can be reused); beyond that the connection is dropped.
- No log line here: a push is about messages or an MO, which only the caller knows, and SPEC §9
  wants ``message_id`` on every line about a message and one line per event. So the caller writes
  the one line per push, from the ``PushResult`` and ``loggable_url(url)``: the target without its
  query or credentials (the secret is never in a result).

How connections are opened is injectable: ``endpoint_for(scheme, host, port)`` returns a Twisted
client endpoint. Tests pass one that connects in memory to a twisted.web resource (``iosim``) and a
``Clock`` as the reactor, so no socket and no real time is involved.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from functools import lru_cache
from decimal import Decimal
from importlib import metadata
from urllib.parse import urlsplit

import orjson
from twisted.internet.defer import Deferred

from connectors.http_client import Answer, Pool, default_endpoint_for
from connectors.http_client import target as parse_target
from connectors.http_exchange import Exchange

__all__ = ["PushResult", "Pusher", "encode_body", "loggable_url", "parse_reply", "sign", "USER_AGENT"]


def _version() -> str:
    try:
        return metadata.version("smsgw")
    except metadata.PackageNotFoundError:  # running from a tree that was not installed
        return "0+unknown"


USER_AGENT = f"smsgw/{_version()}"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Smsgw-Signature`` value: ``sha256=`` + hex HMAC-SHA256(secret, timestamp "." body)."""
    mac = hmac.digest(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, "sha256")
    return "sha256=" + mac.hex()


def _json_default(value):
    if isinstance(value, Decimal):  # balances and prices; the same rendering as the HTTP API
        return float(value)
    raise TypeError(f"cannot serialise {type(value).__name__} in a push payload")


def encode_body(payload: dict) -> bytes:
    """The bytes that are signed and sent: compact JSON, UTF-8, non-ASCII kept as is."""
    try:
        return orjson.dumps(payload, default=_json_default)
    except orjson.JSONEncodeError as exc:  # a TypeError: the caller's bug, said plainly
        raise TypeError(str(exc)) from None


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
        document = orjson.loads(body)
    except orjson.JSONDecodeError:  # bad JSON, bad UTF-8, or nested too deep
        return None, ("invalid reply json" if is_json else None)
    if not isinstance(document, dict) or document.get("reply") is None:
        return None, None
    reply = document["reply"]
    if not isinstance(reply, str):
        return None, "reply is not a string"
    return reply.strip() or None, None


# --- naming what went wrong -----------------------------------------------------------------------
@lru_cache(maxsize=256)
def loggable_url(url: str) -> str:
    """scheme://host[:port]/path: a push target as a log line may name it, without the query,
    fragment or credentials it may carry (remembered: a push target comes again and again, and a
    line is written for every push, at debug when it went well)."""
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

    Connections are kept alive and reused across pushes (one backend usually receives many).
    ``reactor`` gives time (the timestamp header, the timeout) and, unless ``endpoint_for`` is
    given, the network; ``address_check(address, port)`` then names why an address may not be
    connected to (SPEC §15), and such a push fails as "refused address: ..." without connecting.
    Call ``close()`` on shutdown to drop idle connections.
    """

    def __init__(self, reactor, *, timeout: float = 10.0, endpoint_for=None, address_check=None,
                 max_reply_bytes: int = 64 * 1024) -> None:
        self._reactor = reactor
        self.timeout = timeout
        self.max_reply_bytes = max_reply_bytes
        self._pool = Pool(endpoint_for or default_endpoint_for(reactor, timeout, address_check))

    def close(self) -> Deferred:
        """Close idle connections; fires when they are closed."""
        return self._pool.close()

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
        attempt = _Attempt(self)
        target = parse_target(url)
        if target is None:
            attempt.finish(PushResult(False, None, None, "invalid url", 0.0))
            return attempt.result
        headers = self.headers(str(int(attempt.started)), body, secret)
        head = [b"POST ", target.target, b" HTTP/1.1\r\nHost: ", target.authority, b"\r\n"]
        for name, value in headers.items():
            head += [name.encode("ascii"), b": ", value.encode("latin-1"), b"\r\n"]
        head += [b"Content-Length: ", b"%d" % len(body), b"\r\n\r\n", body]
        attempt.run(target.key, b"".join(head))
        return attempt.result


class _Attempt(Exchange):
    """One push in flight (``Exchange``), ending in one ``PushResult``."""

    def __init__(self, pusher: Pusher) -> None:
        super().__init__(pusher._reactor, pusher._pool, pusher.timeout, pusher.max_reply_bytes)
        self.started = self.reactor.seconds()

    def answered(self, answer: Answer) -> None:
        self.finish(self._outcome(answer))

    def cut(self, status: int, why: str) -> None:
        self.finish(self._cut(status, f"reply {why}"))

    def failed(self, reason: str) -> None:
        self.finish(PushResult(False, None, None, reason, self._elapsed()))

    def _cut(self, status: int, why: str) -> PushResult:
        """An answer whose status came but whose body did not."""
        if not 200 <= status < 300:
            return PushResult(False, status, None, f"http {status}", self._elapsed())
        return PushResult(True, status, None, why, self._elapsed())

    def _outcome(self, answer: Answer) -> PushResult:
        code = answer.status
        elapsed = self._elapsed()
        if not 200 <= code < 300:
            return PushResult(False, code, None, f"http {code}", elapsed)
        if answer.too_large:
            return PushResult(True, code, None, "reply too large", elapsed)
        reply, note = parse_reply(answer.content_type, b"".join(answer.chunks))
        return PushResult(True, code, reply, note, elapsed)

    def _elapsed(self) -> float:
        return self.reactor.seconds() - self.started

    def finish(self, pushed: PushResult) -> None:
        self.cancel_timer()
        self.result.callback(pushed)
