"""Random requests to the gateway's HTTP API over raw sockets, and what every answer must be.

Why this module exists: SPEC §15 promises that every client error is a 4xx JSON answer, never a
500, whatever the request holds, and that nothing a client sends stalls the reactor. A random
request here is *structured*: a method, one of the API's paths (SPEC §4) with ids and names in and
out of shape, a query string, headers and a body, each drawn from what is right, what is nearly
right and what is wrong (percent-escapes of non-UTF-8 bytes, Unicode digits, huge and duplicated
headers, conflicting Content-Length, odd Transfer-Encoding, JSON with the right fields of the wrong
types, huge numbers, deep nesting, NaN, dates at the years 1 and 9999 with offsets, non-UTF-8).

Theory of operation
-------------------
* ``request(rng)`` → ``Request``: the bytes to write, framed so the server can always tell where
  the request ends (a body the headers under-announce would only make it wait for more).
* ``exchange(port, data, timeout)`` writes them on a new connection and reads one answer with
  httptools' response parser: (status, headers, body); ``ValueError`` when the bytes are not an
  HTTP answer, ``OSError`` when none came.
* ``judge(request, status, headers, body)`` → None, or what is wrong: a 5xx (but ``/readyz``'s
  "not ready" 503), or a 4xx whose body is not exactly SPEC §4's ``{"error": {"code", "message",
  "field"?}}`` as ``application/json``.
* ``Probe`` times ``GET /healthz`` on a keep-alive connection of its own (the stall detector).
* ``GATEWAY_CONFIG`` is the node the fuzzing runs against: etc/gateway.toml's shape (two simulated
  operators, a demo account, a shortcode and keyword) plus a prepaid account and one with a
  ``tps``, on loopback ports given by the caller, with a SQLite store beside the config file.
"""

from __future__ import annotations

import random
import socket
import time
from dataclasses import dataclass

import httptools
import orjson

GATEWAY_CONFIG = """
[gateway]
node = "fuzz"
processes = 1
max_parts_cap = 3
[store]
url = "sqlite:///fuzz.db"
[http]
listen = "127.0.0.1:{http}"
[metrics]
listen = "127.0.0.1:{metrics}"
[admin]
api_keys = ["ops-key"]
[push]
allow_networks = ["127.0.0.0/8"]
[operators.sim_a]
type = "simulated"
cost = 0.10
unreachable_prefixes = ["4670999"]
receipt_delay = "50ms"
[operators.sim_b]
type = "simulated"
cost = 0.20
receipt_delay = "50ms"
[profiles.standard]
operators = ["sim_a", "sim_b"]
[profiles.best]
operators = ["sim_b"]
[accounts.demo]
api_keys = ["demo-key"]
senders = ["DEMO", "72550"]
callback_url = "http://127.0.0.1:9/cb"
secret = "s3cret"
approved_domains = ["example.com"]
[accounts.prepaid]
api_keys = ["prepaid-key"]
senders = ["PRE"]
billing = "prepaid"
balance = 1
tps = 5
[[shortcodes]]
number = "72550"
stop_words = ["STOP"]
[[keywords]]
shortcode = "72550"
keyword = "DEMO"
account = "demo"
reply = "You said: {{payload}}"
"""

KEYS = ("demo-key", "ops-key", "prepaid-key")
ERROR_KEYS = {"code", "message", "field"}


@dataclass(frozen=True, slots=True)
class Request:
    """What was sent: the bytes, and the method and path they name (for the judge)."""

    data: bytes
    method: str
    path: str


def simple(method: str, path: str, key: str | None = None) -> bytes:
    auth = f"Authorization: Bearer {key}\r\n" if key else ""
    return f"{method} {path} HTTP/1.1\r\nHost: fuzz\r\n{auth}Connection: close\r\n\r\n".encode()


# --- values -------------------------------------------------------------------------------------------
_UNICODE = ("é", "ß", "Ω", "€", "😀", "\u200b", "\u202e", "²", "٣", "१", "\u0000", "\ufeff", "𝟙")


def _word(rng: random.Random, n: int | None = None) -> str:
    n = rng.randint(0, 12) if n is None else n
    return "".join(rng.choice(_UNICODE) if rng.random() < 0.1
                   else rng.choice("abcdefghijklmnopqrstuvwxyz0123456789_-") for _ in range(n))


def _date(rng: random.Random) -> str:
    year = rng.choice((1, 1, 9999, 9999, 1970, 2026, 2031, 2100, rng.randint(1, 9999)))
    offset = rng.choice(("Z", "z", "+00:00", "+14:00", "-12:00", "+23:59", "-23:59", "+05:30", "",
                         "+24:00", "+0530"))
    month, day = rng.choice(((1, 1), (12, 31), (2, 29), (13, 1), (6, 31), (0, 0)))
    time_part = rng.choice(("T00:00:00", "T23:59:59", "T23:59:60", "T12:00:00.123456789", "t12:00:00",
                            " 12:00:00", "T24:00:00", ""))
    return f"{year:04d}-{month:02d}-{day:02d}{time_part}{offset}"


def _number(rng: random.Random) -> str:
    """A JSON number as text, most of them past what a float or an int64 holds."""
    return rng.choice(("0", "-1", "1", "1.5", "1e400", "-1e400", "1e-400", "9" * 400, "-" + "9" * 30,
                       "18446744073709551616", "9223372036854775808", "0.1e1", "1E2", "-0",
                       str(rng.randint(-2**70, 2**70)), repr(rng.random() * 10**rng.randint(0, 300)),
                       "NaN", "Infinity", "-Infinity", "01", "1.", ".5", "+1"))


def _string(rng: random.Random) -> str:
    """A JSON string as text: plain, Unicode, escapes (lone surrogates too), or huge."""
    body = rng.choice((
        _word(rng), "", " ", "DEMO", "72550", "46701234567", "+46701234567", "4670999123456",
        "x" * rng.choice((160, 161, 459, 460, 1000, 70_000)), "é" * 70, "😀" * 40,
        "\\ud800", "\\udc00x", "\\u0000", "\\\\", "\\\"", "http://example.com/x", "http://evil.test/x",
        "http://127.0.0.1:9/cb", "https://user:pw@127.0.0.1/cb", _date(rng), "all", "final",
        "delivered", "gsm7", "latin1", "ucs2", "auto", "standard", "best", "none", "STOP",
    ))
    return '"' + body.replace('"', '\\"') + '"' if '\\' not in body else f'"{body}"'


def _value(rng: random.Random, depth: int = 0) -> str:
    """Any JSON value as text (and some that are not JSON)."""
    kind = rng.randrange(10 if depth < 3 else 6)
    if kind < 2:
        return _string(rng)
    if kind < 4:
        return _number(rng)
    if kind == 4:
        return rng.choice(("true", "false", "null"))
    if kind == 5:
        return rng.choice(("[]", "{}", '"', "[", "{", "tru", "nul", "'x'", "[1,]", '{"a":1,}'))
    if kind < 8:
        return "[" + ",".join(_value(rng, depth + 1) for _ in range(rng.randint(0, 4))) + "]"
    return _object(rng, depth + 1)


_FIELDS = ("to", "text", "from", "profile", "max_parts", "encoding", "send_at", "callback_url",
           "callback_statuses", "reference", "amount", "numbers", "account", "remove", "consent")


def _object(rng: random.Random, depth: int = 0) -> str:
    items = []
    for _ in range(rng.randint(0, 6)):
        name = rng.choice(_FIELDS + (_word(rng),))
        items.append(f'"{name}":{_right(rng, name) if rng.random() < 0.5 else _value(rng, depth)}')
    return "{" + ",".join(items) + "}"


def _right(rng: random.Random, name: str) -> str:
    """A value of the right type for ``name`` (so that the checks after it are reached)."""
    if name == "to":
        numbers = ['"4670123456%d"' % rng.randrange(10) for _ in range(rng.choice((1, 2, 1001)))]
        return numbers[0] if rng.random() < 0.5 else "[" + ",".join(numbers) + "]"
    if name in ("max_parts", "amount"):
        return _number(rng)
    if name == "send_at":
        return f'"{_date(rng)}"'
    if name == "callback_statuses":
        return rng.choice(('"all"', '"final"', '["delivered","failed"]', '["delivered","delivered"]',
                           '["bogus"]', "[]"))
    if name == "numbers":
        return '["46701234567","x",""]'
    return _string(rng)


def _body(rng: random.Random) -> bytes:
    kind = rng.randrange(12)
    if kind == 0:
        return b""
    if kind == 1:
        return bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))  # not UTF-8, not JSON
    if kind == 2:
        depth = rng.choice((100, 1023, 1024, 1025, 5000, 100_000))
        return b"[" * depth + b"]" * depth
    if kind == 3:
        return b'{"to":"46701234567","text":"' + bytes(rng.randrange(0x80, 0x100) for _ in range(8)) + b'"}'
    if kind == 4:
        return _value(rng).encode("utf-8", "surrogatepass")
    text = '{"to":' + _right(rng, "to") + ',"text":' + _string(rng)
    extra = _object(rng)[1:-1]
    return (text + ("," + extra if extra else "") + "}").encode("utf-8", "surrogatepass")


# --- request line, query, headers -------------------------------------------------------------------
_PATHS = ("/v1/messages", "/v1/messages", "/v1/messages/{id}", "/v1/messages/export", "/v1/inbound",
          "/v1/account", "/v1/admin/messages/{id}/approve", "/v1/admin/messages/{id}/refuse",
          "/v1/admin/accounts/{account}/pause", "/v1/admin/accounts/{account}/resume",
          "/v1/admin/accounts/{account}/topup", "/v1/admin/stoplist", "/v1/admin/binds",
          "/v1/admin/operators/{operator}/mo", "/healthz", "/readyz", "/", "/v1", "/v1/messages/",
          "//v1/messages", "/v1/messages/{id}/x", "/V1/MESSAGES", "/v1/admin/{word}", "/{word}",
          "*", "http://fuzz/v1/messages")
_METHODS = ("GET",) * 8 + ("POST",) * 8 + ("DELETE", "DELETE", "HEAD", "PUT", "PATCH", "OPTIONS",
                                             "TRACE", "CONNECT", "get", "FOO", "G\x00T")
#: methods HTTP defines (httptools knows these and more: a lowercase or made-up one is 501)
_KNOWN_METHODS = frozenset(("GET", "POST", "DELETE", "HEAD", "PUT", "PATCH", "OPTIONS", "TRACE", "CONNECT"))
_PARAMS = ("status", "to", "updated_since", "cursor", "limit", "from", "to", "x", "")


def _escape(rng: random.Random, text: str) -> str:
    out = []
    for ch in text:
        if rng.random() < 0.15 or not ("!" <= ch <= "~") or ch in "%&=#?":
            out.append("".join(f"%{b:02X}" for b in ch.encode("utf-8", "surrogatepass")))
        else:
            out.append(ch)
    if rng.random() < 0.1:
        out.append(rng.choice(("%", "%G1", "%ff%fe", "%C0%80", "%ED%A0%80", "%00", "+", "%2")))
    return "".join(out)


def _param_value(rng: random.Random) -> str:
    return rng.choice((_word(rng), str(rng.randint(-5, 2000)), "9" * rng.choice((18, 19, 40)), "",
                       "²", "١٠٠", "0x10", "1e3", " 1", "delivered", "queued", "+46701234567",
                       _date(rng), _date(rng)[:10], "2026-12-04", "46701234567"))


def _query(rng: random.Random) -> str:
    if rng.random() < 0.4:
        return ""
    pairs = [f"{_escape(rng, rng.choice(_PARAMS + (_word(rng),)))}={_escape(rng, _param_value(rng))}"
             for _ in range(rng.randint(1, 4))]
    if rng.random() < 0.1:
        pairs.append(rng.choice(("", "=", "&", "a", "a=1=2", "limit")))
    return "?" + "&".join(pairs)


def _path(rng: random.Random) -> str:
    template = rng.choice(_PATHS)
    values = {
        "id": rng.choice((f"{rng.randrange(1 << 64):x}", "0" * rng.choice((1, 64, 65)), _word(rng),
                          "ABCDEF", "%ff", "é")),
        "account": rng.choice(("demo", "prepaid", "nobody", _word(rng))),
        "operator": rng.choice(("sim_a", "sim_b", "nope", _word(rng))),
        "word": _word(rng),
    }
    path = template.format(**values)
    if rng.random() < 0.1:
        path = _escape(rng, path)
    if rng.random() < 0.01:
        path += "/" + "a" * rng.choice((8000, 9000))
    return path


def _headers(rng: random.Random, body: bytes) -> tuple[list[bytes], bytes]:
    """The header lines and the body as framed on the wire (chunked, or with Content-Length)."""
    lines = []
    if rng.random() < 0.95:
        lines.append(b"Host: fuzz")
    auth = rng.random()
    if auth < 0.85:
        key = rng.choice(KEYS + ("nope",))
        scheme = rng.choice((b"Bearer", b"Bearer", b"bearer", b"Basic", b""))
        lines.append(b"Authorization: " + scheme + b" " + key.encode() + rng.choice((b"", b" ", b"\xff")))
    if rng.random() < 0.8:
        lines.append(b"Content-Type: " + rng.choice((b"application/json", b"text/plain", b"x/\xff")))
    if rng.random() < 0.15:
        lines.append(b"Idempotency-Key: " + rng.choice((b"", b"k1", b"k" * 300, b"\xc3\xa9\xff", b" ")))
    if rng.random() < 0.05:
        lines.append(b"Expect: 100-continue")
    if rng.random() < 0.05:
        lines += [f"X-Fuzz-{i}: {i}".encode() for i in range(rng.choice((50, 99, 101, 200)))]
    if rng.random() < 0.03:
        lines.append(b"X-Huge: " + b"h" * rng.choice((8000, 16_000, 17_000, 100_000)))
    if rng.random() < 0.03:
        lines.append(rng.choice((b"Bad Header: x", b"X-Nul: a\x00b", b": empty", b"X-Fold: a\r\n b",
                                 b"X-Utf8: \xc3\xa9\xff")))
    if rng.random() < 0.1:
        lines.append(b"Connection: " + rng.choice((b"close", b"keep-alive", b"upgrade", b"\xff")))
    framing = rng.random()
    if framing < 0.08:
        chunked = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in _split(rng, body)) + b"0\r\n\r\n"
        lines.append(b"Transfer-Encoding: chunked")
        return lines, chunked
    if framing < 0.12:
        lines.append(b"Transfer-Encoding: " + rng.choice((b"gzip", b"chunked, gzip", b"identity",
                                                          b"xchunked", b"chunked, chunked")))
        lines.append(b"Content-Length: %d" % len(body))
        return lines, body
    if framing < 0.16:
        other = rng.choice((len(body) + 1, max(0, len(body) - 1), len(body)))
        lines += [b"Content-Length: %d" % len(body), b"Content-Length: %d" % other]
        return lines, body
    if framing < 0.18:
        lines.append(rng.choice((b"Content-Length: -1", b"Content-Length: 1e3", b"Content-Length: +5",
                                 b"Content-Length: 99999999999999999999999", b"Content-Length: ")))
        return lines, body
    if body or rng.random() < 0.5:
        lines.append(b"Content-Length: %d" % len(body))
    return lines, body


def _split(rng: random.Random, body: bytes) -> list[bytes]:
    parts, pos = [], 0
    while pos < len(body):
        n = rng.randint(1, max(1, len(body)))
        parts.append(body[pos:pos + n])
        pos += n
    return parts


#: (method, path) the API answers, for the tidy half of the requests: the key that may call it.
_ROUTES = (("POST", "/v1/messages", "demo-key"), ("POST", "/v1/messages", "demo-key"),
           ("POST", "/v1/messages", "prepaid-key"), ("GET", "/v1/messages", "demo-key"),
           ("GET", "/v1/messages/{id}", "demo-key"), ("DELETE", "/v1/messages/{id}", "demo-key"),
           ("GET", "/v1/messages/export", "demo-key"), ("GET", "/v1/inbound", "demo-key"),
           ("GET", "/v1/account", "prepaid-key"), ("POST", "/v1/admin/accounts/{account}/topup", "ops-key"),
           ("POST", "/v1/admin/stoplist", "ops-key"), ("POST", "/v1/admin/operators/{operator}/mo", "ops-key"),
           ("POST", "/v1/admin/messages/{id}/approve", "ops-key"), ("GET", "/v1/admin/binds", "ops-key"))


def request(rng: random.Random) -> Request:
    """One random request (see the module docstring). Half are tidy: a route the API answers, the
    key it needs and plain framing, so the fuzzing reaches the handlers; only the query string and
    the body are random then."""
    if rng.random() < 0.5:
        return _tidy(rng)
    method = rng.choice(_METHODS)
    path = _path(rng)
    version = rng.choice((b"HTTP/1.1",) * 12 + (b"HTTP/1.0", b"HTTP/2.0", b"HTTP/1.2", b"HTTP/0.9", b"HTP/1.1"))
    body = _body(rng) if method in ("POST", "PUT", "PATCH") or rng.random() < 0.05 else b""
    if rng.random() < 0.005:
        body = b'{"to":"46701234567","text":"' + b"x" * (1 << 20) + b'"}'
    lines, wire_body = _headers(rng, body)
    return _framed(method, path + _query(rng), version, lines, wire_body, path)


def _tidy(rng: random.Random) -> Request:
    method, template, key = rng.choice(_ROUTES)
    path = template.format(id=f"{rng.randrange(1 << 64):016x}", account=rng.choice(("demo", "prepaid")),
                           operator="sim_a")
    body = _body(rng) if method == "POST" else b""
    lines = [b"Host: fuzz", b"Authorization: Bearer " + key.encode(), b"Content-Type: application/json",
             b"Content-Length: %d" % len(body)]
    if rng.random() < 0.1:
        lines.append(b"Idempotency-Key: k%d" % rng.randrange(20))
    return _framed(method, path + _query(rng), b"HTTP/1.1", lines, body, path)


def _framed(method: str, target: str, version: bytes, lines: list[bytes], body: bytes, path: str) -> Request:
    head = b"%s %s %s\r\n" % (method.encode("latin-1"), target.encode("utf-8", "surrogatepass"), version)
    return Request(head + b"".join(line + b"\r\n" for line in lines) + b"\r\n" + body, method, path)


# --- answers ------------------------------------------------------------------------------------------
class _Answer:
    """httptools' response callbacks: collects the first answer that is not 100 Continue."""

    def __init__(self, head_only: bool) -> None:
        self.head_only = head_only
        self.headers: dict[bytes, bytes] = {}
        self.body: list[bytes] = []
        self.done = False
        self.status = 0
        self.parser: httptools.HttpResponseParser | None = None

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.lower()] = value

    def on_headers_complete(self) -> None:
        if self.done:
            raise ValueError("a second answer to one request")
        self.status = self.parser.get_status_code()
        if self.head_only and self.status != 100:
            self.done = True

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        if self.status == 100:
            self.headers, self.body, self.status = {}, [], 0
        elif self.done and not self.head_only:
            raise ValueError("a second answer to one request")
        else:
            self.done = True


def exchange(port: int, data: bytes, timeout: float) -> tuple[int, dict[bytes, bytes], bytes]:
    """Write ``data`` on a new connection to 127.0.0.1:``port`` and read one answer."""
    answer = _Answer(head_only=data.startswith(b"HEAD "))
    answer.parser = parser = httptools.HttpResponseParser(answer)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before the end (a limit): its answer is already on its way
        while not answer.done:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                if answer.status and not answer.done and b"content-length" not in answer.headers:
                    break
                raise ValueError(f"connection closed before a whole answer (status {answer.status})")
            try:
                parser.feed_data(chunk)
            except httptools.HttpParserError as exc:
                raise ValueError(f"the answer is not HTTP: {exc.__context__ or exc}") from None
    return answer.status, answer.headers, b"".join(answer.body)


def judge(request: Request, status: int, headers: dict[bytes, bytes], body: bytes) -> str | None:
    """What is wrong with an answer to ``request``, or None."""
    if status >= 500:
        if request.path == "/readyz" and status == 503 and _json(body).get("ready") is False:
            return None
        if status == 501 and request.method not in _KNOWN_METHODS:  # RFC 9110 §9.1
            return _error_shape_problem(status, headers, body)
        return f"answered {status}: {body[:500]!r}"
    if 400 <= status < 500 and request.method != "HEAD":
        return _error_shape_problem(status, headers, body)
    return None


def _json(body: bytes) -> dict:
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _error_shape_problem(status: int, headers: dict[bytes, bytes], body: bytes) -> str | None:
    if headers.get(b"content-type") != b"application/json":
        return f"{status} with content-type {headers.get(b'content-type')!r}"
    value = _json(body)
    error = value.get("error")
    if set(value) != {"error"} or not isinstance(error, dict):
        return f"{status} body is not {{\"error\": {{...}}}}: {body[:300]!r}"
    if not {"code", "message"} <= set(error) <= ERROR_KEYS:
        return f"{status} error has the keys {sorted(error)}"
    code = error["code"]
    if not all(isinstance(v, str) for v in error.values()) or not code.isascii() or not code.islower() \
            or not code.replace("_", "").isalpha():
        return f"{status} error values are not strings or the code is not snake_case: {error}"
    return None


class Probe:
    """``GET /healthz`` on one keep-alive connection: ``once()`` → seconds it took."""

    REQUEST = b"GET /healthz HTTP/1.1\r\nHost: probe\r\n\r\n"

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def once(self) -> float:
        answer = _Answer(head_only=False)
        answer.parser = httptools.HttpResponseParser(answer)
        started = time.perf_counter()
        self.sock.sendall(self.REQUEST)
        while not answer.done:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise OSError("the probe's connection closed")
            answer.parser.feed_data(chunk)
        if answer.status != 200:
            raise ValueError(f"/healthz answered {answer.status}")
        return time.perf_counter() - started
