"""The admin look-ups of SPEC §14 in the memory store: the same answers as ``SqlLookups``, by
scanning the dicts (unit tests hold a few messages). Mixed into ``MemoryStore``; the types are in
``smscore.store.lookups``."""

from __future__ import annotations

import copy

from twisted.internet.defer import Deferred, succeed

from smscore.store.lookups import (AccountState, ConsentEntry, MessageQuery, MoQuery, NumberFacts, StopEntry, matches,
                                   mo_matches)


class MemoryLookups:
    """Mixed into MemoryStore (before Store in the bases). ``list_added`` holds when and why each
    stop-list and consent entry was made: {(table, account, number): (at, source)}."""

    def find_messages(self, query: MessageQuery, before: str | None, limit: int, events: bool = False) -> Deferred:
        ids = sorted((mid for mid, m in self.messages.items()
                      if (before is None or mid < before) and matches(m, query)), reverse=True)[:limit]
        return succeed([copy.deepcopy(self.messages[mid]) if events else self._snapshot(self.messages[mid])
                        for mid in ids])

    def find_mo(self, query: MoQuery, before: str | None, limit: int) -> Deferred:
        found = sorted((mo for mo in self.mo.values() if (before is None or mo.id < before) and mo_matches(mo, query)),
                       key=lambda mo: mo.id, reverse=True)[:limit]
        out = []
        for mo in found:
            mo = copy.copy(mo)
            mo.events, mo.routing = [], None
            out.append(mo)
        return succeed(out)

    def _stop_entry(self, account: str, number: str) -> StopEntry:
        at, source = self.list_added.get(("stoplist", account, number), (None, ""))
        return StopEntry(account, number, at, source)

    def number_facts(self, number: str) -> Deferred:
        stop = tuple(self._stop_entry(a, n) for a, n in sorted(self.stoplist) if n == number)
        consents = tuple((a, self.list_added.get(("consent", a, n), (None, ""))[0])
                         for a, n in sorted(self.consent) if n == number)
        return succeed(NumberFacts(self.learned.get(number), stop, consents, tuple(self._block_rows(number).values())))

    def stoplist_entries(self, *, number: str | None = None, account: str | None = None,
                         after: tuple[str, str] | None = None, limit: int = 100) -> Deferred:
        keys = [(a, n) for a, n in sorted(self.stoplist)
                if (number is None or n == number) and (account is None or a == account)
                and (after is None or (a, n) > after)]
        return succeed([self._stop_entry(a, n) for a, n in keys[:limit]])

    def consent_entries(self, *, number: str | None = None, account: str | None = None,
                        after: tuple[str, str] | None = None, limit: int = 100) -> Deferred:
        keys = [(a, n) for a, n in sorted(self.consent)
                if (number is None or n == number) and (account is None or a == account)
                and (after is None or (a, n) > after)]
        return succeed([ConsentEntry(a, n, self.list_added.get(("consent", a, n), (None, ""))[0])
                        for a, n in keys[:limit]])

    def account_states(self, day: str) -> Deferred:
        return succeed({name: AccountState(balance, bool(paused), self.daily.get((name, day), 0))
                        for name, (balance, paused) in sorted(self.accounts.items())})
