"""A node holding messages in memory learns at its lease renewal what ops or customers changed
through another node (SPEC §5 paused, §4 DELETE, §10/§11 any node answers): it drops them and
never submits them; a claim never gives it a message it holds already; a submit that raced the
change is stored as what happened. One pipeline on a MemoryStore, driven by a Clock; the "other
node" is the store changed directly, as another node's API would change it."""

from __future__ import annotations

from twisted.internet.task import Clock

from smscore.model import Status
from tests.fakes import FakeLink
from tests.unit.test_pipeline import make, message, run


class CountingLink(FakeLink):
    """A FakeLink that remembers every submit it was given (``sent``: message ids, in order)."""

    def __init__(self, name: str, window: int = 10) -> None:
        super().__init__(name, window=window)
        self.sent: list[str] = []

    def submit(self, request):
        self.sent.append(request.message_id)
        return super().submit(request)


def _node_with_a_queue(n: int = 4):
    """gw1 holding ``n`` messages: the first on its way (window 1), the others waiting."""
    clock = Clock()
    clock.advance(1000)
    p, store, _, _ = make(clock, links=(), others_alive=True)  # another node shares the store
    link = CountingLink("cheap", window=1)
    p.add_link(link)
    run(p.start())
    ms = [message(clock, to=f"4670123450{i}") for i in range(n)]
    run(p.accept(ms))
    assert link.sent == [ms[0].id] and p.held == n
    return clock, p, store, link, ms


def test_the_renewal_interval_is_at_most_two_seconds_with_other_nodes_and_a_third_of_the_lease_alone():
    clock = Clock()
    clock.advance(1000)
    p, store, *_ = make(clock, others_alive=True)
    assert p.claims.renewal == min(p.lease / 3, 2.0) == 2.0
    alone, alone_store, *_ = make(Clock(), others_alive=False)
    renewals = []
    for each, into in ((p, store), (alone, alone_store)):
        asked = []
        real = into.renew
        into.renew = lambda owner, until, held=(), real=real, asked=asked, **kw: (asked.append(list(held)),
                                                                                 real(owner, until, held, **kw))[1]
        renewals.append(asked)
        run(each.start())
    for _ in range(15):  # 30 s
        clock.advance(2)
        alone.clock.advance(2)
    shared, single = renewals
    assert len(shared) == 15 and len(single) in (2, 3)  # every 2 s; alone every third of the 30 s lease
    assert single == [[]] * len(single)  # alone, nothing held is asked about: every change comes through it


def test_messages_paused_through_another_node_are_dropped_at_the_next_renewal_and_sent_once_after_resume():
    clock, p, store, link, ms = _node_with_a_queue()
    paused = run(store.set_paused("acme", True, clock.seconds()))  # another node's POST .../pause
    assert sorted(m.id for m in paused) == sorted(m.id for m in ms)  # the one on its way too: it raced
    clock.advance(p.claims.renewal)  # the renewal says so: dropped, never submitted
    assert p.held == 1 and [m.id for q in p.queues.values() for m in q] == []
    key = link.accept()  # the one on its way frees the window: nothing else goes
    assert link.sent == [ms[0].id]
    assert store.messages[ms[0].id].status is Status.SUBMITTED  # it went out: not paused
    assert {store.messages[m.id].status for m in ms[1:]} == {Status.PAUSED}
    run(p.receipt_received(link.receipt(key)))
    assert p.held == 0
    run(store.set_paused("acme", False, clock.seconds()))  # resumed: claimed again, each sent once
    clock.advance(p.claims.interval)
    for _ in ms[1:]:
        run(p.receipt_received(link.receipt(link.accept())))
    assert link.sent == [m.id for m in ms]
    assert {store.messages[m.id].status for m in ms} == {Status.DELIVERED} and p.held == 0


def test_a_message_cancelled_through_another_node_is_dropped_at_the_next_renewal():
    clock, p, store, link, ms = _node_with_a_queue(3)
    run(store.act(ms[2].id, "cancel", clock.seconds(), "cancelled by the customer", account="acme"))
    clock.advance(p.claims.renewal)
    link.accept()
    link.accept()
    assert link.sent == [ms[0].id, ms[1].id] and p.held == 0
    assert store.messages[ms[2].id].status is Status.STOPPED


def test_a_submit_that_raced_a_pause_is_stored_as_submitted_and_not_sent_again_on_resume():
    """Submitted before this node's renewal said it was paused: it went out, so it is
    ``submitted`` (left ``paused``, a resume would send it twice)."""
    clock, p, store, link, ms = _node_with_a_queue(2)
    run(store.set_paused("acme", True, clock.seconds()))
    key = link.accept()  # the window frees before the renewal: the second goes out
    assert link.sent == [ms[0].id, ms[1].id]
    link.accept()
    assert store.messages[ms[1].id].status is Status.SUBMITTED
    run(p.receipt_received(link.receipt(key)))
    run(store.set_paused("acme", False, clock.seconds()))
    clock.advance(p.claims.interval)
    assert link.sent == [ms[0].id, ms[1].id] and p.held == 0


def test_a_claim_never_takes_a_message_this_node_holds_already():
    """Paused and resumed through another node before this node's renewal: the message is
    unowned again and this node's next claim finds it, while its copy still waits here."""
    clock, p, store, link, ms = _node_with_a_queue(3)
    run(store.set_paused("acme", True, clock.seconds()))
    run(store.set_paused("acme", False, clock.seconds()))
    run(p.claims.more())
    assert p.held == 3 and sorted(m.id for q in p.queues.values() for m in q) == sorted(m.id for m in ms[1:])
    clock.advance(p.claims.renewal)  # claimed by this node again: still its own
    assert p.held == 3
    for _ in ms:
        link.accept()
    assert link.sent == [m.id for m in ms] and p.held == 0
