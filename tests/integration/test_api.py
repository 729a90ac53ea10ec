"""The HTTP API on a real loopback socket, with treq as the client.

The pipeline runs on the in-memory store with fake operator links, so these tests are about the
API's contract: status codes, error bodies, field order, authorization, and 202 only after storage.
"""

from __future__ import annotations

import json

import pytest
import pytest_twisted
import treq
from prometheus_client import CollectorRegistry
from twisted.internet import reactor
from twisted.internet.defer import Deferred

from smscore.api import api_factory
from smscore.config import parse_config
from smscore.metrics import Metrics
from smscore.pipeline import Pipeline
from smscore.ratelimit import LocalBuckets
from smscore.routing import Routing
from smscore.store.base import StoreRules
from smscore.store.memory import MemoryStore
from tests.fakes import FakeLink

CONFIG = """
[gateway]
max_parts_cap = 3
[admin]
api_keys = ["ops-key"]
[operators.cheap]
type = "simulated"
cost = 0.1
[operators.dear]
type = "simulated"
cost = 0.2
[profiles.standard]
operators = ["cheap", "dear"]
[profiles.other]
operators = ["dear"]
[accounts.acme]
api_keys = ["acme-key"]
senders = ["ACME", "4670111111"]
max_parts = 2
[accounts.beta]
api_keys = ["beta-key"]
senders = ["BETA"]
"""


class Harness:
    """What ApiResource needs of a gateway, over the in-memory store."""

    def __init__(self, tmp_path):
        self.config = parse_config(CONFIG, path=tmp_path / "gw.toml")
        self.clock = reactor
        self.links = {name: FakeLink(name) for name in ("cheap", "dear")}
        self.sims = {}
        self.rate_buckets = LocalBuckets()
        routing = Routing.of(self.config)
        self.store = MemoryStore(StoreRules(untried=routing.untried))
        self.pipeline = Pipeline(store=self.store, clock=reactor, node="gw1", lease=30, routing=routing,
                                 metrics=Metrics(CollectorRegistry()))
        for link in self.links.values():
            self.pipeline.add_link(link)

    def readiness(self):
        return True, []


@pytest.fixture
def api(tmp_path):
    h = Harness(tmp_path)
    port = reactor.listenTCP(0, api_factory(h, reactor), interface="127.0.0.1")
    h.url = f"http://127.0.0.1:{port.getHost().port}"
    yield h
    pytest_twisted.blockon(port.stopListening())


async def call(api, method, path, body=None, key="acme-key", raw=None, headers=None):
    hdrs = {"Content-Type": ["application/json"]}
    if key:
        hdrs["Authorization"] = [f"Bearer {key}"]
    hdrs.update(headers or {})
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    resp = await treq.request(method, api.url + path, data=data, headers=hdrs)
    text = await resp.content()
    return resp.code, json.loads(text)


@pytest_twisted.ensureDeferred
async def test_post_one_message_is_stored_and_submitted(api):
    code, body = await call(api, "POST", "/v1/messages", {"to": "+46701234567", "text": "Hello"})
    assert code == 202
    [m] = body["messages"]
    assert m["to"] == "46701234567" and m["status"] == "queued" and m["parts"] == 1
    stored = api.store.messages[m["id"]]
    assert stored.sender == "ACME" and stored.account == "acme" and stored.encoding == "gsm7"
    assert [r.message_id for r, _ in api.links["cheap"].submits] == [m["id"]]
    code, got = await call(api, "GET", f"/v1/messages/{m['id']}")
    assert code == 200
    assert got["id"] == m["id"] and got["from"] == "ACME" and got["text"] == "Hello"
    assert got["events"][0]["status"] == "queued" and got["events"][0]["final"] is False
    assert got["created_at"].endswith("Z")


@pytest_twisted.ensureDeferred
async def test_post_a_list_of_recipients(api):
    to = [f"4670{i:07d}" for i in range(1000)]
    code, body = await call(api, "POST", "/v1/messages", {"to": to, "text": "Hi all", "reference": "batch-1"})
    assert code == 202
    assert [m["to"] for m in body["messages"]] == to
    assert len(api.store.messages) == 1000
    code, body = await call(api, "POST", "/v1/messages", {"to": to + ["46700000001"], "text": "x"})
    assert (code, body["error"]["code"], body["error"]["field"]) == (400, "invalid_request", "to")


@pytest_twisted.ensureDeferred
async def test_202_waits_for_the_store(api):
    gate = Deferred()
    accept = api.store.accept

    def slow_accept(*a, **kw):
        d = accept(*a, **kw)
        return gate.addCallback(lambda _: d)

    api.store.accept = slow_accept
    answer = call(api, "POST", "/v1/messages", {"to": "46701234567", "text": "Hello"})
    pending = Deferred.fromCoroutine(answer)
    await treq.get(api.url + "/healthz")  # the server is serving other requests meanwhile
    assert not pending.called
    gate.callback(None)
    code, _ = await pending
    assert code == 202


@pytest_twisted.ensureDeferred
async def test_a_store_failure_is_503_and_nothing_is_claimed(api):
    def broken(*a, **kw):
        from twisted.internet.defer import fail

        return fail(OSError("disk full"))

    api.store.accept = broken
    code, body = await call(api, "POST", "/v1/messages", {"to": "46701234567", "text": "Hello"})
    assert (code, body["error"]["code"]) == (503, "unavailable")
    assert api.pipeline.held == 0


CASES = [
    # (body, status, code, field)
    ({"text": "hi"}, 400, "invalid_request", "to"),
    ({"to": 46701234567, "text": "hi"}, 400, "invalid_request", "to"),
    ({"to": [], "text": "hi"}, 400, "invalid_request", "to"),
    ({"to": "0701234567", "text": "hi"}, 422, "invalid_number", "to"),
    ({"to": "4670123", "text": "hi"}, 422, "invalid_number", "to"),
    ({"to": "46701234567"}, 400, "invalid_request", "text"),
    ({"to": "46701234567", "text": ""}, 400, "invalid_request", "text"),
    ({"to": "46701234567", "text": "x" * 307}, 422, "text_too_long", "text"),  # acme max_parts 2
    ({"to": "46701234567", "text": "x" * 161, "max_parts": 1}, 422, "text_too_long", "text"),
    ({"to": "46701234567", "text": "€" * 154}, 422, "text_too_long", "text"),  # 308 septets > 2 parts
    ({"to": "46701234567", "text": "hi", "from": "NOTMINE"}, 422, "invalid_sender", "from"),
    ({"to": "46701234567", "text": "hi", "from": "TOO_LONG_SENDER!"}, 422, "invalid_sender", "from"),
    ({"to": "46701234567", "text": "hi", "profile": "nope"}, 422, "unknown_profile", "profile"),
    ({"to": "46701234567", "text": "hi", "send_at": "tomorrow"}, 400, "invalid_request", "send_at"),
    ({"to": "46701234567", "text": "hi", "send_at": "0001-01-01T00:00:00+05:00"}, 400, "invalid_request", "send_at"),
    ({"to": "46701234567", "text": "hi", "send_at": "9999-12-31T23:59:59-05:00"}, 400, "invalid_request", "send_at"),
    ({"to": "46701234567", "text": "hi", "send_at": "2040-01-01T00:00:00Z"}, 422, "send_at_out_of_range", "send_at"),
    ({"to": "46701234567", "text": "hi", "encoding": "ebcdic"}, 400, "invalid_request", "encoding"),
    ({"to": "46701234567", "text": "😀", "encoding": "gsm7"}, 400, "invalid_request", "encoding"),
    ({"to": "46701234567", "text": "hi", "max_parts": 0}, 400, "invalid_request", "max_parts"),
    ({"to": "46701234567", "text": "hi", "reference": "r" * 65}, 400, "invalid_request", "reference"),
    ({"to": "46701234567", "text": "hi", "callback_url": 7}, 400, "invalid_request", "callback_url"),
    ({"to": "46701234567", "text": "hi", "callback_url": "ftp://x"}, 422, "invalid_callback_url", "callback_url"),
    ({"to": "46701234567", "text": "hi", "callback_url": "http://u:p@x.example/"}, 422, "invalid_callback_url",
     "callback_url"),
    ({"to": "46701234567", "text": "hi", "callback_url": "http://x.example/" + "a" * 2048}, 422,
     "invalid_callback_url", "callback_url"),
    ({"to": "46701234567", "text": "hi", "callback_url": "http://127.0.0.1:8080/v1/admin/reload"}, 422,
     "invalid_callback_url", "callback_url"),  # not one of the account's callback_hosts
    ({"to": "46701234567", "text": "hi", "colour": "red"}, 400, "invalid_request", "colour"),
    # Several errors: the first of to, text, from, profile, send_at wins.
    ({"to": "bad", "text": "", "from": "NOTMINE"}, 422, "invalid_number", "to"),
    ({"to": "46701234567", "text": "", "from": "NOTMINE", "profile": "nope"}, 400, "invalid_request", "text"),
    ({"to": "46701234567", "text": "hi", "from": "NOTMINE", "profile": "nope"}, 422, "invalid_sender", "from"),
    ({"to": "46701234567", "text": "hi", "profile": "nope", "send_at": "x"}, 422, "unknown_profile", "profile"),
]


@pytest.mark.parametrize("body,status,code,field", CASES)
@pytest_twisted.ensureDeferred
async def test_refusals_name_the_first_bad_field(api, body, status, code, field):
    got_status, got = await call(api, "POST", "/v1/messages", body)
    assert (got_status, got["error"]["code"], got["error"].get("field")) == (status, code, field)
    assert got["error"]["message"]
    assert api.store.messages == {}  # refused whole


@pytest_twisted.ensureDeferred
async def test_ok_edge_cases(api):
    # 2 parts of GSM are fine for acme; a past send_at means now; a numeric sender with +.
    code, body = await call(api, "POST", "/v1/messages", {
        "to": "46701234567", "text": "x" * 306, "send_at": "2001-01-01T00:00:00+01:00", "from": "+4670111111"})
    assert code == 202 and body["messages"][0]["parts"] == 2 and body["messages"][0]["status"] == "queued"
    stored = api.store.messages[body["messages"][0]["id"]]
    assert stored.sender == "4670111111" and stored.send_at is None
    code, body = await call(api, "POST", "/v1/messages", {
        "to": "46701234567", "text": "later", "send_at": "2030-01-01T00:00:00Z"})
    assert code == 202 and body["messages"][0]["status"] == "scheduled"


@pytest_twisted.ensureDeferred
async def test_bad_json_auth_and_isolation(api):
    code, body = await call(api, "POST", "/v1/messages", raw=b"{nope")
    assert (code, body["error"]["code"]) == (400, "invalid_json")
    code, body = await call(api, "POST", "/v1/messages", raw=b"[1, 2]")
    assert (code, body["error"]["code"]) == (400, "invalid_json")
    # SPEC §15: deep nesting is a 400, never a 500 (RecursionError): a body 1,000 deep, or too deep to
    # parse at all, is not a message; 1,000 deep in a field is that field's wrong type
    for raw in (b"[" * 1000 + b"]" * 1000, b"[" * 100_000 + b"]" * 100_000,
                b'{"to": "46701234567", "text": "hi", "reference": ' + b"[" * 5000 + b"]" * 5000 + b"}"):
        code, body = await call(api, "POST", "/v1/messages", raw=raw)
        assert (code, body["error"]["code"]) == (400, "invalid_json"), raw[:40]
    code, body = await call(api, "POST", "/v1/messages",
                            raw=b'{"to": "46701234567", "text": "hi", "reference": ' + b"[" * 1000 + b"]" * 1000 + b"}")
    assert (code, body["error"]["code"], body["error"]["field"]) == (400, "invalid_request", "reference")
    code, body = await call(api, "POST", "/v1/messages", {"to": "46701234567", "text": "hi"}, key=None)
    assert (code, body["error"]["code"]) == (401, "unauthorized")
    code, body = await call(api, "POST", "/v1/messages", {"to": "46701234567", "text": "hi"}, key="wrong")
    assert (code, body["error"]["code"]) == (401, "unauthorized")
    code, body = await call(api, "POST", "/v1/messages", raw=b" " * ((1 << 20) + 1))
    assert (code, body["error"]["code"]) == (413, "too_large")
    code, body = await call(api, "POST", "/v1/messages", {"to": "46701234567", "text": "mine"})
    mid = body["messages"][0]["id"]
    # Another account's key sees not_found, exactly like an id that does not exist.
    assert (await call(api, "GET", f"/v1/messages/{mid}", key="beta-key"))[0] == 404
    assert (await call(api, "GET", "/v1/messages/00000000000000000000", key="beta-key"))[0] == 404
    assert (await call(api, "GET", f"/v1/messages/{mid}", key=None))[0] == 401
    assert (await call(api, "GET", "/nope"))[0] == 404


@pytest_twisted.ensureDeferred
async def test_admin_endpoints_need_an_admin_key(api):
    body = {"from": "46701234567", "to": "72550", "text": "hi"}
    assert (await call(api, "POST", "/v1/admin/operators/cheap/mo", body, key=None))[0] == 401
    assert (await call(api, "POST", "/v1/admin/operators/cheap/mo", body, key="nope"))[0] == 401
    assert (await call(api, "POST", "/v1/admin/operators/cheap/mo", body, key="acme-key"))[0] == 403
    code, got = await call(api, "POST", "/v1/admin/operators/cheap/mo", body, key="ops-key")
    assert (code, got["error"]["code"]) == (404, "not_found")  # the harness has no simulated SMSC


@pytest_twisted.ensureDeferred
async def test_health(api):
    resp = await treq.get(api.url + "/healthz")
    assert resp.code == 200 and json.loads(await resp.content()) == {"status": "ok"}


@pytest_twisted.ensureDeferred
async def test_pulls_are_per_account_and_paged_by_cursor(api):
    code, body = await call(api, "POST", "/v1/messages", {"to": ["46701234567", "46701234568"], "text": "mine"})
    ids = [m["id"] for m in body["messages"]]
    code, page = await call(api, "GET", "/v1/messages?limit=1")
    assert code == 200 and [m["id"] for m in page["messages"]] == ids[:1] and "events" not in page["messages"][0]
    code, page2 = await call(api, "GET", f"/v1/messages?cursor={page['next_cursor']}")
    assert [m["id"] for m in page2["messages"]] == ids[1:]
    code, filtered = await call(api, "GET", "/v1/messages?to=%2B46701234568")
    assert [m["id"] for m in filtered["messages"]] == ids[1:]
    # another account's key sees none of it, in either pull
    code, other = await call(api, "GET", "/v1/messages", key="beta-key")
    assert (code, other["messages"]) == (200, [])
    code, other = await call(api, "GET", "/v1/inbound", key="beta-key")
    assert (code, other["messages"]) == (200, [])
    for query, field in (("cursor=abc", "cursor"), ("limit=0", "limit"), ("limit=1001", "limit"),
                         ("limit=" + "9" * 4301, "limit"),  # more digits than int() takes
                         ("status=sent", "status"), ("updated_since=yesterday", "updated_since"), ("x=1", "x"),
                         # SPEC §15: what the parser or the clock cannot hold is a 400, never a 500
                         ("cursor=%C3%A9", "cursor"), ("status=%FF", "status"),
                         ("updated_since=0001-01-01T00:00:00%2B05:00", "updated_since"),
                         ("updated_since=9999-12-31T23:59:59-05:00", "updated_since")):
        code, err = await call(api, "GET", f"/v1/messages?{query}")
        assert (code, err["error"]["code"], err["error"]["field"]) == (400, "invalid_request", field), query
    code, err = await call(api, "GET", "/v1/messages?to=123")
    assert (code, err["error"]["code"]) == (422, "invalid_number")


@pytest_twisted.ensureDeferred
async def test_another_method_on_a_known_path_is_405_with_allow(api):
    """RFC 9110: a 405 names the methods the path takes."""
    for method, path, allow in [("PUT", "/v1/messages", "GET, POST"), ("POST", "/v1/account", "GET"),
                                ("PATCH", "/v1/messages/0123abcd", "GET, DELETE")]:
        resp = await treq.request(method, api.url + path, headers={"Authorization": ["Bearer acme-key"]})
        body = json.loads(await resp.content())
        assert (resp.code, body["error"]["code"]) == (405, "method_not_allowed"), (method, path)
        assert resp.headers.getRawHeaders("Allow") == [allow], (method, path)
