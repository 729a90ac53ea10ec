"""The store contract against a real PostgreSQL, plus what only a shared database has to get right:
migrations, and two stores (two nodes) working on the same rows at once."""

from __future__ import annotations

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
from smscore.store.postgres import PostgresStore
from tests import store_contract, store_contracts
from tests.store_sql import open_postgres as _open
from tests.store_contract import make_message, receipt

CHECKS = store_contracts.CHECKS
pytestmark = pytest.mark.postgres




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
    """Same version numbers, same tables and columns, and every SQLite index exists here too but
    messages_owner (dropped at version 13: claims rewrite a message in place, see schema.py) and
    push_jobs_smpp (SQLite's claims for ESMEs walk it in id order; PostgreSQL's read the due jobs
    through push_jobs_due)."""
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
    assert lite_indexes - pg_indexes == {"messages_owner", "push_jobs_smpp"}


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
    assert await nodes.a.claim("a", 1003.0, 1050.0, 10, own_before=1041.0) == []
    assert [x.id for x in await nodes.b.claim("b", 1003.0, 1050.0, 10, own_before=1041.0)] == [m.id]


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
                               store_contract.mo_routing, "a", 1030.0)
    got = await gatherResults([s.claim_push_jobs(name, 1001.0, 1100.0, 15)
                               for _ in range(6) for name, s in (("a", nodes.a), ("b", nodes.b))])
    ids = [j.id for batch in got for j in batch]
    assert len(ids) == len(set(ids)) == 120


@pytest_twisted.ensureDeferred
async def test_two_nodes_claiming_at_once_never_split_a_messages_callbacks(two_nodes):
    """Each message has two status jobs: one node takes both, in one claim or the second in a later
    claim than the first (behind the first, which it holds: SPEC §12's batches), never the second
    without the first, and never one each."""
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
            claims.append((name, jobs))

    await gatherResults([ensureDeferred(claimer(s, name)) for _ in range(3)
                         for name, s in (("a", nodes.a), ("b", nodes.b))])
    claim_of = {}
    for n, (name, jobs) in enumerate(claims):  # a node's claims in the order they committed
        for job in jobs:
            claim_of.setdefault(job.subject, []).append((name, n, job.body["status"]))
    assert len(claim_of) == 80
    for got in claim_of.values():
        assert len({name for name, _, _ in got}) == 1
        assert [s for _, _, s in sorted(got, key=lambda g: g[1])] == ["submitted", "delivered"]


@pytest_twisted.ensureDeferred
async def test_a_claim_passing_over_a_locked_job_leaves_the_later_jobs_of_its_message(pg_url):
    """Node x gives back a job whose lease ran out while another node claims: the claim passes over
    the job x holds locked (SKIP LOCKED) and read it as free, so the next job of the same message
    looked claimable. Taken alone it would go out first; it is given back in the claim, and both go
    together once x committed. (Found by an audit; the claim took the second job before.)"""
    pg_schema.upgrade(pg_url)
    conn = pg_schema.connect(pg_url)
    cur = conn.cursor()
    cur.execute("INSERT INTO push_jobs (kind, account, subject, url, body, attempts, first_at, next_at, owner, "
                "lease_until) VALUES ('status','a','m1','http://h/cb','[]',0,100,100,'x',150), "
                "('status','a','m1','http://h/cb','[]',0,100,100,NULL,NULL), "
                "('status','a','m2','http://h/cb','[]',0,100,100,NULL,NULL) RETURNING id")
    first, second, other = [r[0] for r in cur.fetchall()]
    x = pg_schema.connect(pg_url)
    x.autocommit = False
    x.cursor().execute("UPDATE push_jobs SET owner = NULL, lease_until = NULL WHERE id = %s", (first,))  # not committed
    store = await _open(pg_url)
    try:
        taken = await store.claim_push_jobs("b", 200.0, 300.0, 10)
        assert [j.id for j in taken] == [other]
        cur.execute("SELECT id, owner FROM push_jobs ORDER BY id")
        assert cur.fetchall() == [(first, "x"), (second, None), (other, "b")]  # the second given back
        x.commit()
        assert [j.id for j in await store.claim_push_jobs("c", 201.0, 301.0, 10)] == [first, second]
    finally:
        x.close()
        conn.close()
        await store.close()


@pytest_twisted.ensureDeferred
async def test_a_pull_never_steps_over_a_change_committed_late(two_nodes):
    """A transaction takes update number N and commits after another one took and committed N+1:
    the pull waits for it rather than show N+1 and move its cursor past N."""
    nodes = await two_nodes()
    early, late = make_message(at=1000.0), make_message(at=1001.0)
    conn = pg_schema.connect(nodes.a.url)
    cur = conn.cursor()
    cur.execute("BEGIN")
    # As a writer numbers its rows: the shared lock, then the write that takes the numbers.
    cur.execute("SELECT pg_advisory_xact_lock_shared(%s)", (pg_schema.lock_key("messages_update_seq_seq"),))
    cur.execute("INSERT INTO messages (id, account, to_number, sender, body, encoding, parts, profile, status, "
                "created_at, updated_at, update_seq) VALUES (%s, 'acme', '4670', 'S', 'x', 'gsm7', 1, 'p', "
                "'queued', 1000, 1000, nextval('messages_update_seq_seq'))", (early.id,))  # taken, not committed
    await nodes.b.accept([late], "b", 1030.0)
    pulled = nodes.b.updates("acme", 0, 10)
    assert not pulled.called

    def commit_early():
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
