"""The OpenAPI document against the real gateway in-process (SQLite, simulated operators, loopback):
every route of smscore/api/routes.py is in it (a new route without documentation fails here), every
operation in it is routed, it is served without a key, and the pushes the gateway really makes
(status callbacks single and batched, MO, balance notices) match its ``webhooks``.

Routes are found the way a reader of routes.py would: the path literals and path patterns of
``smscore.api.routes``, ``lookups`` and ``customer_lookups`` give candidate paths (a pattern's alternatives
each, e.g. ``(pause|resume|topup)``), and each is asked with every method. Whatever the gateway
answers other than the router's own "No such resource." 404 or a 405 is a route, and must be in the
document under that method.
"""

from __future__ import annotations

import ast
import itertools
import json
import re
from pathlib import Path

import jsonschema_rs
import pytest
import pytest_twisted
from hypothesis import find, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThread

from smscore.api import customer_lookups, lookups, openapi, routes
from smscore.app import Gateway
from smscore.config import parse_config
from tests.fuzzing import http as http_fuzz
from tests.harness.waiting import eventually

SECRET = "openapi-secret"  # the backend fixture checks signatures with it
METHODS = ("GET", "POST", "DELETE", "PUT", "PATCH")
#: the web console (SPEC §14) is HTML pages and their assets on the API listener, not the JSON API
NOT_API = ("/console",)


@pytest.fixture
def gateway(tmp_path):
    config = parse_config(http_fuzz.GATEWAY_CONFIG.format(http=0, metrics=0), path=tmp_path / "gw.toml")
    gw = Gateway(config, reactor, CollectorRegistry())
    pytest_twisted.blockon(gw.start())
    pytest_twisted.blockon(Deferred.fromCoroutine(
        eventually(lambda: all(link.is_up() for link in gw.links.values()), "the simulated operators bound")))
    yield gw
    pytest_twisted.blockon(gw.stop())


def _ask(gw, method: str, path: str, key: str | None = None, body: bytes = b"") -> Deferred:
    auth = f"Authorization: Bearer {key}\r\n" if key else ""
    data = (f"{method} {path} HTTP/1.1\r\nHost: t\r\n{auth}Connection: close\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    return deferToThread(http_fuzz.exchange, gw.http_port.getHost().port, data, 10.0)


# -- what routes.py routes -----------------------------------------------------------------------------
def _literal_paths() -> set[str]:
    out = set()
    for module in (routes, lookups, customer_lookups):
        tree = ast.parse(Path(module.__file__).read_text())
        out |= {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant)
                and isinstance(node.value, str) and re.fullmatch(r"/[A-Za-z0-9_./-]+", node.value)}
    return out


def _pattern_paths() -> set[str]:
    """A sample path for each alternative of each path pattern of the route modules."""
    out = set()
    patterns = [value.pattern for module in (routes, lookups, customer_lookups) for value in vars(module).values()
                if isinstance(value, re.Pattern) and value.pattern.startswith("^/")]
    assert len(patterns) >= 7  # routes' four, lookups' three
    for pattern in patterns:
        words = re.findall(r"\(((?:[a-z]+\|)+[a-z]+)\)", pattern)
        for choice in itertools.product(*(w.split("|") for w in words)):
            one = pattern
            for group, word in zip(words, choice):
                one = one.replace(f"({group})", word, 1)
            out.add(find(st.from_regex(one, fullmatch=True), lambda _: True,
                         settings=settings(database=None, max_examples=10)))
    return out


def _documented_paths(doc) -> set[str]:
    samples = {"id": "0f", "account": "demo", "number": "46701234567", "operator": "sim_a"}
    return {re.sub(r"\{(\w+)\}", lambda m: samples[m.group(1)], template) for template in doc["paths"]}


def _template(doc, path: str) -> str | None:
    """The document's path for a concrete path: a literal one before one with parameters."""
    matching = [t for t in doc["paths"] if re.fullmatch(re.sub(r"\{\w+\}", "[^/]+", t), path)]
    return min(matching, key=lambda t: (t.count("{"), t)) if matching else None


async def _routed(gw, method: str, path: str) -> bool:
    key = "ops-key" if path.startswith("/v1/admin/") else "demo-key"
    status, _, body = await _ask(gw, method, path, key, b"{}" if method in ("POST", "PUT", "PATCH") else b"")
    if status == 405:
        return False
    return not (status == 404 and json.loads(body)["error"]["message"] == "No such resource.")


@pytest_twisted.ensureDeferred
async def test_every_route_is_in_the_document_and_every_operation_is_routed(gateway):
    doc = openapi.document()
    candidates = _literal_paths() | _pattern_paths() | _documented_paths(doc)
    assert {"/v1/messages", "/v1/admin/binds", "/v1/admin/messages/0/approve"} <= candidates
    routed = set()
    for path in sorted(candidates):
        if path.startswith(NOT_API):
            continue
        for method in METHODS:
            if await _routed(gateway, method, path):
                routed.add((method, path))
    undocumented = sorted(f"{m} {p}" for m, p in routed
                          if (t := _template(doc, p)) is None or m.lower() not in doc["paths"][t])
    assert not undocumented, f"routes the OpenAPI document (smscore/api/openapi/) lacks: {undocumented}"
    # and the other way: each documented operation is answered by a route, not by the 404 of none
    operations = {(m.upper(), t) for t, item in doc["paths"].items() for m in item}
    reached = {(m, _template(doc, p)) for m, p in routed}
    assert operations == reached, f"documented but not routed: {sorted(operations - reached)}"


@pytest_twisted.ensureDeferred
async def test_the_document_is_served_without_a_key_by_every_process(gateway):
    status, headers, body = await _ask(gateway, "GET", "/v1/openapi.json")
    assert status == 200 and headers[b"content-type"] == b"application/json"
    assert json.loads(body) == openapi.document()
    assert routes._served_by_any("GET", "/v1/openapi.json")  # an API worker answers it itself


# -- the pushes against the webhooks ------------------------------------------------------------------
PUSH_CONFIG = """
[store]
url = "sqlite:///gw.db"
[http]
listen = "127.0.0.1:0"
[metrics]
listen = "127.0.0.1:0"
[push]
timeout = "2s"
allow_networks = ["127.0.0.0/8"]
[operators.sim_a]
type = "simulated"
receipt_delay = "10ms"
[profiles.standard]
operators = ["sim_a"]
[accounts.acme]
api_keys = ["acme-key"]
senders = ["ACME"]
secret = "{secret}"
callback_url = "{url}/status"
[accounts.gamma]
api_keys = ["gamma-key"]
senders = ["GAMMA"]
secret = "{secret}"
callback_url = "{url}/batch"
callback_batch = 10
callback_linger = "100ms"
billing = "prepaid"
balance = 1000.2
prices = {{ "default" = 0.5 }}
[[shortcodes]]
number = "72550"
[[keywords]]
shortcode = "72550"
keyword = "PIZZA"
account = "acme"
url = "{url}/mo"
"""


def _validator(doc, name: str):
    return jsonschema_rs.validator_for({"$schema": "https://json-schema.org/draft/2020-12/schema",
                                        "components": doc["components"], "$ref": f"#/components/schemas/{name}"},
                                       validate_formats=True)


@pytest_twisted.ensureDeferred
async def test_the_pushes_the_gateway_makes_match_the_webhooks(tmp_path, backend):
    doc = openapi.document()
    text = PUSH_CONFIG.format(secret=SECRET, url=backend.url("").rstrip("/"))
    gw = Gateway(parse_config(text, path=tmp_path / "gw.toml"), reactor, CollectorRegistry())
    await gw.start()
    try:
        await eventually(lambda: gw.links["sim_a"].is_up(), "the bind")
        for key in ("acme-key", "gamma-key"):
            status, _, body = await _ask(gw, "POST", "/v1/messages", key,
                                         b'{"to": "46701234567", "text": "hello", "reference": "r1"}')
            assert status == 202, body
        assert await gw.sims["sim_a"].inject_mo("46701234567", "72550", "pizza large") == "delivered"

        def bodies(path):
            return [r.json() for r in backend.requests if r.path == path]

        def all_came():
            batched = [e for b in bodies("/batch") if "events" in b for e in b["events"]]
            return ({"submitted", "delivered"} <= {b["status"] for b in bodies("/status")}
                    and "delivered" in {e["status"] for e in batched}
                    and any(b.get("type") == "balance" for b in bodies("/batch")) and bodies("/mo"))

        await eventually(all_came, "status callbacks, a batch, a balance notice and an MO push",
                         state=lambda: [(r.path, r.body[:200]) for r in backend.requests])
    finally:
        await gw.stop()
    webhooks = doc["webhooks"]
    which = {"/status": "StatusEvent", "/mo": "MoPush"}
    for request in backend.requests:
        body = request.json()
        name = which.get(request.path) or ("BalanceNotice" if body.get("type") == "balance" else "StatusBatch")
        errors = [e.message for e in _validator(doc, name).iter_errors(body)]
        assert not errors, f"{request.path} {body} breaks {name}: {errors}"
        assert request.signature_valid is True and request.headers["content-type"] == "application/json"
        hook = next(h for h in webhooks.values()
                    if h["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/" + name))
        for header in hook["post"]["parameters"]:
            value = request.headers.get(header["name"].lower())
            assert value is not None or not header["required"], header["name"]
            assert value is None or re.search(header["schema"]["pattern"], value), (header["name"], value)
    assert {"StatusEvent", "MoPush", "BalanceNotice", "StatusBatch"} == {
        which.get(r.path) or ("BalanceNotice" if r.json().get("type") == "balance" else "StatusBatch")
        for r in backend.requests}
