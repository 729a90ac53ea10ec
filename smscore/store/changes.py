"""Submits and receipts, many at a time: the MT hot path of the SQL stores.

A busy gateway stores a submit response and a delivery receipt for every message it sends, and
each is a read-modify-write of one message. One at a time that is some ten statements each, and
on SQLite every statement is also a turn for the GIL while the reactor thread is busy. So the
BatchWriter hands every submit and receipt of one group commit to ``_changes`` together
(``Merged``). It reads what they need in a few statements (the SMSC ids the receipts name, the
orphan receipts the submits may answer, the messages), applies ``smscore.transitions`` in queue
order over what it read, and saves the outcome with ``SqlStore._save``: the result of running them
one at a time in that order, for a handful of statements per batch.

Theory of operation
-------------------
- The ``_Unit`` holds what the batch read and what it decided. A change works on the message as
  the previous change of the batch left it; each Transition keeps its own copy (copy on the second
  change), as if it had been loaded afresh.
- An SMSC id may name several messages (an SMSC that gives its ids again after a restart): the
  unit keeps them all, in the order the SMSC gave it to them, and a receipt goes to the one
  ``policies.receipts`` picks by the number it names.
- A receipt that names no stored SMSC id is held as an orphan, in the unit and then in the table;
  a submit takes the orphans waiting for its ids, whether they came in an earlier batch or earlier
  in this one (the SMSC reported before the submit response was stored).
- On PostgreSQL every SMSC id involved is locked first (sorted, so two nodes never deadlock on
  them), then the messages are read ``FOR UPDATE`` in id order.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from twisted.internet.defer import Deferred

from connectors.api import ReceiptFacts, ReceiptOutcome
from smscore import transitions as tr
from smscore.model import Message
from smscore.store.rows import MSG_COLS, in_lists, row_to_message
from smscore.store.rules import answers, held_for_next, id_owner, name_id
from smscore.store.writer import Merged

SUBMIT, RECEIPT = "submit", "receipt"


class _Orphan:
    """A receipt held until the submit it answers is stored: one per SMSC id it names."""

    __slots__ = ("facts", "key", "received_at", "stored", "taken")

    def __init__(self, facts: ReceiptFacts, key: str, received_at: float, stored: bool) -> None:
        self.facts, self.key, self.received_at, self.stored, self.taken = facts, key, received_at, stored, False


class _Unit:
    """What one batch of submits and receipts read, and the changes it decided."""

    def __init__(self, messages: dict[str, list], smsc_ids: dict[tuple[str, str], list[tuple[float, str, int]]],
                 orphans: Iterable[_Orphan]) -> None:
        self.messages = messages  # message id -> [Message, part states]
        self.smsc_ids = smsc_ids  # (operator, key) -> [(given at, message id, part)], oldest first
        self.orphans: dict[tuple[str, str], list[_Orphan]] = {}
        self.same_receipt: dict[tuple[str, str], list[_Orphan]] = {}  # (operator, raw id) -> its orphans
        for orphan in orphans:
            self._add(orphan)
        self.touched: set[str] = set()
        self.changes: list[tuple[tr.Transition, list[str], str | None, float | None]] = []
        self.new_ids: list[tuple[str, str, str, int, float]] = []
        self.taken: set[tuple[str, str]] = set()  # stored orphans applied: (operator, raw id)

    def _add(self, orphan: _Orphan) -> None:
        operator = orphan.facts.operator
        self.orphans.setdefault((operator, orphan.key), []).append(orphan)
        self.same_receipt.setdefault((operator, orphan.facts.raw_id), []).append(orphan)

    def working(self, message_id: str) -> list | None:
        """``[message, parts]`` for the next change; a copy when an earlier change of the batch
        holds the current one."""
        entry = self.messages.get(message_id)
        if entry is None:
            return None
        if message_id in self.touched:
            entry[0], entry[1] = entry[0].copy(), list(entry[1])
        else:
            self.touched.add(message_id)
        return entry

    def named(self, operator: str, key: str, message_id: str, part: int, at: float) -> None:
        """A submit of the batch was given ``key`` at ``at``: beside the messages it named before
        (once a message, as the table's key says)."""
        name_id(self.smsc_ids.setdefault((operator, key), []), at, message_id, part)
        self.new_ids.append((operator, key, message_id, part, at))

    def owner(self, receipt: ReceiptFacts) -> tuple[str, int] | None:
        """(message id, part) of the message the receipt is about, by the first of its keys that
        names any (``policies.receipts`` when it names several); None when none does."""
        for key in receipt.keys:
            named = self.smsc_ids.get((receipt.operator, key))
            if named:
                return id_owner(receipt, named, self._message)
        return None

    def _message(self, message_id: str) -> Message | None:
        entry = self.messages.get(message_id)
        return None if entry is None else entry[0]

    def hold(self, receipt: ReceiptFacts, at: float) -> None:
        for key in receipt.keys:
            self._add(_Orphan(receipt, key, at, stored=False))

    def take(self, operator: str, key: str, submitted_at: float) -> list[ReceiptFacts]:
        """The orphans waiting for ``key`` that may answer a submit answered at ``submitted_at``
        (``rules.answers``), oldest first; each is gone with every id it named."""
        found = []
        for orphan in self.orphans.get((operator, key), ()):
            if orphan.taken or not answers(orphan.received_at, submitted_at):
                continue
            for same in self.same_receipt[(operator, orphan.facts.raw_id)]:
                same.taken = True
                if same.stored:
                    self.taken.add((operator, same.facts.raw_id))
            found.append(orphan.facts)
        return found

    def new_orphans(self) -> list[_Orphan]:
        return [o for group in self.orphans.values() for o in group if not o.stored and not o.taken]


class MessageChanges:
    """Mixed into SqlStore: ``record_submit`` and ``apply_receipt`` as merged operations."""

    def record_submit(self, message_id: str, operator: str, keys: Sequence[str], at: float,
                      owner: str | None = None, lease_until: float | None = None) -> Deferred:
        return self.run(Merged(self._changes, (SUBMIT, message_id, operator, tuple(keys), at, owner, lease_until)))

    def apply_receipt(self, receipt: ReceiptFacts, at: float, owner: str | None = None,
                      lease_until: float | None = None) -> Deferred:
        return self.run(Merged(self._changes, (RECEIPT, receipt, at, owner, lease_until)))

    def _changes(self, cur, items: list[tuple]) -> list:
        submits = [item for item in items if item[0] == SUBMIT]
        submitted = [(operator, key) for _, _, operator, keys, *_ in submits for key in keys]
        receipts = [item[1] for item in items if item[0] == RECEIPT]
        named = [(r.operator, key) for r in receipts for key in r.keys]
        self._lock(cur, *[f"smsc-id {operator} {key}" for operator, key in submitted + named])
        smsc_ids = self._smsc_ids(cur, named)
        orphans = self._orphans(cur, submitted)
        wanted = {item[1] for item in submits} | {message_id for found in smsc_ids.values() for _, message_id, _ in found}
        unit = _Unit(self._load_many(cur, wanted), smsc_ids, orphans)
        out = [self._submit_in(unit, *item[1:]) if item[0] == SUBMIT else self._receipt_in(unit, *item[1:])
               for item in items]
        self._save(cur, unit.changes)
        if unit.new_ids:  # once each (operator, key, message)
            self._many(cur, self._upsert_smsc_id(), list({row[:3]: row for row in unit.new_ids}.values()))
        if unit.taken:
            self._many(cur, "DELETE FROM orphan_receipts WHERE operator = ? AND raw_id = ?", sorted(unit.taken))
        held = unit.new_orphans()
        if held:
            # Ids are joined with the unit separator: no SMSC id contains it (any printable
            # character, comma included, may appear in an "as-is" id).
            self._many(cur, "INSERT INTO orphan_receipts (operator, key, raw_id, outcome, stat, err, keys, "
                            "received_at) VALUES (?,?,?,?,?,?,?,?)",
                       [(o.facts.operator, o.key, o.facts.raw_id, o.facts.outcome.value, o.facts.stat, o.facts.err,
                         "\x1f".join(o.facts.keys), o.received_at) for o in held])
        return out

    def _submit_in(self, unit: _Unit, message_id: str, operator: str, keys: tuple[str, ...], at: float,
                   owner: str | None, lease_until: float | None) -> list[tr.Transition]:
        """The SMSC of ``operator`` accepted every part (see Store.record_submit)."""
        entry = unit.working(message_id)
        if entry is None:
            return []
        if entry[0].status not in tr.SUBMITTABLE:
            # Cancelled (or sent by another node) while this submit was on its way: nothing
            # changes, but its SMSC ids are kept so that its receipts find the message (late
            # receipts) instead of waiting as orphans.
            for i, key in enumerate(keys):
                unit.named(operator, key, message_id, i, at)
            return []
        message = entry[0]
        # The link may send a different number of parts than counted at acceptance (Latin-1
        # sent as UCS-2 on an operator without Latin-1, or the reverse): track what was sent.
        message.parts = len(keys)
        unit_cost = self.cost_of(operator, message.to)
        t = tr.on_submitted(message, operator, entry[1], at, keys=keys,
                            cost=unit_cost * message.parts if unit_cost is not None else None)
        parts = entry[1] = [tr.PART_SUBMITTED] * message.parts
        unit.changes.append((t, parts, None, None))
        for i, key in enumerate(keys):
            unit.named(operator, key, message_id, i, at)
        out = [t]
        if unit.orphans:  # receipts that came before the submit was stored: any for its ids?
            for i, key in enumerate(keys):
                for orphan in unit.take(operator, key, at):
                    rt = tr.on_receipt(message, parts, i, operator, orphan, at, self.untried)
                    unit.changes.append((rt, list(parts), owner, lease_until))
                    out.append(rt)
        return out

    def _receipt_in(self, unit: _Unit, receipt: ReceiptFacts, at: float, owner: str | None,
                    lease_until: float | None) -> tr.Transition | None:
        """Correlate by (operator, key) and apply (see Store.apply_receipt)."""
        hit = unit.owner(receipt)
        if hit is None:
            unit.hold(receipt, at)
            return None
        message_id, part = hit
        entry = unit.working(message_id)
        if entry is None:
            return None
        message, parts = entry
        if part >= len(parts):
            return tr.Transition(message)
        t = tr.on_receipt(message, parts, part, receipt.operator, receipt, at, self.untried)
        if t.events or t.part_status:  # a change of status, or of a part
            unit.changes.append((t, list(parts), owner, lease_until))
        elif held_for_next(message, t, receipt.number):
            unit.hold(receipt, at)
        if t.requeue:
            entry[1] = [tr.PART_PENDING] * message.parts
        return t

    # -- reading what a batch needs ------------------------------------------------------------
    def _smsc_ids(self, cur, wanted: Sequence[tuple[str, str]]) -> dict[tuple[str, str], list[tuple[float, str, int]]]:
        """(operator, key) -> (given at, message id, part) of the messages it names, oldest first."""
        found: dict[tuple[str, str], list[tuple[float, str, int]]] = {}
        for operator, keys in _by_operator(wanted).items():
            for chunk in in_lists(keys):
                cur.execute(*self._keyed("smsc_ids", "key, message_id, part, at", operator, chunk))
                for key, message_id, part, at in cur.fetchall():
                    found.setdefault((operator, key), []).append((at, message_id, part))
        for named in found.values():
            if len(named) > 1:
                named.sort()
        return found

    def _orphans(self, cur, wanted: Sequence[tuple[str, str]]) -> list[_Orphan]:
        found = []
        for operator, keys in _by_operator(wanted).items():
            for chunk in in_lists(keys):
                cur.execute(*self._keyed("orphan_receipts", "key, raw_id, outcome, stat, err, keys, received_at",
                                         operator, chunk))
                for key, raw_id, outcome, stat, err, keys_text, received_at in cur.fetchall():
                    facts = ReceiptFacts(operator=operator, keys=tuple(keys_text.split("\x1f")),
                                         outcome=ReceiptOutcome(outcome), stat=stat, err=err, raw_id=raw_id)
                    found.append(_Orphan(facts, key, received_at, stored=True))
        found.sort(key=lambda o: o.received_at)
        return found

    def _load_many(self, cur, ids: Iterable[str]) -> dict[str, list]:
        """``{id: [Message, part states]}``, read (and on PostgreSQL locked) in id order."""
        return {row[0]: [row_to_message(row), list(row[-1])]
                for row in self._rows_by_key(cur, "messages", MSG_COLS, "id", ids, lock=True)}


def _by_operator(pairs: Sequence[tuple[str, str]]) -> dict[str, list[str]]:
    """The keys of ``pairs`` by operator, in order. A batch names a few operators and many keys:
    a pass per operator, not two calls per key."""
    return {operator: [k for o, k in pairs if o == operator] for operator in dict.fromkeys([o for o, _ in pairs])}


