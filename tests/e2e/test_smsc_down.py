"""An SMSC down does not stop the others (docs/architecture.md, "Pipeline"): a node holds at most
20,000 messages in memory, and before, 25,000 waiting for an operator whose SMSC refused every
connection filled it; the node sent nothing through its other operators until that SMSC came
back. The gateway as a user runs it, the HTTP API, a port where nothing listens."""

from __future__ import annotations

from tests.e2e.conftest import NODE
from tests.harness.net import free_port, http
from tests.harness.waiting import wait_until

CONFIG = NODE + """[operators.up]
type = "simulated"
cost = 0.10
receipt_delay = "20ms"
[operators.down]
host = "127.0.0.1"
port = {closed}
system_id = "gw"
password = "secret"
cost = 0.10
[profiles.national]
operators = ["up"]
[profiles.partner]
operators = ["down"]
[accounts.demo]
api_keys = ["demo-key"]
senders = ["DEMO"]
"""


def test_messages_for_an_smsc_down_leave_the_other_operators_going(gateways):
    hp, mp = free_port(), free_port()
    gw = gateways(CONFIG.format(http=hp, metrics=mp, closed=free_port()), hp).start(ready=False)
    for batch in range(25):  # 25,000 for the operator whose SMSC is down
        to = [f"4670{batch:02d}{i:05d}" for i in range(1000)]
        code, body = http("POST", f"{gw.url}/v1/messages", {"to": to, "text": "hi", "profile": "partner"},
                          key="demo-key", timeout=60)
        assert code == 202, body
    code, body = http("POST", f"{gw.url}/v1/messages", {"to": [f"4671{i:07d}" for i in range(20)], "text": "hi",
                                                        "profile": "national"}, key="demo-key")
    assert code == 202, body
    ids = [m["id"] for m in body["messages"]]

    def all_delivered():
        statuses = [http("GET", f"{gw.url}/v1/messages/{mid}", key="demo-key")[1]["status"] for mid in ids]
        return statuses if set(statuses) == {"delivered"} else None

    wait_until(all_delivered, 30, 0.2, what="the 20 messages through the operator up delivered")
    code, page = http("GET", f"{gw.url}/v1/messages?status=queued&limit=1", key="demo-key")
    assert code == 200 and page["messages"] and page["messages"][0]["profile"] == "partner"  # still waiting
