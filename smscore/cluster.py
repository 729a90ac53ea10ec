"""This node among the others on one store: a heartbeat, and this node's share of the limits.

Limits are the carrier's and the customer's (SPEC §10): an operator's ``binds`` and ``tps`` and an
account's ``tps`` hold for the whole cluster. Every node writes a heartbeat to the store every
third of its lease and reads back the nodes seen within one lease; from that list and the config,
``policies.cluster.shares`` gives the same split on every node, and each takes its own part. A
node that stops says so (``leave``), so the others see it at their next heartbeat; a node that
dies is dropped one lease after its last heartbeat, as its leases on messages run out.

A change of the live nodes reaches every node at its own next heartbeat, so ``policies.cluster.
hold`` decides what this node holds meanwhile: less at once, more only ``settle_after(ttl)``
after it first saw the view that gives it more (a timer here applies it then, between
heartbeats); a node that joins holds nothing until then, unless its first heartbeat finds it
alone, or it restarted within its lease into a steady cluster (``policies.cluster.steady``: the
others kept its part free). A node that stops is recorded as last heard from a lease ago. So the
cluster never holds more than an operator's binds or tps or an account's tps while nodes come and
go, as long as every node's heartbeat keeps to its schedule within half a period.

A failed heartbeat (the store is away) keeps the last shares, and takes no more meanwhile: a node
never opens more binds because it could not see the others. Before its first heartbeat a node
holds nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall

from policies.cluster import Held, Seen, Shares, hold, hold_limit, live, settle_after, shares, steady
from smscore.logs import get_logger


class Cluster:
    """Heartbeats through ``store`` as ``node`` and keeps this node's ``Shares`` current;
    ``on_change(shares)`` runs when they change (not for the first)."""

    def __init__(self, *, store, clock, node: str, ttl: float,
                 operators: Callable[[], Mapping[str, tuple[int, float]]],
                 on_change: Callable[[Shares], object],
                 windows: Callable[[], Mapping[str, int]] = dict) -> None:
        self.store = store
        self.clock = clock
        self.node = node
        self.ttl = ttl
        self.operators = operators
        self.on_change = on_change
        self.windows = windows  # each operator's window per bind, for hold_limit
        self._hold_for: tuple = (None, None)  # (shares, their hold limit)
        self.settle = settle_after(ttl)
        self.nodes: list[str] = [node]
        self.held: Held | None = None  # None until the first heartbeat answered
        self.shares: Shares = shares(self.nodes, node, operators()).nothing()
        self._loop: LoopingCall | None = None
        self._grow = None  # the timer that applies a settled increase between heartbeats
        self.log = get_logger(component="cluster", node=node)

    def start(self) -> Deferred:
        """The first heartbeat (fires once this node's shares are known), then one every ttl/3."""
        d = self.beat(notify=False)

        def loop(_):
            self._loop = LoopingCall(self.beat)
            self._loop.clock = self.clock
            self._loop.start(self.ttl / 3, now=False)

        d.addCallback(loop)
        return d

    def beat(self, notify: bool = True) -> Deferred:
        d = self.store.heartbeat(self.node, self.clock.seconds(), self.ttl)
        d.addCallbacks(self._seen, self._failed, callbackArgs=(notify,))
        return d

    def hold_limit(self) -> int | None:
        """How many messages this node holds in memory now (``policies.cluster.hold_limit``). Asked
        at every acceptance and freed window slot: worked out again only when the shares changed
        (a reload that changes a window builds new shares too, ``refresh``)."""
        if self._hold_for[0] is not self.shares:
            self._hold_for = (self.shares, hold_limit(self.shares, self.windows()))
        return self._hold_for[1]

    def refresh(self) -> Shares:
        """The shares again, for the config as it is now (after a reload); no ``on_change``."""
        if self.held is not None:
            self._hold(self.nodes)
        return self.shares

    def stop(self) -> Deferred:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._cancel_growth()
        # last heard from a lease ago: no node counts it from now on, and a node restarting
        # meanwhile sees that one left (policies.cluster, "Restarts")
        d = self.store.leave(self.node, self.clock.seconds() - self.ttl)
        d.addErrback(lambda f: self.log.warning("could not leave the cluster", error=f.getErrorMessage()))
        return d

    def _seen(self, seen: list[Seen], notify: bool) -> None:
        before = self.shares
        now = self.clock.seconds()
        nodes = live(seen, now, self.ttl)
        if nodes != self.nodes:
            self.log.info("live nodes", nodes=nodes, before=self.nodes)
        self.nodes = nodes
        # the first heartbeat of a node restarted into a steady cluster: its part is free
        restarted = self.held is None and steady(seen, now, self.ttl, self.settle)
        self._hold(nodes, restarted)
        if restarted and len(nodes) > 1:
            self.log.info("restarted into a steady cluster: taking this node's share at once", nodes=nodes)
        if notify and self.shares != before:
            self.on_change(self.shares)

    def _hold(self, nodes: list[str], restarted: bool = False) -> None:
        """What this node holds now (``policies.cluster.hold``), and the timer for when it may
        hold more."""
        self.held = hold(self.held, nodes, self.node, self.operators(), self.clock.seconds(), self.settle,
                         restarted)
        self.shares = self.held.shares
        self._cancel_growth()
        at = self.held.grows_at(self.settle)
        if at is not None:
            self._grow = self.clock.callLater(max(0.0, at - self.clock.seconds()), self._settled)

    def _settled(self) -> None:
        """The view has been seen long enough: every other node has seen it too; take the rest."""
        self._grow = None
        before = self.shares
        self._hold(self.nodes)
        if self.shares != before:
            self.log.info("cluster share settled", nodes=self.nodes)
            self.on_change(self.shares)

    def _cancel_growth(self) -> None:
        if self._grow is not None:
            if self._grow.active():
                self._grow.cancel()
            self._grow = None

    def _failed(self, failure) -> None:
        self.log.error("heartbeat failed: keeping the last shares", error=failure.getErrorMessage())
        self._cancel_growth()  # no more while the others cannot be seen; the next heartbeat decides
        return None

