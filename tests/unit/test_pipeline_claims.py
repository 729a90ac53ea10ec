"""The pipeline's claims of stored work (``smscore.claiming`` through ``Pipeline``): a restart
takes its work back, a backlog comes in batches, and a claim that found the end of the stored work
waits for news of more (a kick, a resume, messages stored while memory was full) or the interval."""

from __future__ import annotations

from twisted.internet.defer import Deferred, fail
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


class Recording(MemoryStore):
    """A store that keeps where each claim started, and how often the scheduled were looked at."""

    def __init__(self) -> None:
        super().__init__()
        self.afters: list[str] = []
        self.releases = 0

    def claim(self, *args, after="", **kw):
        self.afters.append(after)
        return super().claim(*args, after=after, **kw)

    def release_due(self, *args, **kw):
        self.releases += 1
        return super().release_due(*args, **kw)


def numbered(clock, *numbers: int) -> list:
    ms = [message(clock) for _ in numbers]
    for m, n in zip(ms, numbers):
        m.id = f"{n * 16:024x}"
    return ms


def test_claims_walk_the_backlog_from_where_the_last_one_ended_then_start_over_an_interval_later():
    """A claim goes on after the last id the previous one took (not past what this node holds
    again); work released below the sweep is found when it starts over from the first id, a claim
    interval after it began."""
    clock = Clock()
    clock.advance(1000)
    store = Recording()
    p, _, links, _ = make(clock, store=store, window=1, claim_batch=2)
    ms = numbered(clock, 1, 2, 3, 4, 5, 6)
    run(store.accept(ms, None, 0.0))
    dead = message(clock)
    dead.id = f"{24:024x}"  # between the first two: behind the walk, held by a node that died
    run(store.accept([dead], "gw9", 1003.0))
    run(p.start())
    assert store.afters == ["", ms[1].id, ms[3].id, ms[5].id] and p.held == 6
    clock.advance(5.0)  # gw9's lease ran out; the claim every interval starts over and finds its message
    assert store.afters[-1] == "" and p.held == 7


def test_after_the_end_a_kick_is_claimed_from_where_the_last_claim_ended_or_from_its_first_id():
    """At load every API worker's kick claims what it stored. Started from the first id, each
    claim walked past every message held between claim and submit (on PostgreSQL 450 ms of 10,000
    messages' run): it starts where the last one ended, or just below the lowest id the kick
    names, when another worker committed messages it numbered before those claimed."""
    clock = Clock()
    clock.advance(1000)
    store = Recording()
    p, _, links, _ = make(clock, store=store, window=1)
    run(p.start())
    first = numbered(clock, 10, 11)
    run(store.accept(first, None, 0.0))
    p.work_stored(first[0].id)
    assert store.afters == ["", ""] and p.held == 2  # the sweep had not ended anywhere yet
    later = numbered(clock, 20)
    run(store.accept(later, None, 0.0))
    p.work_stored(later[0].id)
    assert store.afters[-1] == first[1].id and p.held == 3  # stored above the end: from the end
    late = numbered(clock, 15)  # numbered before ``later``, committed after it by another worker
    run(store.accept(late, None, 0.0))
    p.work_stored(late[0].id)
    assert store.afters[-1] == f"{15 * 16 - 1:024x}" and p.held == 4  # just below it
    resumed = numbered(clock, 1)
    run(store.accept(resumed, None, 0.0))
    p.work_stored()  # an account resumed: its messages may have any id
    assert store.afters[-1] == "" and p.held == 5
    newer = numbered(clock, 30)
    run(store.accept(newer, None, 0.0))
    p.work_stored(newer[0].id)
    assert store.afters[-1] == resumed[0].id and p.held == 6
    assert sorted(send_one_by_one(p, links["cheap"])) == sorted(m.id for m in first + later + late + resumed + newer)


def test_the_scheduled_are_looked_at_once_an_interval_and_those_released_are_claimed_from_the_first_id():
    """Looking for due scheduled messages before every claim was a statement (and a transaction)
    more for each kick at load; once a claim interval finds them as soon."""
    clock = Clock()
    clock.advance(1000)
    store = Recording()
    p, _, links, _ = make(clock, store=store, window=1)
    run(p.start())
    assert store.releases == 1
    soon = numbered(clock, 1)[0]
    soon.status, soon.send_at = Status.SCHEDULED, 1001.0
    run(store.accept([soon], None, 0.0))
    stored = numbered(clock, 5, 6)
    run(store.accept(stored, None, 0.0))
    p.work_stored(stored[0].id)
    assert store.releases == 1 and p.held == 2  # within the interval: not looked at again
    clock.advance(1.5)
    more = numbered(clock, 7)
    run(store.accept(more, None, 0.0))
    p.work_stored(more[0].id)
    assert store.afters[-1] == stored[1].id and p.held == 3
    clock.advance(0.5)  # the claim every interval: the scheduled message is due and released
    assert store.releases == 2 and store.afters[-1] == "" and p.held == 4
    assert sorted(send_one_by_one(p, links["cheap"])) == sorted(m.id for m in [soon, *stored, *more])


def test_an_operator_bound_here_since_the_last_claim_makes_the_next_one_start_from_the_first_id():
    """Messages parked for an operator that only another node held wait in the store with any id:
    once this node holds its binds, its next claim looks from the first id."""
    clock = Clock()
    clock.advance(1000)
    store = Recording()
    elsewhere = {"dear"}  # the operators whose binds only other nodes hold (smscore.cluster)
    p, _, links, _ = make(clock, store=store, window=1, elsewhere=elsewhere)
    run(p.start())
    ms = numbered(clock, 5, 6)
    run(store.accept(ms, None, 0.0))
    p.work_stored(ms[0].id)
    later = numbered(clock, 9)
    run(store.accept(later, None, 0.0))
    p.work_stored(later[0].id)
    assert store.afters[-1] == ms[1].id
    elsewhere.clear()
    p.work_stored(f"{99 * 16:024x}")
    assert store.afters[-1] == ""


def test_a_claim_that_failed_leaves_the_next_one_to_start_from_the_first_id():
    """What a failed claim was told of (a kick's first id) is not known to be claimed: the next
    claim starts over from the first id, and looks at the scheduled messages again."""
    clock = Clock()
    clock.advance(1000)
    store = Recording()
    p, _, links, _ = make(clock, store=store, window=1)
    run(p.start())
    first = numbered(clock, 10)
    run(store.accept(first, None, 0.0))
    p.work_stored(first[0].id)
    assert p.held == 1 and store.releases == 1
    claim = store.claim
    store.claim = lambda *args, **kw: fail(ConnectionError("server closed the connection"))
    later = numbered(clock, 20)
    run(store.accept(later, None, 0.0))
    p.work_stored(later[0].id)
    assert p.held == 1
    store.claim = claim
    p.work_stored(f"{30 * 16:024x}")
    assert store.afters[-1] == "" and store.releases == 2 and p.held == 2
