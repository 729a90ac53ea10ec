"""smscore.number_lookup and the pipeline with look-ups: Clock-driven, a fake look-up service."""

from __future__ import annotations

from decimal import Decimal

from prometheus_client import CollectorRegistry
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from connectors.api import ReceiptOutcome
from policies.routing import OperatorOption
from smscore.config import PrefixTable
from smscore.metrics import Metrics
from smscore.model import Status
from smscore.number_lookup import LookupSettings, NumberLookup
from smscore.pipeline import Pipeline
from smscore.routing import Routing
from smscore.store.base import StoreRules
from smscore.store.memory import MemoryStore
from tests.fakes import FakeLink
from tests.unit.test_pipeline import message, run

COSTS = {"cheap": Decimal("0.10"), "dear": Decimal("0.40")}
OPTIONS = [OperatorOption("cheap", COSTS["cheap"]), OperatorOption("dear", COSTS["dear"])]
NETWORKS = {"cheap": ("24001",), "dear": ("*",)}


class FakeService:
    """The HLR/MNP service: each ``look_up`` waits until the test answers it."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, Deferred]] = []

    def look_up(self, number: str) -> Deferred:
        d: Deferred = Deferred()
        self.asked.append((number, d))
        return d

    def answer(self, network, index: int = 0) -> None:
        self.asked.pop(index)[1].callback(network)


def lookups(clock, cost="0.002", cache=3600.0, size=100):
    service = FakeService()
    metrics = Metrics(CollectorRegistry())
    settings = LookupSettings(Decimal(cost), cache, size, NETWORKS)
    return NumberLookup(service, clock, lambda: settings, metrics), service, metrics


def fired(d):
    out = []
    d.addCallback(out.append)
    return out


def count(metrics, outcome):
    return metrics.registry.get_sample_value("smsgw_number_lookups_total", {"outcome": outcome}) or 0


def test_a_new_number_is_looked_up_and_the_answer_kept_for_the_next_message():
    clock = Clock()
    nl, service, metrics = lookups(clock)
    got = fired(nl.reach(message(clock), OPTIONS))
    assert [n for n, _ in service.asked] == ["46701234567"]
    service.answer("24099")  # a network only the aggregator names
    assert got == [frozenset({"dear"})]
    assert nl.reach(message(clock), OPTIONS) == frozenset({"dear"})  # from the cache, not asked
    assert service.asked == [] and count(metrics, "answered") == 1 and count(metrics, "cached") == 1


def test_messages_to_one_number_wait_for_one_question():
    clock = Clock()
    nl, service, _ = lookups(clock)
    first, second = fired(nl.reach(message(clock), OPTIONS)), fired(nl.reach(message(clock), OPTIONS))
    assert len(service.asked) == 1
    service.answer("24001")
    assert first == second == [frozenset({"cheap", "dear"})]


def test_not_asked_when_it_costs_more_than_it_can_save_or_there_is_no_choice():
    clock = Clock()
    nl, service, _ = lookups(clock, cost="1.00")
    assert nl.reach(message(clock), OPTIONS) is None
    nl, service, _ = lookups(clock)
    assert nl.reach(message(clock), OPTIONS[:1]) is None
    m = message(clock)
    m.preferred = "cheap"  # its own operator is the cheapest: nothing to save
    assert nl.reach(m, OPTIONS) is None
    assert service.asked == []


def test_an_answer_goes_stale_when_an_operator_it_named_fails():
    clock = Clock()
    nl, service, _ = lookups(clock)
    fired(nl.reach(message(clock), OPTIONS))
    service.answer("24001")  # cheap reaches it
    m = message(clock)
    m.tried = ("cheap",)  # ... and cheap failed: the number moved
    assert nl.reach(m, OPTIONS) is None  # one operator left: no choice to pay for
    assert service.asked == []
    fired(nl.reach(message(clock), OPTIONS))  # the next message finds no answer kept: asked again
    assert len(service.asked) == 1


def test_an_answer_is_kept_for_the_cache_time_only():
    clock = Clock()
    nl, service, _ = lookups(clock, cache=100.0)
    fired(nl.reach(message(clock), OPTIONS))
    service.answer("24001")
    clock.advance(100)
    assert nl.reach(message(clock), OPTIONS) == frozenset({"cheap", "dear"})
    clock.advance(1)
    fired(nl.reach(message(clock), OPTIONS))
    assert len(service.asked) == 1


def test_a_failed_look_up_lets_the_message_go_on_without_one():
    clock = Clock()
    nl, service, metrics = lookups(clock)
    got = fired(nl.reach(message(clock), OPTIONS))
    service.asked.pop()[1].errback(RuntimeError("timeout"))
    assert got == [frozenset()] and count(metrics, "failed") == 1
    fired(nl.reach(message(clock), OPTIONS))
    assert len(service.asked) == 1  # a failure is not kept: asked again next time


def test_the_cache_keeps_at_most_cache_size_numbers():
    clock = Clock()
    nl, service, _ = lookups(clock, size=2)
    for n in ("46700000001", "46700000002", "46700000003"):
        fired(nl.reach(message(clock, to=n), OPTIONS))
        service.answer("24001")
    fired(nl.reach(message(clock, to="46700000001"), OPTIONS))  # the oldest was dropped
    assert [n for n, _ in service.asked] == ["46700000001"]


def pipeline(clock):
    nl, service, metrics = lookups(clock)
    routing = Routing({"standard": ("cheap", "dear")}, {op: PrefixTable.flat(c) for op, c in COSTS.items()})
    store = MemoryStore(StoreRules(untried=routing.untried))
    p = Pipeline(store=store, clock=clock, node="gw1", lease=30.0, routing=routing, metrics=metrics,
                 number_lookup=nl)
    links = {name: FakeLink(name) for name in COSTS}
    for link in links.values():
        p.add_link(link)
    run(p.start())
    return p, store, links, service


def test_the_pipeline_sends_through_the_cheapest_operator_the_answer_names():
    clock = Clock()
    p, store, links, service = pipeline(clock)
    m = message(clock)
    run(p.accept([m]))
    assert links["cheap"].submits == [] and links["dear"].submits == []  # waiting for the answer
    service.answer("24099")  # only dear reaches it: cheap is not tried at all
    assert [r.message_id for r, _ in links["dear"].submits] == [m.id] and links["cheap"].submits == []
    key = links["dear"].accept()
    run(p.receipt_received(links["dear"].receipt(key)))
    assert store.messages[m.id].status is Status.DELIVERED and store.messages[m.id].tried == ("dear",)


def test_a_wrong_answer_costs_one_attempt_then_the_usual_order():
    clock = Clock()
    p, store, links, service = pipeline(clock)
    m = message(clock)
    run(p.accept([m]))
    service.answer("24001")  # says cheap reaches it
    key = links["cheap"].accept()
    run(p.receipt_received(links["cheap"].receipt(key, ReceiptOutcome.FAILED, "UNDELIV")))
    # cheap failed: the answer is stale; only dear is left (no choice, not asked again)
    assert service.asked == []
    assert [r.message_id for r, _ in links["dear"].submits] == [m.id]


def test_a_stopped_pipeline_gives_back_a_message_waiting_for_its_answer():
    clock = Clock()
    p, store, links, service = pipeline(clock)
    m = message(clock)
    run(p.accept([m]))
    run(p.stop())
    assert store.leases[m.id] == (None, None)  # released for any node
    service.answer("24001")  # too late: nothing is sent
    assert links["cheap"].submits == [] and links["dear"].submits == []
