"""``SmppDeliveries`` (receipts to customers' ESMEs) when a step on the way fails: building or
handing over the deliver_sm, or storing how it ended. Each is logged as ``receipt for an ESME
failed`` and the job is free to be taken again. The callbacks log what they raise themselves
(the server is handed a plain callback, no Deferred), so these tests would fail if one of them
let an error through."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs
from twisted.internet.defer import fail
from twisted.internet.task import Clock

from connectors.smpp.outbox import ACKNOWLEDGED
from smscore.customer_smpp import SmppDeliveries
from smscore.model import SMPP_TARGET, Event, Status
from smscore.store.memory import MemoryStore
from tests.store_contract import make_message

NOW = 1_700_000_000.0


class Receivers:
    """The SMPP server as ``SmppDeliveries`` sees it: one receiver of ``acme`` that acknowledges
    every deliver_sm at once; ``delivered`` are the items it was handed. What ``then`` raises is
    raised here (the real outbox logs it as "outbox error"): the test fails."""

    def __init__(self) -> None:
        self.delivered: list = []
        self.broken = False

    def sessions(self):
        return [type("Session", (), {"account": "acme", "receives": True})()]

    def capacity(self, account: str) -> int:
        return 10

    def deliver(self, account: str, item, then, arg=None) -> None:
        if self.broken:
            raise ZeroDivisionError("a server bug")
        self.delivered.append(item)
        then(ACKNOWLEDGED, arg)


@pytest.fixture
def rig():
    clock = Clock()
    clock.advance(NOW + 1)
    store = MemoryStore()
    m = make_message(at=NOW, callback_url=SMPP_TARGET, callback_statuses="final")
    m.status = Status.STOPPED
    m.events = [Event(at=NOW, status=Status.STOPPED, detail="stop list", final=True)]
    store.accept([m], None, 0.0)
    server = Receivers()
    deliveries = SmppDeliveries(store=store, server=server, clock=clock, node="gw1", lease=30.0)
    yield store, server, deliveries, m.id
    deliveries.stop()


def _failures(logs) -> list[dict]:
    return [e for e in logs if e["event"] == "receipt for an ESME failed"]


def test_a_receipt_acknowledged_ends_its_job(rig):
    store, server, deliveries, _ = rig
    with capture_logs() as logs:
        assert deliveries.start().called
    assert len(server.delivered) == 1
    assert store.pending_push_jobs().result == [] and not deliveries._sending and _failures(logs) == []


def test_a_finish_that_raises_is_logged_and_the_job_is_free_again(rig):
    store, server, deliveries, _ = rig

    def broken(*args, **kw):
        raise ZeroDivisionError("a store bug")

    store.finish_pushes = broken
    with capture_logs() as logs:
        deliveries.start()
    [entry] = _failures(logs)
    assert entry["log_level"] == "error" and entry["error"] == "a store bug"
    assert not deliveries._sending and len(server.delivered) == 1


def test_a_deliver_sm_that_cannot_be_handed_over_is_logged_and_the_job_is_free_again(rig):
    store, server, deliveries, _ = rig
    server.broken = True
    with capture_logs() as logs:
        deliveries.start()
    [entry] = _failures(logs)
    assert entry["error"] == "a server bug" and not deliveries._sending


def test_a_job_stored_before_receipts_carried_their_text_reads_the_message_and_logs_a_failed_read(rig):
    store, server, deliveries, _ = rig
    [job] = store.pending_push_jobs().result
    del job.body["esme"]  # as stored before receipts carried it
    with capture_logs() as logs:
        deliveries.start()
    assert len(server.delivered) == 1 and store.pending_push_jobs().result == [] and _failures(logs) == []

    m = make_message(at=NOW + 1, callback_url=SMPP_TARGET, callback_statuses="final")
    m.status = Status.STOPPED
    m.events = [Event(at=NOW + 1, status=Status.STOPPED, detail="stop list", final=True)]
    store.accept([m], None, 0.0)
    [job] = store.pending_push_jobs().result
    del job.body["esme"]
    store.get = lambda message_id: fail(RuntimeError("gone"))
    with capture_logs() as logs:
        deliveries.kick()
    [entry] = _failures(logs)
    assert entry["error"] == "gone" and not deliveries._sending and len(server.delivered) == 1
