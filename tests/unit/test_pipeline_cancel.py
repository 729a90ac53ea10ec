"""The pipeline and cancels (SPEC §4): a message on its way is past cancelling; one waiting in
memory is held back while its cancel is stored, and goes on if the cancel is refused."""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from smscore.model import Status
from tests.unit.test_pipeline import make, message, run


def test_a_cancel_while_the_message_is_being_submitted_is_refused_and_changes_nothing():
    """SPEC §4: 409 once submitted. A message whose submit_sm is out (its outcome not stored) is
    past cancelling: the cancel fails at once and the store is not changed."""
    from smscore.store.rules import BeingSubmitted, NotFound

    clock = Clock()
    clock.advance(1000)
    p, store, links, _ = make(clock)
    run(p.start())
    m = message(clock)
    run(p.accept([m]))
    assert [r.message_id for r, _ in links["cheap"].submits] == [m.id]  # on its way
    refused = p.cancel(m.id, "acme")
    failures = []
    refused.addErrback(failures.append)
    assert failures[0].check(BeingSubmitted)
    assert store.messages[m.id].status is Status.QUEUED
    key = links["cheap"].accept()
    run(p.receipt_received(links["cheap"].receipt(key)))
    assert store.messages[m.id].status is Status.DELIVERED and p.held == 0
    # Another account's cancel of it learns nothing: the store answers (not found) as for any id.
    failures.clear()
    p.cancel(m.id, "globex").addErrback(failures.append)
    assert failures[0].check(NotFound)


def _a_cancel_being_stored_while_the_window_frees():
    """Two messages at window 1: the second waits; its cancel is being stored (the returned
    Deferred ``stored`` says how it ends) when the first one's response frees the window."""
    clock = Clock()
    clock.advance(1000)
    p, store, links, _ = make(clock, window=1)
    run(p.start())
    first, waiting = message(clock), message(clock, to="46707654321")
    run(p.accept([first, waiting]))
    assert [r.message_id for r, _ in links["cheap"].submits] == [first.id]  # the window is full
    stored: Deferred = Deferred()
    store.act = lambda *args, **kwargs: stored  # the store's answer comes when the test says
    cancel = p.cancel(waiting.id, "acme")
    links["cheap"].accept()
    assert links["cheap"].submits == []  # the waiting one did not go
    return p, links["cheap"], waiting, stored, cancel


def test_a_message_waiting_in_memory_is_kept_from_going_while_its_cancel_is_stored():
    p, link, waiting, stored, cancelled = _a_cancel_being_stored_while_the_window_frees()
    stored.callback(waiting)
    assert run(cancelled) is waiting
    assert link.submits == [] and p.held == 0 and all(not q for q in p.queues.values())


def test_a_message_whose_cancel_is_refused_goes_on():
    p, link, waiting, stored, refused = _a_cancel_being_stored_while_the_window_frees()
    stored.errback(RuntimeError("the store is down"))
    refused.addErrback(lambda f: None)
    assert [r.message_id for r, _ in link.submits] == [waiting.id]
    assert p.held == 1
