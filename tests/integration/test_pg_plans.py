"""The writer's statements planned once (``pg_statements``, "Planned once") against a real
PostgreSQL: made while every table was empty and known to be, each plan still reads a table only
through an index its keys name (every key an index condition, no row read to be dropped), row by
row of the batch, so that it stays right however large the tables grow; the statements with a
choice of plan are planned at every run.""" 

from __future__ import annotations

import psycopg2
import pytest
import pytest_twisted

from smscore.config import parse_config
from smscore.store.postgres import PostgresStore
from tests.store_contract import make_message
from tests.store_sql import LOAD_RULES, open_postgres, statements_per_message

pytestmark = pytest.mark.postgres

#: plan nodes that read a whole table, or hash or merge one whole against a batch
_WHOLE = {"Seq Scan", "Hash Join", "Merge Join"}


def _nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", ()):
        yield from _nodes(child)


@pytest_twisted.ensureDeferred
async def test_statements_planned_once_read_tables_through_their_keys(pg_url):
    store = await open_postgres(pg_url)
    try:
        conn = psycopg2.connect(pg_url)
        conn.autocommit = True
        conn.cursor().execute("ANALYZE")  # empty and known to be: the worst moment to plan once
        conn.close()
        await statements_per_message(store, lambda: 0, n=40, batch=20)  # the busy path, twice over
        limited = parse_config(LOAD_RULES + "daily_volume_limit = 1000000\n", path="/nonexistent/gateway.toml")
        store.config_source = lambda: limited  # and an account with a daily volume to count
        for i in range(2):
            await store.accept([make_message(to=f"4670999000{i}")], None, 0.0)

        def explain_all(cur):
            # A plan made once does not depend on the values: NULLs show it (EXPLAIN runs nothing).
            prepared, plans = cur._session.prepared, {}
            for sql, (_, run) in list(prepared._names.items()):
                cur.execute("EXPLAIN (FORMAT JSON) " + run, (None,) * run.count("%s"))
                plans[sql] = cur.fetchone()[0][0]["Plan"]
            return plans, set(prepared.per_run)

        plans, per_run = await store._writers[0].submit(explain_all)
    finally:
        await store.close()
    assert PostgresStore._UPDATE_MESSAGES in plans  # the batch's update of messages is among them
    assert any(sql.startswith("INSERT INTO messages") for sql in plans)
    assert any(sql.startswith("SELECT SUM(count) FROM daily_volume") for sql in plans)
    assert any("FROM messages WHERE id = k.key" in sql for sql in plans)  # a batch's messages, locked
    assert any(sql.startswith("UPDATE messages SET owner") for sql in per_run)  # the claim: per run
    for sql, plan in plans.items():
        for node in _nodes(plan):
            kind = node["Node Type"]
            assert kind not in _WHOLE, (sql, kind)
            if kind in ("Index Scan", "Index Only Scan", "Bitmap Index Scan"):
                # every key of the statement finds its rows in the index: none read to be dropped
                assert "Index Cond" in node and "Filter" not in node, (sql, node)
