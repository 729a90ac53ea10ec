"""Loopback ports and HTTP for tests and scripts: everything they start listens on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request


#: every port ``free_port`` handed out in this process
_given: set[int] = set()


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now, and not one this process was given before (another process
    may take it before it is used: callers that can retry say so). The kernel may give the port it
    just gave again once its socket is closed: two calls for one config (an HTTP and a metrics
    listener) got the same port in a CI run."""
    for _ in range(1000):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _given:
            _given.add(port)
            return port
    raise RuntimeError("no TCP port on 127.0.0.1 that this process was not given before")


def listening(port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def http_status(url: str, timeout: float = 1.0) -> int:
    """The status of a GET of ``url``; 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def http(method: str, url: str, body=None, key: str | None = None, timeout: float = 10) -> tuple[int, object]:
    """One JSON request (``body`` as JSON, ``key`` as a bearer token): (status, the parsed JSON
    answer, or its text when it is not JSON). Raises ``OSError`` when nothing answers."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if key:
        req.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
            return resp.status, (json.loads(raw) if raw[:1] in (b"{", b"[") else raw.decode())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")
