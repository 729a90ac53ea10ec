"""The console's files on the API listener (smscore.console): what a browser is given, over a real
loopback socket to an in-process gateway."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
import pytest_twisted
from prometheus_client import CollectorRegistry
from twisted.internet import reactor
from twisted.internet.threads import deferToThread

from smscore import console
from smscore.app import Gateway
from smscore.config import parse_config
from tests.fuzzing import http as http_fuzz

ASSETS = Path(console.__file__).with_name("assets")


@pytest.fixture
def gateway(tmp_path):
    config = parse_config(http_fuzz.GATEWAY_CONFIG.format(http=0, metrics=0), path=tmp_path / "gw.toml")
    gw = Gateway(config, reactor, CollectorRegistry())
    pytest_twisted.blockon(gw.start())
    yield gw
    pytest_twisted.blockon(gw.stop())


def ask(gw, method: str, path: str, headers: str = ""):
    data = f"{method} {path} HTTP/1.1\r\nHost: t\r\n{headers}Connection: close\r\n\r\n".encode()
    return deferToThread(http_fuzz.exchange, gw.http_port.getHost().port, data, 10.0)


@pytest_twisted.ensureDeferred
async def test_every_file_is_served_with_its_type_and_a_strict_policy(gateway):
    served = 0
    for path in sorted(ASSETS.iterdir()):
        status, headers, body = await ask(gateway, "GET", f"/console/{path.name}")
        assert status == 200, path.name
        assert body == path.read_bytes()
        kind = {".html": b"text/html", ".js": b"text/javascript", ".css": b"text/css", ".svg": b"image/svg+xml"}
        assert headers[b"content-type"].startswith(kind[path.suffix]), path.name
        csp = headers[b"content-security-policy"]
        assert b"default-src 'none'" in csp and b"script-src 'self'" in csp and b"frame-ancestors 'none'" in csp
        assert headers[b"x-content-type-options"] == b"nosniff"
        served += 1
    assert served >= 6
    status, headers, body = await ask(gateway, "GET", "/console/")
    assert status == 200 and body == (ASSETS / "index.html").read_bytes()


def test_the_page_loads_nothing_from_elsewhere_and_runs_no_inline_script():
    for path in ASSETS.iterdir():
        text = path.read_text()
        assert not re.search(r"(src|href)=\"(https?:)?//", text), path.name  # no CDN, no other origin
        assert not re.search(r"""from\s+["']https?:""", text), path.name
    html = (ASSETS / "index.html").read_text()
    assert re.findall(r"<script[^>]*>", html) == ['<script type="module" src="app.js">']
    assert "style=" not in html


def test_the_page_never_writes_html_from_data():
    for path in ASSETS.glob("*.js"):
        text = path.read_text()
        assert "innerHTML" not in text and "insertAdjacentHTML" not in text and "document.write" not in text, path.name


@pytest_twisted.ensureDeferred
async def test_the_root_leads_to_the_console_and_other_paths_are_refused(gateway):
    for path in ("/", "/console"):
        status, headers, _ = await ask(gateway, "GET", path)
        assert (status, headers[b"location"]) == (302, b"/console/")
    for path in ("/console/../pyproject.toml", "/console/nope.js", "/console/%2e%2e/app.py", "/console/assets/app.js"):
        status, headers, body = await ask(gateway, "GET", path)
        assert status == 404 and b'"not_found"' in body, path
    status, headers, _ = await ask(gateway, "POST", "/console/")
    assert status == 405 and headers[b"allow"] == b"GET, HEAD"


@pytest_twisted.ensureDeferred
async def test_a_browser_that_has_the_file_gets_304(gateway):
    status, headers, _ = await ask(gateway, "GET", "/console/app.js")
    etag = headers[b"etag"]
    assert etag == b'"' + hashlib.sha256((ASSETS / "app.js").read_bytes()).hexdigest()[:20].encode() + b'"'
    status, headers, body = await ask(gateway, "GET", "/console/app.js", f"If-None-Match: {etag.decode()}\r\n")
    assert (status, body) == (304, b"")
    status, headers, body = await ask(gateway, "HEAD", "/console/app.js")
    assert status == 200 and body == b"" and headers[b"content-length"] == str(len((ASSETS / "app.js").read_bytes())).encode()


def _status_line(port: int, request: bytes) -> bytes:
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request)
        return s.recv(4096).split(b"\r\n", 1)[0]


@pytest_twisted.ensureDeferred
async def test_redirect_and_not_modified_have_their_reason_phrases(gateway):
    port = gateway.http_port.getHost().port
    line = await deferToThread(_status_line, port, b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    assert line == b"HTTP/1.1 302 Found"
    etag = console.FILES["/console/app.js"].etag.decode()
    line = await deferToThread(_status_line, port, f"GET /console/app.js HTTP/1.1\r\nHost: t\r\nIf-None-Match: {etag}\r\n"
                               "Connection: close\r\n\r\n".encode())
    assert line == b"HTTP/1.1 304 Not Modified"
