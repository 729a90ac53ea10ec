"""The pusher without sockets or real time: ``tests.backend.MemoryNetwork`` (twisted's iosim) carries
the requests in memory to ``tests.backend.BackendResource`` served by twisted.web, and a ``Clock`` is
the reactor, so timeouts are reached by ``clock.advance``."""

from __future__ import annotations

import hashlib
import hmac
from decimal import Decimal

import pytest
from structlog.testing import capture_logs
from twisted.internet import error as net_error
from twisted.internet.task import Clock
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from connectors.http_push import PushResult, Pusher, encode_body, loggable_url, parse_reply, sign
from tests.backend import Answer, BackendResource, MemoryNetwork

SECRET = "change-me"
NOW = 1_700_000_000.75  # the timestamp header is whole seconds: "1700000000"
PAYLOAD = {"id": "m1", "text": "Héj", "to": "46701234567"}


class Harness:
    """A Clock, a backend resource, and a pusher talking to it in memory."""

    def __init__(self, secret: str | None = SECRET, timeout: float = 10.0, **kwargs) -> None:
        self.clock = Clock()
        self.clock.advance(NOW)
        self.backend = BackendResource(self.clock, secret=SECRET)
        self.net = MemoryNetwork(self.backend, self.clock)
        self.pusher = Pusher(self.clock, timeout=timeout, endpoint_for=self.net.endpoint_for, **kwargs)
        self.secret = secret

    def start(self, url: str = "http://backend.example/sms/mo", payload=None):
        """Start a push; returns the list its PushResult will land in."""
        landed: list[PushResult] = []
        d = self.pusher.push(url, PAYLOAD if payload is None else payload, self.secret)
        d.addCallback(landed.append)
        self.net.flush()
        return landed

    def push(self, **kwargs) -> PushResult:
        landed = self.start(**kwargs)
        assert landed, "the push did not finish"
        return landed[0]

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.net.flush()


# --- signing and what is sent ------------------------------------------------------------------
def test_sign_matches_a_vector_computed_by_hand():
    body = '{"id":"m1","text":"Héj"}'.encode("utf-8")
    by_hand = hmac.new(b"change-me", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert by_hand == "bf78ba9e3bfa36d7e972544a78e7ae448fa185d54d601213004cf35b20a47c5a"  # openssl dgst
    assert sign("change-me", "1700000000", body) == "sha256=" + by_hand


def test_body_is_compact_utf8_json():
    assert encode_body(PAYLOAD) == '{"id":"m1","text":"Héj","to":"46701234567"}'.encode("utf-8")
    assert encode_body({"balance": Decimal("999.50")}) == b'{"balance":999.5}'


def test_headers_and_the_signed_bytes_are_the_bytes_sent():
    h = Harness()
    result = h.push()
    assert result == PushResult(True, 200, "ok", None, 0.0)
    [seen] = h.backend.requests
    assert seen.method == "POST" and seen.path == "/sms/mo"
    assert seen.headers["content-type"] == "application/json"
    assert seen.headers["x-smsgw-timestamp"] == "1700000000"
    assert seen.headers["user-agent"].startswith("smsgw/")
    assert seen.body == encode_body(PAYLOAD)
    assert seen.headers["x-smsgw-signature"] == sign(SECRET, "1700000000", seen.body)
    assert seen.signature_valid is True  # checked by the backend's own HMAC


def test_no_secret_no_signature_header():
    h = Harness(secret=None)
    assert h.push().ok
    [seen] = h.backend.requests
    assert "x-smsgw-signature" not in seen.headers
    assert seen.headers["x-smsgw-timestamp"] == "1700000000"
    assert seen.signature_valid is False  # this backend expects one


def test_a_wrong_secret_fails_the_backends_check():
    h = Harness(secret="not-the-secret")
    h.push()
    assert h.backend.requests[0].signature_valid is False


def test_an_unserialisable_payload_is_the_callers_bug():
    h = Harness()
    with pytest.raises(TypeError):
        h.pusher.push("http://backend.example/", {"when": object()}, SECRET)
    assert h.backend.requests == []


# --- reading the answer ------------------------------------------------------------------------
HUGE = 64 * 1024 + 1

ANSWERS = [
    # (how the backend answers, ok, status, reply, error)
    (Answer(body=b'{"reply":"Your pizza is on its way"}'), True, 200, "Your pizza is on its way", None),
    (Answer(body='{"reply":"  Tack för beställningen \\n"}'.encode()),
     True, 200, "Tack för beställningen", None),
    (Answer(content_type="text/plain", body=b"  Thanks!\n"), True, 200, "Thanks!", None),
    (Answer(content_type="text/plain; charset=iso-8859-1", body="Hälsningar".encode("latin-1")),
     True, 200, "Hälsningar", None),
    (Answer(status=201, content_type="text/plain", body=b"created"), True, 201, "created", None),
    (Answer(body=b'{"status":"received"}'), True, 200, None, None),             # JSON without reply
    (Answer(body=b'{"reply":null}'), True, 200, None, None),
    (Answer(body=b'{"reply":""}'), True, 200, None, None),
    (Answer(body=b'{"reply":42}'), True, 200, None, "reply is not a string"),
    (Answer(body=b'{"reply":["a"]}'), True, 200, None, "reply is not a string"),
    (Answer(body=b'["reply"]'), True, 200, None, None),
    (Answer(body=b""), True, 200, None, None),                                  # empty body
    (Answer(status=204, content_type=None, body=b""), True, 204, None, None),
    (Answer(content_type="text/plain", body=b"  \n"), True, 200, None, None),
    (Answer(body=b"<html>oops</html>"), True, 200, None, "invalid reply json"),
    (Answer(body=b"\xff\xfe{"), True, 200, None, "invalid reply json"),
    (Answer(content_type="text/html", body=b'{"reply":"x"}'), True, 200, None, None),  # not ours
    (Answer(content_type=None, body=b'{"reply":"bare"}'), True, 200, "bare", None),
    (Answer(content_type=None, body=b"plain words"), True, 200, None, None),
    (Answer(body=b'{"reply":"' + b"x" * HUGE + b'"}'), True, 200, None, "reply too large"),
    (Answer(content_type="text/plain", body=b"x" * HUGE), True, 200, None, "reply too large"),
    (Answer(status=500, content_type="text/plain", body=b"boom"), False, 500, None, "http 500"),
    (Answer(status=503, body=b'{"reply":"not now"}'), False, 503, None, "http 503"),
    (Answer(status=404, body=b""), False, 404, None, "http 404"),
    (Answer(status=400, body=b"x" * HUGE), False, 400, None, "http 400"),
    (Answer(status=302, body=b"", headers=(("Location", "http://elsewhere.example/"),)),
     False, 302, None, "http 302"),
]


@pytest.mark.parametrize("answer, ok, status, reply, error", ANSWERS)
def test_what_the_answer_comes_to(answer, ok, status, reply, error):
    h = Harness()
    h.backend.answer(answer)
    assert h.push() == PushResult(ok, status, reply, error, 0.0)
    assert len(h.backend.requests) == 1  # a redirect is not followed


def test_a_large_body_arriving_in_pieces_is_cut_off():
    """No Content-Length (chunked), more than the limit, and never ending: cut at the limit."""
    h = Harness(max_reply_bytes=1000)
    h.backend.answer(Answer(body=b"x" * 1001, stall=True))
    assert h.push() == PushResult(True, 200, None, "reply too large", 0.0)


@pytest.mark.parametrize("content_type, body, expected", [
    ("application/json", b'{"reply":"a"}', ("a", None)),
    ("Application/JSON; charset=utf-8", b'{"reply":"a"}', ("a", None)),
    ("application/vnd.acme+json", b'{"reply":"a"}', ("a", None)),
    ("application/json", b"{", (None, "invalid reply json")),
    ("application/json", b"[" * 100_000, (None, "invalid reply json")),  # too deep to parse
    ("application/json", b"  ", (None, None)),
    ("text/plain; charset=bogus-8", "é".encode(), ("é", None)),
    ("text/plain", b"\xff ok", ("\ufffd ok", None)),
    (None, b"{", (None, None)),
    ("application/octet-stream", b"reply", (None, None)),
])
def test_parse_reply(content_type, body, expected):
    assert parse_reply(content_type, body) == expected


# --- time ----------------------------------------------------------------------------------------
def test_a_backend_that_does_not_answer_times_out_at_the_timeout():
    h = Harness(timeout=10.0)
    h.backend.slow(30)
    landed = h.start()
    h.advance(9.99)
    assert landed == []
    h.advance(0.01)
    assert landed == [PushResult(False, None, None, "timeout", pytest.approx(10.0))]
    h.advance(30)  # the late answer finds nobody and changes nothing
    assert len(landed) == 1


def test_an_answer_just_inside_the_timeout_counts():
    h = Harness(timeout=10.0)
    h.backend.reply_text("in time")
    h.backend.slow(9.5)
    landed = h.start()
    h.advance(9.5)
    assert landed == [PushResult(True, 200, "in time", None, pytest.approx(9.5))]
    h.advance(10)
    assert len(landed) == 1


def test_a_body_that_never_ends_is_cut_at_the_timeout():
    """Status and headers in time, the body trickles: the 2xx stands (the push was taken), the
    reply is lost, and the connection is closed."""
    h = Harness(timeout=10.0)
    h.backend.stall()
    landed = h.start()
    assert landed == []
    h.advance(10)
    assert landed == [PushResult(True, 200, None, "reply timeout", pytest.approx(10.0))]


def test_a_failing_status_with_a_body_that_never_ends_is_still_that_status():
    h = Harness(timeout=10.0)
    h.backend.answer(Answer(status=502, body=b"bad", stall=True))
    landed = h.start()
    h.advance(10)
    assert landed == [PushResult(False, 502, None, "http 502", pytest.approx(10.0))]


class HangsUpMidBody(Resource):
    """200, a Content-Length of 100, ten bytes, then the connection is closed."""

    isLeaf = True

    def render(self, request):
        request.setHeader(b"Content-Length", b"100")
        request.write(b'{"reply":"')
        request.transport.loseConnection()
        return NOT_DONE_YET


def test_a_2xx_whose_body_is_lost_stands_without_reply():
    clock = Clock()
    net = MemoryNetwork(HangsUpMidBody(), clock)
    landed: list = []
    Pusher(clock, endpoint_for=net.endpoint_for).push("http://backend.example/", PAYLOAD, SECRET).addCallback(
        landed.append)
    net.flush()
    assert landed == [PushResult(True, 200, None, "reply lost", 0.0)]


def test_the_caller_may_cancel():
    h = Harness()
    h.backend.slow(30)
    d = h.pusher.push("http://backend.example/", PAYLOAD, SECRET)
    landed: list = []
    d.addCallback(landed.append)
    h.net.flush()
    d.cancel()
    assert landed == [PushResult(False, None, None, "cancelled", 0.0)]
    h.advance(30)
    assert len(landed) == 1


# --- failures before any answer ---------------------------------------------------------------
class HangsUp(Resource):
    """Reads the request and closes the connection without a word."""

    isLeaf = True

    def render(self, request):
        request.transport.loseConnection()
        return NOT_DONE_YET


class TalksNonsense(Resource):
    """Answers bytes that are not HTTP."""

    isLeaf = True

    def render(self, request):
        request.transport.write(b"SMTP ready\r\n\r\n")
        request.transport.loseConnection()
        return NOT_DONE_YET


@pytest.mark.parametrize("exc, error", [
    (net_error.ConnectionRefusedError(), "connection refused"),
    (net_error.DNSLookupError("no.such.host"), "dns lookup failed"),
    (net_error.NoRouteError(), "no route to host"),
    (net_error.TCPTimedOutError(), "timeout"),
    (RuntimeError("surprise"), "error: RuntimeError"),
])
def test_failures_to_connect_are_named(exc, error):
    h = Harness()
    h.net.refuse_with(exc)
    assert h.push() == PushResult(False, None, None, error, 0.0)
    assert h.clock.getDelayedCalls() == []  # the timer went with the attempt


def test_an_endpoint_that_raises_still_gives_a_result():
    h = Harness()
    h.net.refuse_with(net_error.ConnectionRefusedError(), raise_now=True)
    assert h.push().error == "connection refused"


@pytest.mark.parametrize("resource, error", [(HangsUp(), "connection lost"), (TalksNonsense(), "invalid http answer")])
def test_a_connection_that_ends_before_a_status_is_named(resource, error):
    clock = Clock()
    net = MemoryNetwork(resource, clock)
    landed: list = []
    Pusher(clock, endpoint_for=net.endpoint_for).push("http://backend.example/", PAYLOAD, SECRET).addCallback(
        landed.append)
    net.flush()
    assert landed == [PushResult(False, None, None, error, 0.0)]


# --- connections are kept alive --------------------------------------------------------------
def test_pushes_to_one_backend_reuse_one_connection():
    h = Harness()
    for _ in range(5):
        assert h.push().ok
    assert h.net.connections == 1
    assert len(h.backend.requests) == 5


def test_concurrent_pushes_open_a_connection_each_then_reuse_them():
    h = Harness()
    landed: list = []
    for _ in range(3):
        h.pusher.push("http://backend.example/sms/mo", PAYLOAD, SECRET).addCallback(landed.append)
    h.net.flush()
    assert len(landed) == 3 and all(x.ok for x in landed)
    assert h.net.connections == 3
    for _ in range(3):
        assert h.push().ok
    assert h.net.connections == 3


def test_a_connection_the_backend_closed_is_not_reused():
    """A 500 answered with Connection: close (twisted.web keeps it alive, so ask for the close by
    an HTTP/1.0-style answer): the next push opens a fresh connection and succeeds."""
    h = Harness()
    h.backend.answer(Answer(headers=(("Connection", "close"),)))
    assert h.push().ok
    h.backend.answer(Answer())
    assert h.push().ok
    assert h.net.connections == 2


def test_the_host_header_and_target_keep_port_and_query():
    h = Harness()
    assert h.push(url="http://backend.example:8080/sms/mo?token=a%20b&x=1").ok
    [seen] = h.backend.requests
    assert seen.headers["host"] == "backend.example:8080"
    assert seen.path == "/sms/mo"


@pytest.mark.parametrize("url", ["ftp://backend.example/", "backend.example/no-scheme"])
def test_urls_that_cannot_be_pushed_to(url):
    h = Harness()
    result = h.push(url=url)
    assert (result.ok, result.status, result.error) == (False, None, "invalid url")


# --- logs -----------------------------------------------------------------------------------------
def test_the_pusher_writes_no_line_its_caller_writes_one_per_push():
    """SPEC §9: one line per event, with the message id; only the caller knows what a push is
    about (``tests/unit/test_push_worker.py`` checks its line). The pusher's own line had no id,
    and the caller wrote a second one."""
    h = Harness()
    h.backend.failing(500)
    with capture_logs() as logs:
        h.push(url="http://user:pw@backend.example:8443/sms/mo?token=t0p")
    assert logs == []


@pytest.mark.parametrize("url, shown", [
    ("http://user:pw@backend.example:8443/sms/mo?token=t0p#f", "http://backend.example:8443/sms/mo"),
    ("https://Backend.Example/status", "https://backend.example/status"),
    ("backend.example/no-scheme", "<invalid url>"),
    ("http://[::1/", "<invalid url>"),
])
def test_loggable_url_drops_the_query_and_the_credentials(url, shown):
    assert loggable_url(url) == shown
