"""Retention through a real gateway (SPEC §3 ``retention_days``): at start and then hourly, every
finished message older than the retention goes, however many there are: the purge takes them a
chunk (``PURGE_CHUNK``) a transaction until none is left, not one chunk an hour."""

from __future__ import annotations

import sqlite3
import time

import pytest_twisted
from prometheus_client import CollectorRegistry
from twisted.internet import reactor

from smscore.app import Gateway
from smscore.config import parse_config
from smscore.store.rules import PURGE_CHUNK
from smscore.store.sqlite import SQLiteStore
from tests.store_contract import make_message, receipt
from tests.harness.waiting import eventually

CONFIG = """
[gateway]
node = "keeper"
retention_days = 1
[store]
url = "sqlite:///gw.db"
[http]
listen = "127.0.0.1:0"
[metrics]
listen = "127.0.0.1:0"
[operators.sim]
type = "simulated"
[profiles.standard]
operators = ["sim"]
[accounts.acme]
api_keys = ["acme-key"]
senders = ["ACME"]
"""


def _count(path, where: str = "") -> int:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(f"SELECT COUNT(*) FROM messages {where}").fetchone()[0]
    finally:
        conn.close()


@pytest_twisted.ensureDeferred
async def test_every_finished_message_past_the_retention_goes_not_one_chunk_an_hour(tmp_path):
    old_at, fresh_at = time.time() - 3 * 86400, time.time() - 3600
    old = [make_message(to=f"4670{i:07d}", at=old_at + i / 1000) for i in range(2 * PURGE_CHUNK + 500)]
    fresh = make_message(to="46709999999", at=fresh_at)
    store = SQLiteStore(tmp_path / "gw.db", reactor)
    await store.open()
    try:
        await store.accept([*old, fresh], None, 0.0)
        for m in [*old, fresh]:
            await store.record_submit(m.id, "sim", [m.id + "-k"], m.created_at + 1)
        for m in [*old, fresh]:
            await store.apply_receipt(receipt(m.id + "-k", operator="sim"), m.created_at + 2)
    finally:
        await store.close()
    assert _count(tmp_path / "gw.db", "WHERE status = 'delivered'") == len(old) + 1

    gw = Gateway(parse_config(CONFIG, path=tmp_path / "gw.toml"), reactor, CollectorRegistry())
    await gw.start()
    try:
        await eventually(lambda: _count(tmp_path / "gw.db") == 1, "every message past the retention gone",
                         state=lambda: _count(tmp_path / "gw.db"))
        assert (await gw.store.get(fresh.id)).status.value == "delivered"
        assert await gw.store.get(old[-1].id) is None
    finally:
        await gw.stop()
