"""An API worker's pipeline stores what it accepts and nudges the main worker, which claims and
sends it: one nudge a reactor turn, however many requests were stored in it."""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from twisted.internet.task import Clock

from smscore.metrics import Metrics
from smscore.pipeline import Pipeline
from smscore.routing import Routing
from smscore.store.base import StoreRules
from smscore.store.memory import MemoryStore
from tests.unit.test_pipeline import TABLES, message, run


def _api_worker(clock, nudges: list) -> Pipeline:
    routing = Routing({"standard": ("dear", "cheap")}, TABLES)
    return Pipeline(store=MemoryStore(StoreRules(untried=routing.untried)), clock=clock, node="gw1/1", lease=30.0,
                    routing=routing, metrics=Metrics(CollectorRegistry()), delivers=False,
                    on_unclaimed=lambda: nudges.append(clock.seconds()))


def test_the_requests_stored_in_one_turn_nudge_the_main_worker_once_at_its_end():
    clock, nudges = Clock(), []
    clock.advance(1000)
    p = _api_worker(clock, nudges)
    for to in ("46701234567", "46701234568", "46701234569"):
        run(p.accept([message(clock, to)]))
    assert nudges == []  # not one a request
    clock.advance(0)
    assert nudges == [1000]  # the turn's end: no later
    run(p.accept([message(clock)]))
    clock.advance(0)
    assert nudges == [1000, 1000]  # a later turn's requests nudge again


def test_nothing_to_send_nudges_nobody():
    clock, nudges = Clock(), []
    clock.advance(1000)
    p = _api_worker(clock, nudges)
    later = message(clock)
    later.send_at = clock.seconds() + 60  # the main worker's poll claims it when it is due
    run(p.accept([later]))
    clock.advance(0)
    assert nudges == []
