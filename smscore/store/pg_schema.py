"""The PostgreSQL schema: versioned migrations, and how the store connects.

Every version mirrors the SQLite version of the same number (``smscore.store.sqlite.MIGRATIONS``):
the same tables, columns and indexes, written for PostgreSQL (``DOUBLE PRECISION`` times,
``BIGSERIAL`` ids, ``BOOLEAN`` flags that Python writes as ``bool``). A test holds the two version
lists equal, so a new SQLite version needs its PostgreSQL twin here. What only PostgreSQL needs is
added to the same version: one sequence per ordering column (``<table>_<column>_seq``, see
``PostgresStore._next_seq``) and indexes a server with several nodes leans on.

``upgrade(url)`` is safe to run from several nodes at once: it holds an advisory lock while it
reads the version and applies what is missing, one transaction per version.
"""

from __future__ import annotations

import hashlib

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
            created_at DOUBLE PRECISION NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL,
            send_at DOUBLE PRECISION,
            tried TEXT NOT NULL DEFAULT '',
            part_state TEXT NOT NULL DEFAULT '',
            owner TEXT,
            lease_until DOUBLE PRECISION
        )""",
        # The claim: queued messages in id (= acceptance) order; small however big the table.
        "CREATE INDEX messages_sendable ON messages (id) WHERE status = 'queued'",
        # Lease renewal and a restarted node taking its own work back.
        "CREATE INDEX messages_owner ON messages (owner) WHERE status = 'queued'",
        "CREATE INDEX messages_scheduled ON messages (send_at) WHERE status = 'scheduled'",
        """CREATE TABLE events (
            id BIGSERIAL PRIMARY KEY,
            message_id TEXT NOT NULL,
            at DOUBLE PRECISION NOT NULL,
            status TEXT NOT NULL,
            operator TEXT,
            detail TEXT NOT NULL DEFAULT '',
            final BOOLEAN NOT NULL DEFAULT FALSE
        )""",
        "CREATE INDEX events_message ON events (message_id, id)",
        # The receipt lookup: (operator, normalized SMSC id).
        """CREATE TABLE smsc_ids (
            operator TEXT NOT NULL,
            key TEXT NOT NULL,
            message_id TEXT NOT NULL,
            part INTEGER NOT NULL,
            PRIMARY KEY (operator, key)
        )""",
        """CREATE TABLE orphan_receipts (
            operator TEXT NOT NULL,
            key TEXT NOT NULL,
            raw_id TEXT NOT NULL,
            outcome TEXT NOT NULL,
            stat TEXT NOT NULL DEFAULT '',
            err TEXT NOT NULL DEFAULT '',
            keys TEXT NOT NULL,
            received_at DOUBLE PRECISION NOT NULL
        )""",
        "CREATE INDEX orphan_receipts_key ON orphan_receipts (operator, key)",
        # PostgreSQL only: an orphan is deleted by its raw id when its submit response is stored.
        "CREATE INDEX orphan_receipts_raw ON orphan_receipts (operator, raw_id)",
    ],
    2: [
        # Messages waiting for a receipt, oldest change first: the receipt_timeout sweep.
        "CREATE INDEX messages_awaiting_receipt ON messages (updated_at) "
        "WHERE status IN ('submitted', 'buffered')",
    ],
    3: [
        """CREATE TABLE mo_messages (
            id TEXT PRIMARY KEY,
            operator TEXT NOT NULL,
            sender TEXT NOT NULL,
            to_number TEXT NOT NULL,
            body TEXT NOT NULL,
            received_at DOUBLE PRECISION NOT NULL,
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
            received_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (operator, sender, to_number, ref, total, seq)
        )""",
        "CREATE INDEX mo_parts_age ON mo_parts (received_at)",
    ],
    4: [
        "ALTER TABLE messages ADD COLUMN origin TEXT NOT NULL DEFAULT 'api'",
        # The order of status changes (GET /v1/messages pulls), from a sequence.
        "ALTER TABLE messages ADD COLUMN update_seq BIGINT",
        "CREATE SEQUENCE messages_update_seq_seq",
        "CREATE INDEX messages_updates ON messages (account, update_seq)",
        "ALTER TABLE mo_messages ADD COLUMN account TEXT",
        "ALTER TABLE mo_messages ADD COLUMN keyword TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE mo_messages ADD COLUMN payload TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE mo_messages ADD COLUMN outcome TEXT NOT NULL DEFAULT 'received'",
        # The inbox order (GET /v1/inbound), from a sequence.
        "ALTER TABLE mo_messages ADD COLUMN seq BIGINT",
        "CREATE SEQUENCE mo_messages_seq_seq",
        "CREATE INDEX mo_inbox ON mo_messages (account, seq)",
        """CREATE TABLE mo_events (
            id BIGSERIAL PRIMARY KEY,
            mo_id TEXT NOT NULL,
            at DOUBLE PRECISION NOT NULL,
            status TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT ''
        )""",
        "CREATE INDEX mo_events_mo ON mo_events (mo_id, id)",
        """CREATE TABLE push_jobs (
            id BIGSERIAL PRIMARY KEY,
            kind TEXT NOT NULL,
            account TEXT NOT NULL,
            subject TEXT NOT NULL,
            url TEXT NOT NULL,
            body TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            first_at DOUBLE PRECISION NOT NULL,
            next_at DOUBLE PRECISION NOT NULL,
            owner TEXT,
            lease_until DOUBLE PRECISION,
            last_error TEXT NOT NULL DEFAULT ''
        )""",
        # Due jobs in claim order; the oldest job of a subject by (subject, id).
        "CREATE INDEX push_jobs_due ON push_jobs (next_at, id)",
        "CREATE INDEX push_jobs_subject ON push_jobs (subject, id)",
        """CREATE TABLE stoplist (
            account TEXT NOT NULL,
            number TEXT NOT NULL,
            added_at DOUBLE PRECISION NOT NULL,
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
            added_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (account, number)
        )""",
        """CREATE TABLE idempotency (
            account TEXT NOT NULL,
            key TEXT NOT NULL,
            body_hash TEXT NOT NULL,
            response TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
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
            updated_at DOUBLE PRECISION NOT NULL,
            failures TEXT NOT NULL DEFAULT ''
        )""",
        "CREATE INDEX orphan_receipts_age ON orphan_receipts (received_at)",
        "CREATE INDEX mo_messages_age ON mo_messages (received_at)",
        # PostgreSQL only: the retention purge deletes a message's SMSC ids by message.
        "CREATE INDEX smsc_ids_message ON smsc_ids (message_id)",
    ],
    6: [
        "ALTER TABLE messages ADD COLUMN callback_statuses TEXT",
    ],
    7: [
        # SQLite's ordering counters (several processes on one file); PostgreSQL hands these out
        # from sequences, so the table only keeps the two schemas alike.
        "CREATE TABLE counters (name TEXT PRIMARY KEY, value BIGINT NOT NULL)",
    ],
}

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
