"""Limits of the whole cluster, split over its live nodes (SPEC §10): pure decisions.

An operator's ``binds`` and ``tps`` and an account's ``tps`` are the carrier's and the customer's
contracts, not a node's: two nodes that each opened every bind would hold twice the sessions the
carrier allows. So every live node computes, from the same facts (the live nodes' names, known
through the store, and the config), the same split, and takes its own part of it:

- binds as evenly as the count allows: each node gets ``binds // n``, and the ``binds % n`` left
  over go to consecutive nodes in name order, starting at a place that depends on the operator's
  name, so that several one-bind operators do not all land on the same node;
- an operator's tps in proportion to the binds a node holds (a node without a bind sends nothing);
- an account's tps in equal parts, one per live node (any node may receive its requests).

A node holding no bind of an operator leaves the messages routed to that operator in the store for
the nodes that do (``held_elsewhere``).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass


def live_order(nodes: Iterable[str], me: str) -> list[str]:
    """The live nodes in the one order every node uses; ``me`` counts even before its first
    heartbeat is visible."""
    return sorted(set(nodes) | {me})


def bind_share(binds: int, nodes: Sequence[str], me: str, operator: str) -> int:
    """How many of ``operator``'s ``binds`` node ``me`` opens, ``nodes`` being the live ones."""
    order = live_order(nodes, me)
    n = len(order)
    start = zlib.crc32(operator.encode("utf-8")) % n
    place = (order.index(me) - start) % n
    return binds // n + (1 if place < binds % n else 0)


def tps_share(tps: float, binds_here: int, binds: int) -> float:
    """The operator's tps for a node holding ``binds_here`` of its ``binds``; 0 (no limit) stays 0."""
    if tps <= 0 or binds <= 0:
        return tps
    return tps * binds_here / binds


def account_tps_share(tps: float, live_nodes: int) -> float:
    """An account's tps for one node; 0 (no limit) stays 0."""
    if tps <= 0:
        return tps
    return tps / max(1, live_nodes)


@dataclass(frozen=True)
class OperatorShare:
    """One operator's part on this node."""

    binds: int
    tps: float


@dataclass(frozen=True)
class Shares:
    """This node's part of every limit, for one view of the live nodes."""

    nodes: tuple[str, ...]
    operators: Mapping[str, OperatorShare]

    @property
    def held_elsewhere(self) -> frozenset[str]:
        """Operators this node holds no bind of while another live node does: messages routed to
        them are left in the store for that node."""
        return frozenset(name for name, share in self.operators.items() if share.binds == 0)

    def account_tps(self, tps: float) -> float:
        return account_tps_share(tps, len(self.nodes))


def shares(nodes: Iterable[str], me: str, operators: Mapping[str, tuple[int, float]]) -> Shares:
    """This node's ``Shares``; ``operators`` maps each operator to its configured (binds, tps)."""
    order = tuple(live_order(nodes, me))
    parts = {}
    for name, (binds, tps) in operators.items():
        here = bind_share(binds, order, me, name)
        parts[name] = OperatorShare(here, tps_share(tps, here, binds))
    return Shares(order, parts)
