"""The embedded default store: SQLite in WAL mode and group commit, each batch synced to disk.

Writes run on the reactor thread, a batch per reactor turn (``writer.ReactorWriter``: SQLite's
work is CPU in this process, and a writer thread would wait for the GIL while holding the file
lock); reads run on a thread of their own. A 2xx is answered only after the transaction holding
the message has been committed and the WAL fsynced (``WalSync``: after the node's file lock is let
go, so that the node's other processes do not wait for the disk). Schema versions are applied in
order by ``upgrade()`` (``smsgw db upgrade``, or at start with ``auto_upgrade``).

Many rows go in one statement (``_many``): one multi-row ``INSERT`` (or one ``UPDATE … FROM`` a
``VALUES`` list) is one step of the driver where ``executemany`` of a hundred rows is a hundred.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from twisted.internet.defer import Deferred

from smscore.store.accounts import AccountRules
from smscore.store.base import StoreRules
from smscore.store.schema import migrations
from smscore.store.sql import SqlStore
from smscore.store.sql_lookups import SqlLookups
from smscore.store.writer import BatchWriter, ReactorWriter

#: Versioned migrations for SQLite, from the one schema of both dialects (smscore.store.schema).
MIGRATIONS: dict[int, list[str]] = migrations("sqlite")

LATEST = max(MIGRATIONS)


def connect(path: str | Path, *, wait: bool = True) -> sqlite3.Connection:
    """A connection set up for durability: WAL, synchronous=FULL, explicit transactions. When the
    database is locked it waits up to 30 s, or (``wait=False``, the reactor's writer) not at all."""
    # Multi-row statements come in nine sizes per kind (SQLiteStore._many): keep them compiled.
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30,
                           cached_statements=512)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute(f"PRAGMA busy_timeout={30000 if wait else 0}")
    return conn


class WalSync:
    """Makes the writer's committed transactions durable, after the file lock: an ``fdatasync`` of
    the WAL file, which holds every transaction committed to it so far, this process's and the
    others'. The writer's connection commits with ``synchronous=NORMAL``, which writes its frames
    to the WAL but does not sync them; with ``FULL`` the COMMIT synced them while holding the
    lock, and the node's other processes waited for the disk too (about 1 ms a commit here, half
    the time the lock was held one message per request: docs/benchmarks.md, twenty-ninth
    session). A transaction another process reads before this sync could be lost
    to a power failure, never to a crash of the process; whatever acts on it outside (a claim
    before its submit, a push claim before its POST) is a write of its own, synced past it first.

    The WAL is opened once it exists and again when SQLite replaced it (a file that was unlinked,
    after every connection closed); a checkpoint that copies it into the database syncs both."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None

    def sync(self) -> None:
        if self._fd is not None and os.fstat(self._fd).st_nlink == 0:
            self.close()
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDONLY)
        (getattr(os, "fdatasync", None) or os.fsync)(self._fd)  # macOS has no fdatasync

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def is_busy(exc: BaseException) -> bool:
    """SQLITE_BUSY (any of its extended codes): another connection holds the lock."""
    return isinstance(exc, sqlite3.OperationalError) and (getattr(exc, "sqlite_errorcode", 0) & 0xFF) == sqlite3.SQLITE_BUSY


#: SQLite's primary result codes that say the file cannot be written now, whatever the operation:
#: locked by another program (past the writer's wait), read-only, I/O error, disk full, gone.
_UNREACHABLE = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_IOERR,
                          sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_FULL, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PROTOCOL,
                          sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_PERM})


def is_unreachable(exc: BaseException) -> bool:
    """Whether a write that raised ``exc`` found the file unwritable (not an operation's own error,
    such as a constraint): what makes the store not ready. An OSError is the node's lock file
    (``writer._LockWaiter``)."""
    if isinstance(exc, sqlite3.DatabaseError):
        return (getattr(exc, "sqlite_errorcode", 0) & 0xFF) in _UNREACHABLE
    return isinstance(exc, OSError)


def current_version(conn: sqlite3.Connection) -> int:
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
    return row[0] or 0


def upgrade(path: str | Path) -> tuple[int, int]:
    """Apply every migration newer than the database's version. Returns (before, after)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = connect(path)
    try:
        before = current_version(conn)
        for version in sorted(v for v in MIGRATIONS if v > before):
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in MIGRATIONS[version]:
                    conn.execute(statement)
                conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return before, current_version(conn)
    finally:
        conn.close()


class SQLiteStore(SqlLookups, AccountRules, SqlStore):
    """SqlStore (with the account rules) on an SQLite file."""

    def __init__(self, path: str | Path, reactor, *, auto_upgrade: bool = True, rules: StoreRules | None = None) -> None:
        self.path = Path(path)
        self.auto_upgrade = auto_upgrade
        self._reactor = reactor
        self._reachable = True  # see is_ready
        self._writes = None  # the writer connection, and the rows it had changed at the last batch
        self._wal = WalSync(f"{self.path}-wal")
        # Several processes of a node may write this file: they take turns on a lock file beside it.
        super().__init__(ReactorWriter(reactor, self._connect_writer, name="sqlite-writer",
                                       lock_path=f"{self.path}.lock", on_begin=lambda cur: self._counters_begin(cur),
                                       before_commit=lambda cur: self._counters_flush(cur), busy=is_busy,
                                       after_batch=self._batch_ended, sync_after=self._wal.sync),
                         BatchWriter(reactor, lambda: connect(self.path), name="sqlite-reader", begin="BEGIN"),
                         rules)

    def _connect_writer(self) -> sqlite3.Connection:
        conn = connect(self.path, wait=False)
        # Its COMMIT writes the WAL without syncing it; the writer syncs it after letting go of the
        # file lock (WalSync), before anything of the batch is answered.
        conn.execute("PRAGMA synchronous=NORMAL")
        self._writes = [conn, conn.total_changes]
        return conn

    def close(self) -> Deferred:
        return super().close().addBoth(lambda result: self._wal.close() or result)

    def _batch_ended(self, error: BaseException | None) -> None:
        """The writer's word on each batch (before its Deferreds fire), for ``is_ready``: told once a
        batch rather than by a callback on every write's Deferred, two of the few a message has.
        Only a batch that changed rows says the file takes writes: one that changed none (a claim
        that found nothing) commits on a file that refuses every write (read-only, immutable)."""
        if error is None:
            changed = self._writes[0].total_changes
            if changed != self._writes[1]:
                self._writes[1] = changed
                self._reachable = True
        elif is_unreachable(error):
            self._reachable = False

    def is_ready(self) -> bool:
        """False since a batch of writes found the file unwritable (locked by another program for
        longer than the writer waits, read-only, disk full, I/O error), until a batch that changed
        rows commits: the main worker's heartbeats, lease renewals and claims keep trying, so it
        comes back by itself. Such a batch says the file is writable, whatever its operations'
        own errors (a constraint, a bug). Writes only: in WAL mode reads go on while the file is
        locked for writing, and a node that cannot store a message is not ready however well it
        reads. (PostgreSQL's store follows every operation, reads too: its per-operation callback
        is there anyway, to run again what lost a race.)"""
        return self._reachable

    #: rows per statement at most; a call's rows go in chunks of 256, 128, … 1 rows, so that a few
    #: statement texts per kind serve every number of rows and stay compiled in the driver's cache
    #: (one text per exact size grew the cache, and the memory, with every new batch size)
    _CHUNK = 256

    def _many(self, cur, sql: str, rows) -> None:
        rows = list(rows)
        if len(rows) < 2:
            if rows:
                cur.execute(sql, rows[0])
            return
        if sql == self._UPDATE_MESSAGE and sqlite3.sqlite_version_info >= (3, 33):  # UPDATE … FROM
            head, one = self._UPDATE_MESSAGES
        elif sql.startswith("INSERT") and sql.endswith(")") and " VALUES (" in sql:
            head, _, values = sql.rpartition(" VALUES ")
            head, one = head + " VALUES ", values
        else:
            cur.executemany(sql, rows)
            return
        for chunk in _binary_chunks(rows, self._CHUNK):
            cur.execute(head.format(values=",".join([one] * len(chunk))) if "{values}" in head
                        else head + ",".join([one] * len(chunk)), [v for row in chunk for v in row])

    #: SqlStore._UPDATE_MESSAGE for many messages: ``UPDATE … FROM`` a VALUES list (SQLite ≥ 3.33)
    _UPDATE_MESSAGES = (
        "WITH v(status, operator, error, updated_at, tried, parts, part_state, cost, owner, lease_until, "
        "update_seq, id) AS (VALUES {values}) UPDATE messages SET status = v.status, operator = v.operator, "
        "error = v.error, updated_at = v.updated_at, tried = v.tried, parts = v.parts, part_state = v.part_state, "
        "cost = v.cost, owner = v.owner, lease_until = v.lease_until, update_seq = v.update_seq "
        "FROM v WHERE messages.id = v.id", "(?,?,?,?,?,?,?,?,?,?,?,?)")

    def open(self) -> Deferred:
        from twisted.internet.threads import deferToThreadPool

        def prepare():
            if self.auto_upgrade:
                upgrade(self.path)
            elif not Path(self.path).exists():  # connecting would leave an empty file behind
                raise RuntimeError(f"store {self.path} does not exist: run `smsgw db upgrade`")
            conn = connect(self.path)
            try:
                version = current_version(conn)
            finally:
                conn.close()
            if version != LATEST:
                raise RuntimeError(
                    f"store {self.path} has schema version {version}, this gateway needs {LATEST}: "
                    "run `smsgw db upgrade`")

        d = deferToThreadPool(self._reactor, self._reactor.getThreadPool(), prepare)
        d.addCallback(lambda _: (self._writer.start(), self._reader.start()))
        return d


def _binary_chunks(rows: list, largest: int):
    """``rows`` in chunks whose sizes are powers of two, largest first (23 rows: 16, 4, 2, 1)."""
    i, size = 0, largest
    while i < len(rows):
        while size > len(rows) - i:
            size //= 2
        yield rows[i:i + size]
        i += size
