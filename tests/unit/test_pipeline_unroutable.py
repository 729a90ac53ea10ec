"""A message no operator can take (SPEC §5, §10; docs/configuration.md, "What reload changes"):
its profile removed by a reload, or no operator of it with a cost for the number. Driven by a
Clock with the in-memory store and fake links of tests/unit/test_pipeline.py."""

from __future__ import annotations

from twisted.internet.task import Clock

from smscore.config import PrefixTable
from smscore.model import Status
from tests.unit.test_pipeline import COSTS, make, message, run


def test_a_message_whose_profile_a_reload_removed_fails_instead_of_waiting_for_ever():
    """A message of a profile that is gone (removed by a reload while it was scheduled) was logged
    "no operator left" and left queued, owned by this node, for ever; now it fails and says why,
    and so does one no operator of its profile has a cost for."""
    clock = Clock()
    clock.advance(1000)
    p, store, links, metrics = make(clock)
    run(p.start())
    p.routing.profiles = {"other": ("cheap",)}  # as Gateway.reload sets it
    m = message(clock)
    run(p.accept([m]))
    stored = store.messages[m.id]
    assert stored.status is Status.FAILED
    assert stored.events[-1].detail == "profile standard is not configured" and stored.events[-1].final
    assert stored.error == "profile standard is not configured"  # as GET, lists and callbacks show it
    assert links["cheap"].submits == [] and p.held == 0
    p.routing.profiles = {"standard": ("dear", "cheap")}
    p.routing.costs = {op: PrefixTable((("47", cost),)) for op, cost in COSTS.items()}  # none for 4670...
    m2 = message(clock)
    run(p.accept([m2]))
    assert store.messages[m2.id].status is Status.FAILED
    assert store.messages[m2.id].events[-1].detail == "no operator of profile standard has a cost for 46701234567"
    m3 = message(clock, to="4711111111")
    run(p.accept([m3]))
    assert [r.message_id for r, _ in links["cheap"].submits] == [m3.id]


def test_with_other_live_nodes_a_message_of_a_profile_this_node_does_not_know_goes_back_after_a_lease():
    """While a reload rolls over a cluster the nodes' configs differ: a node that does not know a
    message's profile gives it back (after a lease, so that no node spins on it) for one that
    does, instead of failing work another node can send (found by the multi-node audit)."""
    clock = Clock()
    clock.advance(1000)
    p, store, links, metrics = make(clock, others_alive=True)
    run(p.start())
    p.routing.profiles = {"other": ("cheap",)}
    m = message(clock)
    run(p.accept([m]))
    assert store.messages[m.id].status is Status.QUEUED and p.held == 0
    assert store.leases[m.id][0] == "gw1"  # still this node's for a lease
    clock.advance(30)
    assert store.leases[m.id][0] is None  # then anyone's: a node that knows the profile claims it
    assert store.messages[m.id].status is Status.QUEUED and links["cheap"].submits == []
