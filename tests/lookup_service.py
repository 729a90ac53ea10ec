"""A simulated HLR/MNP look-up service, for tests and scripts (issue 14).

Why a thread and the standard library: the service must answer while the code under test runs,
whether that is the gateway's reactor in a test or a plain script that measures a world
(``scripts/ported_world.py``); a ``ThreadingHTTPServer`` on its own thread serves both and needs no
reactor. It speaks HTTP/1.1 with keep-alive, as a real service would, so connection reuse shows.

    service = LookupService(lambda number: "24001" if number.startswith("4670") else None)
    service.url      # "http://127.0.0.1:PORT/lookup?msisdn={number}", [lookup] url as written
    service.count    # look-ups answered so far
    service.asked    # the numbers asked, in order (decoded from the query)
    service.connections  # TCP connections accepted (1 when every look-up reused one)
    service.drop_connections()  # close every open connection, as a restarted service would
    service.close()

``GET /lookup?msisdn=N`` answers ``200 {"network": answers(N)}``; another path 404, no ``msisdn``
400. ``answers`` runs on the service's threads.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

__all__ = ["LookupService"]


class LookupService:
    """A look-up service on 127.0.0.1, an OS-chosen port, answering from ``answers(number)``."""

    def __init__(self, answers: Callable[[str], str | None]) -> None:
        self.answers = answers
        self._lock = threading.Lock()
        self.count = 0
        self.connections = 0
        self.asked: list[str] = []
        self._open: set[socket.socket] = set()
        self._server = _Server(("127.0.0.1", 0), _handler(self))
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/lookup?msisdn={{number}}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"lookup-service-{self.port}", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop listening and close every open connection."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
        self.drop_connections()

    def drop_connections(self) -> None:
        """Close every open connection (clients see them end, as when a service restarts); the
        service goes on listening."""
        with self._lock:
            open_now = list(self._open)
        for sock in open_now:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already gone

    def __enter__(self) -> LookupService:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _connected(self, sock: socket.socket) -> None:
        with self._lock:
            self.connections += 1
            self._open.add(sock)

    def _disconnected(self, sock: socket.socket) -> None:
        with self._lock:
            self._open.discard(sock)

    def _answer(self, number: str) -> str | None:
        network = self.answers(number)
        with self._lock:
            self.count += 1
            self.asked.append(number)
        return network


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # an idle keep-alive connection must not hold close() up
    block_on_close = False


def _handler(service: LookupService) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive

        def setup(self) -> None:
            super().setup()
            service._connected(self.connection)

        def finish(self) -> None:
            service._disconnected(self.connection)
            super().finish()

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            parts = urlsplit(self.path)
            numbers = parse_qs(parts.query, keep_blank_values=True).get("msisdn")
            if parts.path != "/lookup":
                self._send(404, {"error": "not found"})
            elif not numbers:
                self._send(400, {"error": "msisdn is required"})
            else:
                self._send(200, {"network": service._answer(numbers[0])})

        def _send(self, status: int, payload: dict) -> None:
            body = json.dumps(payload).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format, *args) -> None:  # noqa: A002 - quiet: tests read .asked
            pass

    return Handler
