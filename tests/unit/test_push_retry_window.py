"""``[push] retry_for`` counts from each push's own first attempt (SPEC §3: "exponential backoff
from 5 s, capped at 10 min, for this long"; docs/configuration.md: "for this long after their first
attempt"), for every kind of push the ``PushWorker`` delivers: status callbacks one per POST or in
batches, MO pushes and balance notices.

It counted from when the job was queued, so a job that waited for its turn (behind an earlier job
of the same message that kept failing, or while no node ran) had used its window up before its
first attempt, and was dropped after that one attempt. The ``Rig`` of ``test_push_worker``: a
``Clock``, an in-memory store and the real ``Pusher`` to a backend that answers 503."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace

from connectors.api import MoFacts
from smscore.mo import mo_push_body
from tests.store_contract import mo_routing
from tests.unit.test_push_worker import NOW, Rig


class TimedRig(Rig):
    """The rig, noting when the backend got each POST."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.worker.interval = 0.125  # the periodic claim at each step of ``run``
        self.times: list[float] = []
        render = self.backend.render

        def timed(request):
            self.times.append(self.clock.seconds() - NOW)
            return render(request)

        self.backend.render = timed

    def run(self, seconds: float) -> list[tuple[float, dict]]:
        """Run the worker for ``seconds`` in steps of 1/8 s (exact in binary: no drift), with its
        periodic claim each step (its interval: each retry goes at the step it is due); every POST
        so far as (seconds after NOW when the backend got it, body)."""
        for _ in range(round(seconds * 8)):
            self.tick()
            self.advance(0.125)
        return [(at, r.json()) for at, r in zip(self.times, self.backend.requests, strict=True)]


def test_an_event_held_behind_a_failing_one_gets_its_whole_window():
    """The auditor's case: the backend fails everything; ``submitted`` is tried at 0, 5 and at the
    end of its 12 s window, then dropped; ``delivered``, held back behind it until then, is tried at
    12, 17 and 24 (12 s after its own first attempt). It was posted once at 12 and dropped at once."""
    rig = TimedRig(batch=1, retry_for="12s")
    [m] = rig.messages(1)
    rig.submitted(m)
    rig.delivered(m)
    rig.backend.failing(503)
    tried = rig.run(40)
    assert [(round(at), body["status"]) for at, body in tried] == [
        (0, "submitted"), (5, "submitted"), (12, "submitted"), (12, "delivered"), (17, "delivered"),
        (24, "delivered")]
    assert rig.pending() == []


def test_in_a_retried_batch_each_event_keeps_its_own_window():
    """``submitted`` goes alone at 0.2 (lingered) and fails; ``delivered``, stored at 1, is held
    back and joins its retried batch at 5.2: its window starts there. At 12.2, the end of
    ``submitted``'s window, the batch is tried whole a last time; ``delivered`` goes on alone until
    17.2. (Counted from when it was queued, its window ended at 13.)"""
    rig = TimedRig(batch=3, retry_for="12s")
    [m] = rig.messages(1)
    rig.submitted(m)
    rig.backend.failing(503)
    rig.run(1)
    rig.delivered(m)
    tried = rig.run(30)
    assert [(round(at), [e["status"] for e in body["events"]]) for at, body in tried] == [
        (0, ["submitted"]), (5, ["submitted", "delivered"]), (12, ["submitted", "delivered"]),
        (17, ["delivered"])]
    assert rig.pending() == []


def _mo_routing(mo, spent):
    r = mo_routing(mo, spent, url="http://acme.example/mo")
    r.push.body = mo_push_body(mo)
    return r


def test_a_job_first_tried_late_is_retried_for_the_whole_window():
    """No node pushed for 30 s (the job waited in the store): its window starts at its first
    attempt, not when it was queued. A status callback, an MO push and a balance notice alike."""
    rig = TimedRig(batch=1, retry_for="12s")
    rig.worker.mo_router_source = lambda: SimpleNamespace(keyword_for=lambda to, keyword: None)
    rig.store.config_source = lambda: rig.config
    [m] = rig.messages(1)
    rig.submitted(m)
    mo = rig.store.store_mo(MoFacts("sim", "46701111111", "72550", "PIZZA large"), NOW, _mo_routing, "gw1",
                            NOW + 30).result
    rig.store.ensure_accounts({"acme": Decimal("1200")})
    rig.store.topup("acme", Decimal("-300"), NOW)  # 1200 -> 900: the notice for 1000
    assert sorted(j.kind for j in rig.pending()) == ["balance", "mo", "status"]
    rig.backend.failing(503)
    rig.clock.advance(30)
    tried = rig.run(30)
    kinds = {"status": [], "mo": [], "balance": []}
    for at, body in tried:
        kind = body.get("type") or ("status" if "status" in body else "mo")
        kinds[kind].append(round(at - 30))
    assert kinds == {"status": [0, 5, 12], "mo": [0, 5, 12], "balance": [0, 5, 12]}
    assert rig.pending() == []
    history = [(e.status, e.detail) for e in rig.store.get_mo(mo.id).result.events if e.status.startswith("push ")]
    assert history[-1] == ("push abandoned", "http 503 after 3 attempts")


def test_two_balance_notices_each_get_their_window():
    """Balance notices of an account go one after another (one subject): the second is held back
    while the first is retried, then gets a window of its own."""
    rig = TimedRig(batch=1, retry_for="12s")
    rig.store.config_source = lambda: rig.config
    rig.store.ensure_accounts({"acme": Decimal("1200")})
    rig.store.topup("acme", Decimal("-800"), NOW)  # 1200 -> 400: the notices for 1000 and 500
    rig.backend.failing(503)
    tried = [(round(at), body["threshold"]) for at, body in rig.run(40)]
    assert tried == [(0, 1000), (5, 1000), (12, 1000), (12, 500), (17, 500), (24, 500)]
    assert rig.pending() == []
