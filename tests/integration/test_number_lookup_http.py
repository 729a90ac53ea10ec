"""The HTTP number look-up (``connectors.number_lookup``) over real loopback TCP: against the
simulated service (``tests.lookup_service``, a stdlib server on its own thread) and against a
twisted.web resource that answers each number as the test needs (statuses, bodies, silence).
Nothing sleeps: each test waits on the look-up's Deferred."""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.protocol import Factory, Protocol
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Site

from connectors.number_lookup import HttpNumberLookup, LookupFailed
from tests.lookup_service import LookupService

NETWORKS = {"46701234567": "24001", "46731234567": "24002"}
ODD = "+46 70&msisdn=1/#?å"


@pytest.fixture
def service():
    s = LookupService(NETWORKS.get)
    yield s
    s.close()


@pytest.fixture
def client():
    """``client(url, timeout=1.0)``: a look-up client, its connections closed after the test."""
    made: list[HttpNumberLookup] = []

    def make(url: str, timeout: float = 1.0) -> HttpNumberLookup:
        made.append(HttpNumberLookup(reactor, url, timeout))
        return made[-1]

    yield make
    for c in made:
        pytest_twisted.blockon(c.close())


class _Canned(Resource):
    """Answers ``/lookup?msisdn=N`` from ``ANSWERS[N]`` ((status, body), or None: never answers)
    and records each request's raw URI and decoded msisdn."""

    isLeaf = True
    ANSWERS: dict[str, tuple[int, bytes] | None] = {
        "1": (200, b'{"network": "24001"}'),
        "404": (404, b'{"error": "no such number"}'),
        "500": (500, b"internal error"),
        "201": (201, b'{"network": "24001"}'),
        "text": (200, b"24001"),
        "array": (200, b'["24001"]'),
        "other": (200, b'{"operator": "24001"}'),
        "int": (200, b'{"network": 24001}'),
        "silent": None,
        ODD: (200, b'{"network": "odd"}'),
    }

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[bytes, str]] = []

    def render_GET(self, request):
        number = request.args[b"msisdn"][0].decode("utf-8")
        self.seen.append((request.uri, number))
        answer = self.ANSWERS[number]
        if answer is None:
            return NOT_DONE_YET
        request.setResponseCode(answer[0])
        request.setHeader(b"content-type", b"application/json")
        return answer[1]


@pytest.fixture
def canned():
    resource = _Canned()
    port = reactor.listenTCP(0, Site(resource), interface="127.0.0.1")
    resource.url = f"http://127.0.0.1:{port.getHost().port}/lookup?msisdn={{number}}"
    yield resource
    pytest_twisted.blockon(port.stopListening())


async def failure_of(d) -> str:
    with pytest.raises(LookupFailed) as caught:
        await d
    return caught.value.reason


@pytest_twisted.ensureDeferred
async def test_a_known_number_gives_its_network(service, client):
    assert await client(service.url).look_up("46701234567") == "24001"
    assert (service.count, service.asked) == (1, ["46701234567"])


@pytest_twisted.ensureDeferred
async def test_an_unknown_number_gives_none(service, client):
    assert await client(service.url).look_up("46991234567") is None
    assert service.count == 1


@pytest_twisted.ensureDeferred
async def test_several_look_ups_share_one_kept_alive_connection(service, client):
    lookup = client(service.url)
    answers = [await lookup.look_up(n) for n in ("46701234567", "46731234567", "4600", "46701234567")]
    assert answers == ["24001", "24002", None, "24001"]
    assert (service.count, service.connections) == (4, 1)


@pytest_twisted.ensureDeferred
async def test_not_found_is_a_failure(service, client):
    wrong_path = service.url.replace("/lookup?", "/elsewhere?")
    assert await failure_of(client(wrong_path).look_up("46701234567")) == "http 404"
    assert service.count == 0


@pytest.mark.parametrize("number, reason", [
    ("404", "http 404"),
    ("500", "http 500"),
    ("201", "http 201"),
    ("text", "answer not a JSON object"),
    ("array", "answer not a JSON object"),
    ("other", 'answer without "network"'),
    ("int", '"network" must be a string or null, got int'),
])
@pytest_twisted.ensureDeferred
async def test_an_answer_that_is_not_a_200_with_a_network_is_a_failure(canned, client, number, reason):
    lookup = client(canned.url)
    assert await failure_of(lookup.look_up(number)) == reason
    assert await lookup.look_up("1") == "24001"  # and the client goes on


@pytest_twisted.ensureDeferred
async def test_a_body_that_is_not_json_is_a_failure(canned, client):
    canned.ANSWERS = {**_Canned.ANSWERS, "junk": (200, b"<html>oops</html>")}
    assert await failure_of(client(canned.url).look_up("junk")) == "answer not JSON"


@pytest_twisted.ensureDeferred
async def test_the_number_is_url_quoted_whatever_it_holds(canned, client):
    assert await client(canned.url).look_up(ODD) == "odd"
    [(uri, number)] = canned.seen
    assert uri == b"/lookup?msisdn=%2B46%2070%26msisdn%3D1%2F%23%3F%C3%A5"
    assert number == ODD


@pytest_twisted.ensureDeferred
async def test_odd_numbers_reach_the_simulated_service_as_written(service, client):
    assert await client(service.url).look_up(ODD) is None
    assert service.asked == [ODD]


@pytest_twisted.ensureDeferred
async def test_a_service_that_never_answers_fails_after_the_timeout(canned, client):
    started = reactor.seconds()
    assert await failure_of(client(canned.url, timeout=0.2).look_up("silent")) == "timeout"
    assert 0.2 <= reactor.seconds() - started < 0.7


@pytest_twisted.ensureDeferred
async def test_a_server_that_accepts_and_says_nothing_fails_after_the_timeout(client):
    port = reactor.listenTCP(0, Factory.forProtocol(Protocol), interface="127.0.0.1")
    try:
        url = f"http://127.0.0.1:{port.getHost().port}/lookup?msisdn={{number}}"
        started = reactor.seconds()
        assert await failure_of(client(url, timeout=0.2).look_up("46701234567")) == "timeout"
        assert 0.2 <= reactor.seconds() - started < 0.7
    finally:
        await port.stopListening()


@pytest_twisted.ensureDeferred
async def test_connection_refused_is_a_failure(client):
    port = reactor.listenTCP(0, Factory.forProtocol(Protocol), interface="127.0.0.1")
    number = port.getHost().port
    await port.stopListening()  # nothing listens there now
    url = f"http://127.0.0.1:{number}/lookup?msisdn={{number}}"
    assert await failure_of(client(url).look_up("46701234567")) == "connection refused"


@pytest_twisted.ensureDeferred
async def test_a_kept_alive_connection_the_service_closed_is_replaced(service, client):
    lookup = client(service.url)
    assert await lookup.look_up("46701234567") == "24001"
    service.drop_connections()  # as a restarted service would; the client may not have seen it yet
    assert await lookup.look_up("46731234567") == "24002"
    assert (service.count, service.connections) == (2, 2)
