"""The store over SQL: operations shared by SQLite and PostgreSQL.

Each public method turns into one operation ``op(cursor)`` run by the store's writer
(``smscore.store.writer``) inside a transaction; the state rules come from ``smscore.transitions``.
Submits and receipts, the hot path, run many to a statement (``smscore.store.changes``).
Placeholders are written ``?`` and rewritten for drivers that use ``%s``.

Every status change of a message is saved by ``_save``, a few statements for any number of
changes: it writes each message's row once with a new ``update_seq`` (the order of
``GET /v1/messages`` pulls), appends the history and, for customer messages with a callback URL,
queues the status callbacks their ``callback_statuses`` select as push jobs in the same
transaction, so a callback is never lost nor sent for a change that was not stored. An event not
selected costs no job at all.

Rows are written for every message and status change, so a status's wire name is read as
``status._value_`` (the Enum's documented attribute that ``.value`` returns, without the
descriptor's two calls) and finality as membership of ``FINAL_STATUSES``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from operator import itemgetter

import orjson
from twisted.internet.defer import Deferred

from connectors.smpp.deliver_fields import PREVIEW_CHARS
from policies.callbacks import selects
from smscore import transitions as tr
from smscore.model import FINAL_STATUSES, SMPP_TARGET, Event, Message, PushJob, Status, is_cancel, rfc3339
from smscore.store.base import Store, StoreRules, told_at_acceptance
from smscore.store.changes import MessageChanges
from smscore.store.inbound import MoOperations
from smscore.store.nodes import NodeOperations
from smscore.store.push_jobs import PushJobOperations
from smscore.store.rows import MSG_COLS, in_lists, marks, row_to_message
from smscore.store.rules import settle, working
from smscore.store.writer import BatchWriter, Merged, ReactorWriter


def status_callback_body(event_id, m: Message, e: Event) -> dict:
    """The status callback of SPEC §4 for event ``e`` of message ``m``, with its ``final`` flag
    (SPEC §12: a failed attempt that is retried elsewhere is not final). A receipt for the
    account's ESMEs also carries what its deliver_sm says of the message (``esme``), so that
    sending it reads nothing."""
    status = e.status
    body = {"event_id": str(event_id), "id": m.id, "reference": m.reference, "to": m.to,
            "status": status._value_, "operator": e.operator, "error": m.error if status in FINAL_STATUSES or
            status is Status.FAILED else None, "at": rfc3339(e.at), "final": e.final}
    if m.callback_url == SMPP_TARGET:
        body["esme"] = {"sender": m.sender, "submitted_at": m.created_at, "done_at": e.at,
                        "text": m.text[:PREVIEW_CHARS],
                        "cancelled": is_cancel(e)}
    return body


class SqlStore(MessageChanges, MoOperations, NodeOperations, PushJobOperations, Store):
    """A Store whose operations run as SQL through a group-commit writer (``smscore.store.writer``)."""

    #: how the driver writes a placeholder ("?" for sqlite3, "%s" for psycopg2)
    placeholder = "?"

    def __init__(self, writer: BatchWriter | ReactorWriter, reader: BatchWriter | None = None,
                 rules: StoreRules | None = None) -> None:
        self._writer = writer
        #: reads run on a connection of their own: they wait for no write batch and take no lock
        self._reader = reader
        self._sql_cache: dict[str, str] = {}
        self._seqs: dict[str, int] = {}
        self._take_rules(rules)

    def q(self, sql: str) -> str:
        """The statement in the driver's placeholder style (cached)."""
        if self.placeholder == "?":
            return sql
        out = self._sql_cache.get(sql)
        if out is None:
            out = self._sql_cache[sql] = sql.replace("?", self.placeholder)
        return out

    def run(self, op) -> Deferred:
        return self._writer.submit(op)

    def read(self, op) -> Deferred:
        """Run a read-only ``op(cursor)`` (on the reader's connection when there is one)."""
        return (self._reader or self._writer).submit(op)

    def _next_seq(self, cur, table: str, column: str) -> int:
        return self._next_seqs(cur, table, column, 1)[0]

    def _next_seqs(self, cur, table: str, column: str, count: int) -> Sequence[int]:
        """The next ``count`` values of an ordering column (``update_seq``, the inbox ``seq``), from
        the ``counters`` table: read at its first use in a write transaction, written back at its
        end (``_counters_begin`` / ``_counters_flush`` run by the writer), so several processes
        writing one SQLite file in turns hand out values in commit order. PostgreSQL uses sequences."""
        key = f"{table}.{column}"
        value = self._seqs.get(key)
        if value is None:
            cur.execute("SELECT value FROM counters WHERE name = ?", (key,))
            value = cur.fetchone()[0]
        self._seqs[key] = value + count
        return range(value + 1, value + count + 1)

    def _counters_begin(self, cur) -> None:
        """A write transaction starts: another process may have moved the counters since."""
        self._seqs.clear()

    def _counters_flush(self, cur) -> None:
        """Before COMMIT: the counters this transaction moved."""
        if self._seqs:
            cur.executemany("UPDATE counters SET value = ? WHERE name = ?",
                            [(value, key) for key, value in self._seqs.items()])

    def close(self) -> Deferred:
        from twisted.internet.defer import gatherResults

        return gatherResults([w.stop() for w in (self._writer, self._reader) if w is not None], consumeErrors=True)

    # -- saving changes: rows, history, pull order, status callbacks ---------------------------
    _UPDATE_MESSAGE = ("UPDATE messages SET status = ?, operator = ?, error = ?, updated_at = ?, tried = ?, parts = ?, "
                       "part_state = ?, cost = ?, owner = ?, lease_until = ?, update_seq = ? WHERE id = ?")
    _UPDATE_PART_STATE = "UPDATE messages SET part_state = ? WHERE id = ?"
    _INSERT_EVENT = "INSERT INTO events (id, message_id, at, status, operator, detail, final) VALUES (?,?,?,?,?,?,?)"

    def _write(self, cur, t: tr.Transition, parts: list[str], owner: str | None = None,
               lease_until: float | None = None) -> None:
        """Save one change (see ``_save``)."""
        self._save(cur, [(t, parts, owner, lease_until)])

    def _save(self, cur, changes: Sequence[tuple[tr.Transition, list[str], str | None, float | None]]) -> None:
        """Save changes ``(transition, part states, owner, lease_until)`` of stored messages, in
        order, in a few statements whatever their number: each message's row once, as its last
        change left it (``queued`` again: claimed by that change's owner; parts pending), every
        event with its id, and the status callbacks the events select (``t.pushes`` says how many)."""
        if not changes:
            return
        count = 0  # the events to number
        for t, *_ in changes:
            self._prepare(cur, t)  # may add an event
            count += len(t.events)
        last = {change[0].message.id: change for change in changes}
        # a message whose status changed in this batch moves in the pull order (update_seq); one
        # whose part alone moved (a part of several delivered) keeps its place
        changed = {t.message.id for t, *_ in changes if t.events}
        rows, part_rows = [], []
        seqs = iter(self._next_seqs(cur, "messages", "update_seq", len(changed)) if changed else ())
        for t, parts, owner, lease_until in last.values():
            m = t.message
            part_state = tr.PART_PENDING * m.parts if t.requeue else "".join(parts)
            if m.id not in changed:
                part_rows.append((part_state, m.id))
                continue
            queued = m.status is Status.QUEUED
            rows.append((m.status._value_, m.operator, m.error, m.updated_at, ",".join(m.tried), m.parts,
                         part_state, str(m.cost), owner if queued else None, lease_until if queued else None,
                         next(seqs), m.id))
        if rows:
            self._many(cur, self._UPDATE_MESSAGE, rows)
        if part_rows:
            self._many(cur, self._UPDATE_PART_STATE, part_rows)
        ids = iter(self._event_ids(cur, count) if count else ())
        events, jobs = [], []
        for t, *_ in changes:
            m = t.message
            target = self.status_callbacks_for(m) if m.origin == "api" and t.events else None
            t.pushes = 0
            for e, event_id in zip(t.events, ids):  # events first: zip takes no id past a change's last
                status = e.status._value_
                events.append((event_id, m.id, e.at, status, e.operator, e.detail, e.final))
                if target is not None and selects(target[1], status, e.final):
                    jobs.append(self._job_row(PushJob("status", m.account, m.id, target[0],
                                                      status_callback_body(event_id, m, e)), e.at))
                    t.pushes += 1
        if events:
            self._many(cur, self._INSERT_EVENT, events)
        if jobs:
            self._many(cur, self._INSERT_JOB, jobs)
        self._after_save(cur, [t for t, *_ in changes])

    def _many(self, cur, sql: str, rows: Sequence[tuple]) -> None:
        """One statement for many rows (``executemany``; PostgreSQL sends them in pages)."""
        cur.executemany(self.q(sql), rows)

    def _event_ids(self, cur, count: int) -> range:
        """Ids for ``count`` new events, in order (a callback's ``event_id`` is its event's id, so
        an id is never handed out twice: SQLite's AUTOINCREMENT counter, not the highest row)."""
        cur.execute("SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0), "
                    "COALESCE((SELECT MAX(id) FROM events), 0))")
        first = cur.fetchone()[0] + 1
        return range(first, first + count)

    def _prepare(self, cur, t: tr.Transition) -> None:
        """Hook: runs before a change is saved; may add to it (the account rules)."""

    def _after_save(self, cur, transitions: Sequence[tr.Transition]) -> None:
        """Hook: runs in the transaction after changes of stored messages were saved."""

    _INSERT_JOB = ("INSERT INTO push_jobs (kind, account, subject, url, body, attempts, first_at, next_at) "
                   "VALUES (?,?,?,?,?,0,?,?)")

    @staticmethod
    def _job_row(job: PushJob, at: float) -> tuple:
        return (job.kind, job.account, job.subject, job.url, orjson.dumps(job.body).decode(), at, at)

    def _insert_job(self, cur, job: PushJob, at: float) -> None:
        cur.execute(self.q(self._INSERT_JOB), self._job_row(job, at))

    # -- messages ----------------------------------------------------------------------------
    def _insert_messages(self, cur, messages: Sequence[Message], owner: str | None, lease_until: float) -> None:
        self._before_insert(cur, messages, claimed=owner is not None)
        self._insert_rows(cur, [(m, owner, lease_until) for m in messages])

    def _insert_rows(self, cur, rows: Sequence[tuple[Message, str | None, float]]) -> None:
        """New messages ``(message, owner, lease_until)`` with their first events, one statement each."""
        values = []
        seqs = iter(self._next_seqs(cur, "messages", "update_seq", len(rows)))
        for m, owner, lease_until in rows:
            queued = m.status is Status.QUEUED
            values.append((
                m.id, m.account, m.to, m.sender, m.text, m.encoding, m.parts, m.profile, m.status._value_,
                m.reference, m.callback_url, m.operator, str(m.cost), m.error, m.created_at, m.updated_at,
                m.send_at, ",".join(m.tried), m.origin, str(m.charged), m.callback_statuses,
                m.udh.hex() if m.udh else None, m.expires_at,
                tr.PART_PENDING * m.parts, owner if queued else None, lease_until if owner and queued else None,
                next(seqs)))
        self._many(cur, f"INSERT INTO messages ({MSG_COLS}, owner, lease_until, update_seq) VALUES "
                        "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", values)
        # The first status is reported in the 202 answer: no callback for it (SPEC §11); over SMPP
        # a final one is a receipt (told_at_acceptance), its event numbered here for the receipt.
        told = told_at_acceptance([m for m, _, _ in rows], self.status_callbacks_for)
        skip = {id(m.events[0]) for m, _ in told}
        events = [(m.id, e.at, e.status._value_, e.operator, e.detail, e.final) for m, _, _ in rows for e in m.events
                  if id(e) not in skip]
        if events:
            self._many(cur, "INSERT INTO events (message_id, at, status, operator, detail, final) VALUES (?,?,?,?,?,?)",
                       events)
        if told:
            ids = iter(self._event_ids(cur, len(told)))
            numbered, jobs = [], []
            for m, (url, _) in told:
                e, event_id = m.events[0], next(ids)
                numbered.append((event_id, m.id, e.at, e.status._value_, e.operator, e.detail, e.final))
                jobs.append(self._job_row(PushJob("status", m.account, m.id, url, status_callback_body(event_id, m, e)),
                                          e.at))
            self._many(cur, self._INSERT_EVENT, numbered)
            self._many(cur, self._INSERT_JOB, jobs)

    def accept(self, messages: Sequence[Message], owner: str | None, lease_until: float) -> Deferred:
        d = self.run(Merged(self._accept_many, (messages, owner, lease_until)))
        d.addCallback(settle, messages)
        return d

    def _accept_many(self, cur, items: list[tuple[Sequence[Message], str | None, float]]) -> list[list[Message]]:
        """Requests stored together: the account rules see their messages in queue order, as one
        request of them all would be seen. A run works on copies (a batch that fails runs again,
        request by request, from what the callers gave); ``accept`` settles the callers' messages
        with the outcome once it is durable."""
        works = [[working(m) for m in messages] for messages, _, _ in items]
        for claimed in (True, False):
            group = [m for (_, owner, _), work in zip(items, works) if (owner is not None) is claimed for m in work]
            if group:
                self._before_insert(cur, group, claimed=claimed)
        self._insert_rows(cur, [(m, owner, lease_until) for (_, owner, lease_until), work in zip(items, works)
                                for m in work])
        return works

    def claim(self, owner: str, now: float, lease_until: float, limit: int,
              own_before: float | None = None, skip: Sequence[str] = (), after: str = "",
              ended_before: float | None = None, skip_profiles: Sequence[str] = ()) -> Deferred:
        who = "(owner IS NULL OR lease_until < ?)"
        params: list = [owner, lease_until, now, now if ended_before is None else min(now, ended_before)]
        if own_before is not None:
            who = "(owner IS NULL OR lease_until < ? OR (owner = ? AND lease_until < ?))"
            params += [owner, own_before]
        if after:
            who += " AND id > ?"
            params.append(after)
        skip = sorted(skip)
        if skip:
            who += f" AND (via IS NULL OR via NOT IN ({marks(skip)}))"
            params.extend(skip)
        if skip_profiles:
            among, profiles = self._in("profile", sorted(skip_profiles))
            who += f" AND NOT ({among})"
            params.extend(profiles)
        params.append(limit)
        sql = self.q(
            "UPDATE messages SET owner = ?, lease_until = ? WHERE " + self._among(
                f"SELECT id FROM messages WHERE status = 'queued' AND (send_at IS NULL OR send_at <= ?) "
                f"AND {who} ORDER BY id LIMIT ?{self._skip_locked()}") + f" RETURNING {MSG_COLS}")

        def op(cur):
            cur.execute(sql, params)
            messages = [row_to_message(r) for r in sorted(cur.fetchall(), key=itemgetter(0))]  # by id
            self._learned_for(cur, messages, now)
            return messages

        return self.run(op)

    def _learned_for(self, cur, messages: Sequence[Message], now: float) -> None:
        """Hook: fill what was learned about each destination (SmartConfirm)."""

    def release_due(self, now: float, limit: int = 1000) -> Deferred:
        pick = self.q(f"SELECT {MSG_COLS} FROM messages WHERE status = 'scheduled' AND send_at <= ? "
                      f"ORDER BY send_at LIMIT ?{self._for_update()}")

        def op(cur):
            cur.execute(pick, (now, limit))
            changes = []
            for row in cur.fetchall():
                m = row_to_message(row)
                m.status, m.updated_at = Status.QUEUED, now
                changes.append((tr.Transition(m, [Event(at=now, status=Status.QUEUED, detail="send_at reached")]),
                                list(row[-1]), None, None))
            self._save(cur, changes)
            return len(changes)

        return self.run(op)

    def _skip_locked(self, of: str = "") -> str:
        """PostgreSQL: lock the rows picked (of table alias ``of``), passing by those locked."""
        return ""

    def _among(self, pick: str) -> str:
        """The condition "``id`` is one of the rows ``pick`` (a SELECT of ids) chooses", for a claim's
        UPDATE. SQLite runs the subquery once into a temporary table."""
        return f"id IN ({pick})"

    def _in(self, column: str, values: Sequence, kind: str = "text") -> tuple[str, tuple]:
        """The condition "``column`` is one of ``values``", and its parameters: ``IN (?, …)``, one
        statement text a length of list (``in_lists`` pads lists to a few lengths)."""
        return f"{column} IN ({marks(values)})", tuple(values)

    def _rows_by_key(self, cur, table: str, columns: str, key: str, values: Iterable[str],
                     lock: bool = False) -> list[tuple]:
        """``columns`` of the rows of ``table`` whose ``key`` (unique) is one of ``values``, read
        (and with ``lock`` locked, on PostgreSQL) in key order."""
        rows = []
        for chunk in in_lists(sorted(set(values))):
            among, args = self._in(key, chunk)
            cur.execute(self.q(f"SELECT {columns} FROM {table} WHERE {among} "
                               f"ORDER BY {key}{self._for_update() if lock else ''}"), args)
            rows.extend(cur.fetchall())
        return rows

    def _keyed(self, table: str, columns: str, operator: str, keys: Sequence[str]) -> tuple[str, tuple]:
        """A statement and its parameters that read ``columns`` of the rows of ``table`` (keyed by
        operator and key) whose ``operator`` is ``operator`` and ``key`` one of ``keys``."""
        among, args = self._in("key", keys)
        return self.q(f"SELECT {columns} FROM {table} WHERE operator = ? AND {among}"), (operator, *args)

    def _claim_jobs(self, cur, sql: str, params, smpp: bool, owner: str, now: float) -> list:
        """Hook: the rows a push claim took (PostgreSQL: through indexes only, and only with every
        earlier job of their subject, see there). SQLite's one writer sees every change: as it is."""
        cur.execute(sql, params)
        return cur.fetchall()

    def _write_unread(self, cur, sql: str, params) -> None:
        """Run a write whose result nobody reads (PostgreSQL sends it with the next statement)."""
        cur.execute(sql, params)

    def _for_update(self) -> str:
        return ""

    def _lock(self, cur, *names: str, shared: bool = False) -> None:
        """Hook: hold ``names`` until this transaction ends, so that transactions of several nodes
        deciding on the same thing run one after the other. SQLite has one writer: nothing to do."""

    def renew(self, owner: str, lease_until: float, held: Sequence[str] = (), since: float | None = None) -> Deferred:
        sql = self.q("UPDATE messages SET lease_until = ? WHERE owner = ? AND status = 'queued'"
                     + ("" if since is None else " AND lease_until >= ?"))
        params = (lease_until, owner) if since is None else (lease_until, owner, since)

        def op(cur):
            if not held:  # nothing to ask about: no row to read back
                cur.execute(sql, params)
                return []
            cur.execute(sql + " RETURNING id", params)
            renewed = {r[0] for r in cur.fetchall()}
            return sorted(set(held) - renewed)

        return self.run(op)

    def release(self, owner: str, message_ids: Sequence[str]) -> Deferred:
        def op(cur):
            for chunk in in_lists(sorted(message_ids)):  # a stop gives back up to max_in_memory at once
                among, args = self._in("id", chunk)
                cur.execute(self.q(f"UPDATE messages SET owner = NULL, lease_until = NULL WHERE owner = ? AND {among}"),
                            (owner, *args))

        return self.run(op)

    # -- one message, read-modify-write inside an op ----------------------------------------
    def _load(self, cur, message_id: str, lock: bool = True) -> tuple[Message, list[str]] | None:
        cur.execute(self.q(f"SELECT {MSG_COLS} FROM messages WHERE id = ?{self._for_update() if lock else ''}"),
                    (message_id,))
        row = cur.fetchone()
        if row is None:
            return None
        return row_to_message(row), list(row[-1])

    def _before_insert(self, cur, messages: Sequence[Message], claimed: bool = True) -> None:
        """Hook: runs in the transaction before new messages are stored; raising refuses them all.
        ``claimed``: the storing node sends them itself (else whoever claims them learns what it needs)."""

    def _upsert_smsc_id(self) -> str:
        """The SMSC id a part was given, beside any earlier message it names (``policies.receipts``)."""
        return "INSERT OR IGNORE INTO smsc_ids (operator, key, message_id, part, at) VALUES (?,?,?,?,?)"

    def record_submit_failed(self, message_id: str, operator: str, detail: str, at: float) -> Deferred:
        def op(cur):
            loaded = self._load(cur, message_id)
            if loaded is None:
                return None
            message, parts = loaded
            t = tr.on_submit_failed(message, operator, detail, at, self.untried)
            cur.execute(self.q("SELECT owner, lease_until FROM messages WHERE id = ?"), (message_id,))
            owner, lease = cur.fetchone()
            self._write(cur, t, parts, owner, lease)
            return t

        return self.run(op)

    def expire_unanswered(self, older_than: float, now: float, waited: float, limit: int = 1000) -> Deferred:
        pick = self.q(f"SELECT {MSG_COLS} FROM messages WHERE status IN ('submitted', 'buffered') "
                      f"AND updated_at < ? ORDER BY updated_at LIMIT ?{self._for_update()}")

        def op(cur):
            cur.execute(pick, (older_than, limit))
            changes = []
            for row in cur.fetchall():
                t = tr.on_receipt_timeout(row_to_message(row), now, waited)
                if t.changed:
                    changes.append((t, list(row[-1]), None, None))
            self._save(cur, changes)
            return [t for t, *_ in changes]

        return self.run(op)

    def updates(self, account: str, after: int, limit: int, status: str | None = None, to: str | None = None,
                updated_since: float | None = None) -> Deferred:
        where, params = ["account = ?", "update_seq > ?"], [account, after]
        if status is not None:
            where.append("status = ?")
            params.append(status)
        if to is not None:
            where.append("to_number = ?")
            params.append(to)
        if updated_since is not None:
            where.append("updated_at >= ?")
            params.append(updated_since)
        sql = self.q(f"SELECT {MSG_COLS}, update_seq FROM messages WHERE {' AND '.join(where)} "
                     "ORDER BY update_seq LIMIT ?")

        def op(cur):
            cur.execute(sql, (*params, limit))
            return [(r[-1], row_to_message(r[:-1])) for r in cur.fetchall()]

        return self.read(op)

    # -- stop list ------------------------------------------------------------------------------
    def is_stopped(self, account: str, number: str) -> Deferred:
        def op(cur):
            cur.execute(self.q("SELECT 1 FROM stoplist WHERE account = ? AND number = ?"), (account, number))
            return cur.fetchone() is not None

        return self.read(op)

    # -- reads ----------------------------------------------------------------------------------
    def get(self, message_id: str) -> Deferred:
        def op(cur):
            loaded = self._load(cur, message_id, lock=False)
            if loaded is None:
                return None
            message = loaded[0]
            cur.execute(self.q("SELECT at, status, operator, detail, final FROM events WHERE message_id = ? "
                               "ORDER BY id"), (message_id,))
            message.events = [Event(at=a, status=Status(s), operator=o, detail=d or "", final=bool(f))
                              for a, s, o, d, f in cur.fetchall()]
            return message

        return self.read(op)

    def count_by_status(self) -> Deferred:
        def op(cur):
            cur.execute("SELECT status, COUNT(*) FROM messages GROUP BY status")
            return {Status(s): n for s, n in cur.fetchall()}

        return self.read(op)

    def count_queued(self) -> Deferred:
        def op(cur):
            cur.execute("SELECT COUNT(*) FROM messages WHERE status = 'queued'")  # the messages_sendable index
            return cur.fetchone()[0]

        return self.read(op)

