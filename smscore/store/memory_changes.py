"""The in-memory store's submits and receipts (``MemoryStore``'s part that ``changes.py`` is of the
SQL stores): one at a time, by the same rules (``smscore.transitions``, ``store.rules``,
``policies.receipts``), so that the store contract holds the three stores to one behaviour."""

from __future__ import annotations

from collections.abc import Sequence

from twisted.internet.defer import Deferred, succeed

from connectors.api import ReceiptFacts
from smscore import transitions as tr
from smscore.store.rules import answers, held_for_next, id_owner, name_id


class MemoryChanges:
    """Mixed into MemoryStore: ``record_submit``, ``record_submit_failed`` and ``apply_receipt``."""

    def record_submit(self, message_id: str, operator: str, keys: Sequence[str], at: float,
                      owner: str | None = None, lease_until: float | None = None) -> Deferred:
        stored = self.messages.get(message_id)
        if stored is None:
            return succeed([])
        if stored.status not in tr.SUBMITTABLE:  # see SqlStore._submit_in: its receipts still find it
            for i, key in enumerate(keys):
                self._named(operator, key, message_id, i, at)
            return succeed([])
        message = self._snapshot(stored)
        message.parts = len(keys)  # what the link sent (see SqlStore.record_submit)
        parts = [tr.PART_SUBMITTED] * message.parts
        self.parts[message_id] = parts
        unit = self.cost_of(operator, message.to)
        t = tr.on_submitted(message, operator, parts, at, keys=keys,
                            cost=unit * message.parts if unit is not None else None)
        self._apply(t)
        for i, key in enumerate(keys):
            self._named(operator, key, message_id, i, at)
        out = [t]
        for i, key in enumerate(keys):
            matched = [o for o in self.orphans if o.operator == operator and key in o.keys
                       and answers(self.orphan_at[id(o)], at)]
            for orphan in matched:
                self.orphans.remove(orphan)
                rt = tr.on_receipt(message, parts, i, operator, orphan, at, self.untried)
                self._apply(rt, owner, lease_until)
                out.append(rt)
        return succeed(out)

    def _named(self, operator: str, key: str, message_id: str, part: int, at: float) -> None:
        """The SMSC gave ``key`` to this part at ``at``: beside the messages it named before (as
        SqlStore's unit does)."""
        name_id(self.smsc_ids.setdefault((operator, key), []), at, message_id, part)

    def record_submit_failed(self, message_id: str, operator: str, detail: str, at: float) -> Deferred:
        stored = self.messages.get(message_id)
        if stored is None:
            return succeed(None)
        t = tr.on_submit_failed(self._snapshot(stored), operator, detail, at, self.untried)
        self._apply(t, *self.leases[message_id])
        return succeed(t)

    def apply_receipt(self, receipt: ReceiptFacts, at: float, owner: str | None = None,
                      lease_until: float | None = None) -> Deferred:
        hit = None
        for key in receipt.keys:
            named = self.smsc_ids.get((receipt.operator, key))
            if named:
                hit = id_owner(receipt, named, self.messages.get)
                break
        if hit is None:
            self.orphans.append(receipt)
            self.orphan_at[id(receipt)] = at
            return succeed(None)
        message_id, part = hit
        message = self._snapshot(self.messages[message_id])
        parts = self.parts[message_id]
        t = tr.on_receipt(message, parts, part, receipt.operator, receipt, at, self.untried)
        self._apply(t, owner, lease_until)
        if held_for_next(message, t, receipt.number):  # see SqlStore._receipt_in
            self.orphans.append(receipt)
            self.orphan_at[id(receipt)] = at
        return succeed(t)

