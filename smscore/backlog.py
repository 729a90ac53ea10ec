"""The cluster's backlog against ``[gateway] max_backlog`` (SPEC §15 load shedding).

Why: a gateway that accepts whatever it is sent, faster than its operators take it, grows a backlog
without bound (the issue measured 60,000 in a minute, and a day of that is millions of rows every
claim has to walk past). Past ``max_backlog`` queued messages, new requests are refused whole with
503 (SMPP: ESME_RMSGQFUL) until the backlog drains, so the customer's own queue holds them.

Theory of operation
-------------------
- Every process that accepts messages keeps one ``Backlog``: the store's count of ``queued``
  messages of every node (``Store.count_queued``, one indexed read), refreshed every ``interval``
  seconds, plus the queued messages this process accepted since that read began. The count walks
  the index, so a big backlog makes it slow (about 15 ms per 100,000 queued on PostgreSQL here):
  a read that took ``t`` is followed by the next at most every ``READ_SHARE_INVERSE`` × ``t``, so
  counting never takes more than a twentieth of the store's time, whatever the backlog.
- ``check(messages)`` refuses (``Backlogged``) when the request's queued messages would take that
  figure past the limit (``policies.admission.over_backlog``); ``accepted(messages)`` counts what
  was stored. A paused account's messages wait ``paused`` and do not count (SPEC §15): which
  accounts are paused is read with the count while the backlog is at its limit (the only time it
  matters; a pause is seen within a read). Several processes and nodes may each admit up to one
  interval's traffic past the limit at once: the bound is a soft one by design, not a lock around
  every accept.
- While the store cannot be read the last figure stays (accepting does not depend on this read).
- ``shedding`` is what ``/readyz`` reports; reads and status updates go on as usual.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from policies.admission import over_backlog
from smscore.logs import get_logger
from smscore.model import Message, Status
from smscore.store.rules import day_of

__all__ = ["Backlog", "Backlogged"]

#: A count that took t seconds is read again at the earliest READ_SHARE_INVERSE × t after it began.
READ_SHARE_INVERSE = 20.0


class Backlogged(Exception):
    """The request would take the cluster's backlog past ``max_backlog``: nothing was stored."""

    def __init__(self, queued: int, limit: int, retry_after: int) -> None:
        super().__init__(f"{queued} messages are queued (max_backlog {limit})")
        self.queued, self.limit, self.retry_after = queued, limit, retry_after


class Backlog:
    """One process's view of the cluster's queued messages (see the module's theory)."""

    def __init__(self, *, store, clock, limit: Callable[[], int], interval: float = 1.0) -> None:
        self.store = store
        self.clock = clock
        self.limit = limit  # () -> max_backlog: read at each check, so a reload applies at once
        self.interval = interval
        self.queued = 0  # the store's figure at the last read
        self.added = 0  # queued messages this process accepted since that read began
        self.paused: frozenset[str] = frozenset()  # accounts paused at the last read while shedding
        self._running = False
        self._next = None  # the next read's call
        self.log = get_logger(component="backlog")

    def start(self) -> None:
        self._running = True
        self._refresh()

    def stop(self) -> None:
        self._running = False
        if self._next is not None and self._next.active():
            self._next.cancel()
        self._next = None

    def _refresh(self):
        self._next = None
        since, began = self.added, self.clock.seconds()

        def read(n: int):
            self.queued, self.added = n, self.added - since
            if self.shedding:
                d = self.store.account_states(day_of(began))
                return d.addCallbacks(self._paused_now, failed)  # the last set stays
            self.paused = frozenset()
            return None

        def failed(failure) -> None:
            self.log.warning("backlog not read", error=failure.getErrorMessage())

        def again(_) -> None:
            if self._running:
                now = self.clock.seconds()
                period = max(self.interval, READ_SHARE_INVERSE * (now - began))
                self._next = self.clock.callLater(max(0.0, began + period - now), self._refresh)

        d = self.store.count_queued()
        d.addCallbacks(read, failed)
        d.addCallback(again)
        return d

    def _paused_now(self, states) -> None:
        self.paused = frozenset(name for name, state in states.items() if state.paused)

    @property
    def shedding(self) -> bool:
        return self.queued + self.added >= self.limit()

    def check(self, messages: Sequence[Message]) -> None:
        """Raise ``Backlogged`` when ``messages`` may not be accepted now."""
        incoming = _queued(messages, self.paused)
        limit = self.limit()
        if over_backlog(self.queued + self.added, incoming, limit):
            raise Backlogged(self.queued + self.added, limit, retry_after=max(1, round(self.interval)))

    def accepted(self, messages: Sequence[Message]) -> None:
        self.added += _queued(messages)


def _queued(messages: Sequence[Message], paused: frozenset[str] = frozenset()) -> int:
    """How many of ``messages`` are (or, for a paused account's, would be) queued: a plain loop, as
    every request and submit_sm asks it twice (``sum`` over a generator was three calls more, and
    one more a message)."""
    queued = 0
    for m in messages:
        if m.status is Status.QUEUED and m.account not in paused:
            queued += 1
    return queued
