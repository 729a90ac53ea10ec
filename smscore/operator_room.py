"""How much of a node's memory one operator takes, part of the pipeline.

Why a module of its own: a node holds at most ``max_in_memory`` messages, and a message waits in
its operator's queue until the link takes it. An operator that cannot keep up (its SMSC down, or
slower than what comes for it) filled the node's memory with its messages, and the node claimed
nothing more for any operator. Here an operator that holds all but the room kept for the others
(``policies.claims.queue_full``) is *full*: claims and acceptance leave in the store the messages
of the profiles none of whose operators has room (``policies.routing.blocked_profiles``), claiming
whenever memory has any room meanwhile, and what comes for it all the same is parked for it
(``Pipeline.enqueue``). Once it has room again the claims start again from the first id. And
when an operator loses its last bind, what waits for it moves to another operator (``_reroute``).
"""

from __future__ import annotations

from collections.abc import Sequence

from policies.claims import queue_full, waits_in_store
from policies.routing import blocked_profiles
from smscore.model import Message


class OperatorRoom:
    """Mixed into ``Pipeline``: its links, queues, ``inflight``, routing, clock, ``held``, ``most``,
    ``held_elsewhere``, ``full``, ``claims``, ``log``, ``work_stored``, ``pump`` and ``_park``."""

    def _skipped(self) -> frozenset[str]:
        """The operators whose parked messages claims pass by: those only other nodes hold, and
        those whose queue here is full."""
        elsewhere = self.held_elsewhere()
        return elsewhere | self.full if self.full else elsewhere

    def _blocked_profiles(self) -> frozenset[str]:
        """The profiles none of whose operators here has room in its queue: claims leave their
        messages in the store. (An operator with no bind up takes messages until its queue is
        full, so that a short outage costs nothing: they wait in memory, expire there when their
        validity ends, and go the moment it binds.)"""
        if not self.full:
            return frozenset()
        room = (self.links.keys() - self.full) | self.held_elsewhere()
        return blocked_profiles(self.routing.profiles, self.links.keys(), room)

    def _blocked(self, messages: Sequence[Message]) -> bool:
        """Whether one of ``messages`` is of a profile whose operators cannot take it here now: left
        in the store for the claims, as they leave it (``_blocked_profiles``)."""
        if not self.full:
            return False
        blocked = self._blocked_profiles()
        return any(m.profile in blocked for m in messages)

    def _waits_in_store(self, operator: str) -> bool:
        """Whether a message for ``operator`` is parked for it instead of queued (a claim's batch
        past where it is full: policies.claims.waits_in_store)."""
        return waits_in_store(self._holds_for(operator), self.most(), len(self.links) > 1, self.claims.batch)

    def _holds_for(self, operator: str) -> int:
        """The messages this node holds for ``operator``: queued, and submitted without an answer."""
        return len(self.queues[operator]) + self.inflight[operator]

    def _queue_changed(self, operator: str) -> None:
        """Note whether ``operator``'s queue is full (policies.claims.queue_full); once it has room
        again, what waits in the store is claimed, from the first id (Claims: skip changed)."""
        was = operator in self.full
        if queue_full(self._holds_for(operator), self.most(), len(self.links) > 1, was) == was:
            return
        link = self.links.get(operator)
        if was:
            self.full.discard(operator)
            self.log.info("operator has room again: its messages are claimed", operator=operator)
            self.work_stored()
        else:
            self.full.add(operator)
            self.log.warning("operator cannot keep up: its messages wait in the store", operator=operator,
                             held_here=self._holds_for(operator), bound=link is not None and link.is_up())

    def _claims_now(self) -> bool:
        """Whether a claim is worth it now: memory half empty, or, while an operator is full
        (``self.full``: the others have only the room it leaves), any room at all."""
        return self.held < self.most() // 2 or bool(self.full) and self.held < self.most()

    def _reroute(self, operator: str) -> None:
        """The operator lost its last bind: what waits for it moves to another operator of each
        message's profile that is up; with none up, it keeps waiting where it is (no spinning)."""
        waiting = self.queues.drain(operator)
        if not waiting:
            return
        targets = set()
        elsewhere = self.held_elsewhere()
        for m in waiting:
            target = self.routing.route(m, self.links, elsewhere, self.clock.seconds()) or operator
            if target in elsewhere or self._waits_in_store(target):
                self._park(m, target)
                continue
            self.queues.add(target, m)
            targets.add(target)
        for name in targets | {operator}:
            self._queue_changed(name)
        moved = sum(1 for name in targets if name != operator)
        if moved:
            self.log.info("operator down: queued messages moved", operator=operator, messages=len(waiting))
        for name in targets - {operator}:
            self.pump(name)
