"""The bench's load generator: request bodies, and keep-alive HTTP/1.1 POSTs of them to
``/v1/messages`` over asyncio (raw HTTP, so that the generator stays cheap beside the gateway).

Used by scripts/bench.py, scripts/two_nodes.py and scripts/soak.py.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field

REQUEST_TIMEOUT = 60.0  # seconds for one HTTP request of the load generator


def request_bodies(n: int, per_request: int, prefix: str) -> list[bytes]:
    """``n`` messages to numbers ``prefix`` + 7 digits: one a request, or lists of ``per_request``."""
    if per_request == 1:
        return [json.dumps({"to": f"{prefix}{i:07d}", "text": f"bench message {i}"}).encode() for i in range(n)]
    return [json.dumps({"to": [f"{prefix}{j:07d}" for j in range(i, min(n, i + per_request))],
                        "text": f"bench batch {i // per_request}"}).encode() for i in range(0, n, per_request)]


class Http:
    """A minimal keep-alive HTTP/1.1 client connection."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port

    async def connect(self):
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def post(self, path: str, body: bytes, key: str) -> tuple[int, bytes]:
        head = (f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nAuthorization: Bearer {key}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
        self.writer.write(head + body)
        status_line = await self.reader.readuntil(b"\r\n")
        status = int(status_line.split()[1])
        length = 0
        while True:
            line = await self.reader.readuntil(b"\r\n")
            if line == b"\r\n":
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)


@dataclass
class Sent:
    """What the load generator did: per request (start, end, accepted ids), all in Unix seconds."""

    requests: list[tuple[float, float, list[str]]] = field(default_factory=list)
    errors: int = 0
    samples: list[str] = field(default_factory=list)  # the first few refusals, for the report

    @property
    def ids(self) -> list[str]:
        return [i for _, _, ids in self.requests for i in ids]


async def drive(port: int, requests: list[bytes], concurrency: int) -> Sent:
    """Send every request body over ``concurrency`` keep-alive connections."""
    sent = Sent()
    queue = list(reversed(requests))

    async def worker():
        conn = Http("127.0.0.1", port)
        await conn.connect()
        try:
            while queue:
                body = queue.pop()
                t0 = time.time()
                try:
                    status, data = await asyncio.wait_for(conn.post("/v1/messages", body, "bench-key"),
                                                          REQUEST_TIMEOUT)
                except (asyncio.TimeoutError, asyncio.IncompleteReadError, ConnectionError) as exc:
                    sent.errors += 1
                    if len(sent.samples) < 5:
                        sent.samples.append(repr(exc)[:200])
                    conn.writer.close()
                    await conn.connect()
                    continue
                if status == 202:
                    sent.requests.append((t0, time.time(), [m["id"] for m in json.loads(data)["messages"]]))
                else:
                    sent.errors += 1
                    if len(sent.samples) < 5:
                        sent.samples.append(f"{status} {data[:200].decode(errors='replace')}")
        finally:
            conn.writer.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return sent
