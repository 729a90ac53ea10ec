"""An operator with no bind up (its SMSC down) takes at most a quarter of a node's room in memory
(policies.claims, "an operator down"): the other operators' messages go on. Before, an SMSC down
long enough filled the node's memory with its messages and the node claimed nothing more. The
pipeline on a ``Clock``, an in-memory store and fake links."""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from twisted.internet.task import Clock

from policies.routing import blocked_profiles
from smscore.metrics import Metrics
from smscore.model import Status
from smscore.pipeline import Pipeline
from smscore.routing import Routing
from smscore.store.base import StoreRules
from smscore.store.memory import MemoryStore
from tests.fakes import FakeLink
from tests.unit.test_pipeline import TABLES, message, run


def _rig(max_in_memory: int = 8):
    """Profile "standard" sends through cheap only, whose SMSC is down; "other" through dear."""
    clock = Clock()
    clock.advance(1000)
    routing = Routing({"standard": ("cheap",), "other": ("dear",)}, TABLES)
    store = MemoryStore(StoreRules(untried=routing.untried))
    p = Pipeline(store=store, clock=clock, node="gw1", lease=30.0, routing=routing,
                 metrics=Metrics(CollectorRegistry()), max_in_memory=max_in_memory)
    links = {"cheap": FakeLink("cheap", up=False), "dear": FakeLink("dear")}
    for link in links.values():
        p.add_link(link)
    return clock, store, p, links


def _messages(clock, n: int, profile: str):
    out = []
    for i in range(n):
        m = message(clock, to=f"467{len(profile)}{i:07d}")  # numbers of their own per profile
        m.profile = profile
        out.append(m)
    return out


def _submit_all(p, link) -> int:
    n = 0
    while link.submits:
        link.accept()
        p.link_ready(link.name)
        n += 1
    return n


def test_the_profiles_whose_operators_are_all_down_here():
    profiles = {"one": ("a",), "two": ("b", "c"), "gone": ("z",), "none": ()}
    assert blocked_profiles(profiles, {"a", "b", "c"}, up={"c"}) == {"one"}
    assert blocked_profiles(profiles, {"a", "b", "c"}, up=set()) == {"one", "two"}
    assert blocked_profiles(profiles, {"a", "b", "c"}, up={"a", "b"}) == frozenset()


def test_an_smsc_down_keeps_a_quarter_of_memory_and_the_other_operators_messages_go_on():
    clock, store, p, links = _rig(max_in_memory=8)
    run(p.start())
    down = _messages(clock, 30, "standard")
    for m in down:
        run(p.accept([m]))
    others = _messages(clock, 5, "other")
    for m in others:
        run(p.accept([m]))
    clock.advance(5)
    assert len(p.queues["cheap"]) == 2  # a quarter of 8
    assert _submit_all(p, links["dear"]) == 5
    assert {store.messages[m.id].status for m in others} == {Status.SUBMITTED}
    # the SMSC is back: the messages that waited in the store are claimed and sent
    links["cheap"].up = True
    p.bind_changed("cheap", "cheap/1", True)
    sent = 0
    for _ in range(10):
        sent += _submit_all(p, links["cheap"])
        clock.advance(1)
    assert sent == 30 and {store.messages[m.id].status for m in down} == {Status.SUBMITTED}


def test_claims_leave_the_messages_of_a_profile_whose_operators_are_all_down_in_the_store():
    """Stored unclaimed (an API worker's, or a backlog): not claimed, not parked one by one, while
    cheap is down; claimed at once when its bind comes up."""
    clock, store, p, links = _rig(max_in_memory=100)
    down, others = _messages(clock, 40, "standard"), _messages(clock, 5, "other")
    run(store.accept(down + others, None, 0.0))
    run(p.start())
    clock.advance(1)
    assert len(p.queues["cheap"]) == 0 and p.held == 5
    assert _submit_all(p, links["dear"]) == 5
    assert all(store.leases[m.id] == (None, None) for m in down)  # untouched
    links["cheap"].up = True
    p.bind_changed("cheap", "cheap/1", True)
    assert _submit_all(p, links["cheap"]) == 40
