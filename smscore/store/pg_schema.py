"""The PostgreSQL schema: versioned migrations, and how the store connects.

The migrations come from the one schema of both dialects (``smscore.store.schema``): the same
tables, columns and indexes as SQLite, with ``DOUBLE PRECISION`` times, ``BIGSERIAL`` ids and
``BOOLEAN`` flags that Python writes as ``bool``. What only PostgreSQL needs is in the same version:
one sequence per ordering column (``<table>_<column>_seq``, see ``PostgresStore._next_seqs``) and
indexes a server with several nodes leans on.

``upgrade(url)`` is safe to run from several nodes at once: it holds an advisory lock while it
reads the version and applies what is missing, one transaction per version.
"""

from __future__ import annotations

import hashlib

from smscore.store.schema import migrations

#: Versioned migrations for PostgreSQL, from the one schema of both dialects (smscore.store.schema).
MIGRATIONS: dict[int, list[str]] = migrations("postgresql")

LATEST = max(MIGRATIONS)


def lock_key(name: str) -> int:
    """A stable signed 64-bit advisory lock key for ``name`` (one namespace: "smsgw:")."""
    digest = hashlib.blake2b(b"smsgw:" + name.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def connect(url: str):
    """A psycopg2 connection in autocommit mode: the caller writes BEGIN and COMMIT itself."""
    import psycopg2

    conn = psycopg2.connect(url, application_name="smsgw")
    conn.autocommit = True
    if conn.server_version >= 140000:
        # A statement of a process that died (SIGKILL) stops within 2 s instead of running to its
        # end with its locks held: a claim of a killed node once kept its successor waiting.
        conn.cursor().execute("SET client_connection_check_interval = 2000")
    # The store prepares its statements (pg_statements) for the parsing they save, and plans each
    # run for its values and the tables' sizes of the moment (the writers' connections plan once
    # the statements that have one plan left whatever the tables hold: pg_statements, "Planned
    # once"). A plan made once is made on the
    # sizes of its moment: made while messages was empty (a new database, or one analysed empty),
    # the update of a batch of messages walked the whole table for every message of the batch
    # once it held 100,000 rows (3.9 s a run), and re-planning after a schedule of runs could
    # not keep up with a table that grows by a batch a run. Planning costs the server about a
    # quarter of its time on the store's statements (924 of 3,226 ms in a load run).
    # The store's tables are read by key, from pages in memory: at the default random_page_cost
    # (4, for spinning disks) the plans of a table of a few thousand rows read it whole, 64
    # numbers looked up among 9,000 in 2-3 ms (auto_explain, load run), 0.1 ms through the index.
    conn.cursor().execute("SET plan_cache_mode = force_custom_plan; SET random_page_cost = 1.1")
    return conn


def current_version(cur) -> int:
    cur.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    cur.execute("SELECT MAX(version) FROM schema_version")
    return cur.fetchone()[0] or 0


def upgrade(url: str) -> tuple[int, int]:
    """Apply every migration newer than the database's version. Returns (before, after)."""
    conn = connect(url)
    try:
        cur = conn.cursor()
        cur.execute("SELECT pg_advisory_lock(%s)", (lock_key("migrations"),))
        try:
            before = current_version(cur)
            for version in sorted(v for v in MIGRATIONS if v > before):
                cur.execute("BEGIN")
                try:
                    for statement in MIGRATIONS[version]:
                        cur.execute(statement)
                    cur.execute("INSERT INTO schema_version (version) VALUES (%s)", (version,))
                    cur.execute("COMMIT")
                except BaseException:
                    cur.execute("ROLLBACK")
                    raise
            return before, current_version(cur)
        finally:
            cur.execute("SELECT pg_advisory_unlock(%s)", (lock_key("migrations"),))
    finally:
        conn.close()


def version_of(url: str) -> int:
    """The schema version of the database at ``url`` (0: none yet)."""
    conn = connect(url)
    try:
        cur = conn.cursor()
        cur.execute("SELECT to_regclass('schema_version') IS NOT NULL")
        if not cur.fetchone()[0]:
            return 0
        cur.execute("SELECT MAX(version) FROM schema_version")
        return cur.fetchone()[0] or 0
    finally:
        conn.close()


def column_types(url: str) -> dict[tuple[str, str], str]:
    """``(table, column)`` → the column's SQL type (``text``, ``double precision``…), for the
    statements that send a column's values as one typed array."""
    conn = connect(url)
    try:
        cur = conn.cursor()
        cur.execute("SELECT table_name, column_name, data_type FROM information_schema.columns "
                    "WHERE table_schema = current_schema()")
        return {(table, column): kind for table, column, kind in cur.fetchall()}
    finally:
        conn.close()
