"""What goes wrong after a submit is answered is logged. A record the store fails is tried again
until it is stored, the submit holding its in-flight slot meanwhile (smscore.submit_outcomes); a
bug in the pipeline's own bookkeeping frees the slot. These callbacks log what they raise
themselves (no errback follows them, one callback fewer for every message): each test would fail
if an error were left in a Deferred (Twisted's "Unhandled error in Deferred", long after) or went
unlogged."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs
from twisted.internet.defer import fail
from twisted.internet.task import Clock

from connectors.api import SubmitError
from smscore.model import Status
from tests.unit.test_pipeline import make, message, run


@pytest.fixture
def sent():
    """A pipeline with one message out on ``cheap``: (pipeline, store, the link, the message,
    the Deferred the link answers)."""
    clock = Clock()
    clock.advance(1000)
    p, store, links, _ = make(clock)
    run(p.start())
    m = message(clock)
    run(p.accept([m]))
    [(_, answered)] = links["cheap"].submits
    return p, store, links["cheap"], m, answered


def _bookkeeping_errors(logs) -> list[dict]:
    return [e for e in logs if e["event"] == "submit bookkeeping failed"]


def _settled(p, answered) -> None:
    assert answered.called and answered.result is None  # nothing left in it to be "unhandled"
    assert p.inflight["cheap"] == 0 and not p._sending


def _retries(logs) -> list[tuple]:
    return [(e["message_id"], e["error"], e["retry_in"]) for e in logs
            if e["event"] == "storing a submit's outcome failed: trying again"]


def test_a_submit_whose_record_fails_keeps_its_slot_and_is_stored_when_the_store_is_back(sent):
    """The message went out: until its outcome is stored it holds its slot (SPEC §11's bound), and
    the record is tried again, 0.5 s, then 1 s later... (PostgreSQL restarted under the node)."""
    p, store, link, m, answered = sent
    record = store.record_submit
    store.record_submit = lambda *args, **kw: fail(RuntimeError("server closed the connection"))
    with capture_logs() as logs:
        link.accept()
        p.clock.advance(0.5)
    assert _retries(logs) == [(m.id, "server closed the connection", 0.5),
                              (m.id, "server closed the connection", 1.0)]
    assert p.inflight["cheap"] == 1 and m.id in p._sending
    assert store.messages[m.id].status is Status.QUEUED
    store.record_submit = record  # the store is back
    p.clock.advance(1.0)
    assert store.messages[m.id].status is Status.SUBMITTED
    _settled(p, answered)


def test_a_stopped_pipeline_tries_no_more_and_leaves_the_message_held(sent):
    p, store, link, m, answered = sent
    tries = []
    store.record_submit = lambda *args, **kw: tries.append(args) or fail(RuntimeError("down"))
    link.accept()
    run(p.stop())
    p.clock.advance(60)
    assert len(tries) == 1 and not p.clock.getDelayedCalls()
    assert store.messages[m.id].status is Status.QUEUED  # a restart takes it back


def test_a_submit_whose_record_raises_is_logged(sent):
    p, store, link, m, answered = sent

    def broken(*args, **kw):
        raise RuntimeError("a store bug")

    store.record_submit = broken
    with capture_logs() as logs:
        link.accept()
    [entry] = _bookkeeping_errors(logs)
    assert (entry["message_id"], entry["error"]) == (m.id, "a store bug")
    assert answered.called and answered.result is None


def test_a_bug_after_the_submit_was_stored_is_logged_and_the_slot_is_free(sent):
    p, store, link, m, answered = sent

    def broken(transitions, held=False):
        raise ZeroDivisionError("a pipeline bug")

    p._after = broken
    with capture_logs() as logs:
        link.accept()
    [entry] = _bookkeeping_errors(logs)
    assert (entry["message_id"], entry["error"]) == (m.id, "a pipeline bug")
    assert store.messages[m.id].status is Status.SUBMITTED
    _settled(p, answered)


def test_a_refused_submit_whose_record_fails_is_stored_when_the_store_is_back(sent):
    p, store, link, m, answered = sent
    record = store.record_submit_failed
    store.record_submit_failed = lambda *args, **kw: fail(RuntimeError("disk full"))
    with capture_logs() as logs:
        link.refuse(SubmitError.PERMANENT, "ESME_RINVDSTADR")
    assert _retries(logs) == [(m.id, "disk full", 0.5)] and p.inflight["cheap"] == 1
    store.record_submit_failed = record
    p.clock.advance(0.5)
    assert [e.status for e in store.messages[m.id].events][:3] == [Status.QUEUED, Status.FAILED, Status.QUEUED]
    assert answered.called and answered.result is None
    assert p.inflight["cheap"] == 0 and p.inflight["dear"] == 1  # cheap's slot free; on to the next operator


def test_a_bug_in_the_bookkeeping_of_a_refusal_is_logged(sent):
    p, store, link, m, answered = sent

    def broken(labels):
        raise ZeroDivisionError("a metrics bug")

    p.metrics.operator_attempts.inc = broken
    with capture_logs() as logs:
        link.refuse(SubmitError.PERMANENT, "ESME_RINVDSTADR")
    [entry] = _bookkeeping_errors(logs)
    assert (entry["message_id"], entry["error"]) == (m.id, "a metrics bug")
    assert answered.called and answered.result is None


def test_a_receipt_no_message_has_the_id_of_is_held_and_said_once():
    from tests.store_contract import receipt

    clock = Clock()
    clock.advance(1000)
    p, store, _, _ = make(clock)
    with capture_logs() as logs:
        run(p.receipt_received(receipt("feedbeef")))
    assert [(e["event"], e["smsc_message_id"], e["stat"]) for e in logs] == [
        ("receipt held: no message has its SMSC id yet", "feedbeef", "DELIVRD")]
    assert len(store.orphans) == 1
