"""The bench's status-callback receiver: what a customer's backend sees, timed.

`scripts/bench.py` measures the customer's path, which ends when the customer's backend has heard
the final status of each message (SPEC §4 "Push", §12), not when the store has the receipt. This
receiver stands in for that backend, in the bench process, on 127.0.0.1:

- a raw HTTP/1.1 server on asyncio with keep-alive (Content-Length or chunked bodies), answering
  every request ``200`` with an empty body, so it costs the bench little and the gateway's pusher
  reuses its connections;
- it checks ``X-Smsgw-Signature: sha256=<hex HMAC-SHA256(secret, timestamp "." body)>`` against
  ``X-Smsgw-Timestamp``; a bad or missing signature is counted (a correct gateway makes none) and
  answered 401;
- a body is one event object, or ``{"events": [event, ...]}`` when the account batches (§12);
- events are at least once: a repeated ``event_id`` is dropped and counted;
- an event is final when its ``"final"`` is true; without that field (a gateway from before §12),
  when its status is one of the final statuses of SPEC §5;
- for each message id it keeps the time (``clock()``, Unix seconds) its first final event arrived.

`expect(ids)` then `wait(deadline)` waits until every one of those ids has its final status here.
Anything that is not a status event (a balance notice) is counted and ignored.

``MoReceiver`` stands in for a keyword's backend (scripts/soak.py): it checks the signature of each
MO push, counts it, and answers with a reply.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections import Counter
from collections.abc import Callable, Iterable

FINAL_STATUSES = frozenset({"delivered", "failed", "expired", "unknown", "stopped", "rejected"})

_OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
_REFUSED = {
    400: b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
    401: b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n",
}
_MAX_HEAD = 64 * 1024
_MAX_BODY = 64 * 1024 * 1024


class CallbackReceiver:
    """Verifies, de-duplicates and times signed status callbacks (see the module docstring).

    ``counts`` after a run: ``posts``, ``events`` (new ones), ``final_events``, ``nonfinal_events``,
    ``repeats`` (event_id seen before), ``final_again`` (a second final event for one message),
    ``no_event_id``, ``batched_posts`` (bodies of ``{"events": [...]}``), ``bad_signatures``,
    ``bad_bodies``, ``other_callbacks``. ``statuses`` counts the final statuses.
    """

    def __init__(self, secret: str, clock: Callable[[], float] = time.time) -> None:
        self.secret = secret.encode()
        self.clock = clock
        self.final_at: dict[str, float] = {}
        self.statuses: Counter[str] = Counter()
        self.counts: Counter[str] = Counter()
        self._seen_events: set[str] = set()
        self._pending: set[str] | None = None
        self._done: asyncio.Event | None = None
        self._server: asyncio.AbstractServer | None = None
        self._connections: dict[asyncio.StreamWriter, asyncio.Task] = {}

    # -- what a callback means ------------------------------------------------------------------

    def handle(self, headers: dict[str, str], body: bytes) -> int:
        """One request's headers (lower-case names) and body → the HTTP status to answer."""
        now = self.clock()
        self.counts["posts"] += 1
        timestamp = headers.get("x-smsgw-timestamp", "")
        signature = headers.get("x-smsgw-signature", "").strip().lower()
        want = "sha256=" + hmac.new(self.secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        if not timestamp or not hmac.compare_digest(want.encode(), signature.encode("utf-8", "replace")):
            self.counts["bad_signatures"] += 1
            return 401
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            self.counts["bad_bodies"] += 1
            return 400
        if isinstance(payload.get("events"), list):
            self.counts["batched_posts"] += 1
            events = payload["events"]
        else:
            events = [payload]
        for event in events:
            self._event(event, now)
        return 200

    def _event(self, event, now: float) -> None:
        if not isinstance(event, dict) or "id" not in event or "status" not in event:
            self.counts["other_callbacks"] += 1  # e.g. a balance notice
            return
        event_id = event.get("event_id")
        if event_id is None:
            self.counts["no_event_id"] += 1
        else:
            key = json.dumps(event_id)
            if key in self._seen_events:
                self.counts["repeats"] += 1
                return
            self._seen_events.add(key)
        self.counts["events"] += 1
        status = str(event["status"])
        final = event["final"] is True if "final" in event else status in FINAL_STATUSES
        if not final:
            self.counts["nonfinal_events"] += 1
            return
        self.counts["final_events"] += 1
        message_id = str(event["id"])
        if message_id in self.final_at:
            self.counts["final_again"] += 1
            return
        self.final_at[message_id] = now
        self.statuses[status] += 1
        if self._pending is not None:
            self._pending.discard(message_id)
            if not self._pending and self._done is not None:
                self._done.set()

    # -- waiting for the accepted messages --------------------------------------------------------

    def expect(self, ids: Iterable[str]) -> None:
        """From now on, `wait` waits for the final status of each of ``ids``."""
        self._pending = set(ids) - self.final_at.keys()
        self._done = asyncio.Event()
        if not self._pending:
            self._done.set()

    @property
    def missing(self) -> int:
        return len(self._pending or ())

    async def wait(self, deadline: float) -> bool:
        """True once every expected id has its final status; False at ``deadline`` (clock time)."""
        assert self._done is not None, "expect() first"
        try:
            await asyncio.wait_for(self._done.wait(), max(0.0, deadline - self.clock()))
        except asyncio.TimeoutError:
            return False
        return True

    # -- the HTTP/1.1 server ----------------------------------------------------------------------

    async def start(self, port: int = 0, sock=None) -> int:
        """Listen on 127.0.0.1:``port`` (0: any free port), or on ``sock``, a listening socket the
        caller opened before (so that no other program takes its port meanwhile); returns the port."""
        if sock is not None:
            self._server = await asyncio.start_server(self._serve, sock=sock, backlog=1024, limit=_MAX_HEAD)
        else:
            self._server = await asyncio.start_server(self._serve, "127.0.0.1", port, backlog=1024,
                                                      limit=_MAX_HEAD)
        return self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening, close every connection and wait for their handlers to end."""
        if self._server is not None:
            self._server.close()
            handlers = list(self._connections.values())
            for writer in list(self._connections):
                writer.close()
            await asyncio.gather(*handlers, return_exceptions=True)
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections[writer] = asyncio.current_task()
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                version = lines[0].rsplit(" ", 1)[-1]
                headers: dict[str, str] = {}
                for line in lines[1:]:
                    name, sep, value = line.partition(":")
                    if sep:
                        headers[name.strip().lower()] = value.strip()
                try:
                    body = await self._body(reader, headers)
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
                    return
                status = self.handle(headers, body)
                writer.write(_REFUSED.get(status, _OK))
                await writer.drain()
                connection = headers.get("connection", "").lower()
                if connection == "close" or (version == "HTTP/1.0" and connection != "keep-alive"):
                    return
        finally:
            self._connections.pop(writer, None)
            writer.close()

    @staticmethod
    async def _body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            chunks = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
                        pass
                    return b"".join(chunks)
                chunks.append(await reader.readexactly(size))
                await reader.readexactly(2)
        length = int(headers.get("content-length", "0"))
        if not 0 <= length <= _MAX_BODY:
            raise ValueError(f"Content-Length {length}")
        return await reader.readexactly(length) if length else b""


class MoReceiver:
    """The keyword's ``url``: checks the signature, notes the MO, answers ``{"reply": "re <payload>"}``."""

    def __init__(self, secret: str) -> None:
        self.secret = secret.encode()
        self.pushes: Counter[str] = Counter()  # MO text -> pushes received
        self.bad_signatures = 0
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self._server.close()
        await self._server.wait_closed()

    def answer(self, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        timestamp = headers.get("x-smsgw-timestamp", "")
        want = "sha256=" + hmac.new(self.secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(want, headers.get("x-smsgw-signature", "")):
            self.bad_signatures += 1
            return 401, b"{}"
        mo = json.loads(body)
        self.pushes[mo["text"]] += 1
        return 200, json.dumps({"reply": f"re {mo['payload']}"}).encode()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
                headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in head[1:]) if k}
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                status, reply = self.answer(headers, body)
                writer.write(f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
                             f"Content-Length: {len(reply)}\r\n\r\n".encode() + reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()
