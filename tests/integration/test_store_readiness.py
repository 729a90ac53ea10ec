"""``/readyz`` and ``smsgw_ready`` of a gateway on SQLite follow the store (SPEC §4: "store
reachable and every profile has a bound operator"): a program that holds the file locked makes the
node not ready once the writes it keeps making (claims, lease renewals, heartbeats) fail, and
ready again once they commit. Before, SQLite's store always said it was reachable."""

from __future__ import annotations

import sqlite3

import pytest
import pytest_twisted
import treq
from prometheus_client import CollectorRegistry
from twisted.internet import reactor

from smscore.app import Gateway
from smscore.config import parse_config
from tests.harness.waiting import eventually

CONFIG = """
[gateway]
node = "ready"
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
senders = ["Acme"]
"""


@pytest.fixture
def gateway(tmp_path):
    gw = Gateway(parse_config(CONFIG, path=tmp_path / "gw.toml"), reactor, CollectorRegistry())
    pytest_twisted.blockon(gw.start())
    yield gw
    pytest_twisted.blockon(gw.stop())


async def readyz(gw) -> tuple[int, dict]:
    resp = await treq.get(f"http://127.0.0.1:{gw.http_port.getHost().port}/readyz")
    return resp.code, await resp.json()


@pytest_twisted.ensureDeferred
async def test_a_locked_sqlite_file_makes_the_node_not_ready_until_it_is_released(gateway, tmp_path):
    gw = gateway
    gw.store._writer.busy_for = 0.3  # how long a write waits for the lock (30 s in service)
    await eventually(lambda: gw.links["sim"].is_up(), "the simulated operator bound")
    assert (await readyz(gw))[0] == 200
    other = sqlite3.connect(tmp_path / "gw.db", isolation_level=None)
    try:
        other.execute("BEGIN EXCLUSIVE")
        await eventually(lambda: not gw.store.is_ready(), "a write of the gateway's own failing", timeout=15)
        code, body = await readyz(gw)
        assert (code, body["ready"], body["problems"]) == (503, False, ["store unreachable"]), body
        assert gw.metrics.registry.get_sample_value("smsgw_ready") == 0
        other.execute("ROLLBACK")
        await eventually(gw.store.is_ready, "the next write committing", timeout=15)
        assert (await readyz(gw))[0] == 200
        assert gw.metrics.registry.get_sample_value("smsgw_ready") == 1
    finally:
        other.close()


@pytest_twisted.ensureDeferred
async def test_only_a_batch_that_changed_rows_makes_the_store_ready_again(tmp_path):
    """A file that refuses every write (read-only, immutable) still lets a batch that changes
    nothing commit (a claim that found nothing): that batch says nothing about storing a message."""
    from smscore.store.sqlite import SQLiteStore

    store = SQLiteStore(tmp_path / "s.db", reactor)
    await store.open()
    try:
        store._reachable = False  # as after a batch found the file unwritable
        await store.run(lambda cur: cur.execute("UPDATE accounts_state SET paused = 1 WHERE account = 'nobody'"))
        assert not store.is_ready()
        await store.ensure_accounts({"acme": 0})  # a row written: the file takes writes again
        assert store.is_ready()
    finally:
        await store.close()
