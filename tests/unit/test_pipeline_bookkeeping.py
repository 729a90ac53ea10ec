"""What goes wrong after a submit is answered is logged, and the submit's in-flight slot is freed,
whichever step fails: the store's record, the pipeline's own bookkeeping, or the record of a
refused submit. These callbacks log what they raise themselves (no errback follows them, one
callback fewer for every message): each test would fail if an error were left in a Deferred
(Twisted's "Unhandled error in Deferred", long after) or went unlogged."""

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


def test_a_submit_whose_record_fails_is_logged_and_frees_its_slot(sent):
    p, store, link, m, answered = sent
    store.record_submit = lambda *args, **kw: fail(RuntimeError("disk full"))
    with capture_logs() as logs:
        link.accept()
    [entry] = _bookkeeping_errors(logs)
    assert (entry["log_level"], entry["message_id"], entry["error"]) == ("error", m.id, "disk full")
    _settled(p, answered)


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


def test_a_refused_submit_whose_record_fails_is_logged_and_frees_its_slot(sent):
    p, store, link, m, answered = sent
    store.record_submit_failed = lambda *args, **kw: fail(RuntimeError("disk full"))
    with capture_logs() as logs:
        link.refuse(SubmitError.PERMANENT, "ESME_RINVDSTADR")
    [entry] = _bookkeeping_errors(logs)
    assert (entry["message_id"], entry["error"]) == (m.id, "disk full")
    _settled(p, answered)


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
