"""An operator that cannot keep up (its SMSC down, or slower than what comes for it) leaves a quarter
of a node's room in memory to the others (policies.claims, "an operator that cannot keep up"): the
other operators' messages go on. Before, its messages filled the node's memory and the node claimed
nothing more. The pipeline on a ``Clock``, an in-memory store and fake links."""

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


def _rig(max_in_memory: int = 8, claim_batch: int = 1000, cheap_up: bool = False):
    """Profile "standard" sends through cheap only, whose SMSC is down; "other" through dear."""
    clock = Clock()
    clock.advance(1000)
    routing = Routing({"standard": ("cheap",), "other": ("dear",)}, TABLES)
    store = MemoryStore(StoreRules(untried=routing.untried))
    p = Pipeline(store=store, clock=clock, node="gw1", lease=30.0, routing=routing,
                 metrics=Metrics(CollectorRegistry()), max_in_memory=max_in_memory, claim_batch=claim_batch)
    links = {"cheap": FakeLink("cheap", up=cheap_up), "dear": FakeLink("dear")}
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


def test_an_smsc_down_leaves_a_quarter_of_memory_and_the_other_operators_messages_go_on():
    clock, store, p, links = _rig(max_in_memory=8)
    run(p.start())
    down = _messages(clock, 30, "standard")
    for m in down:
        run(p.accept([m]))
    others = _messages(clock, 5, "other")
    for m in others:
        run(p.accept([m]))
    clock.advance(5)
    assert len(p.queues["cheap"]) == 6  # all but the quarter of 8 kept for the others
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


def test_claims_leave_the_messages_of_a_profile_whose_operator_is_full_in_the_store():
    """A backlog in the store, 100 for cheap (down) first, then 5 for dear: the claims (10 at a
    time) fill cheap's three quarters of 100 and then pass its profile by, untouched, to take
    dear's; once cheap is bound and its queue down to half of that, they take the rest."""
    clock, store, p, links = _rig(max_in_memory=100, claim_batch=10)
    down, others = _messages(clock, 100, "standard"), _messages(clock, 5, "other")
    run(store.accept(down + others, None, 0.0))
    run(p.start())
    clock.advance(1)
    assert len(p.queues["cheap"]) == 80 and p.full == {"cheap"}
    assert _submit_all(p, links["dear"]) == 5
    assert [store.leases[m.id] for m in down[80:]] == [(None, None)] * 20  # untouched
    links["cheap"].up = True
    p.bind_changed("cheap", "cheap/1", True)
    assert _submit_all(p, links["cheap"]) == 100 and not p.full


def test_an_smsc_slower_than_what_comes_for_it_leaves_the_others_their_room():
    """cheap is bound but answers nothing (its window of 1 stays full): its queue fills all but the
    quarter kept for the others, and the messages for dear go; as cheap answers, its messages all
    go too."""
    clock, store, p, links = _rig(max_in_memory=8, cheap_up=True)
    links["cheap"].window = 1
    run(p.start())
    for m in _messages(clock, 30, "standard"):
        run(p.accept([m]))
    for m in _messages(clock, 5, "other"):
        run(p.accept([m]))
    clock.advance(1)
    assert _submit_all(p, links["dear"]) == 5
    sent = 0
    for _ in range(40):
        sent += _submit_all(p, links["cheap"])
        clock.advance(1)
    assert sent == 30
