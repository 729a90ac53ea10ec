"""The monitoring pack against a running gateway (SQLite, a simulated operator over loopback SMPP,
a real push backend): every metric the Grafana dashboard and the alert rules query is in
``/metrics``, the series SPEC §14 adds carry their labels, and each API request writes one access
log line without its key or query string.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import pytest_twisted
import treq
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import capture_logs
from twisted.internet import reactor

from connectors.sim.scenarios import BindRefused
from connectors.smsc_sim import SimSettings
from smscore import version
from smscore.app import Gateway
from smscore.config import load_config, parse_config
from tests.harness.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "etc" / "grafana" / "smsgw.json"
RULES = ROOT / "etc" / "prometheus" / "alerts.yml"
SECRET = "monitoring-secret"

CONFIG = """
[store]
url = "sqlite:///gw.db"
[http]
listen = "127.0.0.1:0"
[metrics]
listen = "127.0.0.1:0"
[push]
allow_networks = ["127.0.0.0/8"]
[admin]
api_keys = ["ops-key"]
[smpp_server]
listen = "127.0.0.1:0"
[operators.sim_a]
type = "simulated"
receipt_delay = "10ms"
[profiles.standard]
operators = ["sim_a"]
[accounts.acme]
api_keys = ["acme-key"]
senders = ["ACME"]
secret = "{secret}"
callback_url = "{status_url}"
[[shortcodes]]
number = "72550"
[[keywords]]
shortcode = "72550"
keyword = "PIZZA"
account = "acme"
reply = "Thanks"
"""

#: a metric name in PromQL: ours and prometheus_client's process collector's
_NAME = re.compile(r"\b((?:smsgw|process)_[a-z_]+)")
_HISTOGRAM_SERIES = ("_bucket", "_sum", "_count")


def queried_names(expressions) -> set[str]:
    return {name for expr in expressions for name in _NAME.findall(expr)}


def dashboard_expressions() -> list[str]:
    board = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    exprs += [v["query"]["query"] for v in board["templating"]["list"] if v["type"] == "query"]
    return exprs


def rule_expressions() -> list[str]:
    import yaml

    rules = yaml.safe_load(RULES.read_text())
    return [r["expr"] for group in rules["groups"] for r in group["rules"]]


def exposed(text: str) -> tuple[dict[str, str], set[str]]:
    """({family's exposition name: type}, names of the samples present)."""
    families, samples = {}, set()
    for family in text_string_to_metric_families(text):
        name = family.name + "_total" if family.type == "counter" else family.name
        families[name] = family.type
        samples.update(s.name for s in family.samples)
    return families, samples


def missing(names: set[str], families: dict[str, str]) -> set[str]:
    """The queried names /metrics does not declare (a histogram's _bucket/_sum/_count are its own)."""
    out = set()
    for name in names:
        base = next((name[: -len(s)] for s in _HISTOGRAM_SERIES if name.endswith(s)), None)
        if name in families or (base is not None and families.get(base) == "histogram"):
            continue
        out.add(name)
    return out


def test_the_dashboard_and_the_rules_query_the_metrics_of_spec_14():
    """A guard on the test below: the expressions were read and name what SPEC §14 asks for."""
    board, rules = queried_names(dashboard_expressions()), queried_names(rule_expressions())
    assert {"smsgw_delivery_seconds_bucket", "smsgw_messages_total", "smsgw_bind_up", "smsgw_push_backlog",
            "smsgw_callbacks_total", "smsgw_mo_total", "smsgw_build_info", "process_cpu_seconds_total"} <= board
    assert {"smsgw_bind_up", "smsgw_messages_total", "smsgw_backlog", "smsgw_push_backlog",
            "smsgw_callbacks_total", "smsgw_ready"} <= rules


@pytest.fixture
def gateway(tmp_path, backend):
    text = CONFIG.format(secret=SECRET, status_url=backend.url("/status"))
    gw = Gateway(parse_config(text, path=tmp_path / "gw.toml"), reactor, CollectorRegistry())
    gw.push_backlog.interval = 0.05  # read the store often: the test waits for the figure
    pytest_twisted.blockon(gw.start())
    yield gw
    pytest_twisted.blockon(gw.stop())


async def call(gw, method, path, body=None, key=None):
    headers = {"Authorization": [f"Bearer {key}"]} if key else {}
    url = f"http://127.0.0.1:{gw.http_port.getHost().port}{path}"
    resp = await treq.request(method, url, data=json.dumps(body).encode() if body else None, headers=headers)
    return resp.code, await resp.content()


async def bound(gw) -> bool:
    return gw.links["sim_a"].is_up()


async def scrape(gw) -> str:
    resp = await treq.get(f"http://127.0.0.1:{gw.metrics_port.getHost().port}/metrics")
    assert resp.code == 200
    return (await resp.content()).decode()


@pytest_twisted.ensureDeferred
async def test_every_metric_the_dashboard_and_the_rules_query_is_exposed(gateway, backend):
    gw = gateway
    await eventually(lambda: bound(gw), "the bind")
    code, body = await call(gw, "POST", "/v1/messages", {"to": "46701234567", "text": "hello"}, key="acme-key")
    assert code == 202
    message_id = json.loads(body)["messages"][0]["id"]
    assert await gw.sims["sim_a"].inject_mo("46701234567", "72550", "pizza large") == "delivered"

    async def delivered_and_pushed():
        m = await gw.store.get(message_id)
        return m.status.value == "delivered" and await gw.store.pending_push_jobs() == [] and backend.requests

    await eventually(delivered_and_pushed, "delivery and its status callback")
    families, samples = exposed(await scrape(gw))

    assert missing(queried_names(dashboard_expressions()), families) == set()
    assert missing(queried_names(rule_expressions()), families) == set()

    # SPEC §14's series, with their labels, in this node of one process.
    registry = gw.metrics.registry
    sample = registry.get_sample_value
    # the message and the keyword's reply: queued before any operator was tried, then sim_a's
    assert sample("smsgw_messages_total", {"status": "queued", "operator": ""}) == 2
    assert sample("smsgw_accepted_total") == 2
    assert sample("smsgw_messages_total", {"status": "submitted", "operator": "sim_a"}) == 2

    async def both_delivered():
        return sample("smsgw_delivery_seconds_count", {"operator": "sim_a"}) == 2
    await eventually(both_delivered, "the reply delivered")
    assert sample("smsgw_messages_total", {"status": "delivered", "operator": "sim_a"}) == 2
    assert sample("smsgw_build_info", {"version": version()}) == 1
    assert sample("smsgw_ready") == 1
    assert sample("smsgw_mo_total", {"shortcode": "72550", "keyword": "PIZZA", "outcome": "keyword"}) == 1
    assert sample("smsgw_callbacks_total", {"kind": "status", "outcome": "ok"}) >= 1
    assert sample("process_start_time_seconds", {"worker": "0"}) > 0
    assert {"process_cpu_seconds_total", "process_resident_memory_bytes", "smsgw_backlog",
            "smsgw_backlog_limit", "smsgw_bind_up"} <= samples

    async def backlog_read():  # the push backlog is read every interval: after the pushes, 0
        return sample("smsgw_push_backlog", {"kind": "status"}) == 0
    await eventually(backlog_read, "the push backlog figure")


@pytest_twisted.ensureDeferred
async def test_push_backlog_counts_waiting_http_pushes_by_kind(gateway, backend):
    gw = gateway
    backend.failing(500)
    await eventually(lambda: bound(gw), "the bind")
    code, _ = await call(gw, "POST", "/v1/messages", {"to": "46701234567", "text": "hello"}, key="acme-key")
    assert code == 202

    async def waiting():
        return gw.metrics.registry.get_sample_value("smsgw_push_backlog", {"kind": "status"}) or None

    await eventually(waiting, "status pushes waiting for a retry")
    assert await waiting() >= 1
    assert gw.metrics.registry.get_sample_value("smsgw_push_backlog", {"kind": "mo"}) == 0


@pytest_twisted.ensureDeferred
async def test_each_request_writes_one_access_line_without_key_or_query(gateway):
    gw = gateway
    with capture_logs() as logs:
        assert (await call(gw, "POST", "/v1/messages", {"to": "46701234567", "text": "hi"}, key="acme-key"))[0] == 202
        assert (await call(gw, "GET", "/v1/messages?to=46701234567&status=queued", key="acme-key"))[0] == 200
        assert (await call(gw, "GET", "/v1/account", key="wrong-key"))[0] == 401
        assert (await call(gw, "GET", "/v1/admin/binds", key="ops-key"))[0] == 200
        assert (await call(gw, "GET", "/healthz"))[0] == 200
    access = [line for line in logs if line.get("component") == "access"]
    assert [(a["method"], a["path"], a["status"]) for a in access] == [
        ("POST", "/v1/messages", 202), ("GET", "/v1/messages", 200), ("GET", "/v1/account", 401),
        ("GET", "/v1/admin/binds", 200), ("GET", "/healthz", 200)]
    assert all(a["log_level"] == "info" and a["event"] == "request" and a["ms"] >= 0 for a in access)
    assert [a.get("account") for a in access] == ["acme", "acme", None, None, None]
    assert [a.get("admin") for a in access] == [None, None, None, True, None]
    text = json.dumps(access)
    assert "acme-key" not in text and "wrong-key" not in text and "ops-key" not in text
    assert "46701234567" not in text and "status=queued" not in text


@pytest_twisted.ensureDeferred
async def test_the_access_log_can_be_turned_off(gateway):
    gw = gateway
    # [http] access_log = false, as a reload applies it (read per request)
    text = CONFIG.format(secret=SECRET, status_url="http://127.0.0.1:9/x")
    text = text.replace("[metrics]", "access_log = false\n[metrics]", 1)
    gw.config = parse_config(text, path=gw.config.path)
    assert gw.config.http.access_log is False
    with capture_logs() as logs:
        assert (await call(gw, "GET", "/healthz"))[0] == 200
    assert [line for line in logs if line.get("component") == "access"] == []


# --- smsgw_bind_up for an operator that never binds ------------------------------------------------
REFUSED = """
[store]
url = "sqlite:///gw.db"
[http]
listen = "127.0.0.1:0"
[metrics]
listen = "127.0.0.1:0"
[operators.sim_a]
type = "simulated"
{refusing}
[profiles.standard]
operators = {profile}
[accounts.acme]
api_keys = ["acme-key"]
senders = ["ACME"]
"""


def refusing_operator(port: int, bind: str, binds: int) -> str:
    return (f'[operators.refusing]\nhost = "127.0.0.1"\nport = {port}\nsystem_id = "gw"\npassword = "secret"\n'
            f'bind = "{bind}"\nbinds = {binds}\n')


def bind_up(text: str) -> dict[tuple[str, str], float]:
    """{(operator, session): value} of smsgw_bind_up in an exposition."""
    return {(s.labels["operator"], s.labels["session"]): s.value
            for family in text_string_to_metric_families(text) if family.name == "smsgw_bind_up"
            for s in family.samples}


def per_operator(text: str) -> set[str]:
    """The operators of smsgw_queue_depth, after checking smsgw_inflight names the same ones."""
    names = {family.name: {s.labels["operator"] for s in family.samples}
             for family in text_string_to_metric_families(text)
             if family.name in ("smsgw_queue_depth", "smsgw_inflight")}
    assert names["smsgw_queue_depth"] == names["smsgw_inflight"], names
    return names["smsgw_queue_depth"]


@pytest_twisted.ensureDeferred
async def test_bind_up_is_0_for_every_session_of_an_operator_refused_from_the_start_and_goes_with_it(tmp_path):
    """SmsgwBindDown (max by operator of smsgw_bind_up == 0) must see an operator whose SMSC has
    refused every bind since the gateway started; and not a session or an operator a reload took
    away, which would keep it firing."""
    smsc = BindRefused(SimSettings(system_id="gw", password="secret"), reactor, "refusing", refusals=10**9)
    port = await smsc.listen("127.0.0.1", 0)
    path = tmp_path / "gw.toml"

    def write(refusing: str, profile: str) -> None:
        path.write_text(REFUSED.format(refusing=refusing, profile=profile))

    write(refusing_operator(port, "transmitter+receiver", 2), '["sim_a", "refusing"]')
    gw = Gateway(load_config(path), reactor, CollectorRegistry())
    await gw.start()
    try:
        await eventually(lambda: smsc.bind_attempts >= 4 and gw.links["sim_a"].is_up(),
                         "every session of refusing refused once, sim_a bound",
                         state=lambda: f"{smsc.bind_attempts} binds refused")
        assert bind_up(await scrape(gw)) == {
            ("sim_a", "sim_a/1"): 1,
            ("refusing", "refusing/1-tx"): 0, ("refusing", "refusing/1-rx"): 0,
            ("refusing", "refusing/2-tx"): 0, ("refusing", "refusing/2-rx"): 0}

        write(refusing_operator(port, "transceiver", 1), '["sim_a", "refusing"]')  # its sessions change
        assert gw.reload()["reconnected"] == ["refusing"]
        assert bind_up(await scrape(gw)) == {("sim_a", "sim_a/1"): 1, ("refusing", "refusing/1"): 0}

        assert per_operator(await scrape(gw)) == {"sim_a", "refusing"}
        write("", '["sim_a"]')  # the operator goes
        assert gw.reload()["removed"] == ["refusing"]
        text = await scrape(gw)
        assert bind_up(text) == {("sim_a", "sim_a/1"): 1}
        assert per_operator(text) == {"sim_a"}  # its queue_depth and inflight went with it
    finally:
        await gw.stop()
        await smsc.stop()
