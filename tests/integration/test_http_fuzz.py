"""Random requests to a real gateway's HTTP API on loopback: never a 5xx, and every 4xx carries
SPEC §4's error body (SPEC §15: "every client error is a 4xx JSON answer").

A small run of what ``scripts/fuzz.py http`` does at scale, with the same generator
(``tests/fuzzing/http.py``) driven by hypothesis through ``st.randoms()``: one in-process
``Gateway`` (SQLite, two simulated operators) for all examples, each request written on a new
connection from a thread (raw bytes: many of them are not HTTP a client library would send). At
the end, one test per finding.
"""

from __future__ import annotations

import pytest
import pytest_twisted
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThread

from smscore.app import Gateway
from smscore.config import parse_config
from tests.fuzzing import http as http_fuzz
from tests.harness.waiting import eventually

TIMEOUT = 10.0


@pytest.fixture
def gateway(tmp_path):
    config = parse_config(http_fuzz.GATEWAY_CONFIG.format(http=0, metrics=0), path=tmp_path / "gw.toml")
    gw = Gateway(config, reactor, CollectorRegistry())
    pytest_twisted.blockon(gw.start())
    pytest_twisted.blockon(Deferred.fromCoroutine(
        eventually(lambda: all(link.is_up() for link in gw.links.values()), "the simulated operators bound")))
    gw.fuzz_port = gw.http_port.getHost().port
    yield gw
    pytest_twisted.blockon(gw.stop())


def answer(gw, data: bytes) -> Deferred:
    return deferToThread(http_fuzz.exchange, gw.fuzz_port, data, TIMEOUT)


def assert_fine(request: http_fuzz.Request, got) -> None:
    problem = http_fuzz.judge(request, *got)
    assert problem is None, f"{problem}\nrequest: {request.data[:2000]!r}"


# The gateway is one for all the examples, on purpose (hence function_scoped_fixture); the test
# returns a Deferred, which pytest-twisted waits on in the reactor for each example.
@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(rng=st.randoms(use_true_random=False))
def test_random_requests_get_no_5xx_and_errors_of_the_api_shape(gateway, rng):
    request = http_fuzz.request(rng)
    return answer(gateway, request.data).addCallback(lambda got: assert_fine(request, got))


# --- findings -----------------------------------------------------------------------------------------
def _get(path: str, key: str = "demo-key") -> bytes:
    return http_fuzz.simple("GET", path, key)


def _post(path: str, body: bytes, key: str = "ops-key") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: fuzz\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


@pytest.mark.parametrize("query", ["limit=%C2%B2", "cursor=%C2%B2", "limit=%D9%A1"])
@pytest_twisted.ensureDeferred
async def test_a_page_number_in_unicode_digits_is_a_400(gateway, query):
    """Found by fuzzing: "²" passed ``str.isdigit`` and then failed ``int``: a 500."""
    for path in ("/v1/messages", "/v1/inbound"):
        status, _, body = await answer(gateway, _get(f"{path}?{query}"))
        assert status == 400 and b'"invalid_request"' in body, (path, query, body)


@pytest_twisted.ensureDeferred
async def test_a_huge_topup_is_refused_and_the_store_goes_on(gateway):
    """Found by fuzzing: a top-up of 1e185 made the store's writer compute a balance notice per
    1000 crossed, forever; every later write waited behind it."""
    status, _, body = await answer(gateway, _post("/v1/admin/accounts/demo/topup", b'{"amount": 1.28e+185}'))
    assert status == 400 and b'"field":"amount"' in body, body
    status, _, body = await answer(gateway, _post("/v1/admin/accounts/demo/topup", b'{"amount": 1000000}'))
    assert status == 200, body
    status, _, _ = await answer(gateway, http_fuzz.simple("DELETE", "/v1/messages/00ff", "demo-key"))
    assert status == 404


@pytest_twisted.ensureDeferred
async def test_a_protocol_upgrade_gets_one_answer(gateway):
    """Found by fuzzing: CONNECT (and any upgrade) was routed like a request *and* refused: two
    answers to one request. CONNECT is refused; an upgrade offered with a request is ignored
    (RFC 9110 §7.8: curl --http2 gets its answer over HTTP/1.1)."""
    status, _, body = await answer(gateway, b"CONNECT /v1/messages HTTP/1.1\r\nHost: fuzz\r\n\r\n")
    assert status == 400 and b"CONNECT is not supported" in body, body
    for upgrade in (b"h2c", b"websocket"):  # a second answer would raise here
        status, _, body = await answer(gateway, b"GET /v1/account HTTP/1.1\r\nHost: fuzz\r\n"
                                                b"Connection: upgrade\r\nUpgrade: " + upgrade + b"\r\n\r\n")
        assert status == 401 and b"unauthorized" in body, body


@pytest.mark.parametrize("path, body, field", [
    ("/v1/admin/stoplist", b'{"numbers": ["46701234567"], "account": {}}', "account"),
    ("/v1/admin/stoplist", b'{"numbers": ["46701234567"], "account": ["demo"]}', "account"),
    ("/v1/admin/operators/sim_a/mo", b'{"from": "https://user:pw@127.0.0.1/cb", "to": "72550", "text": "hi"}', "from"),
    ("/v1/admin/operators/sim_a/mo", b'{"from": "46701234567", "to": "7255072550725507255072550", "text": "hi"}', "to"),
])
@pytest_twisted.ensureDeferred
async def test_admin_fields_of_the_wrong_shape_are_a_400(gateway, path, body, field):
    """Found by fuzzing: an ``account`` that is an object or a list (unhashable) and an MO the
    simulated operator cannot send (``InvalidMO``) were 500s."""
    status, _, answered = await answer(gateway, _post(path, body))
    assert status == 400 and f'"field":"{field}"'.encode() in answered, answered


@pytest.mark.parametrize("body, field", [
    (b'{"numbers": ["46701234567"], "remove": "true"}', "remove"),
    (b'{"numbers": ["46701234567"], "account": "demo", "consent": 1}', "consent"),
    (b'{"numbers": [46701234567]}', "numbers"),
])
@pytest_twisted.ensureDeferred
async def test_stoplist_fields_of_the_wrong_type_are_a_400_and_change_nothing(gateway, body, field):
    """Found by schemathesis against the OpenAPI document (SPEC §4: a field of the wrong type is
    400 ``invalid_request``): ``"remove": "true"`` was read as false and *added* the number to the
    do-not-call list; a number given as a JSON number was 422 ``invalid_number``."""
    status, _, answered = await answer(gateway, _post("/v1/admin/stoplist", body))
    assert status == 400 and f'"field":"{field}"'.encode() in answered, answered
    status, _, listed = await answer(gateway, _get("/v1/admin/stoplist?number=46701234567", "ops-key"))
    assert status == 200 and b'"entries":[]' in listed, listed


@pytest_twisted.ensureDeferred
async def test_head_answers_as_get_would_without_the_body(gateway):
    """RFC 9110 9.1: every general-purpose server supports GET and HEAD (a load balancer's check)."""
    for path in (b"/healthz", b"/v1/openapi.json"):
        status, headers, body = await answer(gateway, b"HEAD " + path + b" HTTP/1.1\r\nHost: fuzz\r\n"
                                                                         b"Connection: close\r\n\r\n")
        got_status, got_headers, got_body = await answer(gateway, b"GET " + path + b" HTTP/1.1\r\nHost: fuzz\r\n"
                                                                                   b"Connection: close\r\n\r\n")
        assert (status, body) == (got_status, b"") and got_status == 200
        assert headers[b"content-length"] == b"%d" % len(got_body)


# --- found by a black-box audit of the customer API -----------------------------------------------
@pytest_twisted.ensureDeferred
async def test_a_field_given_twice_is_a_400_naming_it_wherever_it_stands(gateway):
    """docs/api.md: a repeated field is 400 ``invalid_request``. ``{"to": "12", ..., "to": "4670..."}``
    was sent to its last ``to``, and a client's bug went unseen."""
    for body in (b'{"to":"12","text":"x","to":"46701234567"}',
                 b'{"to" : "46701234567", "to":"46701234568", "text":"x"}',
                 b'{"to":"46701234567","text":"a \\": b","text":"c"}'):  # ": in a string: the slow look
        status, _, answered = await answer(gateway, _post("/v1/messages", body, key="demo-key"))
        field = b"to" if body.count(b'"to"') == 2 else b"text"
        assert status == 400 and b'"invalid_request"' in answered and b'"field":"' + field + b'"' in answered, answered
    status, _, answered = await answer(gateway, _post("/v1/messages", b'{"to":"46701234567","text":"a \\": b"}',
                                                      key="demo-key"))
    assert status == 202, answered


@pytest_twisted.ensureDeferred
async def test_a_lone_surrogate_in_the_text_is_a_400_on_text_not_invalid_json(gateway):
    """RFC 8259 allows ``"\\ud800"``; orjson refuses it, and the answer was 400 ``invalid_json``
    where docs/api.md says 400 ``invalid_request`` on ``text``."""
    status, _, answered = await answer(gateway, _post("/v1/messages", b'{"to":"46701234567","text":"\\ud800"}',
                                                      key="demo-key"))
    assert status == 400 and b'"invalid_request"' in answered and b'"field":"text"' in answered, answered
    for broken in (b'{"to":"46701234567","text":"x",}', b'{"text":NaN}', b'{"text":"\\ud800",}'):
        status, _, answered = await answer(gateway, _post("/v1/messages", broken, key="demo-key"))
        assert status == 400 and b'"invalid_json"' in answered, (broken, answered)


@pytest_twisted.ensureDeferred
async def test_a_field_given_as_null_is_the_same_request_for_its_idempotency_key(gateway):
    """docs/api.md: null is as if the field were left out; with the same Idempotency-Key the first
    answer was a 409 ``idempotency_conflict``."""
    def post(body: bytes) -> bytes:
        request = _post("/v1/messages", body, key="demo-key")
        return request.replace(b"\r\n\r\n", b"\r\nIdempotency-Key: k-null\r\n\r\n", 1)

    first = await answer(gateway, post(b'{"to":"46701234567","text":"idem"}'))
    again = await answer(gateway, post(b'{"text":"idem","reference":null,"to":"46701234567"}'))
    assert first[0] == again[0] == 202 and first[2] == again[2], (first, again)
    other = await answer(gateway, post(b'{"to":"46701234567","text":"idem","reference":"r1"}'))
    assert other[0] == 409 and b'"idempotency_conflict"' in other[2], other


@pytest_twisted.ensureDeferred
async def test_health_readiness_and_the_openapi_document_answer_other_methods_405(gateway):
    for path in ("/healthz", "/readyz", "/v1/openapi.json"):
        status, headers, answered = await answer(gateway, http_fuzz.simple("TRACE", path, "demo-key"))
        assert status == 405 and b'"method_not_allowed"' in answered, (path, answered)
