"""Upgrades from every earlier schema version, on SQLite and PostgreSQL: a database left at version
N by an older gateway, holding a message, upgrades to the latest and ends with the same tables,
columns and indexes as a new one, its message readable by the store."""

from __future__ import annotations

import sqlite3

import pytest
import pytest_twisted
from twisted.internet import reactor

from smscore.store import pg_schema
from smscore.store import sqlite as sq
from smscore.store.schema import LATEST, migrations

EARLIER = list(range(1, LATEST))
#: A message as version 1 stores it (later columns get their defaults).
V1_MESSAGE = ("INSERT INTO messages (id, account, to_number, sender, body, encoding, parts, profile, status, "
              "created_at, updated_at) VALUES ('old-1', 'acme', '46701234567', 'ACME', 'hi', 'gsm7', 1, "
              "'standard', 'queued', 1000.0, 1000.0)")


def _sqlite_shape(path) -> tuple[set, set]:
    conn = sqlite3.connect(path)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                             "AND name NOT LIKE 'sqlite_%'")]
        columns = {(t, r[1], r[2], r[3], r[4]) for t in tables for r in conn.execute(f"PRAGMA table_info({t})")}
        indexes = {(r[0], r[1]) for r in conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index'")}
        return columns, indexes
    finally:
        conn.close()


def _sqlite_at(path, version: int) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    for v in range(1, version + 1):
        for statement in migrations("sqlite")[v]:
            conn.execute(statement)
        conn.execute("INSERT INTO schema_version (version) VALUES (?)", (v,))
        if v == 1:
            conn.execute(V1_MESSAGE)
    conn.close()


@pytest.mark.parametrize("version", EARLIER)
@pytest_twisted.ensureDeferred
async def test_sqlite_upgrades_from_every_earlier_version(version, tmp_path):
    old, new = tmp_path / "old.db", tmp_path / "new.db"
    _sqlite_at(old, version)
    assert sq.upgrade(old) == (version, LATEST)
    assert sq.upgrade(new) == (0, LATEST)
    assert _sqlite_shape(old) == _sqlite_shape(new)
    store = sq.SQLiteStore(old, reactor)
    await store.open()
    try:
        got = await store.get("old-1")
        assert got.status.value == "queued" and got.origin == "api" and got.callback_statuses is None
        assert [m.id for m in await store.claim("gw1", 2000.0, 2100.0, 10)] == ["old-1"]
    finally:
        await store.close()


def _pg_storage(cur, schema: str) -> set:
    """The tables of ``schema`` with storage parameters (fillfactor) and those parameters."""
    cur.execute("SELECT c.relname, array_to_string(c.reloptions, ',') FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.reloptions IS NOT NULL",
                (schema,))
    return set(cur.fetchall())


def _pg_shape(url) -> tuple[set, set, set, set]:
    conn = pg_schema.connect(url)
    try:
        cur = conn.cursor()
        cur.execute("SELECT table_name, column_name, data_type, is_nullable, column_default "
                    "FROM information_schema.columns WHERE table_schema = 'public'")
        columns = set(cur.fetchall())
        cur.execute("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'")
        indexes = set(cur.fetchall())
        cur.execute("SELECT sequence_name FROM information_schema.sequences WHERE sequence_schema = 'public'")
        return columns, indexes, {r[0] for r in cur.fetchall()}, _pg_storage(cur, "public")
    finally:
        conn.close()


@pytest.mark.postgres
@pytest.mark.parametrize("version", EARLIER)
def test_postgresql_upgrades_from_every_earlier_version(version, pg_url):
    conn = pg_schema.connect(pg_url)
    try:
        cur = conn.cursor()
        cur.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        for v in range(1, version + 1):
            for statement in migrations("postgresql")[v]:
                cur.execute(statement)
            cur.execute("INSERT INTO schema_version (version) VALUES (%s)", (v,))
            if v == 1:
                cur.execute(V1_MESSAGE)
        before = _pg_shape(pg_url)
    finally:
        conn.close()
    assert pg_schema.upgrade(pg_url) == (version, LATEST)
    after = _pg_shape(pg_url)
    assert after != before
    # A fresh database of the latest version has the same shape: built in a schema of its own.
    conn = pg_schema.connect(pg_url)
    try:
        cur = conn.cursor()
        cur.execute("SELECT id, status, origin FROM messages")
        assert cur.fetchall() == [("old-1", "queued", "api")]
        cur.execute("CREATE SCHEMA fresh")
        cur.execute("SET search_path TO fresh")
        for v in sorted(migrations("postgresql")):
            for statement in migrations("postgresql")[v]:
                cur.execute(statement)
        cur.execute("SELECT table_name, column_name, data_type, is_nullable, "
                    "replace(column_default, 'fresh.', '') FROM information_schema.columns "
                    "WHERE table_schema = 'fresh' AND table_name <> 'schema_version'")
        fresh_columns = set(cur.fetchall())
        cur.execute("SELECT indexname, replace(indexdef, 'fresh.', 'public.') FROM pg_indexes "
                    "WHERE schemaname = 'fresh'")
        fresh_indexes = set(cur.fetchall())
        fresh_storage = _pg_storage(cur, "fresh")
    finally:
        conn.close()
    columns, indexes, sequences, storage = after
    assert {c for c in columns if c[0] != "schema_version"} == fresh_columns
    assert indexes == fresh_indexes
    assert storage == fresh_storage == {("messages", "fillfactor=80"), ("push_jobs", "fillfactor=70")}
    assert {"messages_update_seq_seq", "mo_messages_seq_seq", "events_id_seq"} <= sequences
