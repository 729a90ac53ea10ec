"""Two nodes on one store share the carrier's and the customer's limits (SPEC §10).

Two ``Gateway`` nodes on one SQLite file (each its own store connection and writer, as two
processes would have), the real reactor, and two simulated SMSCs on loopback standing for the
operators: "cheap" allows one bind, "dear" three. Checked from the SMSCs' side: the cluster holds
exactly the binds each operator allows, whatever the number of nodes; the node without a bind of
"cheap" leaves its messages for the node that has one (they still go the cheapest way); an
account's tps is split between the nodes; and when a node stops, the other takes its part. While
they join and leave, the SMSCs never see more sessions than their operator allows (before
``policies.cluster.hold`` a node joining bound its part while the other still held all of them).
"""

from __future__ import annotations

import json

import pytest_twisted
import treq
from prometheus_client import CollectorRegistry
from twisted.internet import reactor
from twisted.internet.task import LoopingCall

from connectors.smsc_sim import SimSettings, SimulatedSMSC
from smscore.app import Gateway
from smscore.config import parse_config
from smscore.model import Status
from tests.harness.waiting import eventually

#: a node on the shared store, its listeners on free ports
NODE = """
[gateway]
node = "{node}"
lease = "3s"
[store]
url = "sqlite:///cluster.db"
[http]
listen = "127.0.0.1:0"
[metrics]
listen = "127.0.0.1:0"
"""
CONFIG = NODE + """[operators.cheap]
type = "smpp"
host = "127.0.0.1"
port = {cheap}
system_id = "cheap"
password = "pw"
binds = 1
window = 10
cost = 0.01
[operators.dear]
type = "smpp"
host = "127.0.0.1"
port = {dear}
system_id = "dear"
password = "pw"
binds = 3
tps = 90
window = 10
cost = 0.05
[profiles.standard]
operators = ["cheap", "dear"]
[accounts.demo]
api_keys = ["demo-key"]
senders = ["DEMO"]
tps = 4
"""


async def _smsc(name: str) -> SimulatedSMSC:
    sim = SimulatedSMSC(SimSettings(system_id=name, password="pw", receipt_delay=0.01), reactor, name=name)
    sim.port = await sim.listen("127.0.0.1", 0)
    return sim


async def _node(tmp_path, node: str, cheap: SimulatedSMSC, dear: SimulatedSMSC | None = None,
                text: str = CONFIG) -> Gateway:
    """A node started on ``text`` (a ``NODE`` config) with its SMSCs' ports."""
    path = tmp_path / f"{node}.toml"
    ports = {"cheap": cheap.port, "dear": dear.port} if dear is not None else {"port": cheap.port}
    config = parse_config(text.format(node=node, **ports), path=path)
    gw = Gateway(config, reactor, CollectorRegistry())
    await gw.start()
    return gw


def _binds(sim: SimulatedSMSC) -> int:
    return len(sim.bound)


def _held(gws, operator: str) -> list[int]:
    return [gw.links[operator].settings.binds for gw in gws]


async def _send(gw: Gateway, to: str):
    url = f"http://127.0.0.1:{gw.http_port.getHost().port}/v1/messages"
    resp = await treq.post(url, data=json.dumps({"to": to, "text": "hi", "from": "DEMO"}).encode(),
                           headers={"Authorization": ["Bearer demo-key"], "Content-Type": ["application/json"]})
    return resp.code, json.loads(await resp.content())


@pytest_twisted.ensureDeferred
async def test_two_nodes_hold_the_operators_binds_once_and_the_survivor_takes_them_all(tmp_path):
    cheap, dear = await _smsc("cheap"), await _smsc("dear")
    most = {"cheap": 0, "dear": 0}  # the most sessions each SMSC had at once, sampled every 10 ms

    def sample():
        most.update(cheap=max(most["cheap"], _binds(cheap)), dear=max(most["dear"], _binds(dear)))

    watch = LoopingCall(sample)
    watch.start(0.01)
    one = await _node(tmp_path, "gw1", cheap, dear)
    two = None
    try:
        await eventually(lambda: _binds(cheap) == 1 and _binds(dear) == 3, "gw1 alone binding everything")
        two = await _node(tmp_path, "gw2", cheap, dear)
        gws = [one, two]
        # a dead node's push jobs are another's after the node lease (+ the POST timeout), as its messages
        assert [gw.push_worker.lease for gw in gws] == [gw.config.gateway.lease for gw in gws]

        def state():
            return (f"cheap {_binds(cheap)} bound, dear {_binds(dear)}; held cheap {_held(gws, 'cheap')}, "
                    f"dear {_held(gws, 'dear')}")

        # gw1 sees gw2 at its next heartbeat (a third of the lease) and gives up its part; gw2 binds
        # its own only once gw1 has had the time to (half a lease after gw2's first heartbeat).
        await eventually(lambda: sorted(_held(gws, "cheap")) == [0, 1] and sorted(_held(gws, "dear")) == [1, 2],
                         "the binds split between the nodes", state=state)
        await eventually(lambda: _binds(cheap) == 1 and _binds(dear) == 3, "the SMSCs seeing the split",
                         state=state)
        assert sorted(gw.links["dear"].settings.tps for gw in gws) == [30, 60]
        assert [gw.rate_buckets.share() for gw in gws] == [0.5, 0.5]

        # Messages taken by the node without "cheap" still go through "cheap", from the other node.
        without = next(gw for gw in gws if gw.links["cheap"].settings.binds == 0)
        ids = []
        for i in range(2):
            code, body = await _send(without, f"4670111000{i}")
            assert code == 202, body
            ids.append(body["messages"][0]["id"])

        async def delivered():
            got = [await without.store.get(mid) for mid in ids]
            return all(m.status is Status.DELIVERED for m in got)

        async def statuses():
            return [((m := await without.store.get(mid)).status.value, m.operator) for mid in ids]

        await eventually(delivered, "both messages delivered", state=statuses)
        assert {(await without.store.get(mid)).operator for mid in ids} == {"cheap"}
        assert len(cheap.submits) == 2 and not dear.submits

        # The account's tps (4) is 2 a node: a burst to one node gets 2 through (3 if a token refilled).
        # (To the node that took no request yet: the other's bucket was spent above.)
        holder = next(gw for gw in gws if gw is not without)
        codes = [(await _send(holder, "46701112000"))[0] for _ in range(6)]
        assert 2 <= codes.count(202) <= 3 and codes.count(429) >= 3, codes

        # The node holding "cheap" stops: the other takes every bind and the whole account tps.
        await holder.stop()
        if holder is one:
            one = None
        else:
            two = None
        await eventually(lambda: without.links["cheap"].settings.binds == 1
                         and without.links["dear"].settings.binds == 3, "the survivor taking every bind",
                         state=state)
        await eventually(lambda: _binds(cheap) == 1 and _binds(dear) == 3, "the SMSCs bound by the survivor",
                         state=state)
        assert without.rate_buckets.share() == 1.0
        assert without.links["dear"].settings.tps == 90
        assert most == {"cheap": 1, "dear": 3}
    finally:
        watch.stop()
        for gw in (one, two):
            if gw is not None:
                await gw.stop()
        await cheap.stop()
        await dear.stop()


BACKLOG = NODE + """[operators.slow]
type = "smpp"
host = "127.0.0.1"
port = {port}
system_id = "slow"
password = "pw"
binds = 2
tps = 2
window = 1
cost = 0.01
[profiles.standard]
operators = ["slow"]
[accounts.demo]
api_keys = ["demo-key"]
senders = ["DEMO"]
"""


@pytest_twisted.ensureDeferred
async def test_a_backlog_taken_by_one_node_goes_out_through_the_binds_of_both(tmp_path):
    # "slow" allows 2 binds and 2 submits/s: a bind and 1/s a node. Before policies.cluster.hold_limit
    # the node that took the requests held all of them and sent them at its 1/s alone, the other
    # node's bind idle; now it holds 5 s of its share (and its window twice), and the other node
    # claims the rest from the store.
    slow = await _smsc("slow")
    gws = []
    try:
        for node in ("gw1", "gw2"):
            gws.append(await _node(tmp_path, node, slow, text=BACKLOG))
        await eventually(lambda: _held(gws, "slow") == [1, 1] and _binds(slow) == 2, "a bind on each node",
                         state=lambda: f"held {_held(gws, 'slow')}, bound {_binds(slow)}")
        assert [gw.pipeline.most() for gw in gws] == [1 * 5 + 2 * 1 * 1] * 2
        for i in range(20):
            code, body = await _send(gws[0], f"467011130{i:02d}")
            assert code == 202, body
        assert gws[0].pipeline.held == 7  # the rest is in the store, for either node
        await eventually(lambda: len({s.session for s in slow.submits}) == 2, "submits through both binds",
                         timeout=15, state=lambda: f"submits by session {[s.session for s in slow.submits]}")
    finally:
        for gw in gws:
            await gw.stop()
        await slow.stop()
