"""The store over SQL: operations shared by SQLite and PostgreSQL.

Each public method turns into one operation ``op(cursor)`` run by the BatchWriter inside a
transaction; the state rules come from ``smscore.transitions``. Placeholders are written ``?`` and
rewritten for drivers that use ``%s``.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from twisted.internet.defer import Deferred

from smscore import transitions as tr
from smscore.model import (Event, Message, MoFacts, MoMessage, ReceiptFacts, ReceiptOutcome, Status,
                           assemble_mo, new_message_id)
from smscore.store.base import Store
from smscore.store.writer import BatchWriter

MSG_COLS = ("id, account, to_number, sender, body, encoding, parts, profile, status, reference, "
            "callback_url, operator, cost, error, created_at, updated_at, send_at, tried, part_state")


def row_to_message(row) -> Message:
    (mid, account, to, sender, body, encoding, parts, profile, status, reference, callback_url,
     operator, cost, error, created_at, updated_at, send_at, tried, _part_state) = row
    return Message(
        id=mid, account=account, to=to, sender=sender, text=body, encoding=encoding, parts=parts,
        profile=profile, status=Status(status), reference=reference, callback_url=callback_url,
        operator=operator, cost=Decimal(cost), error=error, created_at=created_at,
        updated_at=updated_at, send_at=send_at, tried=tuple(tried.split(",")) if tried else (),
    )


class SqlStore(Store):
    """A Store whose operations run as SQL through a BatchWriter (group commit)."""

    #: how the driver writes a placeholder ("?" for sqlite3, "%s" for psycopg2)
    placeholder = "?"

    def __init__(self, writer: BatchWriter) -> None:
        self._writer = writer
        self._sql_cache: dict[str, str] = {}
        self.untried = lambda message: ()

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

    # -- schema ------------------------------------------------------------------------------
    def close(self) -> Deferred:
        return self._writer.stop()

    # -- messages ----------------------------------------------------------------------------
    def accept(self, messages: Sequence[Message], owner: str | None, lease_until: float) -> Deferred:
        q = self.q
        msg_rows = [
            (m.id, m.account, m.to, m.sender, m.text, m.encoding, m.parts, m.profile, m.status.value,
             m.reference, m.callback_url, m.operator, str(m.cost), m.error, m.created_at, m.updated_at,
             m.send_at, ",".join(m.tried), tr.PART_PENDING * m.parts,
             owner if m.status is Status.QUEUED else None,
             lease_until if owner and m.status is Status.QUEUED else None)
            for m in messages
        ]
        ev_rows = [(m.id, e.at, e.status.value, e.operator, e.detail, e.final) for m in messages for e in m.events]
        ins_msg = q(f"INSERT INTO messages ({MSG_COLS}, owner, lease_until) VALUES "
                    "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)")
        ins_ev = q("INSERT INTO events (message_id, at, status, operator, detail, final) VALUES (?,?,?,?,?,?)")

        def op(cur):
            cur.executemany(ins_msg, msg_rows)
            if ev_rows:
                cur.executemany(ins_ev, ev_rows)

        return self.run(op)

    def claim(self, owner: str, now: float, lease_until: float, limit: int,
              include_own: bool = False) -> Deferred:
        who = "(owner IS NULL OR lease_until < ? OR owner = ?)" if include_own else "(owner IS NULL OR lease_until < ?)"
        params: list = [owner, lease_until, now, now]
        if include_own:
            params.append(owner)
        params.append(limit)
        sql = self.q(
            f"UPDATE messages SET owner = ?, lease_until = ? WHERE id IN ("
            f"SELECT id FROM messages WHERE status = 'queued' AND (send_at IS NULL OR send_at <= ?) "
            f"AND {who} ORDER BY id LIMIT ?{self._skip_locked()}) RETURNING {MSG_COLS}")

        def op(cur):
            cur.execute(sql, params)
            rows = cur.fetchall()
            return sorted((row_to_message(r) for r in rows), key=lambda m: m.id)

        return self.run(op)

    def release_due(self, now: float, limit: int = 1000) -> Deferred:
        pick = self.q("UPDATE messages SET status = 'queued', updated_at = ? WHERE id IN ("
                      "SELECT id FROM messages WHERE status = 'scheduled' AND send_at <= ? "
                      "ORDER BY send_at LIMIT ?) RETURNING id")
        ins_ev = self.q("INSERT INTO events (message_id, at, status, operator, detail, final) VALUES (?,?,?,?,?,?)")

        def op(cur):
            cur.execute(pick, (now, now, limit))
            ids = [r[0] for r in cur.fetchall()]
            if ids:
                cur.executemany(ins_ev, [(mid, now, "queued", None, "send_at reached", False) for mid in ids])
            return len(ids)

        return self.run(op)

    def _skip_locked(self) -> str:
        return ""

    def renew(self, owner: str, lease_until: float) -> Deferred:
        sql = self.q("UPDATE messages SET lease_until = ? WHERE owner = ? AND status = 'queued'")

        def op(cur):
            cur.execute(sql, (lease_until, owner))
            return cur.rowcount

        return self.run(op)

    def release(self, owner: str, message_ids: Sequence[str]) -> Deferred:
        sql = self.q("UPDATE messages SET owner = NULL, lease_until = NULL WHERE owner = ? AND id = ?")
        rows = [(owner, mid) for mid in message_ids]

        def op(cur):
            cur.executemany(sql, rows)

        return self.run(op)

    # -- one message, read-modify-write inside an op ----------------------------------------
    def _load(self, cur, message_id: str) -> tuple[Message, list[str]] | None:
        cur.execute(self.q(f"SELECT {MSG_COLS} FROM messages WHERE id = ?"), (message_id,))
        row = cur.fetchone()
        if row is None:
            return None
        return row_to_message(row), list(row[-1])

    def _write(self, cur, t: tr.Transition, parts: list[str], owner: str | None = None,
               lease_until: float | None = None) -> None:
        m = t.message
        if t.requeue:
            parts = [tr.PART_PENDING] * m.parts
        cur.execute(
            self.q("UPDATE messages SET status = ?, operator = ?, error = ?, updated_at = ?, tried = ?, "
                   "parts = ?, part_state = ?, cost = ?, owner = ?, lease_until = ? WHERE id = ?"),
            (m.status.value, m.operator, m.error, m.updated_at, ",".join(m.tried), m.parts, "".join(parts),
             str(m.cost), owner if m.status is Status.QUEUED else None,
             lease_until if m.status is Status.QUEUED else None, m.id))
        if t.events:
            cur.executemany(
                self.q("INSERT INTO events (message_id, at, status, operator, detail, final) VALUES (?,?,?,?,?,?)"),
                [(m.id, e.at, e.status.value, e.operator, e.detail, e.final) for e in t.events])

    def record_submit(self, message_id: str, operator: str, keys: Sequence[str], at: float,
                      owner: str | None = None, lease_until: float | None = None) -> Deferred:
        def op(cur):
            loaded = self._load(cur, message_id)
            if loaded is None:
                return []
            message, parts = loaded
            if message.status is not Status.QUEUED:
                return []
            # The link may send a different number of parts than counted at acceptance (Latin-1
            # sent as UCS-2 on an operator without Latin-1, or the reverse): track what was sent.
            message.parts = len(keys)
            t = tr.on_submitted(message, operator, parts, at)
            parts = [tr.PART_SUBMITTED] * message.parts
            self._write(cur, t, parts)
            cur.executemany(
                self.q(self._upsert_smsc_id()),
                [(operator, key, message_id, i) for i, key in enumerate(keys)])
            out = [t]
            for i, key in enumerate(keys):
                for orphan in self._take_orphans(cur, operator, key):
                    rt = tr.on_receipt(message, parts, i, operator, orphan, at, self.untried)
                    self._write(cur, rt, parts, owner, lease_until)
                    out.append(rt)
            return out

        return self.run(op)

    def _upsert_smsc_id(self) -> str:
        return "INSERT OR REPLACE INTO smsc_ids (operator, key, message_id, part) VALUES (?,?,?,?)"

    def _take_orphans(self, cur, operator: str, key: str) -> list[ReceiptFacts]:
        cur.execute(self.q("SELECT raw_id, outcome, stat, err, keys FROM orphan_receipts "
                           "WHERE operator = ? AND key = ? ORDER BY received_at"), (operator, key))
        rows = cur.fetchall()
        found = []
        for raw_id, outcome, stat, err, keys in rows:
            cur.execute(self.q("DELETE FROM orphan_receipts WHERE operator = ? AND raw_id = ?"), (operator, raw_id))
            found.append(ReceiptFacts(operator=operator, keys=tuple(keys.split(",")),
                                      outcome=ReceiptOutcome(outcome), stat=stat, err=err, raw_id=raw_id))
        return found

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

    def apply_receipt(self, receipt: ReceiptFacts, at: float, owner: str | None = None,
                      lease_until: float | None = None) -> Deferred:
        def op(cur):
            hit = None
            for key in receipt.keys:
                cur.execute(self.q("SELECT message_id, part FROM smsc_ids WHERE operator = ? AND key = ?"),
                            (receipt.operator, key))
                hit = cur.fetchone()
                if hit is not None:
                    break
            if hit is None:
                cur.executemany(
                    self.q("INSERT INTO orphan_receipts (operator, key, raw_id, outcome, stat, err, keys, "
                           "received_at) VALUES (?,?,?,?,?,?,?,?)"),
                    [(receipt.operator, key, receipt.raw_id, receipt.outcome.value, receipt.stat,
                      receipt.err, ",".join(receipt.keys), at) for key in receipt.keys])
                return None
            message_id, part = hit
            loaded = self._load(cur, message_id)
            if loaded is None:
                return None
            message, parts = loaded
            if part >= len(parts):
                return tr.Transition(message)
            t = tr.on_receipt(message, parts, part, receipt.operator, receipt, at, self.untried)
            if t.changed or t.part_status:
                self._write(cur, t, parts, owner, lease_until)
            return t

        return self.run(op)

    def expire_unanswered(self, older_than: float, now: float, waited: float, limit: int = 1000) -> Deferred:
        pick = self.q(f"SELECT {MSG_COLS} FROM messages WHERE status IN ('submitted', 'buffered') "
                      f"AND updated_at < ? ORDER BY updated_at LIMIT ?{self._for_update()}")

        def op(cur):
            cur.execute(pick, (older_than, limit))
            out = []
            for row in cur.fetchall():
                t = tr.on_receipt_timeout(row_to_message(row), now, waited)
                if t.changed:
                    self._write(cur, t, list(row[-1]))
                    out.append(t)
            return out

        return self.run(op)

    def _for_update(self) -> str:
        return ""

    # -- MO ----------------------------------------------------------------------------------
    def _insert_mo(self, cur, mo: MoMessage) -> None:
        cur.execute(self.q("INSERT INTO mo_messages (id, operator, sender, to_number, body, received_at, parts, "
                           "note) VALUES (?,?,?,?,?,?,?,?)"),
                    (mo.id, mo.operator, mo.sender, mo.to, mo.text, mo.received_at, mo.parts, mo.note))

    def _assemble_group(self, cur, key: tuple, first_at: float) -> MoMessage:
        operator, sender, to, ref, total = key
        where = "operator = ? AND sender = ? AND to_number = ? AND ref = ? AND total = ?"
        cur.execute(self.q(f"SELECT seq, body FROM mo_parts WHERE {where}"), key)
        text, note = assemble_mo(cur.fetchall(), total)
        cur.execute(self.q(f"DELETE FROM mo_parts WHERE {where}"), key)
        mo = MoMessage(id=new_message_id(first_at), operator=operator, sender=sender, to=to, text=text,
                       received_at=first_at, parts=total, note=note)
        self._insert_mo(cur, mo)
        return mo

    def store_mo(self, mo: MoFacts, at: float) -> Deferred:
        def op(cur):
            if mo.concat is None:
                whole = MoMessage(id=new_message_id(at), operator=mo.operator, sender=mo.sender, to=mo.to,
                                  text=mo.text, received_at=at)
                self._insert_mo(cur, whole)
                return whole
            ref, total, seq = mo.concat
            key = (mo.operator, mo.sender, mo.to, ref, total)
            cur.execute(self.q(self._insert_ignore_part()), (*key, seq, mo.text, at))
            cur.execute(self.q("SELECT COUNT(*), MIN(received_at) FROM mo_parts WHERE operator = ? AND sender = ? "
                               "AND to_number = ? AND ref = ? AND total = ?"), key)
            count, first_at = cur.fetchone()
            if count < total:
                return None
            return self._assemble_group(cur, key, first_at)

        return self.run(op)

    def _insert_ignore_part(self) -> str:
        return ("INSERT OR IGNORE INTO mo_parts (operator, sender, to_number, ref, total, seq, body, received_at) "
                "VALUES (?,?,?,?,?,?,?,?)")

    def expire_mo_parts(self, older_than: float, now: float) -> Deferred:
        def op(cur):
            cur.execute(self.q("SELECT operator, sender, to_number, ref, total, MIN(received_at) FROM mo_parts "
                               "GROUP BY operator, sender, to_number, ref, total HAVING MIN(received_at) < ?"),
                        (older_than,))
            return [self._assemble_group(cur, tuple(row[:5]), row[5]) for row in cur.fetchall()]

        return self.run(op)

    def get_mo(self, mo_id: str) -> Deferred:
        def op(cur):
            cur.execute(self.q("SELECT id, operator, sender, to_number, body, received_at, parts, note "
                               "FROM mo_messages WHERE id = ?"), (mo_id,))
            row = cur.fetchone()
            return MoMessage(*row) if row else None

        return self.run(op)

    def get(self, message_id: str) -> Deferred:
        def op(cur):
            loaded = self._load(cur, message_id)
            if loaded is None:
                return None
            message = loaded[0]
            cur.execute(self.q("SELECT at, status, operator, detail, final FROM events WHERE message_id = ? "
                               "ORDER BY id"), (message_id,))
            message.events = [Event(at=a, status=Status(s), operator=o, detail=d or "", final=bool(f))
                              for a, s, o, d, f in cur.fetchall()]
            return message

        return self.run(op)

    def count_by_status(self) -> Deferred:
        def op(cur):
            cur.execute("SELECT status, COUNT(*) FROM messages GROUP BY status")
            return {Status(s): n for s, n in cur.fetchall()}

        return self.run(op)
