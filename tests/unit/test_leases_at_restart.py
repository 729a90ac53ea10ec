"""SPEC §10, §15: a restarted node takes back at once every lease it held, push jobs included,
whichever of its processes held them: the number of its processes may have changed. The pure
naming (``policies.leases``), then the ``PushWorker`` and the ESME deliveries (``SmppDeliveries``)
started on an in-memory store whose jobs an earlier run of the node holds; a ``Clock``, no socket.
Before the fix a node restarted with another number of processes claimed only under its own
process's name, and the jobs waited the whole lease."""

from __future__ import annotations

import pytest
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from connectors.smpp.outbox import ACKNOWLEDGED
from policies.leases import given_back_at_start, node_of, of_node, process_owner, pushing_owners
from smscore.customer_smpp import SmppDeliveries
from smscore.model import SMPP_TARGET, Event, Status
from smscore.store.memory import MemoryStore
from tests.store_contract import make_message
from tests.unit.test_push_worker import NOW, Rig

LEASE_END = NOW + 90.0  # what an earlier run's claim left: far past anything these tests wait


# --- the names ---------------------------------------------------------------------------------
def test_lease_owners_of_a_nodes_processes():
    assert process_owner("gw1", None, True) == "gw1"
    assert process_owner("gw1", 0, True) == "gw1"
    assert process_owner("gw1", 2, False) == "gw1/2"
    assert pushing_owners("gw1", 1) == ("gw1",)
    assert pushing_owners("gw1", 3) == ("gw1/1", "gw1/2")
    # what a process's log lines call its node (push lines said "gw1/1" where the rest say "gw1")
    assert [node_of(process_owner("gw1", i, i == 0)) for i in (None, 0, 1, 2)] == ["gw1"] * 4


@pytest.mark.parametrize("owner, mine", [
    ("gw1", True), ("gw1/1", True), ("gw1/12", True),
    ("gw10", False), ("gw10/1", False), ("gw1x/1", False), ("gw", False), ("", False), (None, False),
])
def test_which_owners_are_a_nodes(owner, mine):
    assert of_node(owner, "gw1") is mine


def test_a_starting_process_gives_back_its_nodes_leases_but_not_its_running_siblings():
    keep = ["gw1/2"]  # API worker 1 starts; worker 2 runs
    assert given_back_at_start("gw1/1", "gw1", keep)  # its own earlier run's
    assert given_back_at_start("gw1", "gw1", keep)  # a one-process run's
    assert given_back_at_start("gw1/3", "gw1", keep)  # a four-process run's
    assert not given_back_at_start("gw1/2", "gw1", keep)
    assert not given_back_at_start("gw10", "gw1", keep)


# --- the push worker ---------------------------------------------------------------------------
def _held_callbacks(rig: Rig, owners: list[str]) -> dict[str, str]:
    """One status callback per owner, held by that owner's claim (an earlier run of the node, or
    a process running now): message id by owner."""
    held = {}
    for owner in owners:
        [m] = rig.messages(1)
        rig.submitted(m)
        [job] = rig.store.claim_push_jobs(owner, NOW, LEASE_END, 1).result
        assert job.subject == m.id
        held[owner] = m.id
    return held


@pytest.mark.parametrize("before", ["gw1", "gw1/1", "gw1/3"])
def test_a_node_of_one_process_pushes_at_once_what_its_earlier_processes_held(before):
    """Measured before the fix: a node of two processes restarted with one (jobs held by ``gw1/1``)
    pushed them 28.5 s after its restart, the lease; with as many processes as before, at once."""
    rig = Rig(batch=1)
    held = _held_callbacks(rig, [before, "gw10", "gw2"])
    assert rig.worker.start().called
    rig.net.flush()
    assert rig.posts() == [[("submitted", held[before])]]
    assert {j.subject for j in rig.store.claim_push_jobs("gw3", LEASE_END + 1, LEASE_END + 60, 10).result} == {
        held["gw10"], held["gw2"]}  # other nodes' jobs waited for their leases


def test_an_api_worker_takes_back_the_nodes_earlier_jobs_but_not_what_its_sibling_holds_now():
    """1 → 3 processes: API worker 1 starts while API worker 2 already claimed. Worker 1 pushes
    what the one process of the earlier run held, and its own earlier run's, not worker 2's."""
    rig = Rig(batch=1)
    rig.worker.node, rig.worker.family, rig.worker.siblings = "gw1/1", "gw1", ("gw1/2",)
    held = _held_callbacks(rig, ["gw1", "gw1/1", "gw1/2"])
    rig.worker.start()
    rig.net.flush()
    assert sorted(rig.posts()) == sorted([[("submitted", held["gw1"])], [("submitted", held["gw1/1"])]])
    [left] = rig.pending()
    assert left.subject == held["gw1/2"]


def test_no_claim_while_the_earlier_jobs_are_given_back():
    """A claim made while the give-back is on its way would be given back with it (and pushed by
    another node too): kicks wait for it; the loop claims as soon as it is done."""
    rig = Rig(batch=1)
    release = Deferred()
    rig.store.release_push_jobs = lambda node, keep=(), smpp=False: release
    started = rig.worker.start()
    rig.kick()
    assert rig.worker.claims == 0 and not started.called
    release.callback(0)
    assert started.called and rig.worker.claims == 1


# --- deliveries to customers' ESMEs ------------------------------------------------------------
class Receivers:
    """The SMPP server as ``SmppDeliveries`` sees it: one receiver of ``acme``, with room."""

    def __init__(self) -> None:
        self.delivered: list = []

    def sessions(self):
        return [type("Session", (), {"account": "acme", "receives": True})()]

    def capacity(self, account: str) -> int:
        return 10

    def deliver(self, account: str, item, then, arg=None) -> None:
        self.delivered.append(item)
        then(ACKNOWLEDGED, arg)


def _receipt_held_by(store: MemoryStore, owner: str) -> str:
    m = make_message(at=NOW, callback_url=SMPP_TARGET, callback_statuses="final")
    m.status = Status.STOPPED
    m.events = [Event(at=NOW, status=Status.STOPPED, detail="stop list", final=True)]
    store.accept([m], None, 0.0)
    [job] = store.claim_push_jobs(owner, NOW, LEASE_END, 1, smpp=True).result
    assert job.subject == m.id
    return m.id


@pytest.mark.parametrize("before, now", [("gw1/1", "gw1"), ("gw1", "gw1/1"), ("gw1/1", "gw1/1")])
def test_receipts_for_esmes_held_before_a_restart_go_at_once(before, now):
    """The process serving ESMEs is ``gw1`` alone, ``gw1/1`` with API workers: a restart, with
    another number of processes or the same, sent the receipts it held after their lease only."""
    clock = Clock()
    clock.advance(NOW + 1)
    store = MemoryStore()
    mine, other = _receipt_held_by(store, before), _receipt_held_by(store, "gw10/1")
    server = Receivers()
    deliveries = SmppDeliveries(store=store, server=server, clock=clock, node=now, lease=30.0, family="gw1")
    assert deliveries.start().called
    clock.advance(0)  # the end of the turn: the delivery's finish is stored
    assert len(server.delivered) == 1
    assert [j.subject for j in store.pending_push_jobs().result] == [other]
    assert mine != other
    deliveries.stop()
