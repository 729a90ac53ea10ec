"""HLR/MNP look-ups through `smsgw run` (issue 14 item 3, docs/routing.md): a simulated look-up
service on loopback says which network serves each number; the gateway (two processes) asks it
before choosing and sends a ported number straight to the operator that reaches it, with no failed
attempt; ops see why in the admin API and the metric."""

from __future__ import annotations

from tests.harness.net import free_port, http
from tests.harness.waiting import wait_until
from tests.lookup_service import LookupService

CONFIG = """
[gateway]
node = "lookups"
processes = 2
[store]
url = "sqlite:///lookups.db"
[http]
listen = "127.0.0.1:{http}"
[metrics]
listen = "127.0.0.1:{metrics}"
[admin]
api_keys = ["ops-key"]
[lookup]
url = "{url}"
cost = 0.002
[operators.sim_a]
type = "simulated"
cost = 0.10
unreachable_prefixes = ["4670999"]
receipt_delay = "10ms"
networks = ["24001"]
[operators.sim_b]
type = "simulated"
cost = 0.20
receipt_delay = "10ms"
networks = ["*"]
[profiles.standard]
operators = ["sim_a", "sim_b"]
[accounts.demo]
api_keys = ["demo-key"]
senders = ["DEMO"]
"""


def network(number: str) -> str:
    """sim_a's network serves every number but the ones ported away (4670999…)."""
    return "24099" if number.startswith("4670999") else "24001"


def test_a_ported_number_goes_straight_to_the_operator_the_look_up_names(gateways):
    with LookupService(network) as service:
        hp = free_port()
        metrics = free_port()
        gw = gateways(CONFIG.format(http=hp, metrics=metrics, url=service.url), hp).start()
        ids = {}
        for to in ("46709990001", "46701234567"):
            code, body = http("POST", f"{gw.url}/v1/messages", {"to": to, "text": "hi"}, key="demo-key")
            assert code == 202, body
            ids[to] = body["messages"][0]["id"]
        done = {to: wait_until(lambda mid=mid: (m := http("GET", f"{gw.url}/v1/messages/{mid}", key="demo-key")[1])
                             ["status"] == "delivered" and m, 30, what=f"{to} delivered") for to, mid in ids.items()}
        attempts = {to: [e["operator"] for e in m["events"] if e["status"] == "submitted"] for to, m in done.items()}
        assert attempts == {"46709990001": ["sim_b"], "46701234567": ["sim_a"]}  # no failed attempt on sim_a
        assert sorted(service.asked) == ["46701234567", "46709990001"]
        code, number = http("GET", f"{gw.url}/v1/admin/numbers/46709990001", key="ops-key")
        assert code == 200
        [choice] = number["choice"]
        assert choice["order"][0] == "sim_b" and choice["lookup"]["reach"] == ["sim_b"]
        code, text = http("GET", f"http://127.0.0.1:{metrics}/metrics")
        assert 'smsgw_number_lookups_total{outcome="answered"} 2.0' in text
        assert gw.stop() == 0
