"""SPEC §15: a node restarted after SIGKILL takes back at once the push jobs it held (their lease is
[gateway] lease + [push] timeout: 30 s + 60 s here); it does not wait for the lease to run out,
also when it comes back with another number of processes (the jobs were held by ``takeover/1``,
an API worker, and the node comes back as one process, ``takeover``; or the other way round)."""

from __future__ import annotations

import time

import pytest

from tests.harness.net import free_port, http
from tests.harness.waiting import wait_until

CONFIG = """
[gateway]
node = "takeover"
processes = {processes}
[store]
url = "sqlite:///takeover.db"
[http]
listen = "127.0.0.1:{http}"
[metrics]
listen = "127.0.0.1:{metrics}"
[push]
timeout = "60s"
allow_networks = ["127.0.0.0/8"]
[operators.sim_a]
type = "simulated"
receipt_delay = "10ms"
[profiles.standard]
operators = ["sim_a"]
[accounts.demo]
api_keys = ["demo-key"]
senders = ["DEMO"]
secret = "s"
callback_url = "http://127.0.0.1:{sink}/cb"
callback_statuses = "final"
"""

PUSH_LEASE = 30.0 + 60.0  # the default [gateway] lease + this [push] timeout


@pytest.mark.parametrize("before, after", [(2, 2), (2, 1), (1, 2)])
def test_push_jobs_held_by_a_killed_node_go_out_at_once_after_its_restart(gateways, callback_sink, before, after):
    hp, mp = free_port(), free_port()
    gw = gateways(CONFIG.format(http=hp, metrics=mp, sink=callback_sink.port, processes=before), hp)
    callback_sink.stall.set()
    gw.start()
    ids = []
    for i in range(20):
        code, answer = http("POST", f"{gw.url}/v1/messages", {"to": f"4670100{i:04d}", "text": "x"}, key="demo-key")
        assert code == 202, answer
        ids.append(answer["messages"][0]["id"])
    wait_until(lambda: callback_sink.held >= 1, 30, what="a callback held by the stalled receiver")
    gw.kill()
    callback_sink.release()

    gw.config.write_text(CONFIG.format(http=hp, metrics=mp, sink=callback_sink.port, processes=after))
    restarted = time.monotonic()
    gw.start()
    wait_until(lambda: callback_sink.received, PUSH_LEASE / 4, what="the first callback after the restart")
    first = time.monotonic() - restarted
    # The in-process simulated operator died with the node: a receipt it had not sent yet is lost
    # with it, so a message may stay "submitted". Every message that is final gets its callback.
    final = {i for i in ids if http("GET", f"{gw.url}/v1/messages/{i}", key="demo-key")[1]["status"] == "delivered"}
    assert len(final) >= len(ids) // 2
    wait_until(lambda: {body["id"] for _, body in callback_sink.received} >= final, 30,
             what="a final callback for every delivered message")
    print(f"first callback {first:.2f} s after the restart (incl. the start until /readyz)")
    assert first < PUSH_LEASE / 4, f"first callback {first:.1f} s after the restart"
    assert gw.stop() == 0
