"""The store contract against a real PostgreSQL, plus what only a shared database has to get right:
migrations, and two stores (two nodes) working on the same rows at once."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import DeferredList, ensureDeferred, gatherResults

from connectors.api import MoFacts, ReceiptOutcome
from smscore.model import Status
from smscore.store import pg_schema
from smscore.store import sqlite as sq
from smscore.store.base import StoreRules
from smscore.store.postgres import PostgresStore
from smscore.store.rules import day_of
from tests import store_contract, store_contract_accounts, store_sql
from tests.store_contract import make_message, receipt

CHECKS = store_contract.CHECKS + store_contract_accounts.CHECKS + store_sql.CHECKS
pytestmark = pytest.mark.postgres


async def _open(url, **kw) -> PostgresStore:
    store = PostgresStore(url, reactor, **kw)
    await store.open()
    return store


@pytest.mark.parametrize("writers", [1, 3])
@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
@pytest_twisted.ensureDeferred
async def test_contract(check, writers, pg_url):
    store = await _open(pg_url, writers=writers)
    try:
        await check(store)
    finally:
        await store.close()


# -- migrations ---------------------------------------------------------------------------------
def test_upgrade_is_idempotent_and_safe_from_two_nodes_at_once(pg_url):
    results = []
    threads = [threading.Thread(target=lambda: results.append(pg_schema.upgrade(pg_url))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [(0, pg_schema.LATEST), (pg_schema.LATEST, pg_schema.LATEST)]
    assert pg_schema.upgrade(pg_url) == (pg_schema.LATEST, pg_schema.LATEST)
    assert pg_schema.version_of(pg_url) == pg_schema.LATEST


def test_every_sqlite_version_has_its_postgresql_twin(pg_url, tmp_path):
    """Same version numbers, same tables and columns, and every SQLite index exists here too."""
    assert sorted(pg_schema.MIGRATIONS) == sorted(sq.MIGRATIONS)
    sq.upgrade(tmp_path / "gw.db")
    lite = sqlite3.connect(tmp_path / "gw.db")
    tables = [r[0] for r in lite.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                         "AND name NOT LIKE 'sqlite_%'")]
    lite_columns = {(t, r[1]) for t in tables for r in lite.execute(f"PRAGMA table_info({t})")}
    lite_indexes = {r[0] for r in lite.execute("SELECT name FROM sqlite_master WHERE type = 'index' "
                                               "AND sql IS NOT NULL")}
    pg_schema.upgrade(pg_url)
    conn = pg_schema.connect(pg_url)
    cur = conn.cursor()
    cur.execute("SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public'")
    pg_columns = set(cur.fetchall())
    cur.execute("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")
    pg_indexes = {r[0] for r in cur.fetchall()}
    conn.close()
    assert pg_columns == lite_columns
    assert lite_indexes <= pg_indexes


def test_smsgw_db_upgrade_on_a_postgresql_url(pg_url, tmp_path):
    from tests.e2e.conftest import smsgw

    rest = '[operators.sim]\ntype = "simulated"\n[profiles.p]\noperators = ["sim"]\n'
    config = tmp_path / "gw.toml"
    config.write_text(f'[store]\nurl = "{pg_url}"\nauto_upgrade = false\n' + rest)
    first = smsgw("db", "upgrade", "-c", str(config))
    assert first.returncode == 0, first.stderr
    assert f"schema version 0 -> {pg_schema.LATEST}" in first.stdout
    again = smsgw("db", "upgrade", "-c", str(config))
    assert f"schema version {pg_schema.LATEST} -> {pg_schema.LATEST}" in again.stdout
    config.write_text('[store]\nurl = "postgresql://nobody@/none?host=/nonexistent"\n' + rest)
    bad = smsgw("db", "upgrade", "-c", str(config))
    assert bad.returncode == 1 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    assert "postgresql://nobody@/none" in bad.stderr


@pytest_twisted.ensureDeferred
async def test_refuses_a_missing_schema_without_auto_upgrade(pg_url):
    store = PostgresStore(pg_url, reactor, auto_upgrade=False)
    with pytest.raises(RuntimeError, match="smsgw db upgrade"):
        await store.open()


def test_indexes_serve_the_hot_queries(pg_url):
    """The claim, the receipt lookup, pulls, the inbox, due pushes and a message's history use an
    index (checked on the plan with sequential scans off, as on a table of millions)."""
    pg_schema.upgrade(pg_url)
    conn = pg_schema.connect(pg_url)
    cur = conn.cursor()
    cur.execute("SET enable_seqscan = off")
    queries = {
        "messages_sendable": "SELECT id FROM messages WHERE status = 'queued' AND (send_at IS NULL OR send_at <= 1) "
                             "AND (owner IS NULL OR lease_until < 1) ORDER BY id LIMIT 100",
        "smsc_ids_pkey": "SELECT message_id, part FROM smsc_ids WHERE operator = 'a' AND key = 'b'",
        "messages_updates": "SELECT id FROM messages WHERE account = 'a' AND update_seq > 5 ORDER BY update_seq "
                            "LIMIT 100",
        "mo_inbox": "SELECT id FROM mo_messages WHERE account = 'a' AND seq > 5 ORDER BY seq LIMIT 100",
        "push_jobs_due": "SELECT j.id FROM push_jobs j WHERE j.next_at <= 5 AND (j.owner IS NULL OR j.lease_until < 5) "
                         "AND NOT EXISTS (SELECT 1 FROM push_jobs e WHERE e.subject = j.subject AND e.id < j.id "
                         "AND (e.next_at > 5 OR (e.owner IS NOT NULL AND e.lease_until >= 5))) ORDER BY j.id LIMIT 100",
        "push_jobs_subject": "SELECT 1 FROM push_jobs WHERE subject = 'm' AND id < 7 AND next_at > 5",
        "events_message": "SELECT at FROM events WHERE message_id = 'x' ORDER BY id",
        "messages_owner": "UPDATE messages SET lease_until = 1 WHERE owner = 'gw1' AND status = 'queued'",
        "messages_awaiting_receipt": "SELECT id FROM messages WHERE status IN ('submitted', 'buffered') "
                                     "AND updated_at < 5 ORDER BY updated_at LIMIT 100",
    }
    for index, sql in queries.items():
        cur.execute("EXPLAIN " + sql)
        plan = "\n".join(r[0] for r in cur.fetchall())
        assert index in plan, f"{index} not used:\n{plan}"
    conn.close()


# -- one store ----------------------------------------------------------------------------------
@pytest_twisted.ensureDeferred
async def test_group_commit_batches_concurrent_calls(pg_url):
    store = await _open(pg_url)
    try:
        msgs = [make_message(at=1000.0 + i) for i in range(300)]
        await gatherResults([store.accept([m], "gw1", 1030.0) for m in msgs])
        assert store._writer.ops >= 300 and store._writer.batches < 150
        assert sum((await store.count_by_status()).values()) == 300
    finally:
        await store.close()


@pytest_twisted.ensureDeferred
async def test_a_failing_operation_fails_alone(pg_url):
    import psycopg2

    store = await _open(pg_url)
    try:
        m, other = make_message(), make_message(at=2000.0)
        first = store.accept([m], "gw1", 1030.0)
        duplicate = store.accept([m], "gw1", 1030.0)  # same primary key
        third = store.accept([other], "gw1", 1030.0)
        await first
        with pytest.raises(psycopg2.IntegrityError):
            await duplicate
        await third
        assert (await store.get(other.id)).id == other.id
    finally:
        await store.close()


@pytest_twisted.ensureDeferred
async def test_a_lost_connection_is_replaced_and_readiness_follows_the_server(pg_url, pg_server_url):
    import psycopg2

    store = await _open(pg_url)
    name = urlsplit(pg_url).path.lstrip("/")
    admin = pg_schema.connect(pg_server_url)
    kill = ("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
            "AND pid <> pg_backend_pid()")
    try:
        await store.accept([make_message()], "gw1", 1030.0)
        admin.cursor().execute(kill, (name,))
        m = make_message(at=1001.0)
        await store.accept([m], "gw1", 1030.0)  # a new connection, nobody the wiser
        assert (await store.get(m.id)).status is Status.QUEUED and store.is_ready()
        # The server refuses connections: operations fail and the node is not ready ...
        admin.cursor().execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        admin.cursor().execute(kill, (name,))
        with pytest.raises(psycopg2.OperationalError):
            await store.get(m.id)
        assert not store.is_ready()
        # ... until it is back.
        admin.cursor().execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        assert (await store.get(m.id)).id == m.id and store.is_ready()
    finally:
        admin.cursor().execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        admin.close()
        await store.close()


# -- two nodes on one database ----------------------------------------------------------------
@pytest.fixture
def two_nodes(pg_url):
    """Two stores on one database, as two nodes have (``await two_nodes()`` → ``.a``, ``.b``)."""
    stores = []

    async def make():
        a = await _open(pg_url)
        b = await _open(pg_url)
        stores.extend([a, b])
        for s in (a, b):
            s.untried = store_contract.untried
        return SimpleNamespace(a=a, b=b)

    yield make
    for s in stores:
        pytest_twisted.blockon(s.close())


@pytest_twisted.ensureDeferred
async def test_concurrent_claims_never_hand_out_a_message_twice(two_nodes):
    nodes = await two_nodes()
    msgs = [make_message(at=1000.0 + i / 1000) for i in range(600)]
    await nodes.a.accept(msgs, None, 0.0)
    got = {"a": [], "b": []}

    async def claimer(store, name):
        while True:
            batch = await store.claim(name, 1100.0, 1200.0, 25)
            if not batch:
                return
            got[name].extend(m.id for m in batch)

    await gatherResults([ensureDeferred(claimer(nodes.a, "a")), ensureDeferred(claimer(nodes.b, "b"))])
    assert not set(got["a"]) & set(got["b"])
    assert sorted(got["a"] + got["b"]) == sorted(m.id for m in msgs)
    assert got["a"] and got["b"]  # both really worked at once


@pytest_twisted.ensureDeferred
async def test_a_receipt_at_the_other_node_is_matched_even_before_the_submit_is_stored(two_nodes):
    """Node A submits; the receipt arrives at node B, before, at the same time as, or after A
    stores the submit response. Every message ends delivered, each receipt applied once."""
    nodes = await two_nodes()
    msgs = [make_message(at=1000.0 + i / 1000) for i in range(200)]
    await nodes.a.accept(msgs, "a", 1030.0)
    ops = []
    for i, m in enumerate(msgs):
        key = f"k{i}"
        if i % 3 == 0:  # receipt first
            ops += [nodes.b.apply_receipt(receipt(key), 1002.0), nodes.a.record_submit(m.id, "cheap", [key], 1001.0)]
        else:
            ops += [nodes.a.record_submit(m.id, "cheap", [key], 1001.0), nodes.b.apply_receipt(receipt(key), 1002.0)]
    results = await DeferredList(ops, consumeErrors=True)
    assert all(ok for ok, _ in results), [r for ok, r in results if not ok][:3]
    counts = await nodes.b.count_by_status()
    assert counts == {Status.DELIVERED: len(msgs)}
    for m in msgs[:20]:
        events = [e.status for e in (await nodes.a.get(m.id)).events]
        assert events == [Status.QUEUED, Status.SUBMITTED, Status.DELIVERED]


@pytest_twisted.ensureDeferred
async def test_receipts_for_parts_of_one_message_at_two_nodes_apply_one_after_the_other(two_nodes):
    nodes = await two_nodes()
    msgs = [make_message(parts=2, at=1000.0 + i / 1000) for i in range(100)]
    await nodes.a.accept(msgs, "a", 1030.0)
    await gatherResults([nodes.a.record_submit(m.id, "cheap", [f"{i}-1", f"{i}-2"], 1001.0)
                         for i, m in enumerate(msgs)])
    await gatherResults([d for i in range(len(msgs)) for d in (
        nodes.a.apply_receipt(receipt(f"{i}-1"), 1002.0), nodes.b.apply_receipt(receipt(f"{i}-2"), 1002.0))])
    assert await nodes.a.count_by_status() == {Status.DELIVERED: len(msgs)}


@pytest_twisted.ensureDeferred
async def test_a_failed_receipt_requeues_for_the_node_that_applied_it(two_nodes):
    nodes = await two_nodes()
    m = make_message()
    await nodes.a.accept([m], "a", 1030.0)
    await nodes.a.record_submit(m.id, "cheap", ["f1"], 1001.0)
    t = await nodes.b.apply_receipt(receipt("f1", ReceiptOutcome.FAILED, stat="UNDELIV"), 1002.0, "b", 1040.0)
    assert t.requeue
    assert await nodes.a.claim("a", 1003.0, 1050.0, 10, include_own=True) == []
    assert [x.id for x in await nodes.b.claim("b", 1003.0, 1050.0, 10, include_own=True)] == [m.id]


@pytest_twisted.ensureDeferred
async def test_mo_parts_stored_by_two_nodes_at_once_assemble_once(two_nodes):
    nodes = await two_nodes()
    groups = 60
    ops = []
    for ref in range(groups):
        sender = f"4670{ref:07d}"
        for seq in (1, 2, 3):
            store = nodes.a if (ref + seq) % 2 else nodes.b
            ops.append(store.store_mo(MoFacts("op", sender, "72550", f"p{seq} ", (ref, 3, seq)), 1000.0 + seq))
    # a sweep with nothing old enough runs alongside
    ops.append(nodes.a.expire_mo_parts(older_than=900.0, now=1000.0))
    ops.append(nodes.b.expire_mo_parts(older_than=900.0, now=1000.0))
    results = await gatherResults(ops)
    whole = [r for r in results[:-2] if r is not None]
    assert len(whole) == groups
    assert sorted(mo.sender for mo in whole) == sorted(f"4670{ref:07d}" for ref in range(groups))
    assert all(mo.text == "p1 p2 p3 " for mo in whole)
    assert results[-2:] == [[], []]
    conn = pg_schema.connect(nodes.a.url)
    cur = conn.cursor()
    cur.execute("SELECT COUNT(*) FROM mo_messages")
    assert cur.fetchone()[0] == groups
    cur.execute("SELECT COUNT(*) FROM mo_parts")
    assert cur.fetchone()[0] == 0
    conn.close()


@pytest_twisted.ensureDeferred
async def test_the_expiry_sweep_of_two_nodes_stores_an_incomplete_mo_once(two_nodes):
    nodes = await two_nodes()
    for ref in range(30):
        await nodes.a.store_mo(MoFacts("op", f"4670{ref:07d}", "72550", "only ", (ref, 2, 1)), 1000.0)
    a, b = await gatherResults([nodes.a.expire_mo_parts(older_than=1001.0, now=1400.0),
                                nodes.b.expire_mo_parts(older_than=1001.0, now=1400.0)])
    assert len(a) + len(b) == 30
    assert {mo.sender for mo in a}.isdisjoint({mo.sender for mo in b})


@pytest_twisted.ensureDeferred
async def test_push_jobs_claimed_by_two_nodes_are_disjoint(two_nodes):
    nodes = await two_nodes()
    for i in range(120):
        await nodes.a.store_mo(MoFacts("op", f"4670{i:07d}", "72550", "PIZZA"), 1000.0,
                               store_contract._routing, "a", 1030.0)
    got = await gatherResults([s.claim_push_jobs(name, 1001.0, 1100.0, 15)
                               for _ in range(6) for name, s in (("a", nodes.a), ("b", nodes.b))])
    ids = [j.id for batch in got for j in batch]
    assert len(ids) == len(set(ids)) == 120


@pytest_twisted.ensureDeferred
async def test_two_nodes_claiming_at_once_never_split_a_messages_callbacks(two_nodes):
    """Each message has two status jobs: one claim takes both, or the first alone (the limit cut
    it off), never the second without the first, and never the two in two claims."""
    nodes = await two_nodes()
    for s in (nodes.a, nodes.b):
        s.status_callbacks_for = lambda m: ("http://acme/status", "all")
    msgs = [make_message(at=1000.0) for _ in range(80)]
    await nodes.a.accept(msgs, "a", 1030.0)
    for i, m in enumerate(msgs):
        await nodes.a.record_submit(m.id, "cheap", [f"k{i}"], 1001.0)
        await nodes.a.apply_receipt(receipt(f"k{i}"), 1002.0)
    claims = []

    async def claimer(store, name):
        while True:
            jobs = await store.claim_push_jobs(name, 1010.0, 1100.0, 7)
            if not jobs:
                return
            claims.append(jobs)

    await gatherResults([ensureDeferred(claimer(s, name)) for _ in range(3)
                         for name, s in (("a", nodes.a), ("b", nodes.b))])
    claim_of = {}
    for n, jobs in enumerate(claims):
        for job in jobs:
            claim_of.setdefault(job.subject, []).append((n, job.body["status"]))
    assert len(claim_of) == 80
    for got in claim_of.values():
        assert len({n for n, _ in got}) == 1
        assert [s for _, s in got] in (["submitted", "delivered"], ["submitted"])


@pytest_twisted.ensureDeferred
async def test_a_pull_never_steps_over_a_change_committed_late(two_nodes):
    """A transaction takes update number N and commits after another one took and committed N+1:
    the pull waits for it rather than show N+1 and move its cursor past N."""
    nodes = await two_nodes()
    early, late = make_message(at=1000.0), make_message(at=1001.0)
    conn = pg_schema.connect(nodes.a.url)
    cur = conn.cursor()
    cur.execute("BEGIN")
    n = nodes.a._next_seq(cur, "messages", "update_seq")  # taken, not yet committed
    await nodes.b.accept([late], "b", 1030.0)
    pulled = nodes.b.updates("acme", 0, 10)
    assert not pulled.called

    def commit_early():
        cur.execute("INSERT INTO messages (id, account, to_number, sender, body, encoding, parts, profile, status, "
                    "created_at, updated_at, update_seq) VALUES (%s, 'acme', '4670', 'S', 'x', 'gsm7', 1, 'p', "
                    "'queued', 1000, 1000, %s)", (early.id, n))
        cur.execute("COMMIT")

    await _later(0.3, commit_early)
    rows = await pulled
    assert [m.id for _, m in rows] == [early.id, late.id]
    conn.close()


def _later(delay, f):
    from twisted.internet.task import deferLater

    return deferLater(reactor, delay, f)


@pytest_twisted.ensureDeferred
async def test_check_then_insert_races_between_nodes_resolve(two_nodes):
    """Opening balances given by two nodes starting at once: each account once, nobody fails."""
    from decimal import Decimal

    nodes = await two_nodes()
    balances = {f"acc{i}": Decimal(10) for i in range(50)}
    await gatherResults([nodes.a.ensure_accounts(balances), nodes.b.ensure_accounts(balances)])
    assert (await nodes.b.account_state("acc7"))[0] == Decimal(10)


@pytest_twisted.ensureDeferred
async def test_an_idempotency_key_holds_across_nodes(two_nodes):
    """The same key with the same body posted to two nodes at once: one stores, the other answers
    with the first answer, and only one message exists."""
    nodes = await two_nodes()

    def post(store, at):
        m = make_message(at=at)
        return store.accept_once([m], "n", 1030.0, account="acme", key="k-1", body_hash="h",
                                 render=lambda ms: {"id": ms[0].id}, at=1000.0)

    for round_ in range(10):
        nodes.a, nodes.b = nodes.b, nodes.a
        answers = await gatherResults([post(nodes.a, 1000.0 + round_), post(nodes.b, 1000.5 + round_)])
        if round_ == 0:
            assert answers.count(None) == 1
            first = next(a for a in answers if a is not None)
        else:
            assert answers == [first, first]
    assert sum((await nodes.a.count_by_status()).values()) == 1
    assert (await nodes.a.get(first["id"])) is not None


@pytest_twisted.ensureDeferred
async def test_submits_and_receipts_queued_together_run_merged(pg_url):
    """The contract's batch check with everything queued before the writer starts: one merged run
    (advisory locks, rows read FOR UPDATE, event ids from the sequence, statements in pages)."""
    store = await _open(pg_url)
    try:
        assert (await store_sql.merged_run_sizes(store))[0] == 11
    finally:
        await store.close()


@pytest_twisted.ensureDeferred
async def test_statements_per_message_at_load(pg_url, monkeypatch):
    """Accept, submit, receipt and callback of a message, 50 of each at a time: counted at the
    cursor (each execute is one statement and one round trip), well under the bar of 6."""
    from smscore.store import postgres

    executed = []
    execute = postgres._Cursor.execute

    def counting(self, sql, params=None):
        executed.append(sql)
        return execute(self, sql, params)

    monkeypatch.setattr(postgres._Cursor, "execute", counting)
    store = await _open(pg_url)
    try:
        per_message = await store_sql.statements_per_message(store, lambda: len(executed))
    finally:
        await store.close()
    assert per_message <= 1.0, per_message  # 0.64 measured; the bar is 6


@pytest_twisted.ensureDeferred
async def test_reads_wait_for_no_write(pg_url):
    store = await _open(pg_url, writers=2)
    try:
        await store_sql.reads_wait_for_no_write(store)
    finally:
        await store.close()


DAILY = """
[operators.cheap]
type = "simulated"
[profiles.standard]
operators = ["cheap"]
[accounts.acme]
api_keys = ["acme-key"]
senders = ["ACME"]
daily_volume_limit = 100000
"""


@pytest_twisted.ensureDeferred
async def test_the_daily_count_loses_nothing_when_nodes_accept_at_once(pg_url):
    # Two nodes (two stores, three writers each) accept 40 requests of 5 at once for one postpaid
    # account with a daily limit: every message is counted, none overwritten by a concurrent batch.
    from smscore.config import parse_config

    config = parse_config(DAILY, path="/nonexistent/gateway.toml")
    stores = [await _open(pg_url, writers=3, rules=StoreRules(config_source=lambda: config,
                                                              untried=store_contract.untried, writer=f"node{i}"))
              for i in range(2)]
    try:
        await stores[0].ensure_accounts({"acme": 0})
        batches = [[make_message(to=f"467012{i:03d}{j}", at=1000.0) for j in range(5)] for i in range(40)]
        await gatherResults([stores[i % 2].accept(batch, None, 0.0) for i, batch in enumerate(batches)])
        import psycopg2

        conn = psycopg2.connect(pg_url)
        try:
            cur = conn.cursor()
            cur.execute("SELECT writer, count FROM daily_volume WHERE account = 'acme' ORDER BY writer")
            assert cur.fetchall() == [("node0", 100), ("node1", 100)]  # each node its own row
        finally:
            conn.close()
        states = await stores[1].account_states(day_of(1000.0))
        assert states["acme"].sent_today == 200
    finally:
        for store in stores:
            await store.close()


@pytest_twisted.ensureDeferred
async def test_a_writer_counts_the_day_without_waiting_for_another_writers_transaction(pg_url):
    """One row per writer: an accept does not wait for the transaction of another node that counted
    the same account (before, both wrote one row, and each waited for the other's commit)."""
    import psycopg2

    from smscore.config import parse_config

    config = parse_config(DAILY.replace("100000", "9"), path="/nonexistent/gateway.toml")
    other = psycopg2.connect(pg_url)
    cur = other.cursor()
    cur.execute("SELECT current_database()")  # waiting at all fails the test (the store connects later)
    cur.execute(f'ALTER DATABASE "{cur.fetchone()[0]}" SET lock_timeout = \'5s\'')
    other.commit()
    store = await _open(pg_url, rules=StoreRules(config_source=lambda: config, untried=store_contract.untried,
                                                 writer="node-b"))
    try:
        await store.ensure_accounts({"acme": 0})
        # node-a counted 7 and has not committed yet
        cur.execute("INSERT INTO daily_volume (account, day, writer, count) VALUES ('acme', %s, 'node-a', 7)",
                    (day_of(1000.0),))
        first = [make_message(to="46701200001", at=1000.0)]
        await store.accept(first, None, 0.0)  # settles the messages it is given
        assert first[0].status is Status.QUEUED  # 7 is not committed: this node saw 0
        other.commit()
        held = [make_message(to=f"4670120000{i}", at=1000.0) for i in (2, 3)]
        await store.accept(held, None, 0.0)
        assert [m.status for m in held] == [Status.QUEUED, Status.PENDING_APPROVAL]  # 7 + 1 + 2 > 9
        assert (await store.account_states(day_of(1000.0)))["acme"].sent_today == 10
    finally:
        other.close()
        await store.close()


# -- claims whatever the statistics say -------------------------------------------------------------
def _stale_statistics(url: str, table: str, fill: str, refill: str) -> None:
    """Leave ``table`` as a queue table often is: analysed while nearly empty in a file that once
    held many rows (so PostgreSQL expects one row), then filled again without a new ANALYZE."""
    conn = pg_schema.connect(url)
    cur = conn.cursor()
    cur.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
    cur.execute(fill.format(n=40000))
    cur.execute(f"DELETE FROM {table} WHERE ctid <> (SELECT MAX(ctid) FROM {table})")  # the file keeps its length
    cur.execute(f"VACUUM ANALYZE {table}")
    cur.execute(f"DELETE FROM {table}")
    cur.execute(refill)
    cur.execute("SELECT reltuples FROM pg_class WHERE relname = %s", (table,))
    assert cur.fetchone()[0] <= 1  # what the planner believes
    # A claim planned as nested loops over the whole table ran for minutes: stop it well before.
    cur.execute("SELECT current_database()")
    cur.execute(f'ALTER DATABASE "{cur.fetchone()[0]}" SET statement_timeout = \'20s\'')
    conn.close()


@pytest.mark.parametrize("held", [5, 30000])
@pytest_twisted.ensureDeferred
async def test_a_push_claim_does_not_crawl_on_stale_statistics(pg_url, held):
    """Seen in a load run: 9,500 callbacks waiting, statistics from when push_jobs was nearly
    empty, and the claim re-ran its subqueries for every row (two minutes, the callbacks stalled
    and the claim's lock held the other processes' claims). With many jobs held elsewhere, the
    join of the waiting jobs with the held ones must not be a loop either."""
    pg_schema.upgrade(pg_url)
    job = ("INSERT INTO push_jobs (kind, account, subject, url, body, attempts, first_at, next_at, owner, "
           "lease_until) SELECT 'status', 'a', md5((g % {subjects})::text), 'http://127.0.0.1:9/cb', '[]', 0, 100, "
           "100, {owner}, {lease} FROM generate_series(1, {n}) g")
    subjects = held + 4750  # the first `held` jobs are held by "b"; the 9,500 after them wait, and the
    # last half of those are later jobs of the held subjects' (g and g + subjects share a subject)
    _stale_statistics(pg_url, "push_jobs", job.format(owner="NULL", lease="NULL", subjects=10 ** 9, n="{n}"),
                      job.format(owner=f"CASE WHEN g <= {held} THEN 'b' END",
                                 lease=f"CASE WHEN g <= {held} THEN 500 END", subjects=subjects, n=9500 + held))
    store = await _open(pg_url)
    try:
        jobs = await store.claim_push_jobs("a", 200.0, 300.0, 1000)
        assert len(jobs) == 1000 and [j.id for j in jobs] == sorted(j.id for j in jobs)
        held_subjects = {hashlib.md5(str(g).encode()).hexdigest() for g in range(1, held + 1)}
        assert not {j.subject for j in jobs} & held_subjects
    finally:
        await store.close()


@pytest_twisted.ensureDeferred
async def test_a_message_claim_does_not_crawl_on_stale_statistics(pg_url):
    pg_schema.upgrade(pg_url)
    message = ("INSERT INTO messages (id, account, to_number, sender, body, encoding, parts, profile, status, "
               "created_at, updated_at) SELECT lpad(g::text, 24, '0'), 'a', '46700000000', 'S', 'hi', 'gsm', 1, "
               "'p', 'queued', 100, 100 FROM generate_series(1, {n}) g")
    _stale_statistics(pg_url, "messages", message, message.format(n=20000))
    store = await _open(pg_url)
    try:
        claimed = await store.claim("a", 200.0, 300.0, 1000)
        assert [m.id for m in claimed] == [f"{i:024d}" for i in range(1, 1001)]
    finally:
        await store.close()


@pytest_twisted.ensureDeferred
async def test_the_server_stops_a_statement_whose_process_died(pg_url):
    """client_connection_check_interval on every connection of the store (PostgreSQL 14 and newer)."""
    store = await _open(pg_url)
    try:
        def show(cur):
            cur.execute("SHOW client_connection_check_interval")
            return cur.fetchone()[0]

        assert await store.run(show) == "2s"
        assert await store.read(show) == "2s"
    finally:
        await store.close()
