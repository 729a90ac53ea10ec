"""Account rules in the store: what must be decided in the transaction that stores a message.

A mixin for ``SqlStore`` (SQLite and PostgreSQL). The decisions are pure functions in
``policies`` (admission, billing, learning); this loads the facts they need and saves their
outcome, in the transaction that stores the change:

- at acceptance (``_before_insert``), per account: ``policies.admission.admit`` over the account's
  state, its count for today and the stop-list facts of the numbers (stop list, do-not-call,
  pause, daily volume, prepaid charge, or the whole request refused); balance notices are queued
  as pushes; what was learned about each destination is attached (SmartConfirm);
- a message accepted earlier that becomes ``queued`` is checked again (``held_back``);
- after changes are saved (``_after_save``): what they teach about their numbers
  (``policies.learning``) and, when a delivery gave a number a new operator, about its blocks
  (``policies.blocks``, table ``block_evidence``); what was learned is attached again to messages
  sent on to their next operator; and the refund of a message that ended before it was ever submitted
  (``policies.admission.refund``);
- ops actions (approve, refuse, cancel, pause, resume, top-up), stop-list edits, idempotency keys,
  the CSV export and the retention purge.

The config is read through ``config_source`` (``StoreRules``, given when the store is built);
without one (unit tests of the bare store) the account rules are off.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from decimal import Decimal

from twisted.internet.defer import Deferred

from policies.admission import Facts, InsufficientBalance, NoPrice, Terms, refund  # noqa: F401 (re-exported)
from policies import blocks
from policies.learning import Learned, failed_lately, learn
from smscore import transitions as tr
from smscore.model import Event, Message, Status
from smscore.store.rows import MSG_COLS, chunks, in_lists, marks, row_to_message
from smscore.store.rules import (DO_NOT_CALL, IDEMPOTENCY_TTL, PURGE_CHUNK, Conflict, NotFound,  # noqa: F401 (re-exported)
                                 admit_messages, balance_notice_jobs, block_lessons, day_of, hold_back,
                                 kept_answer, lessons, needs_hold_back_check, wants_block)

class AccountRules:
    """Mixed into SqlStore subclasses (before SqlStore in the bases)."""

    config_source = None  # () -> Config (StoreRules)

    # -- accounts -------------------------------------------------------------------------------
    def ensure_accounts(self, balances: dict[str, Decimal]) -> Deferred:
        """Give every account its opening balance once (the store keeps the balance after that)."""
        def op(cur):
            for account, balance in balances.items():
                cur.execute(self.q("SELECT 1 FROM accounts_state WHERE account = ?"), (account,))
                if cur.fetchone() is None:
                    cur.execute(self.q("INSERT INTO accounts_state (account, balance, paused) VALUES (?,?,0)"),
                                (account, str(balance)))

        return self.run(op)

    def _state(self, cur, account: str, lock: bool = False) -> tuple[Decimal, bool]:
        cur.execute(self.q("SELECT balance, paused FROM accounts_state WHERE account = ?"
                           + (self._for_update() if lock else "")), (account,))
        row = cur.fetchone()
        return (Decimal(row[0]), bool(row[1])) if row else (Decimal(0), False)

    def _set_balance(self, cur, account: str, before: Decimal, after: Decimal, at: float) -> None:
        cur.execute(self.q("UPDATE accounts_state SET balance = ? WHERE account = ?"), (str(after), account))
        if cur.rowcount == 0:  # no state yet (ensure_accounts has not run for it): kept all the same
            cur.execute(self.q("INSERT INTO accounts_state (account, balance, paused) VALUES (?,?,0)"),
                        (account, str(after)))
        for job in balance_notice_jobs(self.config_source() if self.config_source else None, account, before,
                                       after, at):
            self._insert_job(cur, job, at)

    def account_state(self, account: str) -> Deferred:
        """Fires with (balance, paused)."""
        return self.read(lambda cur: self._state(cur, account))

    def topup(self, account: str, amount: Decimal, at: float) -> Deferred:
        """Add ``amount`` (may be negative: a correction); fires with the new balance."""
        def op(cur):
            before, _ = self._state(cur, account, lock=True)
            after = before + amount
            self._set_balance(cur, account, before, after, at)
            return after

        return self.run(op)

    def set_paused(self, account: str, paused: bool, at: float) -> Deferred:
        """Pause (queued messages wait as ``paused``) or resume (they are queued again, unclaimed,
        for any node to send). Fires with the messages changed."""
        def op(cur):
            cur.execute(self.q("UPDATE accounts_state SET paused = ? WHERE account = ?"), (int(paused), account))
            if cur.rowcount == 0:  # no state yet: kept all the same, with the balance a missing state has
                cur.execute(self.q("INSERT INTO accounts_state (account, balance, paused) VALUES (?,'0',?)"),
                            (account, int(paused)))
            source = "queued" if paused else "paused"
            cur.execute(self.q(f"SELECT {MSG_COLS} FROM messages WHERE account = ? AND status = ?{self._for_update()}"),
                        (account, source))
            changes = []
            for row in cur.fetchall():
                t = tr.on_ops(row_to_message(row), "pause" if paused else "resume", at,
                              "account paused by ops" if paused else "account resumed by ops", at)
                if t is not None:
                    changes.append((t, list(row[-1]), None, None))
            self._save(cur, changes)
            return [t.message for t, *_ in changes]

        return self.run(op)

    # -- acceptance -----------------------------------------------------------------------------
    def _before_insert(self, cur, messages: Sequence[Message], claimed: bool = True) -> None:
        """The account rules on new messages (``smscore.store.rules.admit_messages`` over the facts
        read here); the daily count and the balance saved in this transaction."""
        config = self.config_source() if self.config_source else None
        if config is None:
            return
        now = messages[0].created_at if messages else 0.0
        for account, facts, outcome in admit_messages(config, messages, lambda *a: self._facts(cur, *a)):
            if outcome.counted:
                # Added to this writer's own row: other writers (processes, nodes) count in theirs,
                # so nobody waits for another's row lock, and the day's count is their sum.
                self._write_unread(cur, self.q("INSERT INTO daily_volume (account, day, writer, count) "
                                               "VALUES (?,?,?,?) ON CONFLICT (account, day, writer) DO UPDATE "
                                               "SET count = daily_volume.count + excluded.count"),
                                   (account, day_of(now), self.writer, outcome.sent_today - facts.sent_today))
            if outcome.balance != facts.balance:
                self._set_balance(cur, account, facts.balance, outcome.balance, now)
        if claimed:  # unclaimed messages learn it when claimed (SqlStore.claim)
            self._learned_for(cur, [m for m in messages if m.status is Status.QUEUED], now)

    def _facts(self, cur, account: str, numbers: Iterable[str], now: float, terms: Terms = Terms()) -> Facts:
        """What ``admit`` and ``held_back`` decide on: the account's state (locked when prepaid: its
        balance changes in this transaction), its count for today (with a limit), and which of the
        numbers are on its stop list, on the do-not-call list, or have its consent."""
        balance, paused = self._state(cur, account, lock=terms.prepaid)
        sent = 0
        if terms.daily_volume_limit is not None:
            cur.execute(self.q("SELECT SUM(count) FROM daily_volume WHERE account = ? AND day = ?"),
                        (account, day_of(now)))
            sent = cur.fetchone()[0] or 0
        stopped, dnc, consent = set(), set(), set()
        for chunk in chunks(sorted(set(numbers))):
            among, args = self._in("number", chunk)
            cur.execute(self.q(f"SELECT account, number FROM stoplist WHERE account IN (?, ?) AND {among}"),
                        (account, DO_NOT_CALL, *args))
            for owner, number in cur.fetchall():
                (stopped if owner == account else dnc).add(number)
            if dnc or stopped:
                cur.execute(self.q(f"SELECT number FROM consent WHERE account = ? AND {among}"), (account, *args))
                consent.update(r[0] for r in cur.fetchall())
        return Facts(balance=balance, paused=paused, sent_today=sent, stop_listed=frozenset(stopped),
                     do_not_call=frozenset(dnc), consented=frozenset(consent))

    # -- SmartConfirm learning (the decisions: policies.learning) -----------------------------
    def _learned(self, cur, numbers: Iterable[str], lock: bool = False) -> dict[str, Learned]:
        return {number: Learned(operator, _failures(failures)) for number, operator, failures
                in self._rows_by_key(cur, "learned", "number, operator, failures", "number", numbers, lock)}

    def _learned_for(self, cur, messages: Sequence[Message], now: float) -> None:
        """Attach to messages about to be sent what was learned about their numbers and, for those
        without an operator of their own to use (``rules.wants_block``), their blocks' evidence."""
        learned = self._learned(cur, [m.to for m in messages])  # a list: one call, a generator one a message
        blind = []
        for m in messages:
            known = learned.get(m.to)
            if known is not None:
                m.preferred = known.operator
                m.recent_failures = failed_lately(known, now)
            if wants_block(m, self.untried):
                blind.append(m)
        if blind:
            by_prefix: dict[str, list[blocks.Tally]] = {}
            for t in self._block_rows(cur, [m.to for m in blind]).values():
                by_prefix.setdefault(t.prefix, []).append(t)
            for m in blind:
                m.block = tuple(t for p in blocks.prefixes(m.to) for t in by_prefix.get(p, ()))

    def _block_rows(self, cur, numbers: Iterable[str], lock: bool = False) -> dict[tuple[str, str], blocks.Tally]:
        """The block evidence of every prefix of ``numbers`` (locked, in key order, to be updated)."""
        found = {}
        wanted = sorted({p for n in numbers for p in blocks.prefixes(n)})
        for chunk in in_lists(wanted):
            among, args = self._in("prefix", chunk)
            cur.execute(self.q("SELECT prefix, operator, delivered, failed, updated_at FROM block_evidence "
                               f"WHERE {among} ORDER BY prefix, operator{self._for_update() if lock else ''}"), args)
            for prefix, operator, delivered, failed, at in cur.fetchall():
                found[(prefix, operator)] = blocks.Tally(prefix, operator, delivered, failed, at)
        return found

    def _teach_blocks(self, cur, taught: Sequence[tuple[str, str, list[str], float]]) -> None:
        """Apply ``rules.block_lessons`` (``policies.blocks.lesson``) and upsert the rows they
        changed, in key order. Two nodes creating the same row at once keep one's count (ON
        CONFLICT): evidence is a statistic, and the next deliveries correct it."""
        rows = self._block_rows(cur, [number for number, *_ in taught], lock=True)
        changed: set[tuple[str, str]] = set()
        for number, delivered_by, failed, at in taught:
            for t in blocks.lesson(rows, number, delivered_by, failed, at):
                rows[(t.prefix, t.operator)] = t
                changed.add((t.prefix, t.operator))
        for chunk in chunks(sorted(changed), 100):  # one statement for many rows
            cur.execute(self.q("INSERT INTO block_evidence (prefix, operator, delivered, failed, updated_at) VALUES "
                               + ",".join(["(?,?,?,?,?)"] * len(chunk))
                               + " ON CONFLICT (prefix, operator) DO UPDATE SET delivered = excluded.delivered, "
                                 "failed = excluded.failed, updated_at = excluded.updated_at"),
                        [v for k in chunk for v in (k[0], k[1], rows[k].delivered, rows[k].failed, rows[k].at)])

    def _after_save(self, cur, transitions: Sequence[tr.Transition]) -> None:
        """What the changes teach about their numbers (read once, written once for all of them),
        and the refund of a prepaid message that ended before it was ever submitted."""
        for t in transitions:
            m = t.message
            if not m.charged:  # nothing to give back (refund answers 0): most messages, postpaid
                continue
            back = refund(m.charged, m.tried, (e.status.value for e in t.events))
            if back:
                before, _ = self._state(cur, m.account, lock=True)
                self._set_balance(cur, m.account, before, before + back, t.events[-1].at)
                cur.execute(self.q("UPDATE messages SET charged = '0' WHERE id = ?"), (m.id,))
                m.charged = Decimal(0)  # what the caller answers with (a DELETE's body) is what is stored
        taught = lessons(transitions)
        if taught:
            renumbered = self._learn(cur, taught)
            if renumbered:
                for_blocks = block_lessons(transitions, self.untried, renumbered)
                if for_blocks:
                    self._teach_blocks(cur, for_blocks)
        again = [t for t in transitions if t.requeue]
        if again:  # sent on to the next operator: what this change taught decides which
            self._learned_for(cur, [t.message for t in again], max((t.events[-1].at for t in again if t.events), default=0.0))

    def _learn(self, cur, lessons: Sequence[tuple[str, str | None, list[tuple[str, float]], float]]) -> set[str]:
        """Apply lessons ``(number, delivered by, failed, at)`` in order and store what changed.
        Returns the numbers a delivery gave a new operator (their first, or another than before)."""
        known = self._learned(cur, [number for number, *_ in lessons], lock=True)
        before = {number: learned.operator for number, learned in known.items()}
        stored = set(known)
        changed: dict[str, tuple[Learned, float]] = {}
        for number, delivered_by, failed, at in lessons:
            after = learn(known.get(number), delivered_by, failed)
            if after is not None:
                known[number] = after
                changed[number] = (after, at)
        rows = [(learned.operator, at, ",".join([f"{op}:{when:.0f}" for op, when in sorted(learned.failures.items())])
                 if learned.failures else "", number) for number, (learned, at) in changed.items()]
        updates = [row for row in rows if row[-1] in stored]
        inserts = [(number, operator, at, text) for operator, at, text, number in rows if number not in stored]
        if updates:
            self._many(cur, "UPDATE learned SET operator = ?, updated_at = ?, failures = ? WHERE number = ?", updates)
        if inserts:
            self._many(cur, "INSERT INTO learned (number, operator, updated_at, failures) VALUES (?,?,?,?)", inserts)
        return {number for number, (learned, _) in changed.items()
                if learned.operator is not None and learned.operator != before.get(number)}

    def _prepare(self, cur, t: tr.Transition) -> None:
        """A message that becomes ``queued`` is checked again (rules.hold_back). Every change saved
        comes here: one that leaves the message in another status (submitted, delivered) is passed
        over without a call."""
        if t.message.status is Status.QUEUED and self.config_source is not None and needs_hold_back_check(t):
            m = t.message
            hold_back(t, self._facts(cur, m.account, [m.to], t.events[-1].at))

    # -- ops and customers acting on one message -----------------------------------------------
    def act(self, message_id: str, action: str, at: float, detail: str, account: str | None = None) -> Deferred:
        """approve / refuse / cancel a message (of ``account`` when given). Fires with the message
        and its history; fails with NotFound or Conflict (see base.Store.act)."""
        def op(cur):
            loaded = self._load(cur, message_id)
            if loaded is None or (account is not None and loaded[0].account != account):
                raise NotFound(message_id)
            message, parts = loaded
            t = tr.on_ops(message, action, at, detail, at)
            if t is None:
                raise Conflict(message.status)
            self._write(cur, t, parts)
            cur.execute(self.q("SELECT at, status, operator, detail, final FROM events WHERE message_id = ? "
                               "ORDER BY id"), (message_id,))
            message.events = [Event(at=a, status=Status(s), operator=o, detail=d or "", final=bool(f))
                              for a, s, o, d, f in cur.fetchall()]
            return message

        return self.run(op)

    # -- stop list, do-not-call, consent ---------------------------------------------------------
    def stoplist_change(self, numbers: Sequence[str], *, account: str | None = None, remove: bool = False,
                        consent: bool = False, at: float = 0.0, source: str = "ops") -> Deferred:
        """Add (or remove) numbers to an account's stop list, the do-not-call list (no account),
        or an account's consents. A number added to an account's stop list loses that account's
        consent (the later of the two wins). Fires with how many entries changed."""
        table = "consent" if consent else "stoplist"
        owner = account if account is not None else DO_NOT_CALL

        def op(cur):
            changed = 0
            for number in numbers:
                if not (remove or consent):  # an entry of the account's stop list or the do-not-call list
                    changed += not self._stop(cur, owner, number, at, source)
                    continue
                cur.execute(self.q(f"DELETE FROM {table} WHERE account = ? AND number = ?"), (owner, number))
                existed = cur.rowcount > 0
                if remove:
                    changed += existed
                    continue
                cur.execute(self.q("INSERT INTO consent (account, number, added_at) VALUES (?,?,?)"),
                            (owner, number, at))
                changed += not existed
            return changed

        return self.run(op)

    # -- idempotency ---------------------------------------------------------------------------
    def accept_once(self, messages: Sequence[Message], owner: str | None, lease_until: float, *, account: str,
                    key: str, body_hash: str, render, at: float) -> Deferred:
        """Store messages under an idempotency key. Fires with None when stored now (``render
        (messages)`` is kept as the answer to repeats), or with the first answer (a dict) when the
        key was used in the last 24 h with the same body; fails with Conflict(None) when it was
        used with another body."""
        def op(cur):
            row = self._idempotency_row(cur, account, key)
            first = kept_answer(row, body_hash, at)
            if first is not None:
                return first
            if row is not None:  # older than a day: the key is free again
                cur.execute(self.q("DELETE FROM idempotency WHERE account = ? AND key = ?"), (account, key))
            self._insert_messages(cur, messages, owner, lease_until)
            cur.execute(self.q("INSERT INTO idempotency (account, key, body_hash, response, created_at) "
                               "VALUES (?,?,?,?,?)"), (account, key, body_hash, json.dumps(render(messages)), at))
            return None

        return self.run(op)

    def answered_before(self, account: str, key: str, body_hash: str, at: float) -> Deferred:
        return self.read(lambda cur: kept_answer(self._idempotency_row(cur, account, key), body_hash, at))

    def _idempotency_row(self, cur, account: str, key: str) -> tuple | None:
        """(body_hash, response, created_at) kept under the key, or None."""
        cur.execute(self.q("SELECT body_hash, response, created_at FROM idempotency WHERE account = ? AND key = ?"),
                    (account, key))
        return cur.fetchone()

    # -- export and retention ---------------------------------------------------------------------
    def export(self, account: str, start: float, end: float, limit: int = 1_000_000) -> Deferred:
        def op(cur):
            cur.execute(self.q(f"SELECT {MSG_COLS} FROM messages WHERE account = ? AND created_at >= ? "
                               "AND created_at < ? ORDER BY created_at LIMIT ?"), (account, start, end, limit))
            return [row_to_message(r) for r in cur.fetchall()]

        return self.read(op)

    def purge(self, now: float, retention: float, orphan_age: float, limit: int = PURGE_CHUNK) -> Deferred:
        """Delete final messages older than ``retention`` (with their history and ids), idempotency
        keys past 24 h, orphan receipts older than ``orphan_age``, receipts and MO waiting for a
        customer's ESME longer than ``retention`` (SPEC §13), daily counts of days before it. At
        most ``limit`` messages and ``limit`` MO a call, each kind by a few statements: fires with
        how many messages and MO went (the caller calls again while that reaches ``limit``)."""
        finals = tuple(s.value for s in Status if s.final)

        def op(cur):
            cur.execute(self.q(f"SELECT id FROM messages WHERE status IN ({marks(finals)}) AND updated_at < ? LIMIT ?"),
                        (*finals, now - retention, limit))
            ids = [r[0] for r in cur.fetchall()]
            for chunk in in_lists(ids):
                for table, column in (("events", "message_id"), ("smsc_ids", "message_id"), ("messages", "id")):
                    cur.execute(self.q(f"DELETE FROM {table} WHERE {column} IN ({marks(chunk)})"), chunk)
            cur.execute(self.q("DELETE FROM idempotency WHERE created_at < ?"), (now - IDEMPOTENCY_TTL,))
            cur.execute(self.q("DELETE FROM orphan_receipts WHERE received_at < ?"), (now - orphan_age,))
            cur.execute(self.q("DELETE FROM push_jobs WHERE url = 'smpp' AND first_at < ?"), (now - retention,))
            cur.execute(self.q("DELETE FROM daily_volume WHERE day < ?"), (day_of(now - retention),))
            cur.execute(self.q("SELECT id FROM mo_messages WHERE received_at < ? LIMIT ?"), (now - retention, limit))
            mo_ids = [r[0] for r in cur.fetchall()]
            for chunk in in_lists(mo_ids):
                cur.execute(self.q(f"DELETE FROM mo_events WHERE mo_id IN ({marks(chunk)})"), chunk)
                cur.execute(self.q(f"DELETE FROM mo_messages WHERE id IN ({marks(chunk)})"), chunk)
            return len(ids) + len(mo_ids)

        return self.run(op)


def _failures(text: str) -> dict[str, float]:
    out = {}
    for item in filter(None, (text or "").split(",")):
        op, _, when = item.rpartition(":")
        out[op] = float(when)
    return out
