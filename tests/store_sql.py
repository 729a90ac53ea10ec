"""What the SQL stores must show beside the contract: a batch of concurrent calls merged (a check
every store passes), the statements a message costs at load, reads that do not wait for writes."""

from __future__ import annotations

import threading
from decimal import Decimal

from smscore.model import Status
from connectors.api import ReceiptOutcome
from tests.store_contract import make_message, receipt, untried
from tests.store_contract_push import URL


async def open_postgres(url, **kw):
    """A PostgresStore on ``url``, opened (its schema created or upgraded)."""
    from twisted.internet import reactor

    from smscore.store.postgres import PostgresStore

    store = PostgresStore(url, reactor, **kw)
    await store.open()
    return store


def hold_writers(store):
    """For the SQL stores (a look inside, for tests): keep every writer busy until the returned
    release is called, so that what is queued meanwhile runs as one batch per writer."""
    gate = threading.Event()
    for writer in getattr(store, "_writers", None) or [store._writer]:
        writer.submit(lambda cur: gate.wait(10))
    return gate.set


LOAD_RULES = """
[operators.cheap]
type = "simulated"
[profiles.standard]
operators = ["cheap"]
[accounts.acme]
api_keys = ["acme-key"]
senders = ["ACME"]
callback_url = "http://acme/status"
secret = "acme-secret"
callback_statuses = "final"
"""


async def statements_per_message(store, statements, n: int = 400, batch: int = 50) -> float:
    """Drive ``n`` messages the way a busy gateway does, ``batch`` concurrent calls at a time: one
    accept per message (one message per request), the claim, a submit and a delivery receipt each,
    the claim of their final-status callbacks and one push finish per callback. ``statements()``
    counts what the store sent to its database so far. Returns statements per message."""
    from twisted.internet.defer import gatherResults

    from smscore.config import parse_config

    config = parse_config(LOAD_RULES, path="/nonexistent/gateway.toml")
    store.config_source = lambda: config
    store.untried = untried
    store.status_callbacks_for = lambda m: ("http://acme/status", "final")
    store.cost_of = lambda operator, number: Decimal("0.01")
    messages = [make_message(to=f"4670{i:07d}", at=1000.0 + i / 1000) for i in range(n)]

    async def together(calls):
        release = hold_writers(store)
        ds = [call() for call in calls]
        release()
        return await gatherResults(ds)

    before = statements()
    for i in range(0, n, batch):
        chunk = messages[i:i + batch]
        await together([lambda m=m: store.accept([m], None, 0.0) for m in chunk])  # as an API worker
        claimed = await store.claim("gw1", 2000.0, 1e12, batch)
        assert len(claimed) == len(chunk)
        await together([c for m in claimed for c in (
            lambda m=m: store.record_submit(m.id, "cheap", [m.id + "-k"], 2001.0),
            lambda m=m: store.apply_receipt(receipt(m.id + "-k"), 2002.0, "gw1", 1e12))])
        jobs = await store.claim_push_jobs("gw1", 2003.0, 1e12, batch)
        assert len(jobs) == len(chunk)
        await together([lambda j=j: store.finish_pushes(2004.0, done=[j.id]) for j in jobs])
    spent = statements() - before
    assert (await store.count_by_status()) == {Status.DELIVERED: n}
    return spent / n


async def reads_wait_for_no_write(store) -> None:
    """SQL stores: a read (a message, a pull, the counts) is answered while every writer is held
    in the middle of a batch: reads run on a connection of their own, without row locks."""
    from twisted.internet import reactor
    from twisted.internet.defer import gatherResults

    m = make_message(reference="read-me")
    await store.accept([m], None, 0.0)
    release = hold_writers(store)
    try:
        reads = gatherResults([store.get(m.id), store.updates("acme", 0, 10), store.count_by_status()])
        # Answered while the writers are held, or a TimeoutError: the reads waited for them.
        got, pulled, counts = await reads.addTimeout(5.0, reactor)
        assert got.reference == "read-me" and [u[1].id for u in pulled] == [m.id] and counts == {Status.QUEUED: 1}
    finally:
        release()


async def check_submits_and_receipts_sent_together_apply_as_one_at_a_time(store, hold=None):
    """Submits and receipts queued without waiting for each other (the SQL stores run them as one
    merged batch) end as they would one at a time in that order. ``hold()``, when given, keeps
    the store from starting on them until all are queued and returns the release."""
    from twisted.internet.defer import gatherResults

    store.untried = untried
    store.status_callbacks_for = lambda m: (URL, "final")
    early, plain, multi, ported = (make_message(to=f"4670000000{i}", at=1000.0 + i, callback_url=URL)
                                   for i in range(4))
    multi.parts = 2
    await store.accept([early, plain, multi, ported], "gw1", 1030.0)
    release = hold() if hold else None
    ds = [
        store.apply_receipt(receipt("e1"), 1001.0),  # before its submit response
        store.record_submit(early.id, "cheap", ["e1"], 1001.5),
        store.record_submit(plain.id, "cheap", ["k2"], 1001.0),
        store.apply_receipt(receipt("k2"), 1002.0),
        store.apply_receipt(receipt("k2"), 1002.5),  # a duplicate
        store.record_submit(multi.id, "cheap", ["p1", "p2"], 1001.0),
        store.apply_receipt(receipt("p2"), 1002.0),
        store.apply_receipt(receipt("p1"), 1003.0),
        store.record_submit(ported.id, "cheap", ["f1"], 1001.0, "gw2", 1040.0),
        store.apply_receipt(receipt("f1", ReceiptOutcome.FAILED, stat="UNDELIV"), 1002.0, "gw2", 1040.0),
        store.apply_receipt(receipt("nobody"), 1002.0),  # stays an orphan
    ]
    if release:
        release()
    results = await gatherResults(ds)
    # Several writers (PostgreSQL) may run a receipt before the submit it answers: then it is held
    # and the submit applies it. Either way the transitions reported are exactly what was stored,
    # each call's with the message as that call left it.
    assert results[-1] is None
    reported: dict[str, list] = {}
    for result in results:
        ts = result if isinstance(result, list) else [result] if result is not None else []
        for t in ts:
            reported.setdefault(t.message.id, []).extend((e.status, e.operator) for e in t.events)
        if ts and ts[-1].events:
            assert ts[-1].message.status is ts[-1].events[-1].status
    assert sum(bool(r and r.changed) for r in results[3:5]) <= 1  # one of the two "k2" is a duplicate
    assert sum(t.pushes for r in results if r for t in (r if isinstance(r, list) else [r])) == 3
    histories = {m.id: [(e.status, e.operator) for e in (await store.get(m.id)).events]
                 for m in (early, plain, multi, ported)}
    delivered = [(Status.QUEUED, None), (Status.SUBMITTED, "cheap"), (Status.DELIVERED, "cheap")]
    assert histories[early.id] == delivered and histories[plain.id] == delivered
    assert histories[multi.id] == delivered  # the first part's receipt is no change of status
    assert histories[ported.id] == [(Status.QUEUED, None), (Status.SUBMITTED, "cheap"), (Status.FAILED, "cheap"),
                                    (Status.QUEUED, None)]
    def same(events):  # in the order of the calls, which several writers need not run in
        return sorted((status.value, operator or "") for status, operator in events)

    assert {mid: same([(Status.QUEUED, None)] + events) for mid, events in reported.items()} == {
        mid: same(events) for mid, events in histories.items()}
    # The requeued message is held by the node that applied the receipt; the orphan waits for its submit.
    assert await store.claim("gw3", 1003.0, 1050.0, 10) == []
    assert [m.id for m in await store.claim("gw2", 1041.0, 1080.0, 10)] == [ported.id]
    last = make_message(to="46700000009", at=1004.0)
    await store.accept([last], "gw1", 1030.0)
    [submitted, applied] = await store.record_submit(last.id, "cheap", ["nobody"], 1005.0)
    assert applied.message.status is Status.DELIVERED
    # One final callback per delivered message, each with its own event id.
    jobs = await store.pending_push_jobs()
    assert sorted(j.subject for j in jobs) == sorted([early.id, plain.id, multi.id, last.id])
    assert all(j.body["final"] and j.body["status"] == "delivered" for j in jobs)
    assert len({j.body["event_id"] for j in jobs}) == 4


async def check_two_operators_that_gave_the_same_ids_each_keep_their_own_in_one_batch(store):
    """Receipts and submits of two operators that gave the same SMSC ids, each kind queued together
    (the SQL stores read each operator's stored ids and orphans apart): each receipt finds its own
    operator's message, and each submit takes only its own operator's orphan."""
    from twisted.internet.defer import gatherResults

    async def together(*calls):  # one batch on the SQL stores
        release = hold_writers(store) if getattr(store, "_writer", None) is not None else None
        ds = [call() for call in calls]
        if release:
            release()
        await gatherResults(ds)

    store.untried = untried
    by_cheap, by_dear, later, later_dear = (make_message(to=f"4670000001{i}", at=1000.0 + i) for i in range(4))
    await store.accept([by_cheap, by_dear, later, later_dear], "gw1", 1030.0)
    await together(lambda: store.record_submit(by_cheap.id, "cheap", ["k1"], 1001.0),
                   lambda: store.record_submit(by_dear.id, "dear", ["k1"], 1001.0))
    await together(lambda: store.apply_receipt(receipt("k1", ReceiptOutcome.FAILED, "dear", "UNDELIV"), 1002.0),
                   lambda: store.apply_receipt(receipt("k1", operator="cheap"), 1002.0),
                   lambda: store.apply_receipt(receipt("k2", operator="dear"), 1002.0))  # dear's orphan
    await together(lambda: store.record_submit(later.id, "cheap", ["k2"], 1003.0),
                   lambda: store.record_submit(later_dear.id, "dear", ["k2"], 1003.0))
    statuses = [(await store.get(m.id)).status for m in (by_cheap, by_dear, later, later_dear)]
    assert statuses == [Status.DELIVERED, Status.QUEUED, Status.SUBMITTED, Status.DELIVERED]  # dear's failed over


async def merged_run_sizes(store) -> list[int]:
    """The contract's batch check with everything queued before the writer starts on it: the
    sizes of the merged runs that applied its submits and receipts (one run of 11 expected)."""
    runs = []
    merged = store._changes

    def counting(cur, items):
        runs.append(len(items))
        return merged(cur, items)

    store._changes = counting
    await check_submits_and_receipts_sent_together_apply_as_one_at_a_time(store, hold=lambda: hold_writers(store))
    return runs

#: Contract checks kept here for what they are about (run on every store with the others)
CHECKS = [check_submits_and_receipts_sent_together_apply_as_one_at_a_time,
          check_two_operators_that_gave_the_same_ids_each_keep_their_own_in_one_batch]
