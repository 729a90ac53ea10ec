"""The production store: PostgreSQL through psycopg2, shared by several gateway nodes.

The same ``SqlStore`` operations as SQLite, run by the same group-commit ``BatchWriter`` (one
thread and one connection per writer, ``BEGIN`` … the batch's operations … ``COMMIT``), with the
dialect filled in: ``%s`` placeholders, ``ON CONFLICT`` upserts, sequences for the ordering
columns, row locks. Each connection prepares the statements it runs again, and a list of values
goes as one array parameter, so that one statement text serves any number of rows
(``pg_statements``); the writers plan once the statements that have one plan whatever the tables
hold (``_one_plan``). The writer's connection and cursor, and the round trips they save, are
``pg_session``'s.

Several nodes are several processes, each with its own PostgresStore on one database, so nothing
may rely on the writer thread being alone. What keeps them correct:

- claims (messages, push jobs) take rows with ``FOR UPDATE SKIP LOCKED``: two nodes never get the
  same row, and neither waits for the other;
- a change of one message reads it ``FOR UPDATE`` first (``_load``), so receipts for the same
  message arriving at two nodes apply one after the other, each on the other's result;
- decisions that span rows not yet written take advisory transaction locks (``_lock``): a receipt
  and the submit response it may overtake (keyed on the SMSC id), the parts of one concatenated
  MO (keyed on the group; the expiry sweep excludes all part stores while it runs), push claims
  (one at a time: a claim takes a job only with every earlier job of its message, so it must see
  the other nodes' claims, which ``SKIP LOCKED`` alone would hide);
- ordering columns (``update_seq``, the inbox ``seq``) come from sequences. A sequence hands out
  numbers in the order transactions *ask*, not the order they *commit*, so a pull could step over
  a number committed late. Writers hold a shared advisory lock per sequence from the number they
  take until they commit; a pull first takes that lock exclusively for a moment (``_horizon``) to
  learn the highest number whose transaction has ended, and shows nothing beyond it.

An operation that lost a deadlock or a unique-key race (a check-then-insert that another node won)
is rolled back alone and run again in a later batch, where it sees the winner's row.
"""

from __future__ import annotations

import itertools

from twisted.internet.defer import Deferred

from smscore.store.accounts import AccountRules
from smscore.store.base import StoreRules
from smscore.store.pg_schema import LATEST, column_types, lock_key, upgrade, version_of
from smscore.store.pg_session import Session
from smscore.store.pg_statements import array_text
from smscore.store.rows import MSG_COLS
from smscore.store.rules import CommitUnknown
from smscore.store.sql import SqlStore
from smscore.store.sql_lookups import SqlLookups
from smscore.store.writer import BatchWriter

#: How many times an operation that lost a race is run again before its caller hears of it.
RETRIES = 5


def _retryable(failure) -> bool:
    from psycopg2 import errors

    return failure.check(errors.TransactionRollbackError, errors.UniqueViolation) is not None


def _unreachable(failure) -> bool:
    import psycopg2

    return failure.check(psycopg2.OperationalError, psycopg2.InterfaceError, CommitUnknown) is not None


def _by_key(table: str, columns: str, key: str, lock: bool = False, also: str = "") -> str:
    """A read of ``columns`` of ``table`` for an array of ``key`` values (its first parameter),
    one probe of the index a value, in the array's order (rows locked in it with ``lock``); ``also``:
    a condition before the key's (``operator = %s``: its parameter second). ``_rows_by_key`` and
    ``_keyed`` read with it."""
    return (f"SELECT r.* FROM unnest(%s::text[]) AS k(key) CROSS JOIN LATERAL (SELECT {columns} FROM {table} "
            f"WHERE {also + ' AND ' if also else ''}{key} = k.key OFFSET 0{' FOR UPDATE' if lock else ''}) AS r")


class PostgresStore(SqlLookups, AccountRules, SqlStore):
    """SqlStore (with the account rules) on a PostgreSQL database, safe for several nodes."""

    placeholder = "%s"
    _CLAIMS_AFTER = False  # a push claim reads the due jobs (PushJobOperations._CLAIMS_AFTER)

    def __init__(self, url: str, reactor, *, auto_upgrade: bool = True, writers: int = 1,
                 rules: StoreRules | None = None) -> None:
        if writers < 1:
            raise ValueError("writers must be at least 1")
        self.url = url
        self.auto_upgrade = auto_upgrade
        self._reactor = reactor
        self._writers = [BatchWriter(reactor, lambda: Session(url, once=_one_plan), name=f"pg-writer-{i}",
                                     begin="BEGIN") for i in range(writers)]
        self._turn = itertools.cycle(self._writers)
        # Pulls learn their horizon on a connection of their own: it waits for other nodes'
        # transactions to end and must not hold up this node's writes meanwhile.
        self._horizons = BatchWriter(reactor, lambda: Session(url), name="pg-horizon", begin="BEGIN")
        self._reader = BatchWriter(reactor, lambda: Session(url), name="pg-reader", begin="BEGIN")
        self._reachable = True
        self._column_types: dict[tuple[str, str], str] = {}  # read by open(), from the database
        #: operations run again after losing a deadlock or a unique-key race (tests, diagnosis)
        self.retried = 0
        super().__init__(self._writers[0], self._reader, rules)

    # -- dialect -----------------------------------------------------------------------------
    def q(self, sql: str) -> str:
        """``?`` → ``%s``; a literal ``%`` is doubled in statements that take parameters."""
        out = self._sql_cache.get(sql)
        if out is None:
            out = sql.replace("%", "%%").replace("?", "%s") if "?" in sql else sql
            self._sql_cache[sql] = out
        return out

    def _skip_locked(self, of: str = "") -> str:
        return f" FOR UPDATE OF {of} SKIP LOCKED" if of else " FOR UPDATE SKIP LOCKED"

    def _for_update(self) -> str:
        return " FOR UPDATE"

    # A queue table is often analysed while nearly empty and filled again before the next ANALYZE;
    # the planner then expects one row where there are thousands. Planned on that, ``id IN (pick)``
    # ran the pick again for every row of the table, and a push claim's look-up of earlier jobs
    # ran over the whole table for every waiting job: claims that took minutes and held the claim
    # lock meanwhile (tests/integration/test_store_postgres_load.py, "stale statistics"). Neither
    # shape depends on estimates any more: the pick is an InitPlan, run once, and the push claim
    # runs through indexes only (``_claim_jobs``).
    def _among(self, pick: str) -> str:
        """By id, not by ``ctid`` (tried): a row that another transaction changed after the claim
        began, and left claimable, is locked by the pick in its new version, which an UPDATE by
        the old version's ``ctid`` passes over. A push job so left out let a later job of its
        message be claimed alone."""
        return f"id = ANY(ARRAY({pick}))"

    def _in(self, column: str, values, kind: str = "text") -> tuple[str, tuple]:
        """One array parameter: one statement text for any number of values."""
        return f"{column} = ANY(?::{kind}[])", (array_text(values),)

    def _keyed(self, table: str, columns: str, operator: str, keys) -> tuple[str, tuple]:
        """One probe of the ``(operator, key)`` index per key (a key ``in_lists`` repeated to pad a
        chunk, once). ``operator = $1 AND key = ANY($2)`` was planned, while the table held a few
        hundred to a few tens of thousands of rows and no statistics yet, as a walk over all the
        operator's rows with the keys as a filter: 4 ms a look-up in a load run."""
        return _by_key(table, columns, "key", also="operator = %s"), (array_text(dict.fromkeys(keys)), operator)

    def _first_of_its_subject(self, blocking: str) -> str:
        """As SQLite's, one probe of ``push_jobs_subject`` per candidate job, written so that no
        other plan is left: ``OFFSET 0`` keeps the NOT EXISTS a subquery run per candidate (turned
        into an anti-join, it was planned as nested loops over the table on stale statistics,
        minutes; then as a hash of every blocking job, which read the whole table and its dead rows
        at every claim: 605 heap pages for 32 jobs in a load run), and the row comparison on
        ``(subject, id)`` is a range of that index only: ``e.id < j.id`` let the planner walk the
        primary key over every earlier job instead (4.5 s for 1,000 jobs behind 30,000 held, on
        statistics that said the table was empty)."""
        return (f"NOT EXISTS (SELECT 1 FROM push_jobs e WHERE e.subject = j.subject "
                f"AND (e.subject, e.id) < (j.subject, j.id) AND ({blocking}) OFFSET 0)")

    def _claim_jobs(self, cur, sql: str, params, smpp: bool, owner: str, now: float) -> list:
        """Neither sequential nor bitmap scans: an index scan marks the entries of deleted and
        claimed rows dead as it passes them, so the next claim steps over them without reading
        the rows; the other two read them again at every claim until a vacuum.

        Then the jobs claimed behind an earlier job of their subject that this claim left out are
        given back. ``SKIP LOCKED`` passes over a job that another transaction holds locked (a
        node giving back jobs whose lease ran out), while the job after it, whose check read the
        locked one as free, is taken: it would go out before the earlier one. (Jobs of the other
        kind, deliveries to customers' ESMEs or HTTP pushes, have claims of their own.)"""
        cur.defer("SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off")
        cur.execute(sql, params)
        rows = cur.fetchall()
        behind = self._behind_a_job_left_out(cur, rows, smpp, owner, now) if rows else set()
        if behind:
            cur.execute("UPDATE push_jobs SET owner = NULL, lease_until = NULL WHERE id = ANY(%s::bigint[])",
                        (array_text([row[0] for row in rows if row[3] in behind]),))
            rows = [row for row in rows if row[3] not in behind]
        # The rest of the batch as usual: bitmap scans again (sequential ones stay off, as the
        # writer's connection has them: pg_statements, "Planned once").
        cur.defer("SET LOCAL enable_bitmapscan = on")
        return rows

    @staticmethod
    def _behind_a_job_left_out(cur, rows: list, smpp: bool, owner: str, now: float) -> set[str]:
        """The subjects of the claimed ``rows`` (id, kind, account, subject, …) that have an earlier
        job of the same kind which the claim did not take (for HTTP pushes: nor ``owner`` holds)."""
        last: dict[str, int] = {}
        for row in rows:
            last[row[3]] = max(row[0], last.get(row[3], row[0]))
        mine = "" if smpp else " AND NOT (e.owner IS NOT NULL AND e.owner = %s AND e.lease_until >= %s)"
        cur.execute("SELECT c.subject FROM unnest(%s::text[], %s::bigint[]) AS c(subject, id) WHERE EXISTS "
                    "(SELECT 1 FROM push_jobs e WHERE e.subject = c.subject AND (e.subject, e.id) < (c.subject, c.id) "
                    f"AND NOT e.id = ANY(%s::bigint[]) AND e.url {'=' if smpp else '<>'} 'smpp'{mine} OFFSET 0)",
                    (array_text(list(last)), array_text(list(last.values())), array_text([row[0] for row in rows]),
                     *(() if smpp else (owner, now))))
        return {subject for subject, in cur.fetchall()}

    def _rows_by_key(self, cur, table: str, columns: str, key: str, values, lock: bool = False) -> list[tuple]:
        """One probe of ``key``'s unique index a value, in key order (the rows locked in that
        order): one plan whatever the table holds, so planned once (``_one_plan``)."""
        values = sorted(set(values))
        if not values:
            return []
        cur.execute(_by_key(table, columns, key, lock), (array_text(values),))
        return cur.fetchall()

    def _upsert_smsc_id(self) -> str:
        return ("INSERT INTO smsc_ids (operator, key, message_id, part, at) VALUES (?,?,?,?,?) "
                "ON CONFLICT (operator, key, message_id) DO NOTHING")

    def _event_ids(self, cur, count: int) -> list[int]:
        cur.execute("SELECT nextval('events_id_seq') FROM generate_series(1, %s)", (count,))
        return sorted(row[0] for row in cur.fetchall())

    def _many(self, cur, sql: str, rows) -> None:
        """Many rows in one statement of one text whatever their number, each column an array
        (``pg_statements``): ``INSERT … SELECT … FROM unnest(…)`` and ``UPDATE messages … FROM
        unnest(…)``; other statements in pages (``execute_batch``)."""
        from psycopg2.extras import execute_batch

        rows = list(rows)
        if not rows:
            return
        if sql == self._UPDATE_MESSAGE:
            cur.defer(self._UPDATE_MESSAGES, [array_text(column) for column in zip(*rows)])
        elif sql.startswith("INSERT") and " VALUES (" in sql:
            columns = zip(*rows)
            cur.defer(self._unnested(sql), [array_text(next(columns)) for _ in range(len(rows[0]))])
        else:
            execute_batch(cur, self.q(sql), rows, page_size=250)

    def _unnested(self, sql: str) -> str:
        """``INSERT INTO t (a, b, c) VALUES (?, 0, ?) …`` as ``INSERT INTO t (a, b, c) SELECT v.a,
        0, v.c FROM unnest(%s::T[], %s::T[]) AS v(a, c) …``, typed by the table's columns."""
        out = self._sql_cache.get(("unnest", sql))
        if out is None:
            head, _, rest = sql.partition(" VALUES (")
            values, _, tail = rest.partition(")")
            table, _, cols = head[len("INSERT INTO "):].partition(" (")
            names = [c.strip() for c in cols.rstrip(")").split(",")]
            items = [v.strip() for v in values.split(",")]
            picked = [name for name, item in zip(names, items) if item == "?"]
            types = self._column_types
            numbered = self._NUMBERED_BY_THE_WRITE
            select = ", ".join((numbered.get((table, name), f"v.{name}") if item == "?" else item)
                               for name, item in zip(names, items))
            arrays = ", ".join(f"%s::{types[table, name]}[]" for name in picked)
            out = (f"INSERT INTO {table} ({', '.join(names)}) SELECT {select} FROM unnest({arrays}) "
                   f"AS v({', '.join(picked)}){self.q(tail)}")
            self._sql_cache[("unnest", sql)] = out
        return out

    #: SqlStore._UPDATE_MESSAGE for many messages, one array a column
    _UPDATE_MESSAGES = (
        "UPDATE messages SET status = v.status, operator = v.operator, error = v.error, updated_at = v.updated_at, "
        "tried = v.tried, parts = v.parts, part_state = v.part_state, cost = v.cost, owner = v.owner, "
        "lease_until = v.lease_until, update_seq = COALESCE(v.update_seq, nextval('messages_update_seq_seq')) "
        "FROM unnest(%s::text[], %s::text[], %s::text[], "
        "%s::double precision[], %s::text[], %s::integer[], %s::text[], %s::text[], %s::text[], "
        "%s::double precision[], %s::bigint[], %s::text[]) AS v(status, operator, error, updated_at, tried, parts, "
        "part_state, cost, owner, lease_until, update_seq, id) WHERE messages.id = v.id")

    def _write_unread(self, cur, sql: str, params) -> None:
        cur.defer(sql, params)

    def _insert_ignore_part(self) -> str:
        return ("INSERT INTO mo_parts (operator, sender, to_number, ref, total, seq, body, received_at) "
                "VALUES (?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING")

    def _lock(self, cur, *names: str, shared: bool = False) -> None:
        fn = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
        keys = sorted({lock_key(name) for name in names})  # one order everywhere: no self-made deadlock
        # Sent with the statement after it (``pg_session.Cursor.defer``): held from there to the commit.
        if len(keys) == 1:
            cur.defer(f"SELECT {fn}(%s)", (keys[0],))
        elif keys:  # OFFSET 0 keeps the ordered subquery, so the locks are taken in order
            cur.defer(f"SELECT {fn}(k) FROM (SELECT unnest(%s::bigint[]) AS k ORDER BY k OFFSET 0) AS sorted",
                      (keys,))

    #: Columns numbered by the statement that writes them: ``_next_seqs`` gives None for each row,
    #: and the INSERT or UPDATE takes ``nextval`` where it finds None (``COALESCE`` evaluates it
    #: only then). Nobody reads those numbers back, so no round trip fetches them.
    _NUMBERED_BY_THE_WRITE = {("messages", "update_seq"): "COALESCE(v.update_seq, nextval('messages_update_seq_seq'))"}

    def _next_seqs(self, cur, table: str, column: str, count: int) -> list[int | None]:
        # The shared lock is taken before the numbers (OFFSET 0 keeps the subquery, and so its
        # order, as written) and held until commit: see _horizon. One statement for any count.
        seq = f"{table}_{column}_seq"
        if (table, column) in self._NUMBERED_BY_THE_WRITE:  # the lock goes ahead of the write that numbers
            cur.defer("SELECT pg_advisory_xact_lock_shared(%s)", (lock_key(seq),))
            return [None] * count
        cur.execute("SELECT nextval(%s) FROM (SELECT pg_advisory_xact_lock_shared(%s) OFFSET 0) AS held, "
                    "generate_series(1, %s)", (seq, lock_key(seq), count))
        return sorted(row[0] for row in cur.fetchall())

    def _horizon(self, table: str, column: str) -> Deferred:
        """Fires with the highest number of ``<table>_<column>_seq`` whose transaction has ended:
        every row at or below it that will ever be visible is visible now."""
        seq = f"{table}_{column}_seq"

        def op(cur):
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key(seq),))
            cur.execute(f"SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM {seq}")
            return cur.fetchone()[0]

        return self._run_on(self._horizons, op)

    # -- running operations --------------------------------------------------------------------
    def run(self, op) -> Deferred:
        return self._run_on(next(self._turn) if len(self._writers) > 1 else self._writer, op)

    def read(self, op) -> Deferred:
        return self._run_on(self._reader, op)

    def _run_on(self, writer: BatchWriter, op, attempt: int = 1) -> Deferred:
        d = writer.submit(op)

        def done(result):
            self._reachable = True
            return result

        def again(failure):
            if _retryable(failure):
                if attempt < RETRIES:
                    self.retried += 1
                    return self._run_on(writer, op, attempt + 1)
            elif _unreachable(failure):
                self._reachable = False
            return failure

        d.addCallbacks(done, again)
        return d

    def is_ready(self) -> bool:
        """False since an operation found the server gone, until one succeeds again (the
        pipeline's lease renewals and claims keep trying)."""
        return self._reachable

    # -- pulls: nothing beyond the horizon -------------------------------------------------------
    def updates(self, account: str, after: int, limit: int, status: str | None = None, to: str | None = None,
                updated_since: float | None = None) -> Deferred:
        d = self._horizon("messages", "update_seq")
        d.addCallback(lambda top: SqlStore.updates(self, account, after, limit, status, to, updated_since).addCallback(
            lambda rows: [r for r in rows if r[0] <= top]))
        return d

    def inbox(self, account: str, after: int, limit: int) -> Deferred:
        d = self._horizon("mo_messages", "seq")
        d.addCallback(lambda top: SqlStore.inbox(self, account, after, limit).addCallback(
            lambda mos: [m for m in mos if m.seq <= top]))
        return d

    # -- life cycle ----------------------------------------------------------------------------
    def open(self) -> Deferred:
        from twisted.internet.threads import deferToThreadPool

        def prepare():
            if self.auto_upgrade:
                upgrade(self.url)
            version = version_of(self.url)
            if version != LATEST:
                raise RuntimeError(
                    f"store has schema version {version}, this gateway needs {LATEST}: run `smsgw db upgrade`")
            self._column_types = column_types(self.url)

        d = deferToThreadPool(self._reactor, self._reactor.getThreadPool(), prepare)

        def start(_):
            for writer in (*self._writers, self._horizons, self._reader):
                writer.start()

        d.addCallback(start)
        return d

    def close(self) -> Deferred:
        from twisted.internet.defer import gatherResults

        return gatherResults([w.stop() for w in (*self._writers, self._horizons, self._reader)], consumeErrors=True)


#: Statements of the writer with one plan left whatever the tables hold (``pg_statements``, "Planned
#: once"): a table read through its unique key alone, row by row of the batch (a nested loop over
#: the array, an index probe each). Every other text is planned at every run. A text changed
#: elsewhere falls out of this set and is planned at every run again: slower, never wrong. Not
#: the stop-list look-up: planned on an empty table, it used the account alone as its index
#: condition and read the numbers as a filter, every number of the do-not-call list at each check;
#: nor the orphan receipts' (an index on the operator alone, the key a filter).
_ONE_PLAN = frozenset({
    PostgresStore._UPDATE_MESSAGES,  # messages by id: its primary key (the partial indexes on id need a status)
    "DELETE FROM push_jobs WHERE id = ANY(%s::bigint[])",
    "SELECT balance, paused FROM accounts_state WHERE account = %s",
    "SELECT SUM(count) FROM daily_volume WHERE account = %s AND day = %s",
    _by_key("smsc_ids", "key, message_id, part, at", "key", also="operator = %s"),  # a receipt's SMSC ids
    _by_key("messages", MSG_COLS, "id", lock=True),  # a batch's messages, locked (changes._load_many)
    _by_key("learned", "number, operator, failures", "number"),
    _by_key("learned", "number, operator, failures", "number", lock=True),
})


def _one_plan(sql: str) -> bool:
    """Whether the writer plans ``sql`` once: an INSERT of values or arrays (it reads no table, an
    ON CONFLICT its unique index), a lock or sequence statement (no table), or one of ``_ONE_PLAN``."""
    if sql.startswith("INSERT INTO "):
        return sql.count(" FROM ") == sql.count(" FROM unnest(")
    return sql.startswith(("SELECT pg_advisory_xact_lock", "SELECT nextval(")) or sql in _ONE_PLAN
