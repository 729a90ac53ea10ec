"""The lean HTTP/1.1 server without sockets: bytes in through a StringTransport, answers read back,
time from a Clock. The handler records what it saw and answers as each test says."""

from __future__ import annotations

import json

import httptools
import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from connectors.http_server import NOT_DONE_YET, HTTPServerFactory, Limits


class Handler:
    """Answers ``200 {"seen": n}`` at once, or holds the request when ``hold`` is set."""

    def __init__(self) -> None:
        self.seen = []
        self.hold = False
        self.held = []
        self.explode = False

    def render(self, request):
        if self.explode:
            raise RuntimeError("bug")
        self.seen.append({"method": request.method, "path": request.path, "args": request.args,
                          "auth": request.getHeader(b"Authorization"), "body": request.content.read()})
        request.setHeader(b"content-type", b"application/json")
        if self.hold:
            self.held.append(request)
            return NOT_DONE_YET
        return json.dumps({"seen": len(self.seen)}).encode()


def error_body(status, code, message):
    return json.dumps({"error": {"code": code, "message": message}}).encode()


class Conn:
    def __init__(self, limits: Limits | None = None) -> None:
        self.clock = Clock()
        self.clock.advance(1_700_000_000)
        self.handler = Handler()
        self.factory = HTTPServerFactory(self.handler, clock=self.clock, error_body=error_body, limits=limits)
        self.proto = self.factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 5555))
        self.transport = StringTransport()
        self.proto.makeConnection(self.transport)

    def send(self, data: bytes, one_at_a_time: bool = False) -> None:
        if one_at_a_time:
            for i in range(len(data)):
                self.proto.dataReceived(data[i:i + 1])
        else:
            self.proto.dataReceived(data)

    def answers(self):
        """The answers written so far, parsed by httptools: [(status, headers, body)]."""
        out = []

        class P:
            def on_message_begin(self):
                out.append([None, {}, b""])

            def on_header(self, name, value):
                out[-1][1][name.lower()] = value

            def on_headers_complete(self):
                out[-1][0] = parser.get_status_code()

            def on_body(self, body):
                out[-1][2] += body

        parser = httptools.HttpResponseParser(P())
        parser.feed_data(self.transport.value())
        return [tuple(a) for a in out]


POST = (b"POST /v1/messages?limit=5&to=4670 HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer k\r\n"
        b"Content-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"to\":\"46\"}")


@pytest.mark.parametrize("one_at_a_time", [False, True])
def test_a_request_reaches_the_handler_and_is_answered_with_a_length(one_at_a_time):
    c = Conn()
    c.send(POST, one_at_a_time)
    [seen] = c.handler.seen
    assert seen == {"method": b"POST", "path": b"/v1/messages", "args": {b"limit": [b"5"], b"to": [b"4670"]},
                    "auth": b"Bearer k", "body": b'{"to":"46"}'}
    [(status, headers, body)] = c.answers()
    assert status == 200 and body == b'{"seen": 1}'
    assert headers[b"content-length"] == b"11" and headers[b"content-type"] == b"application/json"
    assert headers[b"date"] == b"Tue, 14 Nov 2023 22:13:20 GMT"
    assert b"connection" not in headers and not c.transport.disconnecting  # kept alive


def test_pipelined_requests_are_answered_in_order_even_when_the_first_finishes_last():
    c = Conn()
    c.handler.hold = True
    c.send(POST + POST)
    assert len(c.handler.seen) == 1  # the second waits for the first to be answered
    first = c.handler.held[0]
    first.setResponseCode(202)
    first.write(b"first")
    first.finish()
    second = c.handler.held[1]
    second.write(b"second")
    second.finish()
    assert [(s, b) for s, _, b in c.answers()] == [(202, b"first"), (200, b"second")]


def test_a_chunked_body_is_read_whole():
    c = Conn()
    c.send(b"POST /x HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"4\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\n\r\n")
    assert c.handler.seen[0]["body"] == b'{"a":1}'


def test_expect_100_continue_is_answered_before_the_body():
    c = Conn()
    c.send(b"POST /x HTTP/1.1\r\nHost: gw\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
    assert c.transport.value() == b"HTTP/1.1 100 Continue\r\n\r\n"
    c.send(b"{}")
    assert c.handler.seen[0]["body"] == b"{}"


@pytest.mark.parametrize("request_bytes, status, code", [
    (b"GET /" + b"a" * 8200 + b" HTTP/1.1\r\nHost: gw\r\n\r\n", 414, "uri_too_long"),
    (b"GET / HTTP/1.1\r\nHost: gw\r\nX-Big: " + b"a" * 16400 + b"\r\n\r\n", 431, "headers_too_large"),
    (b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(101)) + b"\r\n", 431, "headers_too_large"),
    (b"POST / HTTP/1.1\r\nHost: gw\r\nContent-Length: 2000\r\n\r\n", 413, "too_large"),
    (b"POST / HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n7d0\r\n" + b"a" * 2000, 413, "too_large"),
    (b"HELLO THERE\r\n\r\n", 400, "invalid_request"),
    (b"GET\r\n\r\n", 400, "invalid_request"),
    (b"G\x00T / HTTP/1.1\r\nHost: gw\r\n\r\n", 400, "invalid_request"),
    (b"BREW /pot HTTP/1.1\r\nHost: gw\r\n\r\n", 501, "not_implemented"),  # RFC 9110 §9.1
    (b"get / HTTP/1.1\r\nHost: gw\r\n\r\n", 501, "not_implemented"),  # methods are case-sensitive
])
def test_limits_and_bad_http_are_refused_with_a_json_error_and_a_close(request_bytes, status, code):
    c = Conn(Limits(max_body=1000))
    c.send(request_bytes)
    assert c.handler.seen == []
    [(got, headers, body)] = c.answers()
    assert got == status and json.loads(body)["error"]["code"] == code
    assert headers[b"connection"] == b"close" and c.transport.disconnecting
    c.send(POST)  # nothing more is read from this connection
    assert c.handler.seen == []


@pytest.mark.parametrize("method", [b"GET", b"DELETE"])
def test_the_request_line_limit_counts_the_whole_line(method):
    """SPEC §15: a request line over 8 KiB → 414; at 8 KiB it is read (CRLF not counted)."""
    def line(length: int) -> bytes:
        head = method + b" /"
        tail = b" HTTP/1.1"
        return head + b"a" * (length - len(head) - len(tail)) + tail

    c = Conn()
    c.send(line(8192) + b"\r\nHost: gw\r\n\r\n")
    assert len(c.handler.seen) == 1 and [s for s, _, _ in c.answers()] == [200]
    c = Conn()
    c.send(line(8193) + b"\r\nHost: gw\r\n\r\n")
    [(status, headers, body)] = c.answers()
    assert (status, json.loads(body)["error"]["code"]) == (414, "uri_too_long") and c.handler.seen == []


def test_a_refusal_waits_for_the_answer_in_progress():
    c = Conn()
    c.handler.hold = True
    c.send(POST + b"GET / HTTP/1.1\r\nX: " + b"a" * 17000 + b"\r\n\r\n")
    assert c.answers() == []
    c.handler.held[0].finish()
    assert [s for s, _, _ in c.answers()] == [200, 431]


def test_http10_and_connection_close_end_the_connection_after_the_answer():
    c = Conn()
    c.send(b"GET /healthz HTTP/1.0\r\n\r\n")
    [(status, headers, _)] = c.answers()
    assert status == 200 and headers[b"connection"] == b"close" and c.transport.disconnecting
    c = Conn()
    c.send(b"GET /healthz HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
    assert c.transport.disconnecting


def test_a_handler_that_raises_gets_a_500_and_the_connection_closes():
    c = Conn()
    c.handler.explode = True
    c.send(POST)
    [(status, _, body)] = c.answers()
    assert status == 500 and json.loads(body)["error"]["code"] == "internal_error"
    assert c.transport.disconnecting


def test_a_client_gone_before_the_answer_is_not_written_to():
    c = Conn()
    c.handler.hold = True
    c.send(POST)
    c.proto.connectionLost(None)
    request = c.handler.held[0]
    assert request._disconnected
    request.finish()
    assert c.transport.value() == b""


def test_an_idle_connection_is_closed_after_the_idle_timeout_and_a_busy_one_is_not():
    c = Conn(Limits(idle_timeout=60))
    c.clock.advance(59)
    c.send(POST)
    c.clock.advance(59)
    assert not c.transport.disconnecting  # the request reset the clock
    c.clock.advance(1)
    assert c.transport.disconnecting
    busy = Conn(Limits(idle_timeout=60))
    busy.handler.hold = True
    busy.send(POST)
    busy.clock.advance(300)
    assert not busy.transport.disconnecting  # an answer is still being made


# -- a client that does not read, and one that half-closes --------------------------------------
def test_a_client_that_takes_no_answer_gets_nothing_more_read_nor_answered_until_it_does():
    from connectors.http_server import MAX_WAITING

    conn = Conn()
    conn.proto.pauseProducing()  # the transport's buffer is full: the client reads nothing
    assert conn.transport.producerState == "paused"  # nothing more is read from the socket
    conn.send(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n" * 3)
    assert conn.answers() == [] and len(conn.proto.queue) == 3  # nor answered meanwhile
    conn.proto.resumeProducing()
    assert [a[0] for a in conn.answers()] == [200, 200, 200]
    assert conn.transport.producerState == "producing"
    conn.send(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n" * (MAX_WAITING + 5))  # answered as they come
    assert len(conn.answers()) == MAX_WAITING + 8


def test_too_many_requests_waiting_stop_the_reading():
    from connectors.http_server import MAX_WAITING

    conn = Conn()
    conn.handler.hold = True  # every answer comes later (a Deferred): the first holds the others
    conn.send(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n" * (MAX_WAITING + 2))
    assert conn.transport.producerState == "paused"


def test_a_client_taking_no_answer_for_the_idle_timeout_is_cut_off():
    conn = Conn(Limits(idle_timeout=60))
    conn.proto.pauseProducing()
    conn.send(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
    conn.clock.advance(61)
    assert conn.transport.disconnecting or conn.proto.closing


def test_a_half_closed_client_gets_every_answer_then_the_connection_closes():
    conn = Conn()
    conn.send(b"POST /ok HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi" * 3)
    conn.proto.readConnectionLost()  # shutdown(SHUT_WR) after the requests
    assert [a[0] for a in conn.answers()] == [200, 200, 200]
    assert conn.transport.disconnecting


def test_an_upgrade_offered_is_ignored_and_the_request_after_it_is_read_too():
    conn = Conn()
    conn.send(b"GET /one HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
              b"HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\nGET /two HTTP/1.1\r\nHost: x\r\n\r\n")
    assert [a[0] for a in conn.answers()] == [200, 200]
    assert [s["path"] for s in conn.handler.seen] == [b"/one", b"/two"]


@pytest.mark.parametrize("head", [
    b"GET /ok HTTP/1.1\r\n\r\n",  # RFC 9112 3.2: an HTTP/1.1 request without Host
    b"GET /ok HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    b"GET /ok HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer wrong\r\nAuthorization: Bearer right\r\n\r\n",
])
def test_a_missing_host_or_a_field_given_twice_is_a_400(head):
    conn = Conn()
    conn.send(head)
    [(status, _, body)] = conn.answers()
    assert status == 400 and json.loads(body)["error"]["code"] == "invalid_request" and not conn.handler.seen


def test_an_http_1_0_request_needs_no_host():
    conn = Conn()
    conn.send(b"GET /ok HTTP/1.0\r\n\r\n")
    assert [a[0] for a in conn.answers()] == [200]


def test_an_absolute_form_target_is_served_as_its_path_and_query():
    conn = Conn()
    conn.send(b"GET http://127.0.0.1:8080/ok?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"
              b"GET HTTPS://gw.example HTTP/1.1\r\nHost: gw.example\r\n\r\n")
    assert [a[0] for a in conn.answers()] == [200, 200]
    assert [(s["path"], s["args"]) for s in conn.handler.seen] == [(b"/ok", {b"x": [b"1"]}), (b"/", {})]


@pytest.mark.parametrize("target", [b"*", b"gw.example:443", b"ftp://gw.example/ok"])
def test_a_target_that_is_no_path_nor_absolute_url_is_a_400(target):
    conn = Conn()
    conn.send(b"OPTIONS " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    [(status, _, _)] = conn.answers()
    assert status == 400 and not conn.handler.seen


def test_a_request_sent_a_byte_at_a_time_is_cut_off_after_the_idle_timeout():
    conn = Conn(Limits(idle_timeout=60))
    for byte in b"GET /ok HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100:  # slowloris: never quiet for long
        conn.send(bytes([byte]))
        conn.clock.advance(1)
        if conn.transport.disconnecting:
            break
    assert conn.transport.disconnecting and 60 <= conn.clock.seconds() - 1_700_000_000 <= 62
    assert conn.answers() == [] and not conn.handler.seen


def test_a_request_that_arrives_within_the_idle_timeout_is_served_however_slowly():
    conn = Conn(Limits(idle_timeout=60))
    for byte in b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n":
        conn.send(bytes([byte]))
        conn.clock.advance(1)
    assert [a[0] for a in conn.answers()] == [200] and not conn.transport.disconnecting
