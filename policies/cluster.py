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

A backlog is shared too (``hold_limit``): a node of several holds in memory only a few seconds of
sending at its share, and leaves the rest of what it accepts in the store, where every node with
room claims it. A node that held all it accepted (up to 20,000 messages) sent them at its share
alone while the other nodes' binds idled.

A node holding no bind of an operator leaves the messages routed to that operator in the store for
the nodes that do (``held_elsewhere``).

Transitions (``hold``). The nodes do not see a change of the live nodes at the same moment: each
sees it at its own next heartbeat, one heartbeat period (a third of the lease) apart at most. Had
every node taken its new share at once, a node joining would bind its part while the others still
held theirs of the smaller cluster, for up to a period (an operator allowing 2 binds saw 3). So a
node holds, at any moment, the smaller of what it held and what the view it sees gives it: a
decrease applies at once, an increase only once the view has been seen for ``settle_after(ttl)``
(a period plus half of one), by when every other live node has seen it too and given up its
part. A node that joins starts with nothing (no bind, no tps) until its own heartbeat has been
visible that long, unless its first heartbeat finds no other live node: a node alone takes
everything at once.

Restarts (``steady``). A node that crashed and starts again within its lease never left the
others' views: they kept its part free, and it may take that part at its first heartbeat, as long
as no other node's view can differ from its own. The store tells each node's last heartbeat and
since when it has been heard from without a gap of a lease (``Seen``); the view is steady when
every live node has been so for ``settle`` (this one included: its earlier process's heartbeats
count) and no node dropped out of the views within the last ``settle`` (a node that dies is
counted one lease after its last heartbeat; one that leaves is recorded as last heard from a lease
ago, so a restart right after a departure waits too). A node restarted after a clean stop left
the cluster and joins as a newcomer. Running one node twice under one name is refused elsewhere
(``smscore.store.node_guard``): a restart here is always the end of the earlier process.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple


class Seen(NamedTuple):
    """A node as the store knows it: its name, its last heartbeat, and since when it has been
    heard from without a gap of a lease (None: not known, a row from before that was recorded)."""

    node: str
    seen_at: float
    since: float | None


def live(seen: Iterable[Seen], now: float, ttl: float) -> list[str]:
    """The nodes heard from within ``ttl`` (a heartbeat exactly ``ttl`` old is gone), sorted."""
    return sorted(s.node for s in seen if s.seen_at > now - ttl)


def steady(seen: Iterable[Seen], now: float, ttl: float, settle: float) -> bool:
    """Whether every node's view of the live nodes has been the same for ``settle``: each live
    node heard from without a gap for that long, and none dropped out of the views meanwhile
    (its last heartbeat between ``ttl + settle`` and ``ttl`` ago). See "Restarts" above."""
    for s in seen:
        if s.seen_at > now - ttl:
            if s.since is None or s.since > now - settle:
                return False
        elif s.seen_at > now - ttl - settle:
            return False
    return True


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


def _fewer_tps(a: float, b: float) -> float:
    """The smaller of two tps limits, 0 being no limit."""
    if a <= 0:
        return b
    if b <= 0:
        return a
    return min(a, b)


@dataclass(frozen=True)
class OperatorShare:
    """One operator's part on this node."""

    binds: int
    tps: float

    def lesser(self, other: OperatorShare) -> OperatorShare:
        """Neither more binds nor more tps than either (no bind: nothing to send, tps 0)."""
        binds = min(self.binds, other.binds)
        return OperatorShare(binds, _fewer_tps(self.tps, other.tps) if binds else 0.0)


@dataclass(frozen=True)
class Shares:
    """This node's part of every limit, for one view of the live nodes."""

    nodes: tuple[str, ...]
    operators: Mapping[str, OperatorShare]
    #: this node's part of every account's tps: 1 / the live nodes, 0 while it joins
    account_part: float = 1.0
    #: operators this node holds no bind of while another live node does: messages routed to them
    #: are left in the store for that node. Worked out once, with the shares: the pipeline asks for
    #: every message it queues, the shares change at a heartbeat at most
    held_elsewhere: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "held_elsewhere",
                           frozenset(name for name, share in self.operators.items() if share.binds == 0))

    def account_tps(self, tps: float) -> float:
        """An account's tps here; 0 (no limit) stays 0, and nothing goes while the part is 0."""
        return tps if tps <= 0 else tps * self.account_part

    def lesser(self, other: Shares) -> Shares:
        """No more of any limit than either, for ``other``'s view (an operator only ``other`` has,
        added by a reload, as ``other`` has it)."""
        parts = {name: share.lesser(self.operators[name]) if name in self.operators else share
                 for name, share in other.operators.items()}
        return Shares(other.nodes, parts, min(self.account_part, other.account_part))

    def nothing(self) -> Shares:
        """No bind, no tps, for this view: a node that joins, until the others made room."""
        return Shares(self.nodes, {name: OperatorShare(0, 0.0) for name in self.operators}, 0.0)


def shares(nodes: Iterable[str], me: str, operators: Mapping[str, tuple[int, float]]) -> Shares:
    """This node's ``Shares``; ``operators`` maps each operator to its configured (binds, tps)."""
    order = tuple(live_order(nodes, me))
    parts = {}
    for name, (binds, tps) in operators.items():
        here = bind_share(binds, order, me, name)
        parts[name] = OperatorShare(here, tps_share(tps, here, binds))
    return Shares(order, parts, 1.0 / len(order))


#: Seconds of sending at its share of the operators' tps that a node of several holds in memory.
HOLD_SECONDS = 5.0


def hold_limit(shares: Shares, windows: Mapping[str, int], seconds: float = HOLD_SECONDS) -> int | None:
    """How many messages this node holds in memory, or None: no limit of its own (a node alone,
    or one holding a bind of an operator without a tps limit). One of several holds what keeps
    its binds' windows full twice over and sends for ``seconds`` at its share of each operator's
    tps; the rest of a backlog stays in the store for every node to claim. A node holding no bind
    (it joins) holds nothing. ``windows``: each operator's window per bind."""
    if len(shares.nodes) <= 1:
        return None
    total = 0.0
    for name, share in shares.operators.items():
        if share.binds == 0:
            continue
        if share.tps <= 0:
            return None
        total += share.tps * seconds + 2 * share.binds * windows.get(name, 1)
    return math.ceil(total)


def settle_after(ttl: float) -> float:
    """How long a node waits before it takes more after the live nodes changed: one heartbeat
    period (``ttl`` / 3), by when every other node has had its heartbeat and seen the change,
    plus half of one for a heartbeat late on its schedule or slow in the store."""
    return ttl / 3 * 1.5


@dataclass(frozen=True)
class Held:
    """What a node holds (``shares``), what its view of the live nodes gives it (``target``), and
    since when it has seen that view (``since``)."""

    shares: Shares
    target: Shares
    since: float

    def grows_at(self, settle: float) -> float | None:
        """When ``hold`` gives more than now (the target is settled), or None: nothing to wait for."""
        return None if self.shares == self.target else self.since + settle


def hold(before: Held | None, nodes: Iterable[str], me: str, operators: Mapping[str, tuple[int, float]],
         now: float, settle: float, restarted: bool = False) -> Held:
    """What node ``me`` holds at ``now``, having seen ``nodes`` live (``before``: what it held,
    None at its first heartbeat); see the module docstring. The view is the live nodes' names: a
    reload that changes the config changes the target, not the view. ``restarted``: at the first
    heartbeat, the view is ``steady`` with this node in it: its part is free, taken at once."""
    target = shares(nodes, me, operators)
    if before is None:
        alone = target.nodes == (me,)
        return Held(target if alone or restarted else target.nothing(), target, now)
    since = before.since if target.nodes == before.target.nodes else now
    held = target if now >= since + settle else before.shares.lesser(target)
    return Held(held, target, since)
