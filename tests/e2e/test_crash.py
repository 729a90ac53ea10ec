"""SIGKILL after 202 and before the submit: the message is delivered once after a restart."""

from __future__ import annotations

import json
import time

from tests.harness.net import free_port, http
from tests.harness.processes import SimProcess
from tests.harness.waiting import wait_until

CONFIG = """
[gateway]
node = "crash"
[store]
url = "sqlite:///crash.db"
[http]
listen = "127.0.0.1:{http}"
[metrics]
listen = "127.0.0.1:{metrics}"
[operators.smsc]
type = "smpp"
host = "127.0.0.1"
port = {smpp}
system_id = "crash"
password = "pw"
cost = 0.1
[profiles.standard]
operators = ["smsc"]
[accounts.demo]
api_keys = ["demo-key"]
senders = ["DEMO"]
"""


def submits_to(log_path, number) -> int:
    count = 0
    for line in log_path.read_text().splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            if entry.get("event") == "submit_sm accepted" and entry.get("destination_addr") == number:
                count += 1
    return count


def test_sigkill_before_submit_then_restart_delivers_once(gateways, tmp_path):
    sim_log = tmp_path / "sim.log"
    sim = SimProcess(sim_log, system_id="crash", password="pw", options=["--receipt-delay", "10ms", "--log-level", "info"])
    hp, mp = free_port(), free_port()
    gw = gateways(CONFIG.format(http=hp, metrics=mp, smpp=sim.smpp_port), hp)
    # The SMSC is not there yet: the gateway accepts and stores, but cannot submit.
    gw.start(ready=False)
    code, answer = http("POST", f"{gw.url}/v1/messages", {"to": "46701234567", "text": "survive"}, key="demo-key")
    assert code == 202
    mid = answer["messages"][0]["id"]
    code, before = http("GET", f"{gw.url}/v1/messages/{mid}", key="demo-key")
    assert before["status"] == "queued"
    gw.kill()

    sim.start()
    try:
        gw.start()

        def delivered():
            code, body = http("GET", f"{gw.url}/v1/messages/{mid}", key="demo-key")
            return body if body.get("status") == "delivered" else None

        body = wait_until(delivered, 30, what="delivery after restart")
        assert [e["status"] for e in body["events"]] == ["queued", "submitted", "delivered"]
        time.sleep(0.5)  # a duplicate submit would show in the simulator's log by now
        assert submits_to(sim_log, "46701234567") == 1
        assert gw.stop() == 0
    finally:
        sim.stop()
