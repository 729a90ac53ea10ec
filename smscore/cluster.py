"""This node among the others on one store: a heartbeat, and this node's share of the limits.

Limits are the carrier's and the customer's (SPEC §10): an operator's ``binds`` and ``tps`` and an
account's ``tps`` hold for the whole cluster. Every node writes a heartbeat to the store every
third of its lease and reads back the nodes seen within one lease; from that list and the config,
``policies.cluster.shares`` gives the same split on every node, and each takes its own part. A
node that stops says so (``leave``), so the others take its part at their next heartbeat; a node
that dies is dropped one lease after its last heartbeat, as its leases on messages run out.

A failed heartbeat (the store is away) keeps the last shares: a node never opens more binds
because it could not see the others.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall

from policies.cluster import Shares, shares
from smscore.logs import get_logger


class Cluster:
    """Heartbeats through ``store`` as ``node`` and keeps this node's ``Shares`` current;
    ``on_change(shares)`` runs when they change (not for the first)."""

    def __init__(self, *, store, clock, node: str, ttl: float,
                 operators: Callable[[], Mapping[str, tuple[int, float]]],
                 on_change: Callable[[Shares], object]) -> None:
        self.store = store
        self.clock = clock
        self.node = node
        self.ttl = ttl
        self.operators = operators
        self.on_change = on_change
        self.nodes: list[str] = [node]
        self.shares: Shares = shares(self.nodes, node, operators())
        self._loop: LoopingCall | None = None
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

    def refresh(self) -> Shares:
        """The shares again, for the config as it is now (after a reload); no ``on_change``."""
        self.shares = shares(self.nodes, self.node, self.operators())
        return self.shares

    def stop(self) -> Deferred:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        d = self.store.leave(self.node)
        d.addErrback(lambda f: self.log.warning("could not leave the cluster", error=f.getErrorMessage()))
        return d

    def _seen(self, nodes: list[str], notify: bool) -> None:
        before = self.shares
        if nodes != self.nodes:
            self.log.info("live nodes", nodes=nodes, before=self.nodes)
        self.nodes = nodes
        self.shares = shares(nodes, self.node, self.operators())
        if notify and self.shares != before:
            self.on_change(self.shares)

    def _failed(self, failure) -> None:
        self.log.error("heartbeat failed: keeping the last shares", error=failure.getErrorMessage())
        return None

