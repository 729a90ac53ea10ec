"""How stored work reaches a node's memory: claims in batches while there is room, leases renewed,
and a restarted node taking its own work back at once (the pipeline's intake, SPEC §10).

Why a module of its own: the pipeline sends what it holds in memory; how work gets there is a loop
with timers of its own. A claim first releases the scheduled messages that are due (at most once
an ``interval``: a look-up before every claim was a statement and a transaction more for each), then
asks the store for queued ones, starting where the sweep of ``policies.claims`` says (so that the
claims do not walk past what this node holds already: an announcement names the first id it
stored), passing by the operators whose binds only other nodes hold. A claim that comes back full
claims again at once, until the room or the work ends.

When memory has room again (a submit's outcome stored), a claim is made only if the last one did
not find the end of the stored work: stored work that appears after that is announced (``nudged``:
an API worker stored messages, a paused account resumed) or found by the claim every
``interval``. Claiming at every outcome instead walked the messages this node holds at each one,
to find nothing: on SQLite 2-4 ms of the main worker's turn every 25-35 ms in a lists run, with
10,000 held (docs/benchmarks.md, twenty-first session).
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import LoopingCall

from policies.claims import Sweep, after_claim, announced, next_claim
from smscore.model import Message


def give_back_earlier(released: Deferred, log, what: str) -> Deferred:
    """Log what the store's ``release_push_jobs`` for a node's earlier processes gave back (SPEC
    §15: a restarted node takes its leases back at once), ``what`` naming the jobs; a failed give-back
    is logged too: those jobs wait for their leases instead. Fires with None either way. Shared by
    the push worker and the SMPP server's deliveries, which each give back their own kind at start."""
    def taken_back(n: int) -> None:
        if n:
            log.info(f"{what} held before the restart given back", jobs=n)

    return released.addCallbacks(taken_back, lambda f: log.error(f"giving back the node's earlier {what} failed",
                                                                   error=f.getErrorMessage()))


#: Seconds at most between two lease renewals while other live nodes share the store: how long a
#: node may still submit a message paused or cancelled through another node (docs/postgresql.md).
CHANGED_ELSEWHERE = 2.0

#: Seconds, past a renewal and a claim interval, that a node whose store came back leaves the
#: leases that ran out while it was out of reach to their holders (``Claims._ended_before``).
AFTER_AN_OUTAGE = 1.0


class Claims:
    """This node's claims of stored messages and its lease on them.

    ``room()``: how many more messages memory may hold; ``take(messages)``: a batch claimed, now
    this node's; ``holding()``: the ids this node holds in memory, not yet submitted;
    ``lost(ids)``: those of them the store says are no longer this node's (changed through another
    node or process: paused, cancelled), found at each lease renewal; ``others_alive()``: whether
    other live nodes share the store (only then is ``holding()`` asked about, see ``renewal``);
    ``skip()``: the operators whose messages are left for other nodes; ``before()``: called before
    each claim (the parked messages tried again); ``released(n)``: ``n`` scheduled messages became
    queued; ``log_failure(failure, what)``: a store call that failed; ``back()``: the store answers
    again after claims or renewals failed (what waits for it may try at once)."""

    def __init__(self, *, store, clock, node: str, lease: float, batch: int, interval: float,
                 room: Callable[[], int], take: Callable[[list[Message]], None],
                 holding: Callable[[], Collection[str]], lost: Callable[[list[str]], object],
                 others_alive: Callable[[], bool] = lambda: True,
                 skip: Callable[[], frozenset[str]],
                 skip_profiles: Callable[[], frozenset[str]] = frozenset,
                 before: Callable[[], object], released: Callable[[int], object],
                 log_failure: Callable[..., object], back: Callable[[], object] = lambda: None) -> None:
        self.store = store
        self.clock = clock
        self.node = node
        self.lease = lease
        self.batch = batch
        self.interval = interval
        self.room = room
        self.take = take
        self.holding = holding
        self.lost = lost
        self.others_alive = others_alive
        self._renewed_at = float("-inf")
        self.skip = skip
        self.skip_profiles = skip_profiles
        self.before = before
        self.released = released
        self.log_failure = log_failure
        self.back = back
        #: a claim is under way: ``more`` would only return (a plain attribute: the pipeline asks
        #: after every submit response)
        self.busy = False
        #: the last claim found the end of the stored work, and nothing announced more since
        self.found_the_end = False
        self._nudges = 0  # how many times stored work was announced (``nudged``)
        self._sweep = Sweep()  # where the next claim starts (policies.claims)
        #: what was announced since the last claim began (policies.claims.announced; None: nothing)
        self._stored_from: str | None = None
        self._skipped: tuple[list[str], list[str]] | None = None  # the operators and profiles the last claim passed by
        self._release_at = float("-inf")  # when scheduled messages that are due are released next
        # An earlier process of this node leased its messages until before now + lease; this one's
        # leases all end later. So its claims take those back at once (``own_before``), and its
        # renewals leave them alone (``since``): what it does not take back runs out within a
        # lease. No statement gives them back first: that look-up by owner read every queued
        # message on PostgreSQL, which keeps no index on owner (schema.py, version 13).
        self._own_before = clock.seconds() + lease
        self._running = False
        self._loops: list[LoopingCall] = []
        # the store out of reach (a PostgreSQL restart, a failover): see _ended_before
        self._answered_at = float("-inf")  # the last claim or renewal the store answered
        self._out_since: float | None = None  # the first that failed since, while none answered
        self._fence = float("-inf")  # _answered_at when the store went out of reach
        self._back_at: float | None = None  # when it answered again

    def start(self) -> Deferred:
        """Renew the lease every ``renewal`` seconds; claim at once, this node's own leases from
        before (a restart) included; then claim every ``interval``."""
        self._running = True
        renew = LoopingCall(self._renew)
        renew.clock = self.clock
        claim = LoopingCall(self.more)
        claim.clock = self.clock
        self._loops = [renew, claim]
        renew.start(self.renewal, now=False)
        d = self.more()

        def keep_claiming(_):
            if self._running:
                claim.start(self.interval, now=False)  # its Deferred fires when stopped

        d.addCallback(keep_claiming)
        return d

    def stop(self) -> None:
        self._running = False
        for loop in self._loops:
            if loop.running:
                loop.stop()

    @property
    def renewal(self) -> float:
        """How often the lease may be renewed: every third of it, and with other live nodes at
        least every ``CHANGED_ELSEWHERE`` seconds, because a renewal is also when this node learns
        that ops or a customer changed a message it holds through another node (``lost``): until
        then it may still submit it. Alone, every change comes through this process (the API
        workers hand pauses and cancels to it), and a renewal is every third of the lease."""
        return min(self.lease / 3, CHANGED_ELSEWHERE)

    def _renew(self, now_anyway: bool = False) -> Deferred | None:
        now = self.clock.seconds()
        others = self.others_alive()
        if not others and not now_anyway and now < self._renewed_at + self.lease / 3 - self.renewal / 2:
            return None  # alone: no change can come from elsewhere, the lease is not due
        self._renewed_at = now
        # what is held is asked about only when another node could have changed it: the store
        # then reads back every lease it renews, which alone it has no reason to
        d = self.store.renew(self.node, now + self.lease, list(self.holding()) if others else (),
                             since=self._own_before)

        def renewed(gone: list[str]) -> None:
            self._answered()
            if gone:
                self.lost(gone)

        def failed(failure) -> None:
            self._out_of_reach()
            self.log_failure(failure, "lease renewal failed")

        d.addCallbacks(renewed, failed)
        return d

    # -- the store out of reach ---------------------------------------------------------------
    # Every node's leases run out while the store cannot be reached: none can renew. When it
    # answers again, the first node to claim would take the messages of nodes that are alive and
    # holding them, some of them sent already, their outcome waiting to be stored: sent twice, the
    # first attempt missing from their history. So a lease that ran out while this node could not
    # reach the store is left to its holder for a renewal and a claim interval after the store
    # answers again (the holder renews at once then); one that ran out before is a dead holder's.
    def _out_of_reach(self) -> None:
        if self._out_since is None:
            self._out_since = self.clock.seconds()
            self._fence = self._answered_at

    def _answered(self) -> None:
        self._answered_at = now = self.clock.seconds()
        if self._out_since is not None:
            self._out_since, self._back_at = None, now
            if self._running:
                self._renew(now_anyway=True)  # this node's leases, before another node takes them
                self.back()

    def _ended_before(self, now: float) -> float | None:
        """The time before which a lease must have ended for a claim to take it (None: now)."""
        if self._out_since is not None:
            return self._fence
        if self._back_at is not None and now < self._back_at + self.renewal + self.interval + AFTER_AN_OUTAGE:
            return self._fence
        return None

    def nudged(self, first_id: str = "") -> None:
        """Stored work may be waiting for this node (an API worker stored messages, ``first_id`` the
        lowest of their ids; an account was resumed, ""): the next claim goes ahead, and a claim
        under way claims again once it ends, since what was announced may have been committed after
        it looked."""
        self._nudges += 1
        self.found_the_end = False
        self._stored_from = announced(self._stored_from, first_id)

    def room_opened(self) -> Deferred:
        """Memory has room again: claim, unless the last claim found the end of the stored work
        and nothing was announced since (the claim every ``interval`` looks anyway)."""
        if self.found_the_end:
            return succeed(None)
        return self.more()

    def more(self) -> Deferred:
        """Claim stored work while there is room in memory (runs until the room or the work ends)."""
        if self.busy or not self._running:
            return succeed(None)
        room = self.room()
        if room <= 0:
            return succeed(None)
        self.busy = True
        nudges = self._nudges
        self.before()
        now = self.clock.seconds()
        skip, profiles = sorted(self.skip()), sorted(self.skip_profiles())
        stored_from, self._stored_from = self._stored_from, None
        if (skip, profiles) != self._skipped:  # parked messages, or a profile's, that it takes now: any id
            stored_from, self._skipped = "", (skip, profiles)
        sweep = self._sweep = next_claim(self._sweep, now, self.lease, self.interval, stored_from)
        asked = min(room, self.batch)
        if now >= self._release_at:
            self._release_at = now + self.interval
            d = self.store.release_due(now, self.batch)
        else:
            d = succeed(0)

        def released(n):
            nonlocal sweep
            if n:
                self.released(n)
                sweep = self._sweep = Sweep("", now)  # queued now, with ids of any age
            return self.store.claim(self.node, now, now + self.lease, asked,
                                    own_before=self._own_before if now < self._own_before else None,
                                    skip=skip, after=sweep.after, ended_before=self._ended_before(now),
                                    skip_profiles=profiles)

        d.addCallback(released)

        def claimed(messages: list[Message]):
            self.busy = False
            self._answered()
            if messages:
                self.take(messages)
            self._sweep, again = after_claim(sweep, [m.id for m in messages], asked, now, self.interval)
            again = again or self._nudges != nudges  # announced while this claim looked: look again
            self.found_the_end = not again
            if again and self._running:
                return self.more()
            return None

        def failed(failure):
            self.busy = False
            self._sweep = Sweep()  # what was announced to it is not known to be claimed: from the first id
            self._release_at = float("-inf")
            self._out_of_reach()
            self.log_failure(failure, "claim failed")

        d.addCallbacks(claimed, failed)
        return d
