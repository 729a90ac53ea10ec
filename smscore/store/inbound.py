"""MO in the SQL stores: whole messages, the parts of concatenated ones until every part is here,
routing in the transaction that stores a whole one (its account, keyword, spend, stop list entries,
push job and replies), the MO history and the inbox. Mixed into ``SqlStore``."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from twisted.internet.defer import Deferred

from connectors.api import MoFacts
from smscore.model import MoEvent, MoMessage, MoRouting, assemble_mo, new_message_id
from smscore.store.rows import MO_COLS, row_to_mo


class MoOperations:
    """Mixed into SqlStore (before Store in the bases)."""

    def _insert_mo(self, cur, mo: MoMessage) -> None:
        cur.execute(self.q("INSERT INTO mo_messages (id, operator, sender, to_number, body, received_at, parts, "
                           "note) VALUES (?,?,?,?,?,?,?,?)"),
                    (mo.id, mo.operator, mo.sender, mo.to, mo.text, mo.received_at, mo.parts, mo.note))
        self._mo_events(cur, mo.id, [(mo.received_at, "received", mo.note)])

    def _mo_events(self, cur, mo_id: str, events: Sequence[tuple[float, str, str]]) -> None:
        cur.executemany(self.q("INSERT INTO mo_events (mo_id, at, status, detail) VALUES (?,?,?,?)"),
                        [(mo_id, at, status, detail) for at, status, detail in events])

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

    def _spent(self, cur, shortcode: str, number: str, month: str) -> Decimal:
        cur.execute(self.q("SELECT amount FROM mo_spend WHERE shortcode = ? AND number = ? AND month = ?"),
                    (shortcode, number, month))
        row = cur.fetchone()
        return Decimal(row[0]) if row else Decimal(0)

    def _route(self, cur, mo: MoMessage, route, at: float, owner: str | None, lease_until: float) -> MoMessage:
        """Run routing on a whole MO inside the transaction that stores it, and apply it."""
        routing: MoRouting = route(mo, lambda shortcode, number, month: self._spent(cur, shortcode, number, month))
        seq = self._next_seq(cur, "mo_messages", "seq") if routing.inbox else None
        cur.execute(self.q("UPDATE mo_messages SET account = ?, keyword = ?, payload = ?, outcome = ?, seq = ? "
                           "WHERE id = ?"),
                    (routing.account, routing.keyword, routing.payload, routing.outcome, seq, mo.id))
        mo.account, mo.keyword, mo.payload, mo.outcome, mo.seq = (
            routing.account, routing.keyword, routing.payload, routing.outcome, seq)
        self._mo_events(cur, mo.id, [(at, status, detail) for status, detail in routing.events])
        if routing.spend is not None:
            shortcode, number, month, amount = routing.spend
            total = self._spent(cur, shortcode, number, month) + amount
            cur.execute(self.q("DELETE FROM mo_spend WHERE shortcode = ? AND number = ? AND month = ?"),
                        (shortcode, number, month))
            cur.execute(self.q("INSERT INTO mo_spend (shortcode, number, month, amount) VALUES (?,?,?,?)"),
                        (shortcode, number, month, str(total)))
        if routing.stop is not None:
            accounts, number = routing.stop
            for account in accounts:
                self._stop(cur, account, number, at, f"stop word from {number} to {mo.to}")
        if routing.push is not None:
            self._insert_job(cur, routing.push, at)
        if routing.replies:
            self._insert_messages(cur, routing.replies, owner, lease_until)
        mo.routing = routing
        return mo

    def _stop(self, cur, account: str, number: str, at: float, source: str) -> bool:
        """An account's stop entry (ops, an import, a phone's stop word), its consent for the number
        withdrawn (the later of the two wins), or one of the do-not-call list (``DO_NOT_CALL``, which
        has no consents). Returns whether the number was listed already."""
        cur.execute(self.q("DELETE FROM consent WHERE account = ? AND number = ?"), (account, number))
        cur.execute(self.q("DELETE FROM stoplist WHERE account = ? AND number = ?"), (account, number))
        existed = cur.rowcount > 0
        cur.execute(self.q("INSERT INTO stoplist (account, number, added_at, source) VALUES (?,?,?,?)"),
                    (account, number, at, source))
        return existed

    def store_mo(self, mo: MoFacts, at: float, route=None, owner: str | None = None,
                 lease_until: float = 0.0) -> Deferred:
        def op(cur):
            if mo.concat is None:
                whole = MoMessage(id=new_message_id(at), operator=mo.operator, sender=mo.sender, to=mo.to,
                                  text=mo.text, received_at=at)
                self._insert_mo(cur, whole)
            else:
                ref, total, seq = mo.concat
                key = (mo.operator, mo.sender, mo.to, ref, total)
                self._lock(cur, "mo-parts", shared=True)
                self._lock(cur, "mo-parts " + "\x1f".join(map(str, key)))
                cur.execute(self.q(self._insert_ignore_part()), (*key, seq, mo.text, at))
                cur.execute(self.q("SELECT COUNT(*), MIN(received_at) FROM mo_parts WHERE operator = ? AND "
                                   "sender = ? AND to_number = ? AND ref = ? AND total = ?"), key)
                count, first_at = cur.fetchone()
                if count < total:
                    return None
                whole = self._assemble_group(cur, key, first_at)
            if route is not None:
                self._route(cur, whole, route, at, owner, lease_until)
            return whole

        return self.run(op)

    def _insert_ignore_part(self) -> str:
        return ("INSERT OR IGNORE INTO mo_parts (operator, sender, to_number, ref, total, seq, body, received_at) "
                "VALUES (?,?,?,?,?,?,?,?)")

    def expire_mo_parts(self, older_than: float, now: float, route=None, owner: str | None = None,
                        lease_until: float = 0.0) -> Deferred:
        def op(cur):
            self._lock(cur, "mo-parts")  # no part is being stored meanwhile by any node
            cur.execute(self.q("SELECT operator, sender, to_number, ref, total, MIN(received_at) FROM mo_parts "
                               "GROUP BY operator, sender, to_number, ref, total HAVING MIN(received_at) < ?"),
                        (older_than,))
            out = []
            for row in cur.fetchall():
                mo = self._assemble_group(cur, tuple(row[:5]), row[5])
                if route is not None:
                    self._route(cur, mo, route, now, owner, lease_until)
                out.append(mo)
            return out

        return self.run(op)

    def get_mo(self, mo_id: str) -> Deferred:
        def op(cur):
            cur.execute(self.q(f"SELECT {MO_COLS} FROM mo_messages WHERE id = ?"), (mo_id,))
            row = cur.fetchone()
            if row is None:
                return None
            mo = row_to_mo(row)
            cur.execute(self.q("SELECT at, status, detail FROM mo_events WHERE mo_id = ? ORDER BY id"), (mo_id,))
            mo.events = [MoEvent(at, status, detail) for at, status, detail in cur.fetchall()]
            return mo

        return self.read(op)

    def inbox(self, account: str, after: int, limit: int) -> Deferred:
        def op(cur):
            cur.execute(self.q(f"SELECT {MO_COLS} FROM mo_messages WHERE account = ? AND seq > ? "
                               "ORDER BY seq LIMIT ?"), (account, after, limit))
            return [row_to_mo(r) for r in cur.fetchall()]

        return self.read(op)
