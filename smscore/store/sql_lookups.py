"""The admin look-ups of SPEC §14 in the SQL stores (SQLite and PostgreSQL): reads only, on the
reader's connection (``SqlStore.read``), so they wait for no write batch.

Every list is keyset-paged on an index: messages and MO newest first by id (the primary key, or
``messages_to`` / ``mo_messages_sender`` for a number, ``messages_pending`` for the approval
queue), stop-list entries and consents by their primary key (account, number) or by number
(``stoplist_number``, ``consent_number``). No page costs more than its rows and what its filters
pass by. Mixed into the SQL stores before ``SqlStore``; the types are in ``smscore.store.lookups``.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from twisted.internet.defer import Deferred

from policies.learning import Learned
from smscore.model import Event, Status
from smscore.store.accounts import _failures  # the learned.failures column, as it is written
from smscore.store.lookups import AccountState, ConsentEntry, MessageQuery, MoQuery, NumberFacts, StopEntry, id_floor
from smscore.store.rows import MO_COLS, MSG_COLS, chunks, marks, row_to_message, row_to_mo


def _message_where(query: MessageQuery, before: str | None) -> tuple[list[str], list]:
    """The WHERE terms of a message query and their parameters."""
    where, params = [], []
    for column, value in (("account", query.account), ("status", query.status), ("to_number", query.to),
                          ("operator", query.operator)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if query.since is not None:
        where.append("id >= ?")
        params.append(id_floor(query.since))
    if query.until is not None:
        where.append("id < ?")
        params.append(id_floor(query.until))
    if before is not None:
        where.append("id < ?")
        params.append(before)
    return where, params


def _where(terms: Sequence[str]) -> str:
    return f" WHERE {' AND '.join(terms)}" if terms else ""


class SqlLookups:
    """Mixed into SQLiteStore and PostgresStore (before SqlStore in the bases)."""

    def find_messages(self, query: MessageQuery, before: str | None, limit: int, events: bool = False) -> Deferred:
        where, params = _message_where(query, before)
        sql = self.q(f"SELECT {MSG_COLS} FROM messages{_where(where)} ORDER BY id DESC LIMIT ?")

        def op(cur):
            cur.execute(sql, (*params, limit))
            found = [row_to_message(r) for r in cur.fetchall()]
            if events and found:
                self._histories(cur, found)
            return found

        return self.read(op)

    def _histories(self, cur, messages) -> None:
        """Fill each message's events, a statement per 500 messages."""
        by_id = {m.id: m for m in messages}
        for chunk in chunks(list(by_id)):
            cur.execute(self.q("SELECT message_id, at, status, operator, detail, final FROM events "
                               f"WHERE message_id IN ({marks(chunk)}) ORDER BY id"), chunk)
            for mid, at, status, operator, detail, final in cur.fetchall():
                by_id[mid].events.append(Event(at=at, status=Status(status), operator=operator, detail=detail or "",
                                               final=bool(final)))

    def find_mo(self, query: MoQuery, before: str | None, limit: int) -> Deferred:
        where, params = [], []
        for column, value in (("account", query.account), ("keyword", query.keyword), ("sender", query.sender)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if before is not None:
            where.append("id < ?")
            params.append(before)
        sql = self.q(f"SELECT {MO_COLS} FROM mo_messages{_where(where)} ORDER BY id DESC LIMIT ?")

        def op(cur):
            cur.execute(sql, (*params, limit))
            return [row_to_mo(r) for r in cur.fetchall()]

        return self.read(op)

    def number_facts(self, number: str) -> Deferred:
        def op(cur):
            cur.execute(self.q("SELECT operator, failures FROM learned WHERE number = ?"), (number,))
            row = cur.fetchone()
            learned = Learned(row[0], _failures(row[1])) if row else None
            cur.execute(self.q("SELECT account, number, added_at, source FROM stoplist WHERE number = ? "
                               "ORDER BY account"), (number,))
            stop = tuple(StopEntry(*r) for r in cur.fetchall())
            cur.execute(self.q("SELECT account, added_at FROM consent WHERE number = ? ORDER BY account"), (number,))
            consents = tuple((a, at) for a, at in cur.fetchall())
            return NumberFacts(learned, stop, consents, tuple(self._block_rows(cur, [number]).values()))

        return self.read(op)

    def stoplist_entries(self, *, number: str | None = None, account: str | None = None,
                         after: tuple[str, str] | None = None, limit: int = 100) -> Deferred:
        return self._list_page("stoplist", "account, number, added_at, source", StopEntry,
                               number, account, after, limit)

    def consent_entries(self, *, number: str | None = None, account: str | None = None,
                        after: tuple[str, str] | None = None, limit: int = 100) -> Deferred:
        return self._list_page("consent", "account, number, added_at", ConsentEntry, number, account, after, limit)

    def _list_page(self, table: str, columns: str, entry, number: str | None, account: str | None,
                   after: tuple[str, str] | None, limit: int) -> Deferred:
        """A page of the stop list or the consents, both keyed (account, number) with an index on
        number: the rows after ``after`` in key order, as ``entry(*row)``."""
        where, params = [], []
        if number is not None:
            where.append("number = ?")
            params.append(number)
        if account is not None:
            where.append("account = ?")
            params.append(account)
        if after is not None:
            where.append("(account > ? OR (account = ? AND number > ?))")
            params.extend((after[0], after[0], after[1]))
        sql = self.q(f"SELECT {columns} FROM {table}{_where(where)} ORDER BY account, number LIMIT ?")

        def op(cur):
            cur.execute(sql, (*params, limit))
            return [entry(*r) for r in cur.fetchall()]

        return self.read(op)

    def account_states(self, day: str) -> Deferred:
        def op(cur):
            cur.execute(self.q("SELECT a.account, a.balance, a.paused, d.count FROM accounts_state a "
                               "LEFT JOIN (SELECT account, SUM(count) AS count FROM daily_volume WHERE day = ? "
                               "GROUP BY account) d ON d.account = a.account ORDER BY a.account"),
                        (day,))
            return {name: AccountState(Decimal(balance), bool(paused), count or 0)
                    for name, balance, paused, count in cur.fetchall()}

        return self.read(op)
