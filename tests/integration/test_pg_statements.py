"""Prepared statements and array parameters against a real PostgreSQL: what the server reads back
is what was sent, a prepared statement outlives a rolled-back transaction, and a store's new
connection prepares again."""

from __future__ import annotations

import contextlib
import math

import psycopg2
import pytest
import pytest_twisted
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smscore.store import pg_schema
from smscore.store.pg_statements import Prepared, array_text, written
from tests.store_contract import make_message
from tests.store_sql import open_postgres

pytestmark = pytest.mark.postgres

_TEXT = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)))


@pytest.fixture
def cur(pg_url):
    conn = pg_schema.connect(pg_url)
    yield conn.cursor()
    conn.close()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(st.none() | _TEXT, max_size=20) | st.lists(_TEXT, max_size=20))
def test_any_text_reads_back_as_sent(cur, values):
    cur.execute("SELECT unnest(%s::text[])", (array_text(values),))
    assert [r[0] for r in cur.fetchall()] == values


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(st.none() | st.floats(allow_nan=False), max_size=20),
       ints=st.lists(st.integers(-2 ** 63, 2 ** 63 - 1), max_size=20),
       flags=st.lists(st.booleans(), max_size=20))
def test_numbers_and_flags_read_back_as_sent(cur, values, ints, flags):
    cur.execute("SELECT %s::double precision[], %s::bigint[], %s::boolean[]",
                (array_text(values), array_text(ints), array_text(flags)))
    assert cur.fetchone() == (values, ints, flags)
    cur.execute("SELECT %s::double precision[]", (array_text([math.nan]),))
    assert math.isnan(cur.fetchone()[0][0])


def test_a_prepared_statement_outlives_the_transaction_it_was_prepared_in(cur):
    prepared = Prepared()
    sql = "SELECT %s::integer + 1"
    cur.execute("BEGIN")
    prepared.execute(cur, sql, (1,))
    prepared.execute(cur, sql, (2,))  # prepared now
    cur.execute("ROLLBACK")
    prepared.execute(cur, sql, (41,))
    assert cur.fetchone() == (42,)
    cur.execute("SELECT count(*) FROM pg_prepared_statements")
    assert cur.fetchone() == (1,)


def test_a_statement_the_server_cannot_prepare_runs_as_text_after_its_batch_failed(cur):
    prepared = Prepared()
    sql = "SELECT %s IS NULL"  # nothing says what type $1 is
    prepared.execute(cur, sql, (None,))
    cur.execute("BEGIN")
    with pytest.raises(psycopg2.errors.IndeterminateDatatype):
        prepared.execute(cur, sql, (None,))
    cur.execute("ROLLBACK")
    prepared.execute(cur, sql, (None,))
    assert cur.fetchone() == (True,) and prepared.refused == {sql}


@pytest_twisted.ensureDeferred
async def test_the_store_prepares_again_on_a_new_connection(pg_url):
    """The server went away (a restart, a failover): the next batch connects again, and its
    statements are prepared on the new connection instead of named where they do not exist."""
    store = await open_postgres(pg_url)
    try:
        for i in range(3):
            await store.accept([make_message(to=f"4670100000{i}")], None, 0.0)
        killer = psycopg2.connect(pg_url)
        killer.autocommit = True
        kill = killer.cursor()
        kill.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
                     "AND application_name = 'smsgw'")
        assert any(r[0] for r in kill.fetchall())  # the store's connections, its writer's among them
        killer.close()
        for i in range(3, 6):  # named statements the new connection does not have would fail these
            await store.accept([make_message(to=f"4670100000{i}")], None, 0.0)
        assert len(await store.updates("acme", 0, 10)) == 6
    finally:
        await store.close()


class _Counting:
    """A psycopg2 cursor that counts what it sends to the server (round trips)."""

    def __init__(self, cur) -> None:
        self.cur, self.sent = cur, 0

    def execute(self, *args):
        self.sent += 1
        return self.cur.execute(*args)

    def __getattr__(self, name):
        return getattr(self.cur, name)


def _writer_cursor(pg_url):
    """The store writer's own cursor (``pg_session.Cursor``), in a transaction, a table ``t`` made."""
    from smscore.store.pg_session import Session

    session = Session(pg_url)
    cur = session.cursor()
    cur.execute("BEGIN")
    cur.execute("CREATE TABLE t (k INTEGER NOT NULL)")
    cur.execute("COMMIT")
    return session, cur


def test_writes_nobody_reads_go_with_the_next_statement_in_one_round_trip(pg_url):
    session, cur = _writer_cursor(pg_url)
    try:
        cur.execute("BEGIN")
        counting = cur._cur = _Counting(cur._cur)
        for k in (1, 2, 2):  # the third run of a text is prepared first (PREPARE is one round trip)
            cur.defer("INSERT INTO t VALUES (%s)", (k,))
        assert counting.sent == 1  # the PREPARE alone
        cur.execute("SELECT sum(k) FROM t WHERE k > %s", (0,))
        assert cur.fetchone() == (5,) and counting.sent == 2
        cur.defer("DELETE FROM t WHERE k = %s", (1,))
        cur.execute("COMMIT")  # what is left goes with the COMMIT
        assert counting.sent == 3
        cur.execute("SELECT count(*) FROM t")
        assert cur.fetchone() == (2,)
    finally:
        session.close()


def test_an_error_of_a_write_sent_later_fails_its_own_operation_alone(pg_url):
    """The writes went with the COMMIT, which never ran: the batch runs again with each operation
    in a SAVEPOINT of its own (writer._attempt), the writes an operation left for later sent within
    it, so their error fails that operation and no other."""
    from twisted.internet import reactor
    from twisted.internet.defer import Deferred

    from smscore.store.pg_session import Session
    from smscore.store.writer import BatchWriter

    session, cur = _writer_cursor(pg_url)
    try:
        writer = BatchWriter(reactor, lambda: Session(pg_url), name="test", begin="BEGIN")
        ops = [lambda c: c.defer("INSERT INTO t VALUES (%s)", (1,)),
               lambda c: c.defer("INSERT INTO t VALUES (%s)", (None,)),  # NOT NULL: refused
               lambda c: c.defer("INSERT INTO t VALUES (%s)", (3,))]
        results, failed_with = writer._attempt(cur, [(op, Deferred()) for op in ops])
        assert failed_with is None
        assert [ok for _, ok, _ in results] == [True, False, True]
        assert results[1][2].check(psycopg2.errors.NotNullViolation)
        cur.execute("SELECT k FROM t ORDER BY k")
        assert cur.fetchall() == [(1,), (3,)]
    finally:
        session.close()


def test_a_batch_begins_with_its_first_statement_unless_the_connection_is_in_doubt(pg_url):
    session, cur = _writer_cursor(pg_url)
    try:
        counting = cur._cur = _Counting(cur._cur)
        cur.execute("BEGIN")
        cur.execute("SELECT count(*) FROM t")
        assert cur.fetchone() == (0,) and counting.sent == 1  # BEGIN went with it
        cur.execute("COMMIT")
        assert counting.sent == 2
        killer = psycopg2.connect(pg_url)
        killer.autocommit = True
        killer.cursor().execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                "WHERE application_name = 'smsgw' AND datname = current_database()")
        killer.close()
        cur.execute("BEGIN")
        with pytest.raises(psycopg2.OperationalError):
            cur.execute("SELECT count(*) FROM t")  # the first statement finds the connection gone
        with contextlib.suppress(psycopg2.Error):  # the writer's ROLLBACK after a failed batch: the connection is gone
            cur.execute("ROLLBACK")
        cur.execute("BEGIN")  # alone now: it opens a new connection
        assert not session.doubtful
        cur.execute("SELECT count(*) FROM t")
        assert cur.fetchone() == (0,)
        cur.execute("COMMIT")
    finally:
        session.close()


@pytest_twisted.ensureDeferred
async def test_rows_numbered_by_their_write_hold_the_numbers_lock_until_the_commit(pg_url):
    """``update_seq`` is taken by the INSERT or UPDATE that writes it (no round trip fetches the
    numbers), under the shared lock a pull's horizon waits for (``_horizon``), held to the commit."""
    from smscore.store.pg_session import Session

    store = await open_postgres(pg_url)
    session = Session(pg_url)
    try:
        cur = session.cursor()
        cur.execute("BEGIN")
        cur.execute("SELECT 1")
        assert store._next_seqs(cur, "messages", "update_seq", 2) == [None, None]
        store._insert_rows(cur, [(make_message(to=f"4670100000{i}"), None, 0.0) for i in range(2)])
        cur.flush()
        cur.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND mode = 'ShareLock' "
                    "AND pid = pg_backend_pid()")
        assert cur.fetchone() == (1,)  # the numbers' shared lock (taken above and by the insert: one lock)
        cur.execute("SELECT update_seq FROM messages ORDER BY update_seq")
        assert [r[0] for r in cur.fetchall()] == [1, 2]
        cur.execute("COMMIT")
        cur.execute("BEGIN")
        cur.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()")
        assert cur.fetchone() == (0,)
        cur.execute("COMMIT")
    finally:
        session.close()
        await store.close()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(st.none() | _TEXT | st.text() | st.integers() | st.floats() | st.booleans(),
                       min_size=1, max_size=6))
def test_writes_are_written_as_psycopg2_writes_them_or_left_to_it(cur, values):
    """``written`` (the deferred writes' fast path) gives mogrify's text byte for byte, or None for
    mogrify to write (negative numbers, flags, NaN, a NUL); and what it writes reads back as sent."""
    sql = "SELECT " + ", ".join(["%s"] * len(values))
    text = written(sql, values)
    if text is None:
        assert any(not isinstance(v, str | int | float) or isinstance(v, bool) or (isinstance(v, str) and "\x00" in v)
                   or (not isinstance(v, str) and v is not None and not (0 <= v < math.inf and math.copysign(1, v) > 0))
                   for v in values)
        return
    assert text == cur.mogrify(sql, values)
    cur.execute(text)
    read = [type(v)(r) if isinstance(v, int | float) else r for r, v in zip(cur.fetchone(), values)]
    assert read == values  # a number PostgreSQL reads as numeric (1e+16, 2**70) comes back a Decimal


def test_a_connection_without_standard_conforming_strings_is_written_by_psycopg2(pg_url):
    conn = pg_schema.connect(pg_url)
    try:
        cur = conn.cursor()
        cur.execute("SET standard_conforming_strings = off")
        prepared = Prepared()
        text = prepared.text(cur, "SELECT %s", ("a\\b",))
        assert text == cur.mogrify("SELECT %s", ("a\\b",)) != written("SELECT %s", ("a\\b",))
        cur.execute(text)
        assert cur.fetchone()[0] == "a\\b"
    finally:
        conn.close()
