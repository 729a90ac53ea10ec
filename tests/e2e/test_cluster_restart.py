"""A node of a cluster killed and started again within its lease binds its part at once (SPEC §10:
"on restart every message in flight resumes"; policies.cluster, "Restarts").

Two `smsgw run` nodes on one store (a SQLite file, a PostgreSQL database) split an operator's two binds to a standalone `smsgw
smsc-sim`. Node b is SIGKILLed and started again at once. The others never stopped counting it,
so its part was free: it binds at its first heartbeat. Before, it held nothing for half a lease
(an audit: a node of two restarted in a cluster bound 16.2 s after the kill with the default lease
of 30 s, while it held 247 messages it had taken back); with the lease of 20 s here that is 10 s.
Node a holds its one bind throughout: the operator never sees more than its two.
"""

from __future__ import annotations

import time

import pytest

from tests.harness.configs import PAIR_CONFIG
from tests.harness.net import free_port, http
from tests.harness.processes import SimProcess
from tests.harness.waiting import wait_until

pytestmark = pytest.mark.slow

LEASE = 20.0  # half of it: the wait of a node that joins


def _bound(gw) -> float:
    return sum(gw.metric("smsgw_bind_up", operator="smsc", session=f"smsc/{i}") for i in (1, 2))


def test_a_node_killed_and_started_again_within_its_lease_binds_its_part_at_once(gateways, tmp_path):
    _killed_and_started_again(gateways, tmp_path, "sqlite:///cluster.db")


@pytest.mark.postgres
def test_the_same_on_postgresql(gateways, tmp_path, pg_url):
    _killed_and_started_again(gateways, tmp_path, pg_url)


def _killed_and_started_again(gateways, tmp_path, store: str) -> None:
    sim = SimProcess(tmp_path / "sim.log", system_id="pair", password="pw", options=["--receipt-delay", "10ms"])
    sim.start()
    try:
        nodes = {}
        for name in ("a", "b"):
            hp, mp = free_port(), free_port()
            nodes[name] = gateways(PAIR_CONFIG.format(node=name, lease="20s", url=store, http=hp, metrics=mp,
                                                       smpp=sim.smpp_port, binds=2, window=10, tps=0), hp)
            nodes[name].metrics_port = mp
        a, b = nodes["a"], nodes["b"]
        a.start()
        wait_until(lambda: _bound(a) == 2, 30, what="node a alone binding both")
        b.start(ready=False)
        # b joins: it waits half a lease; a gives one up at its next heartbeat
        wait_until(lambda: _bound(a) == 1 and _bound(b) == 1, 3 * LEASE, what="the binds split between a and b")

        b.kill()  # SIGKILL: no leaving, its heartbeat row stays live for a lease
        started = time.monotonic()
        b.start(ready=False)
        wait_until(lambda: _bound(b) == 1, LEASE / 2, what="node b bound again")
        took = time.monotonic() - started
        assert took < LEASE / 2 - 2, f"node b bound {took:.1f} s after it was started again"
        assert _bound(a) == 1  # a kept its one: the operator's two, never more

        code, body = http("POST", f"{b.url}/v1/messages", {"to": "46701234567", "text": "after", "from": "DEMO"},
                          key="demo-key")
        assert code == 202, body
        mid = body["messages"][0]["id"]
        wait_until(lambda: http("GET", f"{b.url}/v1/messages/{mid}", key="demo-key")[1]["status"] == "delivered",
                   LEASE / 2, what="a message to the restarted node delivered")
    finally:
        sim.stop()
