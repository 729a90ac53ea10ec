"""An in-memory Store for unit tests: the same interface and rules, no durability, no threads.

Deferreds fire synchronously, so tests drive the pipeline with a Clock and no reactor. The account
rules are the same decisions as the SQL stores' (``smscore.store.rules`` over ``policies``), on
dicts instead of tables.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from decimal import Decimal

from twisted.internet.defer import Deferred, fail, succeed

from connectors.api import MoFacts, ReceiptFacts
from policies import blocks
from policies.admission import Facts, Terms, refund
from policies.callbacks import selects
from policies.cluster import Seen
from policies.learning import Learned, failed_lately, learn
from policies.leases import given_back_at_start
from smscore import transitions as tr
from smscore.model import Event, Message, MoEvent, MoMessage, PushJob, Status, assemble_mo, new_message_id
from smscore.store.base import Store, StoreRules, check_finish, told_at_acceptance
from smscore.store.memory_accounts import MemoryAccountOps
from smscore.store.memory_changes import MemoryChanges
from smscore.store.memory_lookups import MemoryLookups
from smscore.store.nodes import FORGET_AFTER
from smscore.store.rules import (DO_NOT_CALL, admit_messages, balance_notice_jobs, block_lessons, day_of, hold_back,
                                 lessons, needs_hold_back_check, settle, wants_block, working)
from smscore.store.sql import status_callback_body


class MemoryStore(MemoryChanges, MemoryLookups, MemoryAccountOps, Store):
    """Messages, parts, SMSC ids and orphan receipts in dicts."""

    def __init__(self, rules: StoreRules | None = None) -> None:
        self.messages: dict[str, Message] = {}
        self.parts: dict[str, list[str]] = {}
        self.leases: dict[str, tuple[str | None, float | None]] = {}
        self.via: dict[str, str] = {}  # message id -> the operator it was parked for
        self.nodes: dict[str, Seen] = {}  # node -> its last heartbeat, and since when without a gap
        #: (operator, key) -> (given at, message id, part) of each message the id names, oldest first
        self.smsc_ids: dict[tuple[str, str], list[tuple[float, str, int]]] = {}
        self.orphans: list[ReceiptFacts] = []
        self.closed = False
        self.mo: dict[str, MoMessage] = {}
        self.mo_parts: dict[tuple, dict[int, tuple[str, float]]] = {}
        self.update_seq: dict[str, int] = {}
        self.jobs: dict[int, dict] = {}  # id -> {"job": PushJob, "next_at", "owner", "lease_until", "error"}
        self.stoplist: set[tuple[str, str]] = set()
        self.spend: dict[tuple[str, str, str], object] = {}
        self._counter = 0
        self._take_rules(rules)
        self.accounts: dict[str, list] = {}  # account -> [balance, paused]
        self.daily: dict[tuple[str, str], int] = {}  # (account, day) -> messages counted
        self.consent: set[tuple[str, str]] = set()
        self.learned: dict[str, Learned] = {}
        self.block_evidence: dict[tuple[str, str], blocks.Tally] = {}  # (prefix, operator) -> tally
        self.idempotency: dict[tuple[str, str], tuple[str, str, float]] = {}  # -> (body hash, answer, at)
        self.orphan_at: dict[int, float] = {}  # id(orphan) -> when it came
        self.list_added: dict[tuple[str, str, str], tuple[float, str]] = {}  # see MemoryLookups

    def _next(self) -> int:
        self._counter += 1
        return self._counter

    def open(self) -> Deferred:
        return succeed(None)

    def close(self) -> Deferred:
        self.closed = True
        return succeed(None)

    def accept(self, messages: Sequence[Message], owner: str | None, lease_until: float) -> Deferred:
        for m in messages:
            if m.id in self.messages:
                return fail(KeyError(f"duplicate message id {m.id}"))
        work = [working(m) for m in messages]
        config = self.config_source() if self.config_source else None
        if config is not None:
            now = messages[0].created_at if messages else 0.0
            try:
                outcomes = admit_messages(config, work, self._facts)
            except Exception as refused:  # noqa: BLE001 - refused whole: nothing is kept
                return fail(refused)
            for account, facts, outcome in outcomes:
                if outcome.counted:
                    self.daily[(account, day_of(now))] = outcome.sent_today
                if outcome.balance != facts.balance:
                    self._set_balance(account, facts.balance, outcome.balance, now)
            if owner is not None:
                self._learned_for([m for m in work if m.status is Status.QUEUED], now)
        for m in work:
            self.messages[m.id] = copy.deepcopy(m)
            self.parts[m.id] = [tr.PART_PENDING] * m.parts
            self.leases[m.id] = (owner, lease_until if owner else None)
            self.update_seq[m.id] = self._next()
        for m, (url, _) in told_at_acceptance(work, self.status_callbacks_for):  # see SqlStore._insert_rows
            first = m.events[0]
            self._add_job(PushJob("status", m.account, m.id, url, status_callback_body(self._next(), m, first)),
                          first.at)
        settle(work, messages)
        return succeed(None)

    def _facts(self, account: str, numbers, now: float, terms: Terms = Terms()) -> Facts:
        balance, paused = self.accounts.get(account, (Decimal(0), False))
        numbers = set(numbers)
        return Facts(balance=balance, paused=paused,
                     sent_today=self.daily.get((account, day_of(now)), 0) if terms.daily_volume_limit is not None else 0,
                     stop_listed=frozenset(n for n in numbers if (account, n) in self.stoplist),
                     do_not_call=frozenset(n for n in numbers if (DO_NOT_CALL, n) in self.stoplist),
                     consented=frozenset(n for n in numbers if (account, n) in self.consent))

    def _set_balance(self, account: str, before: Decimal, after: Decimal, at: float) -> None:
        self.accounts.setdefault(account, [Decimal(0), False])[0] = after
        for job in balance_notice_jobs(self.config_source() if self.config_source else None, account, before,
                                       after, at):
            self._add_job(job, at)

    def _learned_for(self, messages: Sequence[Message], now: float) -> None:
        for m in messages:
            known = self.learned.get(m.to)
            m.preferred, m.recent_failures = (known.operator, failed_lately(known, now)) if known else (None, ())
            if wants_block(m, self.untried):
                m.block = tuple(self._block_rows(m.to).values())

    def _block_rows(self, number: str) -> dict[tuple[str, str], blocks.Tally]:
        wanted = set(blocks.prefixes(number))
        return {key: t for key, t in self.block_evidence.items() if key[0] in wanted}

    def _snapshot(self, m: Message) -> Message:
        out = copy.copy(m)
        out.events = []
        return out

    def claim(self, owner: str, now: float, lease_until: float, limit: int,
              own_before: float | None = None, skip: Sequence[str] = (), after: str = "",
              ended_before: float | None = None, skip_profiles: Sequence[str] = ()) -> Deferred:
        expired = now if ended_before is None else min(now, ended_before)
        out = []
        for mid in sorted(m for m in self.messages if m > after):
            if len(out) >= limit:
                break
            m = self.messages[mid]
            if m.status is not Status.QUEUED or (m.send_at is not None and m.send_at > now):
                continue
            if self.via.get(mid) in skip or m.profile in skip_profiles:
                continue
            holder, until = self.leases[mid]
            if (holder is None or (until is not None and until < expired)
                    or (own_before is not None and holder == owner and until is not None and until < own_before)):
                self.leases[mid] = (owner, lease_until)
                out.append(self._snapshot(m))
        if self.config_source is not None:
            self._learned_for(out, now)
        return succeed(out)

    def release_due(self, now: float, limit: int = 1000) -> Deferred:
        due = sorted((m.send_at, mid) for mid, m in self.messages.items()
                     if m.status is Status.SCHEDULED and m.send_at is not None and m.send_at <= now)[:limit]
        for _, mid in due:
            m = self._snapshot(self.messages[mid])
            m.status, m.updated_at = Status.QUEUED, now
            self._apply(tr.Transition(m, [Event(at=now, status=Status.QUEUED, detail="send_at reached")]))
        return succeed(len(due))

    def renew(self, owner: str, lease_until: float, held: Sequence[str] = (), since: float | None = None) -> Deferred:
        renewed = set()
        for mid, (holder, until) in self.leases.items():
            if (holder == owner and self.messages[mid].status is Status.QUEUED
                    and (since is None or (until is not None and until >= since))):
                self.leases[mid] = (owner, lease_until)
                renewed.add(mid)
        return succeed(sorted(set(held) - renewed))

    def park(self, owner: str, parked: Sequence[tuple[str, str]]) -> Deferred:
        for mid, operator in parked:
            if self.leases.get(mid, (None,))[0] == owner and self.messages[mid].status is Status.QUEUED:
                self.leases[mid] = (None, None)
                self.via[mid] = operator
        return succeed(None)

    def heartbeat(self, node: str, now: float, ttl: float) -> Deferred:
        before = self.nodes.get(node)
        since = before.since if before is not None and before.seen_at > now - ttl else now
        self.nodes[node] = Seen(node, now, since)
        for name in [n for n, seen in self.nodes.items() if seen.seen_at < now - FORGET_AFTER * ttl]:
            del self.nodes[name]
        return succeed(sorted(self.nodes.values()))

    def leave(self, node: str, seen_at: float) -> Deferred:
        if node in self.nodes:
            self.nodes[node] = self.nodes[node]._replace(seen_at=seen_at)
        return succeed(None)

    def release(self, owner: str, message_ids: Sequence[str]) -> Deferred:
        for mid in message_ids:
            if self.leases.get(mid, (None,))[0] == owner:
                self.leases[mid] = (None, None)
        return succeed(None)

    def _apply(self, t: tr.Transition, owner: str | None = None, lease_until: float | None = None) -> None:
        m = t.message
        if self.config_source is not None and needs_hold_back_check(t):
            hold_back(t, self._facts(m.account, [m.to], t.events[-1].at))
        stored = self.messages[m.id]
        events = stored.events
        stored_copy = copy.copy(m)
        stored_copy.events = events + list(t.events)
        self.messages[m.id] = stored_copy
        if t.events:  # a change of status moves the message in the pull order; a part's alone does not
            self.update_seq[m.id] = self._next()
        target = self.status_callbacks_for(m) if m.origin == "api" else None
        t.pushes = 0
        for e in t.events if target else ():
            event_id = self._next()
            if selects(target[1], e.status.value, e.final):
                self._add_job(PushJob("status", m.account, m.id, target[0], status_callback_body(event_id, m, e)),
                              e.at)
                t.pushes += 1
        if t.requeue:
            self.parts[m.id] = [tr.PART_PENDING] * m.parts
        if m.status is not Status.QUEUED:
            self.leases[m.id] = (None, None)
        elif owner is not None:
            self.leases[m.id] = (owner, lease_until)
        if self.config_source is not None:
            self._after(t)

    def _after(self, t: tr.Transition) -> None:
        """What the change teaches about the number, and the refund of a message that ended
        before it was ever submitted (as AccountRules._after_save)."""
        renumbered = set()
        for number, delivered_by, failed, _ in lessons([t]):
            before = self.learned.get(number)
            after = learn(before, delivered_by, failed)
            if after is not None:
                self.learned[number] = after
                if after.operator is not None and after.operator != (before.operator if before else None):
                    renumbered.add(number)
        for number, delivered_by, failed, at in block_lessons([t], self.untried, renumbered):
            self.block_evidence.update(blocks.index(
                blocks.lesson(self._block_rows(number), number, delivered_by, failed, at)))
        if t.requeue:  # sent on to the next operator: what this change taught decides which
            self._learned_for([t.message], t.events[-1].at)
        m = self.messages[t.message.id]
        back = refund(m.charged, m.tried, (e.status.value for e in t.events))
        if back:
            before = self.accounts.get(m.account, (Decimal(0), False))[0]
            self._set_balance(m.account, before, before + back, t.events[-1].at)
            m.charged = t.message.charged = Decimal(0)  # the caller's copy too (a DELETE's body)

    def expire_unanswered(self, older_than: float, now: float, waited: float, limit: int = 1000) -> Deferred:
        due = sorted((m.updated_at, mid) for mid, m in self.messages.items()
                     if m.status in (Status.SUBMITTED, Status.BUFFERED) and m.updated_at < older_than)[:limit]
        out = []
        for _, mid in due:
            t = tr.on_receipt_timeout(self._snapshot(self.messages[mid]), now, waited)
            self._apply(t)
            out.append(t)
        return succeed(out)

    def _add_job(self, job: PushJob, at: float) -> None:
        jid = self._next()
        job = PushJob(job.kind, job.account, job.subject, job.url, job.body, id=jid, attempts=0, first_at=at)
        self.jobs[jid] = {"job": job, "next_at": at, "owner": None, "lease_until": None, "error": ""}

    def _mo_event(self, mo_id: str, at: float, status: str, detail: str) -> None:
        self.mo[mo_id].events.append(MoEvent(at, status, detail))

    def _new_mo(self, mo: MoMessage) -> MoMessage:
        self.mo[mo.id] = mo
        self._mo_event(mo.id, mo.received_at, "received", mo.note)
        return mo

    def _assemble(self, key: tuple) -> MoMessage:
        parts = self.mo_parts.pop(key)
        first_at = min(at for _, at in parts.values())
        text, note = assemble_mo([(seq, body) for seq, (body, _) in parts.items()], key[4])
        return self._new_mo(MoMessage(id=new_message_id(first_at), operator=key[0], sender=key[1], to=key[2],
                                      text=text, received_at=first_at, parts=key[4], note=note))

    def _route(self, mo: MoMessage, route, at: float, owner, lease_until) -> None:
        routing = route(mo, lambda shortcode, number, month: self.spend.get((shortcode, number, month), 0))
        mo.account, mo.keyword, mo.payload, mo.outcome = (
            routing.account, routing.keyword, routing.payload, routing.outcome)
        mo.seq = self._next() if routing.inbox else None
        for status, detail in routing.events:
            self._mo_event(mo.id, at, status, detail)
        if routing.spend is not None:
            shortcode, number, month, amount = routing.spend
            self.spend[(shortcode, number, month)] = self.spend.get((shortcode, number, month), 0) + amount
        if routing.stop is not None:
            accounts, number = routing.stop
            for a in accounts:
                self._stop(a, number, at, f"stop word from {number} to {mo.to}")
        if routing.push is not None:
            self._add_job(routing.push, at)
        if routing.replies:
            self.accept(routing.replies, owner, lease_until)
        mo.routing = routing

    def store_mo(self, mo: MoFacts, at: float, route=None, owner=None, lease_until: float = 0.0) -> Deferred:
        if mo.concat is None:
            whole = self._new_mo(MoMessage(id=new_message_id(at), operator=mo.operator, sender=mo.sender,
                                           to=mo.to, text=mo.text, received_at=at))
        else:
            ref, total, seq = mo.concat
            key = (mo.operator, mo.sender, mo.to, ref, total)
            self.mo_parts.setdefault(key, {}).setdefault(seq, (mo.text, at))
            if len(self.mo_parts[key]) < total:
                return succeed(None)
            whole = self._assemble(key)
        if route is not None:
            self._route(whole, route, at, owner, lease_until)
        return succeed(whole)

    def expire_mo_parts(self, older_than: float, now: float, route=None, owner=None,
                        lease_until: float = 0.0) -> Deferred:
        old = [k for k, parts in self.mo_parts.items() if min(at for _, at in parts.values()) < older_than]
        out = []
        for k in old:
            mo = self._assemble(k)
            if route is not None:
                self._route(mo, route, now, owner, lease_until)
            out.append(mo)
        return succeed(out)

    def get_mo(self, mo_id: str) -> Deferred:
        mo = self.mo.get(mo_id)
        if mo is None:
            return succeed(None)
        out = copy.copy(mo)
        out.events = list(mo.events)
        out.routing = None
        return succeed(out)

    def inbox(self, account: str, after: int, limit: int) -> Deferred:
        found = sorted((m for m in self.mo.values() if m.account == account and m.seq is not None and m.seq > after),
                       key=lambda m: m.seq)
        return succeed([copy.copy(m) for m in found[:limit]])

    def updates(self, account: str, after: int, limit: int, status=None, to=None, updated_since=None) -> Deferred:
        rows = []
        for mid, m in self.messages.items():
            seq = self.update_seq[mid]
            if (m.account == account and seq > after
                    and (status is None or m.status.value == status) and (to is None or m.to == to)
                    and (updated_since is None or m.updated_at >= updated_since)):
                rows.append((seq, self._snapshot(m)))
        rows.sort(key=lambda r: r[0])
        return succeed(rows[:limit])

    def claim_push_jobs(self, owner: str, now: float, lease_until: float, limit: int, *, smpp: bool = False,
                        accounts=None, after: int = 0, skip_accounts=()) -> Deferred:
        out = []
        held_back: set[str] = set()  # subjects with an earlier job that is not claimable now
        for jid in sorted(self.jobs):
            if len(out) >= limit:
                break
            row = self.jobs[jid]
            job = row["job"]
            if (job.url == "smpp") != smpp or (accounts is not None and job.account not in accounts) \
                    or job.account in skip_accounts:
                continue
            subject = job.subject
            free = row["owner"] is None or row["lease_until"] < now
            if not smpp and row["owner"] == owner and not free and row["next_at"] <= now and subject not in held_back:
                continue  # held here already: a later job may be claimed behind it (as SqlStore)
            if subject in held_back or not (row["next_at"] <= now and free) or jid <= after:
                held_back.add(subject)
                continue
            row["owner"], row["lease_until"] = owner, lease_until
            out.append(row["job"])
        return succeed(out)

    def release_push_jobs(self, node: str, keep=(), *, smpp: bool = False) -> Deferred:
        n = 0
        for row in self.jobs.values():
            if (row["job"].url == "smpp") == smpp and given_back_at_start(row["owner"], node, keep):
                row.update(owner=None, lease_until=None)
                n += 1
        return succeed(n)

    def finish_pushes(self, at: float, *, done=(), retry=(), retry_at=None, error: str = "", release=(),
                      mo_events=(), replies=(), owner=None, lease_until: float = 0.0,
                      replies_owner=None, tried_at: float | None = None) -> Deferred:
        check_finish(retry, retry_at, release, owner)
        for jid in done:
            self.jobs.pop(jid, None)
        for jid in retry:
            row = self.jobs.get(jid)
            if row is None:
                continue
            old = row["job"]
            first_at = tried_at if tried_at is not None and old.attempts == 0 else old.first_at
            row["job"] = PushJob(old.kind, old.account, old.subject, old.url, old.body, id=old.id,
                                 attempts=old.attempts + 1, first_at=first_at)
            row.update(next_at=retry_at, owner=None, lease_until=None, error=error)
        for jid in release:
            row = self.jobs.get(jid)
            if row is not None and row["owner"] == owner:
                row.update(owner=None, lease_until=None)
        for mo_id, status, detail in mo_events:
            if mo_id in self.mo:
                self._mo_event(mo_id, at, status, detail)
        if replies:
            self.accept(replies, replies_owner, lease_until)
        return succeed(None)

    def pending_push_jobs(self) -> Deferred:
        return succeed([self.jobs[j]["job"] for j in sorted(self.jobs)])

    def count_push_jobs(self) -> Deferred:
        counts: dict[str, int] = {}
        for row in self.jobs.values():
            if row["job"].url != "smpp":
                counts[row["job"].kind] = counts.get(row["job"].kind, 0) + 1
        return succeed(counts)

    def is_stopped(self, account: str, number: str) -> Deferred:
        return succeed((account, number) in self.stoplist)

    def get(self, message_id: str) -> Deferred:
        stored = self.messages.get(message_id)
        return succeed(copy.deepcopy(stored) if stored is not None else None)

    def count_by_status(self) -> Deferred:
        counts: dict[Status, int] = {}
        for m in self.messages.values():
            counts[m.status] = counts.get(m.status, 0) + 1
        return succeed(counts)

    def count_queued(self) -> Deferred:
        return succeed(sum(1 for m in self.messages.values() if m.status is Status.QUEUED))
