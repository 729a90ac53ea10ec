"""The memory store's operations of ops and customers on accounts and messages (as
``AccountRules`` for the SQL stores): balances, pause, approve/refuse/cancel, stop lists and
consent, idempotency keys, the export and the retention purge. Mixed into ``MemoryStore``, whose
dicts they work on."""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal

from twisted.internet.defer import Deferred, fail, maybeDeferred, succeed

from smscore import transitions as tr
from smscore.model import Message, Status
from smscore.store.rules import DO_NOT_CALL, IDEMPOTENCY_TTL, PURGE_CHUNK, Conflict, NotFound, day_of, kept_answer


class MemoryAccountOps:
    """Mixed into MemoryStore (before Store in the bases)."""

    def ensure_accounts(self, balances: dict[str, Decimal]) -> Deferred:
        for account, balance in balances.items():
            self.accounts.setdefault(account, [Decimal(balance), False])
        return succeed(None)

    def account_state(self, account: str) -> Deferred:
        balance, paused = self.accounts.get(account, (Decimal(0), False))
        return succeed((balance, paused))

    def topup(self, account: str, amount: Decimal, at: float) -> Deferred:
        before = self.accounts.get(account, (Decimal(0), False))[0]
        self._set_balance(account, before, before + amount, at)
        return succeed(before + amount)

    def set_paused(self, account: str, paused: bool, at: float) -> Deferred:
        self.accounts.setdefault(account, [Decimal(0), False])[1] = paused
        source = Status.QUEUED if paused else Status.PAUSED
        changed = []
        for mid in sorted(self.messages):
            m = self.messages[mid]
            if m.account != account or m.status is not source:
                continue
            t = tr.on_ops(self._snapshot(m), "pause" if paused else "resume", at,
                          "account paused by ops" if paused else "account resumed by ops", at)
            if t is not None:
                self._apply(t)
                changed.append(t.message)
        return succeed(changed)

    def act(self, message_id: str, action: str, at: float, detail: str, account: str | None = None) -> Deferred:
        stored = self.messages.get(message_id)
        if stored is None or (account is not None and stored.account != account):
            return fail(NotFound(message_id))
        t = tr.on_ops(self._snapshot(stored), action, at, detail, at)
        if t is None:
            return fail(Conflict(stored.status))
        self._apply(t)
        return self.get(message_id)

    def stoplist_change(self, numbers: Sequence[str], *, account: str | None = None, remove: bool = False,
                        consent: bool = False, at: float = 0.0, source: str = "ops") -> Deferred:
        entries = self.consent if consent else self.stoplist
        owner = account if account is not None else DO_NOT_CALL
        changed = 0
        for number in numbers:
            if not (remove or consent):  # as SqlStore: one rule for every stop entry
                changed += not self._stop(owner, number, at, source)
                continue
            existed = (owner, number) in entries
            if remove:
                entries.discard((owner, number))
                self.list_added.pop(("consent" if consent else "stoplist", owner, number), None)
                changed += existed
            else:
                entries.add((owner, number))
                self.list_added[("consent", owner, number)] = (at, source)
                changed += not existed
        return succeed(changed)

    def _stop(self, account: str, number: str, at: float, source: str) -> bool:
        """An account's stop entry (or the do-not-call list's), its consent withdrawn (the later of
        the two wins); whether the number was listed already."""
        self.consent.discard((account, number))
        self.list_added.pop(("consent", account, number), None)
        existed = (account, number) in self.stoplist
        self.stoplist.add((account, number))
        self.list_added[("stoplist", account, number)] = (at, source)
        return existed

    def accept_once(self, messages: Sequence[Message], owner: str | None, lease_until: float, *, account: str,
                    key: str, body_hash: str, render, at: float) -> Deferred:
        try:
            first = kept_answer(self.idempotency.get((account, key)), body_hash, at)
        except Conflict:
            return fail()
        if first is not None:
            return succeed(first)
        d = self.accept(messages, owner, lease_until)

        def stored(_):
            self.idempotency[(account, key)] = (body_hash, json.dumps(render(messages)), at)

        return d.addCallback(stored)

    def answered_before(self, account: str, key: str, body_hash: str, at: float) -> Deferred:
        return maybeDeferred(kept_answer, self.idempotency.get((account, key)), body_hash, at)

    def export(self, account: str, start: float, end: float, limit: int = 1_000_000) -> Deferred:
        found = sorted((m for m in self.messages.values() if m.account == account and start <= m.created_at < end),
                       key=lambda m: m.created_at)
        return succeed([self._snapshot(m) for m in found[:limit]])

    def purge(self, now: float, retention: float, orphan_age: float, limit: int = PURGE_CHUNK) -> Deferred:
        old = [mid for mid, m in self.messages.items() if m.status.final and m.updated_at < now - retention][:limit]
        for mid in old:
            for table in (self.messages, self.parts, self.leases, self.update_seq):
                table.pop(mid, None)
        for ref, found in list(self.smsc_ids.items()):
            found[:] = [entry for entry in found if entry[1] not in old]
            if not found:
                del self.smsc_ids[ref]
        self.idempotency = {k: v for k, v in self.idempotency.items() if v[2] >= now - IDEMPOTENCY_TTL}
        self.orphans = [o for o in self.orphans if self.orphan_at.get(id(o), now) >= now - orphan_age]
        for jid in [jid for jid, row in self.jobs.items()
                    if row["job"].url == "smpp" and row["job"].first_at < now - retention]:
            del self.jobs[jid]
        old_mo = [mo_id for mo_id, mo in self.mo.items() if mo.received_at < now - retention][:limit]
        for mo_id in old_mo:
            del self.mo[mo_id]
        first_day = day_of(now - retention)
        self.daily = {key: count for key, count in self.daily.items() if key[1] >= first_day}
        return succeed(len(old) + len(old_mo))
