"""A long MO from a simulated operator, through the real gateway: parts stored, reassembled,
and the SMSC answered only after each part is stored."""

from __future__ import annotations

import pytest_twisted
from prometheus_client import CollectorRegistry
from twisted.internet import reactor
from twisted.internet.defer import Deferred

from smscore.app import Gateway
from smscore.config import parse_config

CONFIG = """
[store]
url = "sqlite:///gw.db"
[http]
listen = "127.0.0.1:0"
[metrics]
listen = "127.0.0.1:0"
[operators.sim_a]
type = "simulated"
receipt_delay = "10ms"
[profiles.standard]
operators = ["sim_a"]
[accounts.demo]
api_keys = ["demo-key"]
senders = ["DEMO"]
"""


@pytest_twisted.ensureDeferred
async def test_a_long_mo_is_reassembled_and_stored(tmp_path):
    config = parse_config(CONFIG, path=tmp_path / "gw.toml")
    gw = Gateway(config, reactor, CollectorRegistry())
    await gw.start()
    try:
        got: Deferred = Deferred()
        gw.pipeline.mo_intake.on_mo = got.callback
        # wait until the link is bound (the receiver the MO goes to)
        for _ in range(200):
            if gw.links["sim_a"].is_up():
                break
            await _later(0.02)
        text = "PIZZA " + "large with extra cheese and olives, please. " * 8  # > 160: 3 GSM parts
        outcome = await gw.sims["sim_a"].inject_mo("46701234567", "72550", text)
        assert outcome == "delivered"
        mo = await got
        assert (mo.text, mo.parts, mo.sender, mo.to, mo.note) == (text, 3, "46701234567", "72550", "")
        stored = await gw.store.get_mo(mo.id)
        assert stored.text == text
        assert gw.sims["sim_a"].mo_acked == 3
    finally:
        await gw.stop()


def _later(seconds):
    from twisted.internet.task import deferLater

    return deferLater(reactor, seconds, lambda: None)
