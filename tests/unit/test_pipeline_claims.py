"""The pipeline's claims of stored work (``smscore.claiming`` through ``Pipeline``): a restart
takes its work back, a backlog comes in batches, and a claim that found the end of the stored work
waits for news of more (a kick, a resume, messages stored while memory was full) or the interval."""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from smscore.model import Status
from smscore.store.memory import MemoryStore
from tests.unit.test_pipeline import make, message, run


def send_one_by_one(p, link, most: int = 20) -> list[str]:
    """Answer ``link``'s submits one at a time (window 1), telling the pipeline the link has room
    after each, until none is left: the ids sent, in order."""
    sent = []
    for _ in range(most):
        if not link.submits:
            break
        sent.append(link.submits[0][0].message_id)
        link.accept()
        p.link_ready(link.name)
    return sent


def test_restart_resumes_stored_work_and_backlog_is_claimed_in_batches():
    clock = Clock()
    clock.advance(1000)
    store = MemoryStore()
    p, _, links, _ = make(clock, store=store, max_in_memory=3, window=1)
    run(p.start())
    ms = [message(clock) for _ in range(10)]
    for m in ms:
        run(p.accept([m]))
    # Only max_in_memory are held; the rest stored unclaimed.
    assert p.held == 3
    # The node dies. A new pipeline with the same node name resumes at once (a moment later:
    # what the first one leased ends before anything the new one leases does).
    clock.advance(0.5)
    p2, _, links2, _ = make(clock, store=store, max_in_memory=3, window=1)
    run(p2.start())
    assert p2.held == 3
    assert sorted(send_one_by_one(p2, links2["cheap"])) == sorted(m.id for m in ms)
    assert all(store.messages[m.id].status is Status.SUBMITTED for m in ms)


def test_a_restart_takes_back_what_it_has_room_for_and_lets_the_rest_run_out_unrenewed():
    """A restarted node's renewals extend only the leases it gave itself: what the earlier process
    leased and the new one had no room to take back ends on its own, and then any claim takes it,
    instead of being renewed, never sent, for as long as the new process runs."""
    clock = Clock()
    clock.advance(1000)
    store = MemoryStore()
    p, *_ = make(clock, store=store, max_in_memory=6, window=1)
    run(p.start())
    ms = [message(clock) for _ in range(6)]
    for m in ms:
        run(p.accept([m]))
    assert p.held == 6 and {store.leases[m.id] for m in ms} == {("gw1", 1030.0)}
    p.claims.stop()  # it dies: nothing given back
    clock.advance(0.5)
    p2, *_ = make(clock, store=store, max_in_memory=2, window=1)
    run(p2.start())
    assert p2.held == 2
    clock.advance(29)  # two renewals of p2 since
    rest = sorted(m.id for m in ms if store.leases[m.id] == ("gw1", 1030.0))
    assert len(rest) == 4
    assert sorted(m.id for m in run(store.claim("gw2", 1030.1, 1100.0, 10))) == rest


def test_messages_stored_unclaimed_while_memory_was_full_are_claimed_as_it_empties():
    clock = Clock()
    p, store, links, _ = make(clock, max_in_memory=3, window=1)
    run(p.start())  # its claim finds nothing stored
    ms = [message(clock) for _ in range(10)]
    for m in ms:
        run(p.accept([m]))
    assert p.held == 3  # the other seven stored unclaimed
    # no clock advance: not one of them waits for the claim interval
    assert sorted(send_one_by_one(p, links["cheap"])) == sorted(m.id for m in ms)


def test_a_claim_under_way_is_not_started_again_when_a_link_has_room():
    clock = Clock()
    p, store, _, _ = make(clock)
    run(p.start())
    p.work_stored()  # an API worker's kick: the start's claim found nothing, this one looks again
    asked, answers = [], []
    store.claim = lambda *args, **kwargs: asked.append(args) or answers.append(Deferred()) or answers[-1]
    p.work_stored()
    p.link_ready("cheap")
    assert len(asked) == 1 and p.claims.busy
    answers[0].callback([])
    assert not p.claims.busy
    p.link_ready("cheap")
    assert len(asked) == 1  # the claim found the end: room alone asks nothing more


def test_a_claim_that_found_the_end_waits_for_news_of_stored_work_or_the_interval():
    """At every stored outcome a link has room again. Claiming then walked the messages the node
    holds to find nothing, in the main worker's turn (2-4 ms every 25-35 ms, a lists run): room
    alone claims only while the last claim did not find the end of the stored work."""
    clock = Clock()
    p, store, _, _ = make(clock)
    run(p.start())
    asked, answers = [], []
    store.claim = lambda *args, **kwargs: asked.append(args) or answers.append(Deferred()) or answers[-1]
    p.link_ready("cheap")
    assert asked == []  # the start's claim found nothing stored
    p.work_stored()
    assert len(asked) == 1
    p.work_stored()  # announced while the claim looks: what it announced may have come after
    answers[0].callback([])
    assert len(asked) == 2  # so it looks again at once
    answers[1].callback([])
    p.link_ready("cheap")
    assert len(asked) == 2
    clock.advance(2.0)  # the claim every claim_interval looks anyway (work another node gave back)
    assert len(asked) == 3
    answers[2].callback([])
    p.work_stored()
    answers[3].callback([message(clock) for _ in range(3)])  # fewer than asked: the end again
    assert len(asked) == 4 and p.held == 3
    p.link_ready("cheap")
    assert len(asked) == 4
