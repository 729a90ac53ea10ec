"""The embedded default store: SQLite in WAL mode with ``synchronous=FULL`` and group commit.

One writer thread owns the connection (see ``writer.py``); a 2xx is answered only after the
transaction holding the message has been committed and fsynced. Schema versions are applied in
order by ``upgrade()`` (``smsgw db upgrade``, or at start with ``auto_upgrade``).

Many rows go in one statement (``_many``): Python's sqlite3 gives up the GIL for every step of a
statement, so ``executemany`` of a hundred rows is a hundred turns for the GIL, each one waited for
while the reactor thread runs, all of it with the file lock held. One multi-row ``INSERT`` (or one
``UPDATE … FROM`` a ``VALUES`` list) is one step.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from twisted.internet.defer import Deferred

from smscore.store.accounts import AccountRules
from smscore.store.base import StoreRules
from smscore.store.sql import SqlStore
from smscore.store.writer import BatchWriter

#: Versioned migrations: version -> statements. Append, never edit a released one.
MIGRATIONS: dict[int, list[str]] = {
    1: [
        """CREATE TABLE messages (
            id TEXT PRIMARY KEY,
            account TEXT NOT NULL,
            to_number TEXT NOT NULL,
            sender TEXT NOT NULL,
            body TEXT NOT NULL,
            encoding TEXT NOT NULL,
            parts INTEGER NOT NULL,
            profile TEXT NOT NULL,
            status TEXT NOT NULL,
            reference TEXT,
            callback_url TEXT,
            operator TEXT,
            cost TEXT NOT NULL DEFAULT '0',
            error TEXT,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            send_at REAL,
            tried TEXT NOT NULL DEFAULT '',
            part_state TEXT NOT NULL DEFAULT '',
            owner TEXT,
            lease_until REAL
        )""",
        "CREATE INDEX messages_sendable ON messages (id) WHERE status = 'queued'",
        "CREATE INDEX messages_owner ON messages (owner) WHERE status = 'queued'",
        "CREATE INDEX messages_scheduled ON messages (send_at) WHERE status = 'scheduled'",
        """CREATE TABLE events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            message_id TEXT NOT NULL,
            at REAL NOT NULL,
            status TEXT NOT NULL,
            operator TEXT,
            detail TEXT NOT NULL DEFAULT '',
            final INTEGER NOT NULL DEFAULT 0
        )""",
        "CREATE INDEX events_message ON events (message_id, id)",
        """CREATE TABLE smsc_ids (
            operator TEXT NOT NULL,
            key TEXT NOT NULL,
            message_id TEXT NOT NULL,
            part INTEGER NOT NULL,
            PRIMARY KEY (operator, key)
        ) WITHOUT ROWID""",
        """CREATE TABLE orphan_receipts (
            operator TEXT NOT NULL,
            key TEXT NOT NULL,
            raw_id TEXT NOT NULL,
            outcome TEXT NOT NULL,
            stat TEXT NOT NULL DEFAULT '',
            err TEXT NOT NULL DEFAULT '',
            keys TEXT NOT NULL,
            received_at REAL NOT NULL
        )""",
        "CREATE INDEX orphan_receipts_key ON orphan_receipts (operator, key)",
    ],
    2: [
        # Messages waiting for a receipt, oldest change first: the receipt_timeout sweep.
        "CREATE INDEX messages_awaiting_receipt ON messages (updated_at) "
        "WHERE status IN ('submitted', 'buffered')",
    ],
    3: [
        # MO: whole messages, and parts of concatenated ones until every part is here.
        """CREATE TABLE mo_messages (
            id TEXT PRIMARY KEY,
            operator TEXT NOT NULL,
            sender TEXT NOT NULL,
            to_number TEXT NOT NULL,
            body TEXT NOT NULL,
            received_at REAL NOT NULL,
            parts INTEGER NOT NULL DEFAULT 1,
            note TEXT NOT NULL DEFAULT ''
        )""",
        """CREATE TABLE mo_parts (
            operator TEXT NOT NULL,
            sender TEXT NOT NULL,
            to_number TEXT NOT NULL,
            ref INTEGER NOT NULL,
            total INTEGER NOT NULL,
            seq INTEGER NOT NULL,
            body TEXT NOT NULL,
            received_at REAL NOT NULL,
            PRIMARY KEY (operator, sender, to_number, ref, total, seq)
        )""",
        "CREATE INDEX mo_parts_age ON mo_parts (received_at)",
    ],
    4: [
        # Who sent it: customers ("api") or the gateway replying from a shortcode ("reply").
        "ALTER TABLE messages ADD COLUMN origin TEXT NOT NULL DEFAULT 'api'",
        # The order of status changes, for GET /v1/messages pulls.
        "ALTER TABLE messages ADD COLUMN update_seq INTEGER",
        "CREATE INDEX messages_updates ON messages (account, update_seq)",
        # MO routing results, the inbox order (GET /v1/inbound) and every MO's history.
        "ALTER TABLE mo_messages ADD COLUMN account TEXT",
        "ALTER TABLE mo_messages ADD COLUMN keyword TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE mo_messages ADD COLUMN payload TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE mo_messages ADD COLUMN outcome TEXT NOT NULL DEFAULT 'received'",
        "ALTER TABLE mo_messages ADD COLUMN seq INTEGER",
        "CREATE INDEX mo_inbox ON mo_messages (account, seq)",
        """CREATE TABLE mo_events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            mo_id TEXT NOT NULL,
            at REAL NOT NULL,
            status TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT ''
        )""",
        "CREATE INDEX mo_events_mo ON mo_events (mo_id, id)",
        # HTTP pushes to customers (MO and status callbacks) until they succeed or time runs out.
        """CREATE TABLE push_jobs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            kind TEXT NOT NULL,
            account TEXT NOT NULL,
            subject TEXT NOT NULL,
            url TEXT NOT NULL,
            body TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            first_at REAL NOT NULL,
            next_at REAL NOT NULL,
            owner TEXT,
            lease_until REAL,
            last_error TEXT NOT NULL DEFAULT ''
        )""",
        "CREATE INDEX push_jobs_due ON push_jobs (next_at)",
        "CREATE INDEX push_jobs_subject ON push_jobs (subject, id)",
        """CREATE TABLE stoplist (
            account TEXT NOT NULL,
            number TEXT NOT NULL,
            added_at REAL NOT NULL,
            source TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (account, number)
        )""",
        """CREATE TABLE mo_spend (
            shortcode TEXT NOT NULL,
            number TEXT NOT NULL,
            month TEXT NOT NULL,
            amount TEXT NOT NULL,
            PRIMARY KEY (shortcode, number, month)
        )""",
    ],
    5: [
        # Account rules: what a prepaid message was charged (refunds), balances and pauses,
        # consents against the do-not-call list, idempotency keys, daily volumes, and what was
        # learned per number about which operator delivers (SmartConfirm).
        "ALTER TABLE messages ADD COLUMN charged TEXT NOT NULL DEFAULT '0'",
        "CREATE INDEX messages_account_created ON messages (account, created_at)",
        "CREATE INDEX messages_account_status ON messages (account, status)",
        "CREATE INDEX messages_final_age ON messages (updated_at)",
        """CREATE TABLE accounts_state (
            account TEXT PRIMARY KEY,
            balance TEXT NOT NULL,
            paused INTEGER NOT NULL DEFAULT 0
        )""",
        """CREATE TABLE consent (
            account TEXT NOT NULL,
            number TEXT NOT NULL,
            added_at REAL NOT NULL,
            PRIMARY KEY (account, number)
        )""",
        """CREATE TABLE idempotency (
            account TEXT NOT NULL,
            key TEXT NOT NULL,
            body_hash TEXT NOT NULL,
            response TEXT NOT NULL,
            created_at REAL NOT NULL,
            PRIMARY KEY (account, key)
        )""",
        "CREATE INDEX idempotency_age ON idempotency (created_at)",
        """CREATE TABLE daily_volume (
            account TEXT NOT NULL,
            day TEXT NOT NULL,
            count INTEGER NOT NULL,
            PRIMARY KEY (account, day)
        )""",
        """CREATE TABLE learned (
            number TEXT PRIMARY KEY,
            operator TEXT,
            updated_at REAL NOT NULL,
            failures TEXT NOT NULL DEFAULT ''
        )""",
        "CREATE INDEX orphan_receipts_age ON orphan_receipts (received_at)",
        "CREATE INDEX mo_messages_age ON mo_messages (received_at)",
    ],
    6: [
        # Which status events a message's callbacks carry when its request chose (SPEC §12):
        # "all", "final" or status names joined by ","; NULL: the account's, event by event.
        "ALTER TABLE messages ADD COLUMN callback_statuses TEXT",
    ],
    7: [
        # Ordering counters, moved inside each write transaction, so that several processes of a
        # node (smscore.supervisor) writing this file in turns hand out update_seq / seq in order.
        "CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
        "INSERT INTO counters (name, value) SELECT 'messages.update_seq', COALESCE(MAX(update_seq), 0) FROM messages",
        "INSERT INTO counters (name, value) SELECT 'mo_messages.seq', COALESCE(MAX(seq), 0) FROM mo_messages",
    ],
}

LATEST = max(MIGRATIONS)


def connect(path: str | Path) -> sqlite3.Connection:
    """A connection set up for durability: WAL, synchronous=FULL, explicit transactions."""
    # Multi-row statements come in many sizes (SQLiteStore._many): keep them all compiled.
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30,
                           cached_statements=4096)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


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


class SQLiteStore(AccountRules, SqlStore):
    """SqlStore (with the account rules) on an SQLite file."""

    def __init__(self, path: str | Path, reactor, *, auto_upgrade: bool = True, rules: StoreRules | None = None) -> None:
        self.path = Path(path)
        self.auto_upgrade = auto_upgrade
        self._reactor = reactor
        # Several processes of a node may write this file: they take turns on a lock file beside it.
        super().__init__(BatchWriter(reactor, lambda: connect(self.path), name="sqlite-writer",
                                     lock_path=f"{self.path}.lock", on_begin=lambda cur: self._counters_begin(cur),
                                     before_commit=lambda cur: self._counters_flush(cur)),
                         BatchWriter(reactor, lambda: connect(self.path), name="sqlite-reader", begin="BEGIN"),
                         rules)

    #: rows per statement at most (the driver keeps each size's statement compiled: ``connect``)
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
        for chunk in (rows[i:i + self._CHUNK] for i in range(0, len(rows), self._CHUNK)):
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

