"""Reloading an operator's settings (SPEC §3: reload "reconnects only the binds whose settings
changed"), with a real SQLite store and the in-process simulated operator on loopback: what was
sent before the reload still gets its receipt, as from a real SMSC, which keeps its receipts for
the next bind."""

from __future__ import annotations

import pytest_twisted
from prometheus_client import CollectorRegistry
from twisted.internet import reactor

from smscore.app import Gateway
from smscore.config import load_config
from smscore.model import Message, Status, new_message_id
from tests.harness.waiting import eventually

CONFIG = """
[gateway]
node = "gw1"
[store]
url = "sqlite:///gw.db"
[http]
listen = "127.0.0.1:0"
[metrics]
listen = "127.0.0.1:0"
[operators.sim]
type = "simulated"
receipt_delay = "{delay}"
window = {window}
[profiles.standard]
operators = ["sim"]
[accounts.acme]
api_keys = ["acme-key"]
"""


def message(now: float, to: str) -> Message:
    return Message(id=new_message_id(now), account="acme", to=to, sender="SMSGW", text="hi", encoding="gsm7",
                   parts=1, profile="standard", created_at=now, updated_at=now)


@pytest_twisted.ensureDeferred
async def test_messages_sent_before_a_simulated_operator_is_reloaded_still_get_their_receipts(tmp_path):
    """Before, the reload stopped the simulator and built a new one: its pending receipts were
    forgotten and the messages stayed submitted until receipt_timeout (72 h)."""
    path = tmp_path / "gw.toml"
    path.write_text(CONFIG.format(delay="1500ms", window=10))
    gw = Gateway(load_config(path), reactor, CollectorRegistry())
    await gw.start()
    try:
        await eventually(lambda: gw.links["sim"].is_up(), "the simulated operator bound")
        now = reactor.seconds()
        sent = [message(now, f"4670123456{i}") for i in range(3)]
        await gw.pipeline.accept(sent)

        async def all_in(status):
            return all([(await gw.store.get(m.id)).status is status for m in sent])

        await eventually(lambda: all_in(Status.SUBMITTED), "submitted")
        path.write_text(CONFIG.format(delay="10ms", window=5))
        assert gw.reload()["reconnected"] == ["sim"]
        await eventually(lambda: all_in(Status.DELIVERED), "delivered after the reload", timeout=10)
        later = message(reactor.seconds(), "46709999999")  # and the new settings apply
        await gw.pipeline.accept([later])
        await eventually(lambda: gw.store.get(later.id).addCallback(lambda m: m.status is Status.DELIVERED),
                         "a message after the reload delivered")
        assert gw.sims["sim"].settings.receipt_delay == 0.01
    finally:
        await gw.stop()
