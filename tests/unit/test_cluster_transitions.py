"""While nodes join, leave and restart, the cluster never holds more than a limit (SPEC §10):
``policies.cluster.hold`` (pure), then ``smscore.cluster.Cluster`` nodes on one in-memory store,
driven by a ``Clock``.

Measured before the fix (several nodes on one PostgreSQL): 3 SMSC sessions for an operator's 2 for
0.4-8.4 s when a node started or joined, 29-30 submits/s for an operator's tps of 20, and an
account's 20 tps accepted at 30/s for 8 s after a node rejoined: a node took its new share at its
own heartbeat, the others gave up theirs at their next one, up to a heartbeat period later."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.task import Clock

from policies.cluster import OperatorShare, Seen, hold, live, settle_after, shares, steady
from smscore.cluster import Cluster
from smscore.store.memory import MemoryStore

OPS = {"telia": (2, 20.0), "tele2": (3, 0.0)}  # tele2: no tps limit
TTL = 3.0  # a heartbeat every second
SETTLE = settle_after(TTL)
#: every limit of OPS held once, across the nodes (World.totals)
WHOLE = {"telia binds": 2, "telia tps": 20.0, "tele2 binds": 3, "account": 1.0}


def test_an_increase_waits_a_heartbeat_period_and_a_half():
    assert SETTLE == 1.5


# --- the pure decision ---------------------------------------------------------------------------
def test_a_node_alone_at_its_first_heartbeat_takes_everything_at_once():
    held = hold(None, ["gw1"], "gw1", OPS, 100.0, SETTLE)
    assert held.shares == shares(["gw1"], "gw1", OPS) and held.shares.account_part == 1.0
    assert held.grows_at(SETTLE) is None


def test_a_node_that_joins_holds_nothing_until_the_others_made_room():
    held = hold(None, ["gw1", "gw2"], "gw2", OPS, 100.0, SETTLE)
    assert all(share == OperatorShare(0, 0.0) for share in held.shares.operators.values())
    assert held.shares.account_part == 0.0 and held.shares.account_tps(20) == 0
    assert held.shares.held_elsewhere == {"telia", "tele2"}
    assert held.grows_at(SETTLE) == 101.5
    assert hold(held, ["gw1", "gw2"], "gw2", OPS, 101.4, SETTLE).shares == held.shares
    settled = hold(held, ["gw1", "gw2"], "gw2", OPS, 101.5, SETTLE)
    assert settled.shares == shares(["gw1", "gw2"], "gw2", OPS) and settled.shares.account_part == 0.5


def test_a_node_gives_up_its_part_at_once_and_takes_more_only_when_the_others_saw_it():
    alone = hold(None, ["gw1"], "gw1", OPS, 100.0, SETTLE)
    two = hold(alone, ["gw1", "gw2"], "gw1", OPS, 100.7, SETTLE)  # gw2 joined: less at once
    assert two.shares == two.target == shares(["gw1", "gw2"], "gw1", OPS)
    assert two.shares.account_part == 0.5
    # gw2 left: gw1 keeps its part of two until the view has been seen for SETTLE
    one = hold(two, ["gw1"], "gw1", OPS, 105.0, SETTLE)
    assert one.shares.operators == two.shares.operators and one.shares.account_part == 0.5
    assert one.since == 105.0 and one.grows_at(SETTLE) == 106.5
    assert hold(one, ["gw1"], "gw1", OPS, 106.0, SETTLE).shares.account_part == 0.5
    # gw2 came back meanwhile and left again: the wait starts over
    flap = hold(hold(one, ["gw1", "gw2"], "gw1", OPS, 106.0, SETTLE), ["gw1"], "gw1", OPS, 106.2, SETTLE)
    assert flap.since == 106.2 and hold(flap, ["gw1"], "gw1", OPS, 107.0, SETTLE).shares.account_part == 0.5
    assert hold(flap, ["gw1"], "gw1", OPS, 107.7, SETTLE).shares == shares(["gw1"], "gw1", OPS)


def test_the_lesser_of_two_shares_treats_no_tps_limit_as_the_greatest():
    assert OperatorShare(2, 20.0).lesser(OperatorShare(1, 10.0)) == OperatorShare(1, 10.0)
    assert OperatorShare(2, 0.0).lesser(OperatorShare(3, 0.0)) == OperatorShare(2, 0.0)
    assert OperatorShare(2, 0.0).lesser(OperatorShare(3, 15.0)) == OperatorShare(2, 15.0)
    assert OperatorShare(0, 0.0).lesser(OperatorShare(3, 0.0)) == OperatorShare(0, 0.0)


def test_a_reload_keeps_the_view_and_its_wait():
    held = hold(None, ["gw1", "gw2"], "gw2", OPS, 100.0, SETTLE)
    reloaded = hold(held, ["gw1", "gw2"], "gw2", {**OPS, "new": (1, 5.0)}, 100.5, SETTLE)
    assert reloaded.since == 100.0 and reloaded.shares.operators["telia"] == OperatorShare(0, 0.0)


def test_a_node_restarted_into_a_steady_cluster_takes_its_part_at_its_first_heartbeat():
    restarted = hold(None, ["gw1", "gw2"], "gw2", OPS, 100.0, SETTLE, restarted=True)
    assert restarted.shares == restarted.target == shares(["gw1", "gw2"], "gw2", OPS)
    assert restarted.shares.account_part == 0.5 and restarted.grows_at(SETTLE) is None


def test_the_view_is_steady_when_no_node_came_or_went_within_the_settle_time():
    now, ttl = 100.0, TTL
    old = 100.0 - SETTLE  # heard from without a gap since then: long enough
    both = [Seen("gw1", 99.5, old), Seen("gw2", 100.0, 90.0)]
    assert live(both, now, ttl) == ["gw1", "gw2"] and steady(both, now, ttl, SETTLE)
    # gw2 heard from for less than the settle time: gw1 may not have seen it yet
    assert not steady([Seen("gw1", 99.5, old), Seen("gw2", 100.0, 99.0)], now, ttl, SETTLE)
    # a node from before `since` was recorded: not known to be steady
    assert not steady([Seen("gw1", 99.5, None), Seen("gw2", 100.0, 90.0)], now, ttl, SETTLE)
    # gw3 dropped out of the views less than the settle time ago (heard from last 3.5 s ago)
    gone = both + [Seen("gw3", 100.0 - ttl - 0.5, 50.0)]
    assert live(gone, now, ttl) == ["gw1", "gw2"] and not steady(gone, now, ttl, SETTLE)
    # ... and long enough ago: no view holds it any more
    long_gone = both + [Seen("gw3", 100.0 - ttl - SETTLE, 50.0)]
    assert steady(long_gone, now, ttl, SETTLE)
    # a heartbeat exactly ttl old is gone (a node that leaves is recorded so)
    assert live([Seen("gw1", 100.0 - ttl, 50.0)], now, ttl) == []


# --- nodes on one store, on a clock --------------------------------------------------------------
class World:
    """Nodes heartbeating on one in-memory store; ``check`` adds up what they hold."""

    def __init__(self) -> None:
        self.clock = Clock()
        self.clock.advance(1000.0)
        self.store = MemoryStore()
        self.nodes: dict[str, Cluster] = {}
        self.changes: list[tuple[str, float]] = []
        self.worst = {"telia binds": 0, "telia tps": 0.0, "tele2 binds": 0, "account": 0.0}

    def start(self, name: str) -> None:
        node = Cluster(store=self.store, clock=self.clock, node=name, ttl=TTL, operators=lambda: OPS,
                       on_change=lambda s, name=name: self.changes.append((name, self.clock.seconds())))
        node.start()
        self.nodes[name] = node

    def stop(self, name: str) -> None:
        self.nodes.pop(name).stop()

    def crash(self, name: str) -> None:
        """The node's process dies: no more heartbeats, and no leaving."""
        node = self.nodes.pop(name)
        node._loop.stop()
        node._cancel_growth()

    def totals(self) -> dict:
        held = [node.shares for node in self.nodes.values()]
        return {"telia binds": sum(s.operators["telia"].binds for s in held),
                "telia tps": sum(s.operators["telia"].tps for s in held),
                "tele2 binds": sum(s.operators["tele2"].binds for s in held),
                "account": sum(s.account_part for s in held)}

    def run_until(self, at: float, step: float = 0.05) -> None:
        while self.clock.seconds() < 1000.0 + at - 1e-9:
            self.clock.advance(step)
            now = self.totals()
            for key, value in now.items():
                self.worst[key] = max(self.worst[key], value)
            assert now["telia binds"] <= 2 and now["tele2 binds"] <= 3, now
            assert now["telia tps"] <= 20.0 + 1e-9 and now["account"] <= 1.0 + 1e-9, now


def test_a_single_node_starts_with_everything_at_once():
    world = World()
    world.start("gw1")
    assert world.totals() == WHOLE


def test_nodes_joining_leaving_and_restarting_never_hold_more_than_the_limits():
    world = World()
    world.start("gw1")
    world.run_until(0.37)
    world.start("gw2")  # joins between two heartbeats of gw1
    world.run_until(4.0)
    assert world.totals() == WHOLE
    world.start("gw3")
    world.run_until(8.0)
    assert world.totals()["account"] == 1.0 and world.totals()["tele2 binds"] == 3
    world.stop("gw1")  # says so: the others take its part once each has seen the others saw it
    world.run_until(12.0)
    assert world.totals() == WHOLE
    world.start("gw1")  # restarted: starts with nothing, as a newcomer
    assert world.nodes["gw1"].shares.account_part == 0.0
    world.run_until(16.0)
    assert math.isclose(world.totals()["account"], 1.0) and world.totals()["telia binds"] == 2
    assert world.worst == WHOLE


def test_a_node_restarted_within_its_lease_takes_its_part_at_once_and_the_limits_hold():
    """A crash (no leave) and a restart before the lease ran out: the others kept its part free."""
    world = World()
    world.start("gw1")
    world.start("gw2")
    world.run_until(4.0)
    settled = world.nodes["gw2"].shares
    assert settled == shares(["gw1", "gw2"], "gw2", OPS)
    world.crash("gw2")
    world.run_until(5.0)  # restarted 1 s later, within its lease of 3 s
    world.start("gw2")
    assert world.nodes["gw2"].shares == settled  # at its first heartbeat, not SETTLE later
    world.run_until(9.0)
    assert world.totals() == WHOLE
    assert world.worst == WHOLE


def test_a_restart_right_after_another_node_joined_or_left_waits_as_a_newcomer():
    world = World()
    world.start("gw1")
    world.start("gw2")
    world.run_until(4.0)
    world.crash("gw2")
    world.start("gw3")  # joins: gw1 has not seen it yet
    world.run_until(4.2)
    world.start("gw2")
    assert world.nodes["gw2"].shares.account_part == 0.0
    world.run_until(10.0)
    assert math.isclose(world.totals()["account"], 1.0)
    world.crash("gw2")
    world.stop("gw3")  # leaves: gw1 may still count it
    world.run_until(10.2)
    world.start("gw2")
    assert world.nodes["gw2"].shares.account_part == 0.0
    world.run_until(15.0)
    assert world.totals() == WHOLE


@settings(max_examples=60, deadline=None)
@given(events=st.lists(st.tuples(st.floats(0.0, 10.0), st.sampled_from(["start", "stop", "crash"]),
                                 st.integers(0, 3)), min_size=2, max_size=10))
def test_any_order_of_joins_leaves_crashes_and_restarts_keeps_within_the_limits(events):
    world = World()
    for at, what, i in sorted(events):
        world.run_until(at)
        name = f"gw{i}"
        if what == "start" and name not in world.nodes:
            world.start(name)
        elif what == "stop" and name in world.nodes:
            world.stop(name)
        elif what == "crash" and name in world.nodes:
            world.crash(name)
    world.run_until(max(at for at, _, _ in events) + 2 * TTL + 3 * SETTLE)
    if world.nodes:  # settled: every limit is held whole, once
        totals = world.totals()
        assert totals["telia binds"] == 2 and totals["tele2 binds"] == 3 and math.isclose(totals["account"], 1.0)


@settings(max_examples=40, deadline=None)
@given(starts=st.lists(st.floats(0.0, 6.0), min_size=2, max_size=4), stop_at=st.floats(0.0, 8.0))
def test_any_order_of_joins_and_a_leave_keeps_within_the_limits_and_ends_with_all_of_them(starts, stop_at):
    world = World()
    events = sorted([(at, "start", f"gw{i}") for i, at in enumerate(starts)] + [(stop_at, "stop", "gw0")])
    for at, what, name in events:
        world.run_until(at)
        if what == "start":
            world.start(name)
        elif name in world.nodes:
            world.stop(name)
    world.run_until(max(starts + [stop_at]) + 3 * SETTLE)
    if world.nodes:  # settled: every limit is held whole, once
        totals = world.totals()
        assert totals["telia binds"] == 2 and totals["tele2 binds"] == 3 and math.isclose(totals["account"], 1.0)


def test_a_failed_heartbeat_takes_no_more_until_one_answers():
    world = World()
    world.start("gw1")
    world.start("gw2")
    world.run_until(3.0)
    world.stop("gw1")
    beat = world.store.heartbeat
    failing = {"on": True}

    def heartbeat(node, now, ttl):
        if failing["on"]:
            from twisted.internet.defer import fail
            return fail(ConnectionError("store away"))
        return beat(node, now, ttl)

    world.store.heartbeat = heartbeat
    before = world.nodes["gw2"].shares
    world.run_until(8.0)
    assert world.nodes["gw2"].shares == before  # it cannot see the others: it keeps what it had
    failing["on"] = False
    world.run_until(8.0 + 1.0 + SETTLE + 0.1)
    assert world.nodes["gw2"].shares == shares(["gw2"], "gw2", OPS)
