"""Text fidelity through the HTTP API: the parts the API counts and answers are the parts the wire
carries, and a text over the account's parts limit is refused, never truncated.

A whole gateway (SQLite store, pipeline, HTTP API) whose one operator is the ``RecordingSMSC`` of
``tests/text_fidelity_rig.py``; what is submitted is read back by smpplib and the independent
reader (``check_message``).
"""

from __future__ import annotations

import json

import pytest
import pytest_twisted
import treq
from twisted.internet import reactor
from twisted.internet.defer import Deferred

import smscore.app
from smscore.config import parse_config
from tests.text_fidelity_rig import (
    GSM,
    LATIN1,
    UCS2,
    UCS2_TEXT,
    WAIT,
    RecordingSMSC,
    check_message,
    cycle,
    gsm_ext_straddling,
    submits_on_the_wire,
)

API_CONFIG = """
[gateway]
node = "fidelity"
max_parts_cap = 6
[store]
url = "sqlite:///gw.db"
[http]
listen = "127.0.0.1:0"
[metrics]
listen = "127.0.0.1:0"
[operators.sim]
type = "simulated"
receipt_delay = "10ms"
{operator}
[profiles.standard]
operators = ["sim"]
[accounts.acme]
api_keys = ["acme-key"]
senders = ["ACME"]
max_parts = 4
"""


@pytest.fixture
def gateway(request, tmp_path, monkeypatch):
    """A whole gateway (SQLite store, pipeline, HTTP API) whose one operator is a RecordingSMSC
    in-process; ``gateway.receipts_stored(n)`` fires once n receipts are stored. Indirect
    parametrization adds lines to the operator's section."""
    monkeypatch.setattr(smscore.app, "SimulatedSMSC", RecordingSMSC)
    operator = getattr(request, "param", "")
    config = parse_config(API_CONFIG.format(operator=operator), path=tmp_path / "gw.toml")
    gw = smscore.app.Gateway(config, reactor)
    stored = []
    waiting: list[tuple[int, Deferred]] = []
    receipt_received = gw.pipeline.receipt_received

    def counting(receipt):
        d = receipt_received(receipt)

        def done(result):
            stored.append(receipt)
            for n, w in list(waiting):
                if len(stored) >= n:
                    waiting.remove((n, w))
                    w.callback(None)
            return result
        return d.addCallback(done)

    def receipts_stored(n: int) -> Deferred:
        d: Deferred = Deferred()
        waiting.append((n, d))
        if len(stored) >= n:
            waiting.remove((n, d))
            d.callback(None)
        return d.addTimeout(WAIT, reactor)

    gw.pipeline.receipt_received = counting  # the links call it through the pipeline object
    gw.receipts_stored = receipts_stored
    pytest_twisted.blockon(gw.start())
    gw.url = f"http://127.0.0.1:{gw.http_port.getHost().port}"
    yield gw
    pytest_twisted.blockon(gw.stop())


async def post(gw, body) -> tuple[int, dict]:
    resp = await treq.post(gw.url + "/v1/messages", data=json.dumps(body).encode(),
                           headers={"Authorization": ["Bearer acme-key"],
                                    "Content-Type": ["application/json"]})
    return resp.code, json.loads(await resp.content())


async def get(gw, message_id) -> dict:
    resp = await treq.get(f"{gw.url}/v1/messages/{message_id}",
                          headers={"Authorization": ["Bearer acme-key"]})
    assert resp.code == 200
    return json.loads(await resp.content())


@pytest_twisted.ensureDeferred
async def test_api_counts_parts_as_the_wire_carries_them(gateway):
    emoji = UCS2_TEXT  # 4 UCS-2 parts, emoji across every boundary
    ext = gsm_ext_straddling(150)  # extension characters count two septets
    code, body = await post(gateway, {"to": "46700000001", "text": emoji})
    assert code == 202 and body["messages"][0]["parts"] == 4
    emoji_id = body["messages"][0]["id"]
    code, body = await post(gateway, {"to": "46700000002", "text": ext})
    assert code == 202
    ext_parts = body["messages"][0]["parts"]
    assert ext_parts == 3 and len(ext) <= 2 * 153  # counted by characters, it would be 2
    ext_id = body["messages"][0]["id"]

    # over the account's max_parts (4), never truncated
    for text in (UCS2_TEXT + "Ж" * 67, "€" * 310):
        code, body = await post(gateway, {"to": "46700000003", "text": text})
        assert (code, body["error"]["code"], body["error"]["field"]) == (
            422, "text_too_long", "text")
    code, body = await post(gateway, {"to": "46700000003", "text": emoji, "max_parts": 3})
    assert (code, body["error"]["code"]) == (422, "text_too_long")

    sim = gateway.sims["sim"]
    await sim.submitted(4 + ext_parts)
    by_to: dict[str, list] = {}
    for p in submits_on_the_wire(sim):
        by_to.setdefault(p.destination_addr.decode(), []).append(p)
    assert set(by_to) == {"46700000001", "46700000002"}
    check_message(by_to["46700000001"], emoji, parts=4, data_coding=UCS2)
    check_message(by_to["46700000002"], ext, parts=ext_parts, data_coding=GSM)

    await gateway.receipts_stored(4 + ext_parts)
    for message_id, text, parts in ((emoji_id, emoji, 4), (ext_id, ext, ext_parts)):
        got = await get(gateway, message_id)
        assert (got["text"], got["parts"], got["status"]) == (text, parts, "delivered")


@pytest.mark.parametrize("gateway", ["latin1 = true"], indirect=True)
@pytest_twisted.ensureDeferred
async def test_a_message_sent_in_fewer_parts_than_counted_is_delivered(gateway):
    text = cycle("Þórður sá ð og þ á ÿtri bænum. ", 100)  # auto: UCS-2, 2 parts; 1 as Latin-1
    code, body = await post(gateway, {"to": "46700000001", "text": text})
    assert code == 202 and body["messages"][0]["parts"] == 2
    sim = gateway.sims["sim"]
    await sim.submitted(1)
    check_message(submits_on_the_wire(sim), text, parts=1, data_coding=LATIN1)
    await gateway.receipts_stored(1)
    got = await get(gateway, body["messages"][0]["id"])
    assert got["status"] == "delivered"
