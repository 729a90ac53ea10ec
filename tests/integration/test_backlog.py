"""Load shedding by ``[gateway] max_backlog`` (SPEC §15), through a real gateway: HTTP answers 503
``unavailable`` with Retry-After, an ESME gets ESME_RMSGQFUL, ``/readyz`` stays 200 and names the
reason, and nothing of a refused request is stored.

The simulated operator takes one submit a second (``throttle_tps = 1``), so what is accepted stays
``queued`` long enough to fill a backlog of 5.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from unittest.mock import ANY

import pytest
import pytest_twisted
import smpplib.exceptions
import treq
from prometheus_client import CollectorRegistry
from twisted.internet import reactor
from twisted.internet.threads import deferToThread

from connectors.smpp.defs import ESME_RMSGQFUL
from smscore.app import Gateway
from smscore.config import parse_config
from smscore.model import Status
from tests.esme import Esme
from tests.harness.waiting import eventually

CONFIG = """
[gateway]
node = "shed"
max_backlog = 5
[store]
url = "sqlite:///gw.db"
[http]
listen = "127.0.0.1:0"
[metrics]
listen = "127.0.0.1:0"
[smpp_server]
listen = "127.0.0.1:0"
[operators.sim]
type = "simulated"
throttle_tps = 1
receipt_delay = "10ms"
[profiles.standard]
operators = ["sim"]
[accounts.acme]
api_keys = ["acme-key"]
senders = ["Acme"]
[accounts.acme.smpp]
system_id = "acme"
password = "s3cret"
"""


@pytest.fixture
def gateway(tmp_path):
    gw = Gateway(parse_config(CONFIG, path=tmp_path / "gw.toml"), reactor, CollectorRegistry())
    pytest_twisted.blockon(gw.start())
    yield gw
    pytest_twisted.blockon(gw.stop())


async def call(gw, method, path, body=None, key=None):
    url = f"http://127.0.0.1:{gw.http_port.getHost().port}{path}"
    headers = {"Authorization": ["Bearer acme-key"], **({"Idempotency-Key": [key]} if key else {})}
    resp = await treq.request(method, url, json=body, headers=headers)
    return resp.code, await resp.json(), resp.headers


def refused_submit(port: int) -> int:
    esme = Esme(port)
    esme.client.connect()
    try:
        esme.client.bind_transceiver(system_id="acme", password="s3cret")
        try:
            esme.submit("46701234599", b"one too many")
        except smpplib.exceptions.PDUError as exc:
            return exc.args[1]
        return 0
    finally:
        esme.client.disconnect()


@pytest_twisted.ensureDeferred
async def test_a_full_backlog_refuses_new_messages_whole_and_readyz_says_why(gateway):
    gw = gateway
    await eventually(lambda: gw.links["sim"].is_up(), "the simulated operator bound")
    first = {"to": [f"4670123450{i}" for i in range(5)], "text": "x"}
    code, body, _ = await call(gw, "POST", "/v1/messages", first, key="order-1")
    assert code == 202, body
    code, refused, headers = await call(gw, "POST", "/v1/messages", {"to": ["46701234598", "46701234599"], "text": "y"})
    assert (code, refused["error"]["code"]) == (503, "unavailable"), refused
    assert headers.getRawHeaders("Retry-After") == ["1"]
    # a repeat of the request stored before gets its first answer (SPEC §4), not "nothing was stored";
    # with another body, the key's conflict; a new key is shed
    assert await call(gw, "POST", "/v1/messages", first, key="order-1") == (202, body, ANY)
    code, conflict, _ = await call(gw, "POST", "/v1/messages", {**first, "text": "other"}, key="order-1")
    assert (code, conflict["error"]["code"]) == (409, "idempotency_conflict"), conflict
    code, shed, _ = await call(gw, "POST", "/v1/messages", {**first, "text": "other"}, key="order-2")
    assert (code, shed["error"]["code"]) == (503, "unavailable"), shed
    code, ready, _ = await call(gw, "GET", "/readyz")
    assert code == 200 and ready["ready"] and ready["shedding"] == "backlog", ready
    assert await deferToThread(refused_submit, gw.smpp_ports[0].getHost().port) == ESME_RMSGQFUL
    counts = await gw.store.count_by_status()
    assert counts == {Status.QUEUED: 5} or sum(counts.values()) == 5, counts  # nothing refused was stored
    # A request that queues nothing (scheduled for later) is not shed.
    later = datetime.fromtimestamp(time.time() + 3600, timezone.utc).isoformat()
    code, body, _ = await call(gw, "POST", "/v1/messages", {"to": "46701234597", "text": "later", "send_at": later})
    assert code == 202 and body["messages"][0]["status"] == "scheduled", body
    # The operator drains the backlog (1/s); new messages are taken again, and /readyz stops naming it.

    async def drained():
        code, body, _ = await call(gw, "POST", "/v1/messages", {"to": "46701234596", "text": "z"})
        return code == 202

    await eventually(drained, "a message accepted once the backlog drained", timeout=20)

    async def not_shedding():
        code, ready, _ = await call(gw, "GET", "/readyz")
        return code == 200 and "shedding" not in ready

    await eventually(not_shedding, "/readyz without shedding once the backlog is under max_backlog", timeout=20)
    assert sum((await gw.store.count_by_status()).values()) == 7  # 5 + the scheduled one + the last
