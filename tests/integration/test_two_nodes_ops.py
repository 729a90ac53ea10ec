"""Ops and customers acting through one node on messages another node holds (SPEC §5, §10, §11).

Two ``Gateway`` nodes in this process on one PostgreSQL database, the real reactor, one simulated
SMSC on loopback whose submits are timed. The operator allows 2 submits a second for the cluster
(1 a node), so messages sent to node B wait in B's memory. What the SMSC sees is the test: a
pause through node A stops B's submits of them from B's next lease renewal on (the bound, in
docs/postgresql.md), and after the resume each message goes out exactly once; a DELETE through
node A of a message B holds stops it, and it never goes out.
"""

from __future__ import annotations

import json

import pytest
import pytest_twisted
import treq
from prometheus_client import CollectorRegistry
from twisted.internet import reactor
from twisted.internet.task import deferLater

from connectors.smsc_sim import SimSettings, SimulatedSMSC
from smscore.app import Gateway
from smscore.config import parse_config
from smscore.model import Status
from tests.harness.waiting import eventually

pytestmark = pytest.mark.postgres

CONFIG = """
[gateway]
node = "{node}"
lease = "3s"
[store]
url = "{url}"
[http]
listen = "127.0.0.1:0"
[metrics]
listen = "127.0.0.1:0"
[admin]
api_keys = ["ops-key"]
[operators.smsc]
type = "smpp"
host = "127.0.0.1"
port = {port}
system_id = "pair"
password = "pw"
binds = 2
tps = 2
window = 10
cost = 0.1
[profiles.standard]
operators = ["smsc"]
[accounts.demo]
api_keys = ["demo-key"]
senders = ["DEMO"]
"""


class TimedSubmits(list):
    """The SMSC's submits, each with when it came: ``(reactor seconds, SubmitRecord)``."""

    def append(self, record) -> None:
        super().append((reactor.seconds(), record))


async def _smsc() -> SimulatedSMSC:
    sim = SimulatedSMSC(SimSettings(system_id="pair", password="pw", receipt_delay=0.05), reactor, name="smsc")
    sim.submits = TimedSubmits()
    sim.port = await sim.listen("127.0.0.1", 0)
    return sim


async def _node(tmp_path, node: str, url: str, sim: SimulatedSMSC) -> Gateway:
    config = parse_config(CONFIG.format(node=node, url=url, port=sim.port), path=tmp_path / f"{node}.toml")
    gw = Gateway(config, reactor, CollectorRegistry())
    await gw.start()
    return gw


async def _call(gw: Gateway, method: str, path: str, key: str, body=None):
    url = f"http://127.0.0.1:{gw.http_port.getHost().port}{path}"
    resp = await treq.request(method, url, data=json.dumps(body).encode() if body is not None else None,
                              headers={"Authorization": [f"Bearer {key}"], "Content-Type": ["application/json"]})
    return resp.code, json.loads(await resp.content())


def _waiting(gw: Gateway) -> list[str]:
    return [m.id for q in gw.pipeline.queues.values() for m in q]


async def _sleep(seconds: float) -> None:
    await deferLater(reactor, seconds, lambda: None)


@pytest.fixture
def cluster(tmp_path, pg_url):
    """``await cluster()`` → (sim, node A, node B), both holding one of the operator's two binds."""
    started = []

    async def make():
        sim = await _smsc()
        started.append(sim)
        a = await _node(tmp_path, "gw-a", pg_url, sim)
        started.append(a)
        b = await _node(tmp_path, "gw-b", pg_url, sim)
        started.append(b)
        await eventually(lambda: [gw.links["smsc"].settings.binds for gw in (a, b)] == [1, 1]
                         and len(sim.bound) == 2, "each node holding one bind")
        return sim, a, b

    yield make
    for thing in reversed(started):
        pytest_twisted.blockon(thing.stop())


@pytest_twisted.ensureDeferred
async def test_a_pause_through_one_node_stops_the_other_nodes_submits_and_a_resume_sends_each_once(cluster):
    sim, a, b = await cluster()
    numbers = [f"467011100{i:02d}" for i in range(20)]
    code, body = await _call(b, "POST", "/v1/messages", "demo-key", {"to": numbers, "text": "hi", "from": "DEMO"})
    assert code == 202, body
    ids = [m["id"] for m in body["messages"]]
    await eventually(lambda: len(sim.submits) >= 2, "B submitting at its 1 a second")
    assert len(_waiting(b)) >= 10  # B holds them, waiting for its tps

    code, body = await _call(a, "POST", "/v1/admin/accounts/demo/pause", "ops-key")
    assert code == 200 and body["messages"] >= 10, body
    paused_at = reactor.seconds()
    # From B's next renewal on, B submits nothing: it dropped what was paused.
    await _sleep(b.pipeline.claims.renewal + 0.5)
    assert _waiting(b) == []
    before = len(sim.submits)
    await _sleep(3.0)
    assert len(sim.submits) == before
    gone_out = {r.destination_addr for _, r in sim.submits}
    raced = [at - paused_at for at, _ in sim.submits if at > paused_at]
    assert all(t <= b.pipeline.claims.renewal + 0.5 for t in raced), raced
    statuses = {mid: (await a.store.get(mid)).status for mid in ids}
    paused = [mid for mid, status in statuses.items() if status is Status.PAUSED]
    assert len(paused) >= 10, statuses
    for mid, number in zip(ids, numbers):  # what went out is not paused: it went out
        assert (number in gone_out) == (statuses[mid] is not Status.PAUSED), (number, statuses[mid])

    code, body = await _call(a, "POST", "/v1/admin/accounts/demo/resume", "ops-key")
    assert code == 200 and body["messages"] == len(paused), body

    async def all_delivered():
        return [(await a.store.get(mid)).status for mid in ids] == [Status.DELIVERED] * len(ids)

    await eventually(all_delivered, "every message delivered", timeout=30.0,
                     state=lambda: f"{len(sim.submits)} submits")
    sent = sorted(r.destination_addr for _, r in sim.submits)
    assert sent == sorted(numbers)  # each exactly once
    for gw in (a, b):
        assert gw.pipeline.held == 0


@pytest_twisted.ensureDeferred
async def test_a_delete_through_one_node_of_a_message_the_other_node_holds_stops_it(cluster):
    """SPEC §4 and §11: any node answers, so a DELETE through A of a queued message B holds is
    200 ``stopped`` (it was 409), and B drops it at its next renewal: it never goes out."""
    sim, a, b = await cluster()
    numbers = [f"467011200{i:02d}" for i in range(8)]
    code, body = await _call(b, "POST", "/v1/messages", "demo-key", {"to": numbers, "text": "hi", "from": "DEMO"})
    assert code == 202, body
    ids = [m["id"] for m in body["messages"]]
    await eventually(lambda: len(sim.submits) >= 1 and len(_waiting(b)) >= 4, "B holding messages")
    victim = _waiting(b)[-1]
    code, body = await _call(a, "DELETE", f"/v1/messages/{victim}", "demo-key")
    assert code == 200 and body["status"] == "stopped", body

    async def finished():
        return {(await a.store.get(mid)).status for mid in ids} <= {Status.DELIVERED, Status.STOPPED}

    await eventually(finished, "every message delivered or stopped", timeout=30.0)
    stopped = [mid for mid in ids if (await a.store.get(mid)).status is Status.STOPPED]
    assert stopped == [victim]
    sent = sorted(r.destination_addr for _, r in sim.submits)
    assert sent == sorted(n for mid, n in zip(ids, numbers) if mid != victim)
    await eventually(lambda: b.pipeline.held == 0, "B holding nothing")
