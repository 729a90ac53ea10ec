"""The pipeline's clock at work (``smscore.pipeline``), continued from test_pipeline.py (its rig):
what ``smsgw_submit_seconds`` times, and a message whose validity ends while it waits."""

from __future__ import annotations

from twisted.internet.task import Clock

from connectors.api import SubmitError
from smscore.model import Status
from tests.unit.test_pipeline import make, message, run


def test_every_answered_submit_is_timed_a_refusal_included_and_an_unanswered_one_is_not():
    """SPEC §9 ``submit_seconds`` (submit -> resp): throttled answers were left out (21 PDUs
    answered, 6 timed)."""
    clock = Clock()
    p, store, links, metrics = make(clock)
    run(p.start())
    run(p.accept([message(clock)]))
    count = lambda: metrics.registry.get_sample_value("smsgw_submit_seconds_count")  # noqa: E731
    for error, timed in ((SubmitError(SubmitError.THROTTLED, "ESME_RTHROTTLED", answered=True), 1),
                         (SubmitError(SubmitError.TRANSIENT, "response timeout", maybe_sent=True), 1),
                         (SubmitError(SubmitError.TRANSIENT, "ESME_RSYSERR", answered=True), 2)):
        p.link_ready("cheap")  # sent again (the first was sent at its acceptance)
        _, d = links["cheap"].submits.pop(0)
        links["cheap"].outstanding -= 1
        clock.advance(0.5)
        d.errback(error)
        assert count() == timed, error
    assert metrics.registry.get_sample_value("smsgw_submit_seconds_sum") == 1.0  # two of 0.5 s


def test_a_message_whose_validity_ends_while_it_waits_expires_then_not_when_its_operator_binds():
    """SPEC §13 ``validity_period``: ``expired`` if not delivered by then. A message waiting for an
    unbound operator expired only once the operator bound (60 s after its 10 s validity)."""
    clock = Clock()
    p, store, links, metrics = make(clock)
    for link in links.values():
        link.up = False
    run(p.start())
    short, long = message(clock, "46701234567"), message(clock, "46701234568")
    short.expires_at, long.expires_at = clock.seconds() + 10, clock.seconds() + 3600
    run(p.accept([short, long]))
    clock.advance(9)
    assert store.messages[short.id].status is Status.QUEUED and p.held == 2
    clock.advance(2)  # past its validity, at the next sweep
    assert store.messages[short.id].status is Status.EXPIRED
    assert store.messages[short.id].events[-1].detail == "validity period ended before submission"
    assert store.messages[long.id].status is Status.QUEUED and p.held == 1
    assert metrics.registry.get_sample_value("smsgw_messages_total", {"status": "expired", "operator": ""}) == 1
    links["cheap"].up = True
    p.link_ready("cheap")
    assert [r.message_id for r, _ in links["cheap"].submits] == [long.id]
    run(p.stop())


def test_outcomes_waiting_for_the_store_are_written_as_soon_as_it_answers_again():
    """An audit on PostgreSQL: after a 20 s outage a node sent nothing for 11 s more, its window
    held by outcomes whose next try had backed off to 16 s."""
    from twisted.internet.defer import fail

    from tests.unit.test_claims_outage import Reachable

    class Down(Reachable):
        def record_submit(self, *args, **kw):
            return fail(ConnectionError("server closed the connection")) if self.down else \
                super().record_submit(*args, **kw)

    clock = Clock()
    p, store, links, _ = make(clock, store=Down())
    run(p.start())
    m = message(clock)
    run(p.accept([m]))
    store.down = True
    links["cheap"].accept()  # the SMSC took it; its outcome cannot be stored
    for _ in range(200):  # 20 s: the outcome's next try backs off to 16 s
        clock.advance(0.1)
    assert store.messages[m.id].status is Status.QUEUED
    store.down = False
    for _ in range(25):  # the next claim (every 2 s) finds the store back
        clock.advance(0.1)
    assert store.messages[m.id].status is Status.SUBMITTED
    run(p.stop())
