"""The schema, written once for both dialects: versioned migrations whose statements name their
types by role (``{time}``, ``{serial}``, ``{flag}``, ``{false}``, ``{bigint}``, ``{keyed}``), rendered per
dialect by ``migrations(dialect)``, plus what only one dialect has (PostgreSQL's sequences and the
indexes several nodes lean on; SQLite's counters rows).

Append a version, never edit a released one: a database at version N gets N+1… at its next upgrade
(``smsgw db upgrade``, or at start with ``auto_upgrade``). ``tests`` upgrade a database from every
earlier version on both dialects and compare it with a fresh one.
"""

from __future__ import annotations

#: What each type role is in each dialect.
TYPES = {
    "sqlite": {"time": "REAL", "serial": "INTEGER PRIMARY KEY AUTOINCREMENT", "flag": "INTEGER", "false": "0",
               "bigint": "INTEGER", "keyed": " WITHOUT ROWID"},
    "postgresql": {"time": "DOUBLE PRECISION", "serial": "BIGSERIAL PRIMARY KEY", "flag": "BOOLEAN",
                   "false": "FALSE", "bigint": "BIGINT", "keyed": ""},
}

#: version -> statements for both dialects
COMMON: dict[int, list[str]] = {
    1: [
        # Messages, their history, the SMSC ids that receipts name, receipts that came before their submit response.
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
            created_at {time} NOT NULL,
            updated_at {time} NOT NULL,
            send_at {time},
            tried TEXT NOT NULL DEFAULT '',
            part_state TEXT NOT NULL DEFAULT '',
            owner TEXT,
            lease_until {time}
        )""",
        "CREATE INDEX messages_sendable ON messages (id) WHERE status = 'queued'",
        "CREATE INDEX messages_owner ON messages (owner) WHERE status = 'queued'",
        "CREATE INDEX messages_scheduled ON messages (send_at) WHERE status = 'scheduled'",
        """CREATE TABLE events (
            id {serial},
            message_id TEXT NOT NULL,
            at {time} NOT NULL,
            status TEXT NOT NULL,
            operator TEXT,
            detail TEXT NOT NULL DEFAULT '',
            final {flag} NOT NULL DEFAULT {false}
        )""",
        "CREATE INDEX events_message ON events (message_id, id)",
        """CREATE TABLE smsc_ids (
            operator TEXT NOT NULL,
            key TEXT NOT NULL,
            message_id TEXT NOT NULL,
            part INTEGER NOT NULL,
            PRIMARY KEY (operator, key)
        ){keyed}""",
        """CREATE TABLE orphan_receipts (
            operator TEXT NOT NULL,
            key TEXT NOT NULL,
            raw_id TEXT NOT NULL,
            outcome TEXT NOT NULL,
            stat TEXT NOT NULL DEFAULT '',
            err TEXT NOT NULL DEFAULT '',
            keys TEXT NOT NULL,
            received_at {time} NOT NULL
        )""",
        "CREATE INDEX orphan_receipts_key ON orphan_receipts (operator, key)",
    ],
    2: [
        # Messages waiting for a receipt, oldest change first: the receipt_timeout sweep.
        "CREATE INDEX messages_awaiting_receipt ON messages (updated_at) WHERE status IN ('submitted', 'buffered')",
    ],
    3: [
        # MO: whole messages, and parts of concatenated ones until every part is here.
        """CREATE TABLE mo_messages (
            id TEXT PRIMARY KEY,
            operator TEXT NOT NULL,
            sender TEXT NOT NULL,
            to_number TEXT NOT NULL,
            body TEXT NOT NULL,
            received_at {time} NOT NULL,
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
            received_at {time} NOT NULL,
            PRIMARY KEY (operator, sender, to_number, ref, total, seq)
        )""",
        "CREATE INDEX mo_parts_age ON mo_parts (received_at)",
    ],
    4: [
        # Who sent a message (customers or a shortcode reply), the pull order, MO routing and
        # history, push jobs, stop lists, MO spend.
        "ALTER TABLE messages ADD COLUMN origin TEXT NOT NULL DEFAULT 'api'",
        "ALTER TABLE messages ADD COLUMN update_seq {bigint}",
        "CREATE INDEX messages_updates ON messages (account, update_seq)",
        "ALTER TABLE mo_messages ADD COLUMN account TEXT",
        "ALTER TABLE mo_messages ADD COLUMN keyword TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE mo_messages ADD COLUMN payload TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE mo_messages ADD COLUMN outcome TEXT NOT NULL DEFAULT 'received'",
        "ALTER TABLE mo_messages ADD COLUMN seq {bigint}",
        "CREATE INDEX mo_inbox ON mo_messages (account, seq)",
        """CREATE TABLE mo_events (
            id {serial},
            mo_id TEXT NOT NULL,
            at {time} NOT NULL,
            status TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT ''
        )""",
        "CREATE INDEX mo_events_mo ON mo_events (mo_id, id)",
        """CREATE TABLE push_jobs (
            id {serial},
            kind TEXT NOT NULL,
            account TEXT NOT NULL,
            subject TEXT NOT NULL,
            url TEXT NOT NULL,
            body TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            first_at {time} NOT NULL,
            next_at {time} NOT NULL,
            owner TEXT,
            lease_until {time},
            last_error TEXT NOT NULL DEFAULT ''
        )""",
        "CREATE INDEX push_jobs_subject ON push_jobs (subject, id)",
        """CREATE TABLE stoplist (
            account TEXT NOT NULL,
            number TEXT NOT NULL,
            added_at {time} NOT NULL,
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
        # Account rules: charges (refunds), balances and pauses, consents, idempotency keys, daily
        # volumes, what was learned per number.
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
            added_at {time} NOT NULL,
            PRIMARY KEY (account, number)
        )""",
        """CREATE TABLE idempotency (
            account TEXT NOT NULL,
            key TEXT NOT NULL,
            body_hash TEXT NOT NULL,
            response TEXT NOT NULL,
            created_at {time} NOT NULL,
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
            updated_at {time} NOT NULL,
            failures TEXT NOT NULL DEFAULT ''
        )""",
        "CREATE INDEX orphan_receipts_age ON orphan_receipts (received_at)",
        "CREATE INDEX mo_messages_age ON mo_messages (received_at)",
    ],
    6: [
        # Which status events a message's callbacks carry when its request chose (SPEC §12).
        "ALTER TABLE messages ADD COLUMN callback_statuses TEXT",
    ],
    7: [
        # Ordering counters inside each write transaction (several processes on one SQLite file).
        "CREATE TABLE counters (name TEXT PRIMARY KEY, value {bigint} NOT NULL)",
    ],
    8: [
        # The live nodes of a cluster, which split its limits (SPEC §10), and the operator a node
        # holding none of its binds left a message in the store for.
        "CREATE TABLE nodes (node TEXT PRIMARY KEY, seen_at {time} NOT NULL)",
        "ALTER TABLE messages ADD COLUMN via TEXT",
    ],
    9: [
        # Parts a customer's ESME concatenated itself keep their UDH (hex), and a submit's
        # validity_period becomes a time after which the message is not sent (SPEC §13).
        "ALTER TABLE messages ADD COLUMN udh TEXT",
        "ALTER TABLE messages ADD COLUMN expires_at {time}",
    ],
    10: [
        # Admin look-ups (SPEC §14): a number's MT and MO, newest first, its stop-list entries and
        # consents across accounts, and the approval queue, without reading every row.
        "CREATE INDEX messages_to ON messages (to_number, id)",
        "CREATE INDEX messages_pending ON messages (id) WHERE status = 'pending_approval'",
        "CREATE INDEX mo_messages_sender ON mo_messages (sender, id)",
        "CREATE INDEX stoplist_number ON stoplist (number)",
        "CREATE INDEX consent_number ON consent (number)",
    ],
    11: [
        # What the numbers under each prefix taught about each operator (SPEC §7, policies.blocks):
        # deliveries and failures, decayed from updated_at when read.
        """CREATE TABLE block_evidence (
            prefix TEXT NOT NULL,
            operator TEXT NOT NULL,
            delivered {time} NOT NULL,
            failed {time} NOT NULL,
            updated_at {time} NOT NULL,
            PRIMARY KEY (prefix, operator)
        ){keyed}""",
    ],
    12: [
        # An account's count for the day, one row per writer (a node's process, StoreRules.writer),
        # summed when read: writers accepting at once no longer wait for each other's row lock
        # until their whole transaction commits (PostgreSQL; several nodes, several processes).
        """CREATE TABLE daily_volume_by_writer (
            account TEXT NOT NULL,
            day TEXT NOT NULL,
            writer TEXT NOT NULL,
            count INTEGER NOT NULL,
            PRIMARY KEY (account, day, writer)
        )""",
        "INSERT INTO daily_volume_by_writer (account, day, writer, count) SELECT account, day, '', count "
        "FROM daily_volume",
        "DROP TABLE daily_volume",
        "ALTER TABLE daily_volume_by_writer RENAME TO daily_volume",
    ],
    13: [],  # PostgreSQL only: claims and lease renewals rewrite a message in place (below)
    14: [
        # Since when each node has been heard from without a gap of a lease: a node restarted
        # within its lease into a steady cluster takes its part at once (policies.cluster, "Restarts").
        "ALTER TABLE nodes ADD COLUMN since {time}",
    ],
    15: [
        # One SMSC id may name several messages (an SMSC that counts its ids from 1 again after a
        # restart): a receipt goes to the one its number names (policies.receipts). Until now the
        # last message given an id took it from the one before, whose receipt then moved.
        # ``at``: when the SMSC gave the id (its submit's response), newest wins when the number
        # does not tell; 0 for the ids given before this version (one message each).
        """CREATE TABLE smsc_ids_15 (
            operator TEXT NOT NULL,
            key TEXT NOT NULL,
            message_id TEXT NOT NULL,
            part INTEGER NOT NULL,
            at {time} NOT NULL DEFAULT 0,
            PRIMARY KEY (operator, key, message_id)
        ){keyed}""",
        "INSERT INTO smsc_ids_15 (operator, key, message_id, part) SELECT operator, key, message_id, part FROM smsc_ids",
        "DROP TABLE smsc_ids",
        "ALTER TABLE smsc_ids_15 RENAME TO smsc_ids",
    ],
    16: [
        # The retention purge deletes the receipts for SMPP customers that waited past retention:
        # read by age, not the whole table (a customer's ESME away for days leaves many).
        "CREATE INDEX push_jobs_smpp_age ON push_jobs (first_at) WHERE url = 'smpp'",
    ],
}

#: dialect -> version -> statements only that dialect has (run after the common ones)
ONLY: dict[str, dict[int, list[str]]] = {
    "sqlite": {
        4: [
            "CREATE INDEX push_jobs_due ON push_jobs (next_at)",
        ],
        7: [
            "INSERT INTO counters (name, value) SELECT 'messages.update_seq', COALESCE(MAX(update_seq), 0) "
            "FROM messages",
            "INSERT INTO counters (name, value) SELECT 'mo_messages.seq', COALESCE(MAX(seq), 0) FROM mo_messages",
        ],
        16: [
            # The retention purge deletes a purged message's SMSC ids by message: without this index
            # SQLite read the whole table for each 512 of them (0.24 s at 1,000,000 ids, on the
            # reactor thread); PostgreSQL has had it since version 5.
            "CREATE INDEX smsc_ids_message ON smsc_ids (message_id)",
            # A claim of receipts for the customers' ESMEs bound now reads each one's jobs in id
            # order, as far as its LIMIT takes it, and not those of ESMEs away or HTTP pushes (it
            # read the whole table in id order: PostgreSQL reads the due jobs, push_jobs_due).
            "CREATE INDEX push_jobs_smpp ON push_jobs (account, id) WHERE url = 'smpp'",
        ],
    },
    "postgresql": {
        1: [
            "CREATE INDEX orphan_receipts_raw ON orphan_receipts (operator, raw_id)",
        ],
        4: [
            "CREATE SEQUENCE messages_update_seq_seq",
            "CREATE SEQUENCE mo_messages_seq_seq",
            "CREATE INDEX push_jobs_due ON push_jobs (next_at, id)",
        ],
        5: [
            "CREATE INDEX smsc_ids_message ON smsc_ids (message_id)",
        ],
        15: [
            "ALTER INDEX smsc_ids_15_pkey RENAME TO smsc_ids_pkey",
            "CREATE INDEX smsc_ids_message ON smsc_ids (message_id)",  # dropped with the old table
        ],
        13: [
            # A claim or a lease renewal changes only owner and lease_until. With no index on them
            # and room left on the row's page, PostgreSQL writes the new row version beside the old
            # one and touches none of the table's ten indexes (a heap-only tuple, HOT); with an
            # index on owner it added an entry to each. The one look-up by owner left, a renewal,
            # reads the queued messages' index instead (docs/postgresql.md). SQLite, which updates
            # only the indexes whose columns change, keeps messages_owner.
            "DROP INDEX messages_owner",
            "ALTER TABLE messages SET (fillfactor = 80)",
            # jobs live seconds: their pages may keep room for the claim's new version at no cost
            "ALTER TABLE push_jobs SET (fillfactor = 70)",
        ],
    },
}


def migrations(dialect: str) -> dict[int, list[str]]:
    """Every version's statements for ``dialect`` ("sqlite" or "postgresql")."""
    types = TYPES[dialect]
    return {version: [s.format(**types) for s in statements] + ONLY[dialect].get(version, [])
            for version, statements in COMMON.items()}


LATEST = max(COMMON)
