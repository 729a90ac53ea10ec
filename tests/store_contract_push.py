"""The store contract, continued: push jobs (status callbacks, MO pushes) queued with the changes
that make them, claimed in order per subject, finished one or a batch at a time; checked on every
store (see ``tests.store_contract``)."""

from __future__ import annotations

from connectors.api import ReceiptOutcome
from tests.store_contract import make_message, mo_routing, receipt, untried


async def check_push_jobs_retry_in_order_per_subject(store):
    from connectors.api import MoFacts

    a = await store.store_mo(MoFacts("op", "4670111", "72550", "A"), 1000.0, mo_routing, "gw1", 1030.0)
    b = await store.store_mo(MoFacts("op", "4670222", "72550", "B"), 1000.0, mo_routing, "gw1", 1030.0)
    jobs = await store.claim_push_jobs("gw1", 1000.0, 1060.0, 10)
    assert [j.subject for j in jobs] == [a.id, b.id]
    assert await store.claim_push_jobs("gw2", 1001.0, 1060.0, 10) == []  # leased
    await store.finish_pushes(1001.0, retry=[jobs[0].id], retry_at=1006.0, error="http 500",
                              mo_events=[(a.id, "push failed", "http 500")])
    await store.finish_pushes(1001.0, done=[jobs[1].id], mo_events=[(b.id, "pushed", "HTTP 200")])
    assert await store.claim_push_jobs("gw1", 1005.0, 1060.0, 10) == []
    [again] = await store.claim_push_jobs("gw1", 1006.0, 1060.0, 10)
    assert (again.subject, again.attempts) == (a.id, 1)
    assert [e.status for e in (await store.get_mo(a.id)).events][-1] == "push failed"
    assert [e.status for e in (await store.get_mo(b.id)).events][-1] == "pushed"


async def check_count_push_jobs_counts_http_pushes_by_kind_due_or_waiting_for_a_retry(store):
    from connectors.api import MoFacts

    store.untried = untried
    assert await store.count_push_jobs() == {}
    a = await store.store_mo(MoFacts("op", "4670111", "72550", "A"), 1000.0, mo_routing, "gw1", 1030.0)
    b = await store.store_mo(MoFacts("op", "4670222", "72550", "B"), 1000.0, mo_routing, "gw1", 1030.0)
    ja, jb = await store.claim_push_jobs("gw1", 1000.0, 1060.0, 10)
    assert (ja.subject, jb.subject) == (a.id, b.id)
    await store.finish_pushes(1001.0, retry=[ja.id], retry_at=1006.0, error="http 500")
    await store.finish_pushes(1001.0, done=[jb.id])
    # a status callback over HTTP counts; a receipt waiting for a customer's ESME (smpp) does not
    http, esme = (make_message(to=to, callback_url=url, callback_statuses="final")
                  for to, url in (("4670333", "http://backend/status"), ("4670444", "smpp")))
    await store.accept([http, esme], "gw1", 1e9)
    for m in (http, esme):
        await store.record_submit(m.id, "cheap", [m.id + "-k"], 1002.0)
        await store.apply_receipt(receipt(m.id + "-k"), 1003.0)
    assert await store.count_push_jobs() == {"mo": 1, "status": 1}


async def check_a_message_stopped_at_acceptance_over_smpp_gets_the_receipt_it_asked_for(store):
    """SPEC §13: submit_sm_resp carries no status, so an ESME that asked for receipts of final
    outcomes hears of a message the stop list ended at acceptance; the HTTP API's 202 says it."""
    from policies.callbacks import FINAL, FINAL_FAILURES
    from smscore.model import SMPP_TARGET, Event, Status

    def stopped(to, url, statuses):
        m = make_message(to=to, callback_url=url, callback_statuses=statuses)
        m.status = Status.STOPPED  # as the admission rules leave it (smscore.store.rules)
        m.events = [Event(at=1000.0, status=Status.STOPPED, detail="stop list", final=True)]
        return m

    every, failures, none = (stopped(f"467011100{i}", SMPP_TARGET, sel)
                             for i, sel in enumerate((FINAL, FINAL_FAILURES, "")))
    http = stopped("4670111009", "http://acme/status", "all")
    queued = make_message(to="4670111008", callback_url=SMPP_TARGET, callback_statuses=FINAL)
    await store.accept([every, failures, none, http, queued], "gw1", 1030.0)
    jobs = await store.pending_push_jobs()
    assert [(j.subject, j.url, j.body["status"], j.body["final"]) for j in jobs] == [
        (every.id, SMPP_TARGET, "stopped", True), (failures.id, SMPP_TARGET, "stopped", True)]
    assert jobs[0].body["esme"]["cancelled"] is False  # a REJECTD receipt, not DELETED
    events = (await store.get(every.id)).events
    assert [(e.status, e.detail) for e in events] == [(Status.STOPPED, "stop list")]
    assert jobs[0].body["event_id"] != jobs[1].body["event_id"]


async def check_status_changes_queue_callbacks_in_order_and_feed_pulls(store):
    store.status_callbacks_for = lambda m: ("http://acme/status", "all") if m.account == "acme" else None
    m = make_message()
    await store.accept([m], "gw1", 1030.0)
    assert await store.pending_push_jobs() == []  # the first status is in the 202 answer
    await store.record_submit(m.id, "cheap", ["k1"], 1001.0)
    await store.apply_receipt(receipt("k1"), 1002.0)
    jobs = await store.pending_push_jobs()
    assert [(j.kind, j.url, j.body["status"]) for j in jobs] == [
        ("status", "http://acme/status", "submitted"), ("status", "http://acme/status", "delivered")]
    assert len({j.body["event_id"] for j in jobs}) == 2 and all(isinstance(j.body["event_id"], str) for j in jobs)
    assert jobs[1].body["id"] == m.id and jobs[1].body["to"] == m.to and jobs[1].body["operator"] == "cheap"
    assert [j.body["final"] for j in jobs] == [False, True]
    # a message's jobs are claimed together, oldest first: callbacks stay in order
    assert [j.body["status"] for j in await store.claim_push_jobs("gw1", 1003.0, 1100.0, 10)] == [
        "submitted", "delivered"]
    # pulls: each message once, at its last change, in change order
    other = make_message(at=1000.5)
    await store.accept([other], "gw1", 1030.0)
    rows = await store.updates("acme", 0, 10)
    assert [r[1].id for r in rows] == [m.id, other.id]
    assert [r[1].id for r in await store.updates("acme", rows[0][0], 10)] == [other.id]
    assert [r[1].id for r in await store.updates("acme", 0, 10, status="delivered")] == [m.id]
    assert await store.updates("beta", 0, 10) == []



# -- status callbacks: which events get a job (SPEC §12) ---------------------------------------
URL = "http://acme/status"


def _failover(store, m, at):
    """Drive ``m`` through a failed attempt on "cheap" (not final), then delivery through "dear"."""
    async def run():
        await store.record_submit(m.id, "cheap", [f"{m.id}-c"], at)
        failed = await store.apply_receipt(receipt(f"{m.id}-c", ReceiptOutcome.FAILED, stat="UNDELIV"), at + 1)
        [submitted] = await store.record_submit(m.id, "dear", [f"{m.id}-d"], at + 2)
        delivered = await store.apply_receipt(receipt(f"{m.id}-d", operator="dear"), at + 3)
        return [failed.pushes, submitted.pushes, delivered.pushes]

    return run()


async def _jobs_of(store, m):
    return [(j.body["status"], j.body["final"]) for j in await store.pending_push_jobs() if j.subject == m.id]


async def check_callback_statuses_choose_which_events_get_a_job(store):
    store.untried = untried
    account = {"acme": "final"}  # the account's setting, read when each event happens

    def callbacks_for(m):
        return URL, m.callback_statuses if m.callback_statuses is not None else account[m.account]

    store.status_callbacks_for = callbacks_for
    final, listed, everything, nothing = (make_message(at=1000.0 + i) for i in range(4))
    listed.callback_statuses, everything.callback_statuses, nothing.callback_statuses = "submitted,failed", "all", ""
    await store.accept([final, listed, everything, nothing], "gw1", 1030.0)
    assert (await store.get(listed.id)).callback_statuses == "submitted,failed"
    assert (await store.get(final.id)).callback_statuses is None
    assert (await store.get(nothing.id)).callback_statuses == ""
    # "final": the failed attempt that fails over is not final, so only the delivery is pushed
    assert await _failover(store, final, 1001.0) == [0, 0, 1]
    assert await _jobs_of(store, final) == [("delivered", True)]
    # a list: exactly those statuses, the non-final failure included
    assert await _failover(store, listed, 1001.0) == [1, 1, 0]
    assert await _jobs_of(store, listed) == [("submitted", False), ("failed", False), ("submitted", False)]
    # "all": every change after acceptance
    assert await _failover(store, everything, 1001.0) == [2, 1, 1]
    assert await _jobs_of(store, everything) == [
        ("submitted", False), ("failed", False), ("queued", False), ("submitted", False), ("delivered", True)]
    # none chosen: the history is complete, and no job at all
    assert await _failover(store, nothing, 1001.0) == [0, 0, 0]
    assert await _jobs_of(store, nothing) == []
    assert len((await store.get(nothing.id)).events) == 6


async def check_the_accounts_statuses_apply_as_they_are_when_the_event_happens(store):
    account = {"acme": "all"}
    store.status_callbacks_for = lambda m: (URL, m.callback_statuses if m.callback_statuses is not None
                                            else account[m.account])
    own, follows = make_message(at=1000.0), make_message(at=1000.1)
    own.callback_statuses = "delivered"
    await store.accept([own, follows], "gw1", 1030.0)
    await store.record_submit(own.id, "cheap", ["o1"], 1001.0)
    await store.record_submit(follows.id, "cheap", ["f1"], 1001.0)
    account["acme"] = "final"  # a reload
    await store.apply_receipt(receipt("o1", ReceiptOutcome.BUFFERED, stat="BUFFRED"), 1002.0)
    await store.apply_receipt(receipt("f1", ReceiptOutcome.BUFFERED, stat="BUFFRED"), 1002.0)
    await store.apply_receipt(receipt("o1"), 1003.0)
    await store.apply_receipt(receipt("f1"), 1003.0)
    assert await _jobs_of(store, own) == [("delivered", True)]
    assert await _jobs_of(store, follows) == [("submitted", False), ("delivered", True)]


# -- claiming and finishing push jobs, one or a batch at a time --------------------------------
async def _interleaved(store, url: str = URL):
    """Two messages whose status jobs interleave: a1 b1 a2 b2 a3 (ids in that order)."""
    store.status_callbacks_for = lambda m: (url, "all")
    a, b = make_message(at=1000.0), make_message(at=1000.1)
    await store.accept([a, b], "gw1", 1030.0)
    await store.record_submit(a.id, "cheap", ["a"], 1001.0)
    await store.record_submit(b.id, "cheap", ["b"], 1001.0)
    await store.apply_receipt(receipt("a", ReceiptOutcome.BUFFERED, stat="BUFFRED"), 1002.0)
    await store.apply_receipt(receipt("b"), 1002.0)
    await store.apply_receipt(receipt("a"), 1003.0)
    jobs = [j for j in await store.pending_push_jobs() if j.subject in (a.id, b.id)]
    assert [j.subject for j in jobs] == [a.id, b.id, a.id, b.id, a.id]
    return a, b, jobs


def _ids(jobs):
    return [j.id for j in jobs]


async def check_a_claim_takes_a_messages_jobs_only_with_every_earlier_one(store):
    a, b, (a1, b1, a2, b2, a3) = await _interleaved(store)
    # oldest first across messages; the limit cuts in id order, so a job comes only with its elders
    assert _ids(await store.claim_push_jobs("gw1", 1010.0, 1060.0, 3)) == _ids([a1, b1, a2])
    # what is left waits behind jobs another node holds
    assert await store.claim_push_jobs("gw2", 1011.0, 1060.0, 10) == []
    # a2 is not due yet (retried later) but a1 done: a3 waits for a2, b2 for b1
    await store.finish_pushes(1012.0, done=[a1.id], retry=[a2.id], retry_at=1020.0, error="http 503")
    assert await store.claim_push_jobs("gw2", 1013.0, 1060.0, 10) == []
    await store.finish_pushes(1014.0, done=[b1.id])
    assert _ids(await store.claim_push_jobs("gw2", 1015.0, 1060.0, 10)) == [b2.id]
    again = await store.claim_push_jobs("gw2", 1020.0, 1060.0, 10)
    assert _ids(again) == _ids([a2, a3]) and [j.attempts for j in again] == [1, 0]


async def check_a_claimer_takes_later_jobs_behind_the_ones_it_holds_deliveries_to_esmes_wait(store):
    """A message's next event may join the batch its earlier one waits in (SPEC §12: a batch goes
    when full): an HTTP push the claimer holds (due, leased) does not hold back the later jobs of
    its subject from that claimer; one waiting for its retry does, and so does one another node
    holds. Deliveries to ESMEs are claimed only with every earlier job, as before."""
    a, b, (a1, b1, a2, b2, a3) = await _interleaved(store)
    assert _ids(await store.claim_push_jobs("gw1", 1010.0, 1060.0, 2)) == _ids([a1, b1])
    assert await store.claim_push_jobs("gw2", 1011.0, 1060.0, 10) == []
    assert _ids(await store.claim_push_jobs("gw1", 1011.0, 1060.0, 10)) == _ids([a2, b2, a3])
    # the POST of a1 failed: a1 waits for its retry, a2 and a3 are given back and wait behind it
    await store.finish_pushes(1012.0, retry=[a1.id], retry_at=1020.0, error="http 503", release=[a2.id, a3.id],
                              owner="gw1")
    assert await store.claim_push_jobs("gw1", 1013.0, 1060.0, 10) == []
    assert _ids(await store.claim_push_jobs("gw1", 1020.0, 1060.0, 10)) == _ids([a1, a2, a3])
    # a lease that ran out is nobody's: the later jobs go with the earlier one, to whoever claims
    c, d, (c1, d1, c2, d2, c3) = await _interleaved(store, "smpp")
    assert _ids(await store.claim_push_jobs("gw1", 1010.0, 1060.0, 2, smpp=True)) == _ids([c1, d1])
    assert await store.claim_push_jobs("gw1", 1011.0, 1060.0, 10, smpp=True) == []
    assert _ids(await store.claim_push_jobs("gw1", 1061.0, 1100.0, 10, smpp=True)) == _ids([c1, d1, c2, d2, c3])


async def check_a_claim_above_a_sweep_never_takes_a_job_without_the_earlier_ones_it_did_not_read(store):
    """``after`` (a claimer's sweep, policies.claims.JobSweep): a store may take only jobs above
    it, or read them all. Either way a job never goes without every earlier job of its message:
    a free one at or below the sweep holds back the later ones (the claim from the first job takes
    them together), while one the claimer holds does not (its next events join it, SPEC §12)."""
    a, b, (a1, b1, a2, b2, a3) = await _interleaved(store)
    c = make_message(at=1000.2)
    await store.accept([c], "gw1", 1030.0)
    await store.record_submit(c.id, "cheap", ["c"], 1004.0)
    [c1] = [j for j in await store.pending_push_jobs() if j.subject == c.id]
    taken = _ids(await store.claim_push_jobs("gw1", 1010.0, 1060.0, 10, after=b1.id))
    assert taken in (_ids([c1]), _ids([a1, b1, a2, b2, a3, c1]))  # above the sweep, or everything
    if taken == _ids([c1]):
        assert _ids(await store.claim_push_jobs("gw1", 1010.0, 1060.0, 10)) == _ids([a1, b1, a2, b2, a3])
    d, e, (d1, e1, d2, e2, d3) = await _interleaved(store)
    assert _ids(await store.claim_push_jobs("gw1", 1011.0, 1060.0, 2, after=c1.id)) == _ids([d1, e1])
    # held here: the later events come with a claim above the sweep
    assert _ids(await store.claim_push_jobs("gw1", 1012.0, 1060.0, 10, after=e1.id)) == _ids([d2, e2, d3])


async def check_a_claim_leaves_the_jobs_of_the_accounts_it_skips(store):
    """``skip_accounts``: the accounts whose share of the claimer is full (policies.callbacks.
    crowded); their jobs stay in the store for a later claim, in order."""
    a, b, (a1, b1, a2, b2, a3) = await _interleaved(store)
    assert await store.claim_push_jobs("gw1", 1010.0, 1060.0, 10, skip_accounts=["acme"]) == []
    assert _ids(await store.claim_push_jobs("gw1", 1010.0, 1060.0, 10, skip_accounts=["beta"])) == _ids(
        [a1, b1, a2, b2, a3])
    c, d, (c1, d1, c2, d2, c3) = await _interleaved(store, "smpp")
    assert await store.claim_push_jobs("gw1", 1010.0, 1060.0, 10, smpp=True, accounts=["acme"],
                                       skip_accounts=["acme"]) == []
    assert _ids(await store.claim_push_jobs("gw1", 1010.0, 1060.0, 2, smpp=True, accounts=["acme"],
                                            skip_accounts=["beta", "gamma"])) == _ids([c1, d1])


async def check_a_failed_batch_keeps_the_later_events_of_its_messages_waiting(store):
    a, b, (a1, b1, a2, b2, a3) = await _interleaved(store)
    claimed = await store.claim_push_jobs("gw1", 1010.0, 1060.0, 10)
    assert _ids(claimed) == _ids([a1, b1, a2, b2, a3])
    # the POST of [a1, b1] failed: both retried whole; the waiting a2, b2, a3 are given back
    await store.finish_pushes(1011.0, retry=[a1.id, b1.id], retry_at=1030.0, error="timeout",
                              release=[a2.id, b2.id, a3.id], owner="gw1")
    assert await store.claim_push_jobs("gw2", 1029.0, 1100.0, 10) == []
    again = await store.claim_push_jobs("gw2", 1030.0, 1100.0, 10)
    assert _ids(again) == _ids([a1, b1, a2, b2, a3])
    assert [j.attempts for j in again] == [1, 1, 0, 0, 0]
    # a 2xx for the retried batch acknowledges each of its events, in one operation
    await store.finish_pushes(1031.0, done=_ids(again))
    assert await store.pending_push_jobs() == []


async def check_a_jobs_retry_window_starts_at_its_first_attempt(store):
    """``first_at`` is when a job was queued until its first attempt fails, then when that attempt
    was made (``tried_at``): ``[push] retry_for`` counts from there, so a job held back behind an
    earlier one of its message still gets its whole window. Later retries and releases keep it;
    a retry without ``tried_at`` (deliveries to ESMEs) too."""
    a, b, (a1, b1, a2, b2, a3) = await _interleaved(store)
    assert [j.first_at for j in (a1, b1, a2, b2, a3)] == [1001.0, 1001.0, 1002.0, 1002.0, 1003.0]
    await store.claim_push_jobs("gw1", 1010.0, 1060.0, 10)
    await store.finish_pushes(1011.0, retry=[a1.id, b1.id], retry_at=1020.0, error="timeout", tried_at=1010.5,
                              release=[a2.id, b2.id, a3.id], owner="gw1")
    again = await store.claim_push_jobs("gw1", 1020.0, 1100.0, 10)
    assert [(j.first_at, j.attempts) for j in again] == [
        (1010.5, 1), (1010.5, 1), (1002.0, 0), (1002.0, 0), (1003.0, 0)]
    # [a1, a2] failed again: a1 keeps its first attempt, a2's window starts now; b2 waited untried
    await store.finish_pushes(1021.0, done=[b1.id], retry=[a1.id, a2.id], retry_at=1030.0, error="http 500",
                              tried_at=1020.5, release=[b2.id, a3.id], owner="gw1")
    await store.finish_pushes(1022.0, retry=[b2.id], retry_at=1030.0, error="smpp")  # no tried_at
    again = await store.claim_push_jobs("gw1", 1030.0, 1100.0, 10)
    assert [(j.id, j.first_at, j.attempts) for j in again] == [
        (a1.id, 1010.5, 2), (a2.id, 1020.5, 1), (b2.id, 1002.0, 1), (a3.id, 1003.0, 0)]


async def check_push_leases_are_taken_over_and_taken_back(store):
    a, b, jobs = await _interleaved(store)
    assert _ids(await store.claim_push_jobs("gw1", 1010.0, 1060.0, 10)) == _ids(jobs)
    # only the holder gives a job back, and a release must name it
    try:
        store.finish_pushes(1011.0, release=[jobs[0].id])
    except ValueError as exc:
        assert "owner" in str(exc)
    else:
        raise AssertionError("a release without its owner was taken")
    await store.finish_pushes(1011.0, release=[jobs[0].id], owner="gw2")
    assert await store.claim_push_jobs("gw2", 1012.0, 1100.0, 10) == []
    # gw1 restarted gives its own back, and takes them at once; another node after the lease
    assert await store.release_push_jobs("gw1") == len(jobs)
    assert _ids(await store.claim_push_jobs("gw1", 1013.0, 1070.0, 10)) == _ids(jobs)
    assert await store.claim_push_jobs("gw2", 1070.0, 1100.0, 10) == []
    assert _ids(await store.claim_push_jobs("gw2", 1071.0, 1100.0, 10)) == _ids(jobs)


async def check_a_restarted_node_gives_back_the_push_jobs_of_every_earlier_process_of_its_own(store):
    """SPEC §15: a restarted node takes back at once every lease it held, whichever of its processes
    held it: the number of processes may have changed (``gw1/1`` held them, ``gw1`` restarts alone).
    Its other processes running now keep theirs; other nodes keep theirs, ``gw10`` and ``gw1x`` too
    (and a ``_`` in a node's name is no wildcard); HTTP pushes and ESME deliveries go back apart."""
    from connectors.api import MoFacts

    owners = ["gw1", "gw1/1", "gw1/2", "gw10", "gw10/1", "gw1x/1", "gw2"]
    held = {}
    for url in ("http://backend/mo", "smpp"):
        for i, owner in enumerate(owners):
            await store.store_mo(MoFacts("op", f"467011{i:05d}", "72550", "A"), 1000.0,
                                 lambda m, spent: mo_routing(m, spent, url=url), None, 0.0)
            [job] = await store.claim_push_jobs(owner, 1000.0, 1060.0, 1, smpp=url == "smpp")
            held[owner, url == "smpp"] = job.id
    assert await store.release_push_jobs("g_1") == 0
    # a node of two processes restarted with three: API worker 2 starts after 1 took its own
    assert await store.release_push_jobs("gw1", ["gw1/1"]) == 2  # gw1 (one process before), gw1/2
    assert _ids(await store.claim_push_jobs("gw1/2", 1001.0, 1200.0, 10)) == [held["gw1", False],
                                                                              held["gw1/2", False]]
    assert await store.claim_push_jobs("gw3", 1001.0, 1060.0, 10) == []  # gw1/1 keeps its own
    # the process serving ESMEs gives back every delivery the node held
    assert await store.release_push_jobs("gw1", smpp=True) == 3
    got = await store.claim_push_jobs("gw1/1", 1001.0, 1060.0, 10, smpp=True)
    assert _ids(got) == [held[owner, True] for owner in ("gw1", "gw1/1", "gw1/2")]
    assert await store.release_push_jobs("gw1", ["gw1/1"], smpp=True) == 0
    # nothing of gw10, gw10/1, gw1x/1, gw2 came back: they hold theirs until their leases end
    assert await store.claim_push_jobs("gw3", 1060.0, 1100.0, 10) == []
    assert len(await store.claim_push_jobs("gw3", 1061.0, 1100.0, 10)) == 5  # gw1/1, gw10, gw10/1, gw1x/1, gw2


CHECKS = [v for k, v in sorted(globals().items()) if k.startswith("check_")]
