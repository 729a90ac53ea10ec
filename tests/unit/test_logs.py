"""The JSON log stream (smscore.logs): Twisted's own log events come out as one JSON line each, at
their level, failures with their traceback, routine lines below info; the access log line has its
fields and never the key or the query string, and costs nothing when it is off."""

from __future__ import annotations

import io
import json
import logging

import pytest
import structlog
from twisted.internet.task import Clock
from twisted.logger import Logger
from twisted.python.failure import Failure

from smscore import logs
from smscore.config import parse_config


class _Stream(io.StringIO):
    """A text stream with a binary ``buffer``, as sys.stdout has (the JSON fast path)."""

    def __init__(self) -> None:
        super().__init__()
        self.buffer = io.BytesIO()

    def lines(self) -> list[dict]:
        return [json.loads(line) for line in self.buffer.getvalue().splitlines()]


@pytest.fixture
def stream(monkeypatch):
    """structlog configured as ``smsgw run`` does, into a stream, put back as it was afterwards.
    Twisted's global log publisher is left alone: the observer is called directly."""
    saved = structlog.get_config()
    monkeypatch.setattr(logs, "_bridged", True)
    monkeypatch.setattr(logs, "_level", logs._level)
    out = _Stream()
    logs.configure("info", "json", stream=out)
    # a logger first used under this configuration (structlog caches a logger at its first use)
    monkeypatch.setattr(logs, "_twisted_log", structlog.get_logger(component="twisted"))
    yield out
    structlog.configure(**saved)


def test_a_twisted_failure_is_one_json_line_with_its_level_and_traceback(stream):
    log = Logger(namespace="twisted.internet.defer", observer=logs.twisted_event)
    try:
        raise ValueError("boom")
    except ValueError:
        log.failure("Unhandled error in Deferred:", Failure())
    [line] = stream.lines()
    assert line["level"] == "critical" and line["component"] == "twisted"
    assert line["event"] == "Unhandled error in Deferred:"
    assert line["namespace"] == "twisted.internet.defer"
    assert "Traceback" in line["exception"] and "ValueError: boom" in line["exception"]
    assert line["timestamp"].endswith("Z")


def test_twisted_levels_map_and_routine_lines_go_below_info(stream):
    log = Logger(namespace="twisted.web.server.Site", observer=logs.twisted_event)
    log.info("Starting factory {factory!r}", factory=object())
    log.info("Site starting on {port}", port=8080)
    log.info("(TCP Port {port} Closed)", port=8080)
    log.warn("connection lost: {why}", why="reset")
    log.error("an error {n}", n=1)
    log.info("something worth saying")
    lines = stream.lines()
    assert [(line["level"], line["event"]) for line in lines] == [
        ("warning", "connection lost: reset"), ("error", "an error 1"), ("info", "something worth saying")]


def test_a_failure_logged_without_text_is_named_by_its_exception(stream):
    log = Logger(observer=logs.twisted_event)
    log.failure("", Failure(KeyError("gone")))
    [line] = stream.lines()
    assert line["event"] == "KeyError: 'gone'" and "KeyError" in line["exception"]


def test_twisted_events_below_the_configured_level_cost_no_line(stream, monkeypatch):
    monkeypatch.setattr(logs, "_level", logging.ERROR)
    Logger(observer=logs.twisted_event).warn("not shown")
    assert stream.lines() == []


# -- the access log ------------------------------------------------------------------------------
CONFIG = """
[admin]
api_keys = ["ops-key"]
[operators.sim]
type = "simulated"
[profiles.standard]
operators = ["sim"]
[accounts.acme]
api_keys = ["acme-key"]
senders = ["ACME"]
"""


class _Request:
    def __init__(self, method: bytes, uri: bytes, key: str | None, code: int) -> None:
        self.method, self.uri, self.path, self.code = method, uri, uri.split(b"?", 1)[0], code
        self.headers = {b"authorization": f"Bearer {key}".encode()} if key else {}

    def getHeader(self, name: bytes):
        return self.headers.get(name.lower())


def test_an_access_line_has_method_path_status_ms_and_account_never_key_or_query(stream, tmp_path):
    config = parse_config(CONFIG, path=tmp_path / "gw.toml")
    clock = Clock()
    access = logs.AccessLog(lambda: config, clock)
    for method, uri, key, code in [(b"POST", b"/v1/messages", "acme-key", 202),
                                   (b"GET", b"/v1/messages?to=46701234567&status=queued", "acme-key", 200),
                                   (b"GET", b"/v1/admin/binds", "ops-key", 200),
                                   (b"GET", b"/v1/account?api_key=leaked", "not-a-key", 401)]:
        started = access.start()
        clock.advance(0.0125)
        access.answered(_Request(method, uri, key, code), started)
    lines = stream.lines()
    assert [(a["component"], a["level"], a["event"]) for a in lines] == [("access", "info", "request")] * 4
    assert [(a["method"], a["path"], a["status"], a["ms"]) for a in lines] == [
        ("POST", "/v1/messages", 202, 12.5), ("GET", "/v1/messages", 200, 12.5),
        ("GET", "/v1/admin/binds", 200, 12.5), ("GET", "/v1/account", 401, 12.5)]
    assert [(a.get("account"), a.get("admin")) for a in lines] == [("acme", None), ("acme", None), (None, True),
                                                                   (None, None)]
    text = stream.buffer.getvalue().decode()
    for secret in ("acme-key", "ops-key", "not-a-key", "leaked", "46701234567", "status=queued"):
        assert secret not in text


def test_the_access_log_off_by_level_or_config_does_nothing(stream, tmp_path, monkeypatch):
    on = parse_config(CONFIG, path=tmp_path / "gw.toml")
    off = parse_config(CONFIG.replace("[admin]", "[http]\naccess_log = false\n[admin]"), path=tmp_path / "gw.toml")
    assert (on.http.access_log, off.http.access_log) == (True, False)
    clock = Clock()
    assert logs.AccessLog(lambda: off, clock).start() is None
    monkeypatch.setattr(logs, "_level", logging.WARNING)
    assert logs.AccessLog(lambda: on, clock).start() is None
    logs.AccessLog(lambda: on, clock).answered(_Request(b"GET", b"/healthz", None, 200), None)
    assert stream.lines() == []
