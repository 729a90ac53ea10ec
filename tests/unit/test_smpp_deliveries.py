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

from connectors.smpp.outbox import ACKNOWLEDGED, DeliveryResult
from smscore.customer_smpp import RESEND_AFTER, SmppDeliveries
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
        deliveries.clock.advance(0)  # the end of the turn: what ended is stored
    assert len(server.delivered) == 1
    assert store.pending_push_jobs().result == [] and not deliveries._sending and _failures(logs) == []


def test_a_finish_that_raises_is_logged_and_the_job_is_free_again(rig):
    store, server, deliveries, _ = rig

    def broken(*args, **kw):
        raise ZeroDivisionError("a store bug")

    store.finish_pushes = broken
    with capture_logs() as logs:
        deliveries.start()
        deliveries.clock.advance(0)
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
        deliveries.clock.advance(0)
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


# --- the deliveries that end in one turn, stored together ------------------------------------------
class Waiting(Receivers):
    """A server whose deliveries end when the test says: ``waiting`` holds (item, then, arg)."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting: list = []

    def deliver(self, account: str, item, then, arg=None) -> None:
        self.waiting.append((item, then, arg))


def _counting(store: MemoryStore) -> tuple[list[dict], list[int]]:
    """The store's finish_pushes calls (their keywords) and claim_push_jobs calls, as they come."""
    finishes, claims = [], []
    finish, claim = store.finish_pushes, store.claim_push_jobs

    def counted_finish(at, **kw):
        finishes.append(kw)
        return finish(at, **kw)

    def counted_claim(*args, **kw):
        claims.append(len(finishes))  # how many finishes were queued before it
        return claim(*args, **kw)

    store.finish_pushes, store.claim_push_jobs = counted_finish, counted_claim
    return finishes, claims


@pytest.fixture
def five():
    clock = Clock()
    clock.advance(NOW + 1)
    store = MemoryStore()
    for _ in range(5):
        m = make_message(at=NOW, callback_url=SMPP_TARGET, callback_statuses="final")
        m.status = Status.STOPPED
        m.events = [Event(at=NOW, status=Status.STOPPED, detail="stop list", final=True)]
        store.accept([m], None, 0.0)
    finishes, claims = _counting(store)
    server = Waiting()
    deliveries = SmppDeliveries(store=store, server=server, clock=clock, node="gw1", lease=30.0)
    deliveries.start()
    assert len(server.waiting) == 5 and claims == [0]
    yield clock, store, server, deliveries, finishes, claims
    deliveries.stop()


def test_the_deliveries_that_end_in_one_turn_are_stored_together_then_claimed_after(five):
    clock, store, server, deliveries, finishes, claims = five
    jobs = [arg for _, _, arg in server.waiting]
    ids = [job.id for job in jobs]
    outcomes = [ACKNOWLEDGED, DeliveryResult(False, "timeout"), DeliveryResult(False, "status ESME_RSYSERR"),
                DeliveryResult(False, "status ESME_RX_T_APPN"), DeliveryResult(False, "status ESME_RSYSERR")]
    for (_, then, job), outcome in zip(server.waiting, outcomes):
        then(outcome, job)
    # Nothing stored yet, and no job claimable again by this node until its finish is queued.
    assert finishes == [] and deliveries._sending == set(ids) and claims == [0]
    clock.advance(0)
    retry_at = NOW + 1 + RESEND_AFTER
    assert finishes == [
        {"done": [ids[0]], "mo_events": [], "release": [ids[1]], "owner": "gw1"},
        {"retry": [ids[2], ids[4]], "retry_at": retry_at, "error": "status ESME_RSYSERR"},
        {"retry": [ids[3]], "retry_at": retry_at, "error": "status ESME_RX_T_APPN"},
    ]
    assert claims == [0, 3]  # one claim, after the three finishes: it takes the job given back
    assert [arg.id for _, _, arg in server.waiting[5:]] == [ids[1]] and deliveries._sending == {ids[1]}
    left = {job.id: job for job in store.pending_push_jobs().result}
    assert sorted(left) == [ids[1], ids[2], ids[3], ids[4]] and left[ids[2]].attempts == 1


def test_stopping_stores_what_ended_at_once(five):
    clock, store, server, deliveries, finishes, claims = five
    (_, then0, job0), (_, then1, job1) = server.waiting[:2]
    then0(ACKNOWLEDGED, job0)
    deliveries.stop()  # the store closes after the server: nothing waits for a turn
    assert finishes == [{"done": [job0.id], "mo_events": [], "release": [], "owner": "gw1"}]
    then1(DeliveryResult(False, "server stopping"), job1)  # the server fails what waited as it stops
    assert finishes[1] == {"retry": [job1.id], "retry_at": NOW + 1 + RESEND_AFTER, "error": "server stopping"}
    assert clock.getDelayedCalls() == []  # polling stopped, and no store of what ended left waiting


@pytest.mark.parametrize("error, err", [("rejected by cheap, err=069 (status 0x45)", b"err:069"),
                                        (None, b"err:000"), ("no code in it", b"err:000"),
                                        # a submit the operator refused: by name, or its code without one
                                        ("ESME_RINVDSTADR", b"err:011"), ("0x00000070", b"err:112"),
                                        ("0x00000401", b"err:999"), ("0xZZZZZZZZ", b"err:000")])
def test_a_receipt_carries_the_operators_error_code(error, err):
    clock = Clock()
    clock.advance(NOW + 1)
    store = MemoryStore()
    m = make_message(at=NOW, callback_url=SMPP_TARGET, callback_statuses="final")
    m.status, m.error = Status.FAILED, error
    m.events = [Event(at=NOW, status=Status.FAILED, detail="rejected", final=True)]
    store.accept([m], None, 0.0)
    server = Receivers()
    deliveries = SmppDeliveries(store=store, server=server, clock=clock, node="gw1", lease=30.0)
    deliveries.start()
    [item] = server.delivered
    assert f" stat:UNDELIV {err.decode()} ".encode() in item.params["short_message"]
    deliveries.stop()
