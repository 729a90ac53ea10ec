"""What a pipeline holds of what it accepts. An API worker's stores it and nudges the main worker,
which claims and sends it: one nudge a reactor turn, however many requests were stored in it. A
node of a cluster holds a few seconds of its share and leaves the rest to every node."""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from twisted.internet.task import Clock

from smscore.metrics import Metrics
from smscore.pipeline import Pipeline
from smscore.routing import Routing
from smscore.store.base import StoreRules
from smscore.store.memory import MemoryStore
from tests.unit.test_pipeline import TABLES, make, message, run


def _api_worker(clock, nudges: list) -> Pipeline:
    routing = Routing({"standard": ("dear", "cheap")}, TABLES)
    return Pipeline(store=MemoryStore(StoreRules(untried=routing.untried)), clock=clock, node="gw1/1", lease=30.0,
                    routing=routing, metrics=Metrics(CollectorRegistry()), delivers=False,
                    on_unclaimed=lambda first_id: nudges.append((clock.seconds(), first_id)))


def test_the_requests_stored_in_one_turn_nudge_the_main_worker_once_at_its_end():
    clock, nudges = Clock(), []
    clock.advance(1000)
    p = _api_worker(clock, nudges)
    ms = [message(clock, to) for to in ("46701234567", "46701234568", "46701234569")]
    for m, mid in zip(ms, ("00b", "00a", "00c")):
        m.id = mid
        run(p.accept([m]))
    assert nudges == []  # not one a request
    clock.advance(0)
    assert nudges == [(1000, "00a")]  # the turn's end, no later, from the lowest id stored in it
    later = message(clock)
    run(p.accept([later]))
    clock.advance(0)
    assert nudges == [(1000, "00a"), (1000, later.id)]  # a later turn's requests nudge again


def test_nothing_to_send_nudges_nobody():
    clock, nudges = Clock(), []
    clock.advance(1000)
    p = _api_worker(clock, nudges)
    later = message(clock)
    later.send_at = clock.seconds() + 60  # the main worker's poll claims it when it is due
    run(p.accept([later]))
    clock.advance(0)
    assert nudges == []


def test_a_node_of_a_cluster_holds_its_limit_and_leaves_the_rest_of_a_backlog_in_the_store():
    clock = Clock()
    clock.advance(1000)
    limit = [2]
    p, store, links, _ = make(clock, window=1, hold_limit=lambda: limit[0])  # policies.cluster.hold_limit
    run(p.start())
    ms = [message(clock, f"4670123456{i}") for i in range(6)]
    for m in ms:
        run(p.accept([m]))
    assert [store.leases[m.id][0] for m in ms] == ["gw1", "gw1", None, None, None, None]
    assert p.held == 2
    # A claim (a link with room, the claim interval) takes no more than the limit leaves room for.
    p.link_ready("cheap")
    clock.advance(5)
    assert p.held == 2 and sum(1 for m in ms if store.leases[m.id][0] == "gw1") == 2
    # The other nodes gone (no limit of its own): it takes the rest.
    limit[0] = None
    clock.advance(5)
    assert p.held == 6 and all(store.leases[m.id][0] == "gw1" for m in ms)
