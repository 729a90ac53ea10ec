"""The store contract, continued: the account rules and the operations of ops and customers,
checked on every store (see ``tests.store_contract``)."""

from __future__ import annotations

from decimal import Decimal

from connectors.api import ReceiptOutcome
from smscore.model import Status
from smscore.store.rules import day_of
from tests.store_contract import make_message, receipt, untried


RULES = """
[operators.cheap]
type = "simulated"
[operators.dear]
type = "simulated"
[profiles.standard]
operators = ["cheap", "dear"]
[accounts.acme]
api_keys = ["acme-key"]
senders = ["ACME"]
billing = "prepaid"
balance = "10"
prices = { "46" = "1" }
daily_volume_limit = 4
callback_url = "http://acme/status"
secret = "acme-secret"
"""


def with_rules(store):
    from smscore.config import parse_config

    config = parse_config(RULES, path="/nonexistent/gateway.toml")
    store.config_source = lambda: config
    store.untried = untried
    return config


async def _refused(d, kind):
    try:
        await d
    except kind as exc:
        return exc
    raise AssertionError(f"expected {kind.__name__}")


async def check_account_rules_at_acceptance_and_ops_actions(store):
    from smscore.store.rules import Conflict, NotFound
    from policies.admission import InsufficientBalance, NoPrice

    with_rules(store)
    await store.ensure_accounts({"acme": Decimal(10)})
    await store.ensure_accounts({"acme": Decimal(99)})  # once only
    assert await store.account_state("acme") == (Decimal(10), False)
    assert await store.stoplist_change(["46700000001"], account="acme", at=1.0) == 1
    assert await store.stoplist_change(["46700000001"], account="acme", at=1.0) == 0
    assert await store.stoplist_change(["46700000002", "46700000003"], at=1.0) == 2  # do-not-call
    assert await store.stoplist_change(["46700000003"], account="acme", consent=True, at=1.0) == 1
    assert await store.is_stopped("acme", "46700000001")
    first = [make_message(to=f"4670000000{i}", at=1000.0 + i) for i in (1, 2, 3, 4)]
    await store.accept(first, None, 0.0)
    assert [(m.status, m.error) for m in first] == [
        (Status.STOPPED, "stop list"), (Status.STOPPED, "do-not-call"), (Status.QUEUED, None), (Status.QUEUED, None)]
    assert [m.charged for m in first] == [0, 0, 1, 1]
    assert (await store.get(first[0].id)).events[0].detail == "the number is on the account's stop list"
    assert (await store.account_state("acme"))[0] == Decimal(8)
    # Refused whole, nothing kept: no price, or more than the balance.
    await _refused(store.accept([make_message(to="4790000001", at=1010.0)], None, 0.0), NoPrice)
    over = make_message(to="46700000005", parts=9, at=1011.0)
    assert (await _refused(store.accept([over], None, 0.0), InsufficientBalance)).needed == Decimal(9)
    assert await store.get(over.id) is None and (await store.account_state("acme"))[0] == Decimal(8)
    # The daily volume: two counted so far, two more go, the last waits for ops.
    second = [make_message(to=f"4670000001{i}", at=1020.0 + i) for i in range(3)]
    await store.accept(second, None, 0.0)
    assert [m.status for m in second] == [Status.QUEUED, Status.QUEUED, Status.PENDING_APPROVAL]
    assert (await store.account_state("acme"))[0] == Decimal(5)
    assert (await store.act(second[2].id, "approve", 1030.0, "approved by ops")).status is Status.QUEUED
    await _refused(store.act(second[2].id, "refuse", 1031.0, "refused"), Conflict)
    await _refused(store.act("nope", "cancel", 1031.0, "cancelled"), NotFound)
    await _refused(store.act(second[2].id, "cancel", 1031.0, "cancelled", account="other"), NotFound)
    cancelled = await store.act(second[1].id, "cancel", 1032.0, "cancelled by the customer", account="acme")
    assert cancelled.status is Status.STOPPED and [e.status for e in cancelled.events] == [
        Status.QUEUED, Status.STOPPED]
    assert (await store.account_state("acme"))[0] == Decimal(6)  # refunded: it was never sent
    # Pause and resume.
    paused = await store.set_paused("acme", True, 1040.0)
    assert sorted(m.id for m in paused) == sorted([first[2].id, first[3].id, second[0].id, second[2].id])
    assert await store.account_state("acme") == (Decimal(6), True)
    assert await store.claim("gw1", 1041.0, 1100.0, 10) == []
    await store.stoplist_change(["46700000010"], account="acme", at=1042.0)  # stopped meanwhile
    resumed = await store.set_paused("acme", False, 1043.0)
    assert {m.id: m.status for m in resumed}[second[0].id] is Status.STOPPED
    assert sorted(m.id for m in await store.claim("gw1", 1044.0, 1100.0, 10)) == sorted(
        [first[2].id, first[3].id, second[2].id])
    # A top-up that crosses 1000 tells the account.
    assert await store.topup("acme", Decimal(1000), 1050.0) == Decimal(1007)
    notices = [j.body for j in await store.pending_push_jobs() if j.kind == "balance"]
    assert [(n["threshold"], n["balance"]) for n in notices] == [(1000.0, 1007.0)]


async def check_a_customers_cancel_of_a_message_another_process_holds_is_stored(store):
    """SPEC §4, §11: any node answers for every message, so a cancel of a queued message another
    live process holds in memory is stored (and refunded); that process's next renewal reports
    it (``check_a_renewal_reports_the_held_messages_changed_elsewhere``). Once submitted, 409."""
    from smscore.store.rules import Conflict

    with_rules(store)
    await store.ensure_accounts({"acme": Decimal(10)})
    held, sent = (make_message(to=f"4670123456{i}", at=1000.0 + i) for i in range(2))
    await store.accept([held, sent], "gw1", 1030.0)
    cancelled = await store.act(held.id, "cancel", 1010.0, "cancelled by the customer", account="acme")
    assert cancelled.status is Status.STOPPED
    assert await store.renew("gw1", 1040.0, [held.id, sent.id]) == [held.id]
    await store.record_submit(sent.id, "cheap", ["k1"], 1011.0)
    await _refused(store.act(sent.id, "cancel", 1012.0, "cancelled by the customer", account="acme"), Conflict)
    assert (await store.account_state("acme"))[0] == Decimal(9)  # the cancelled one refunded, the sent one not


async def check_idempotency_keys_answer_repeats_for_a_day(store):
    from smscore.store.rules import Conflict

    def render(ms):
        return {"messages": [m.id for m in ms]}

    first = [make_message(at=1000.0)]
    assert await store.accept_once(first, None, 0.0, account="acme", key="k1", body_hash="h1", render=render,
                                   at=1000.0) is None
    again = [make_message(at=1001.0)]
    assert await store.accept_once(again, None, 0.0, account="acme", key="k1", body_hash="h1", render=render,
                                   at=1001.0) == {"messages": [first[0].id]}
    assert await store.get(again[0].id) is None
    await _refused(store.accept_once([make_message(at=1002.0)], None, 0.0, account="acme", key="k1",
                                     body_hash="other", render=render, at=1002.0), Conflict)
    # read without storing (a repeat while the backlog is full): the same answers
    assert await store.answered_before("acme", "k1", "h1", 1003.0) == {"messages": [first[0].id]}
    await _refused(store.answered_before("acme", "k1", "other", 1003.0), Conflict)
    assert await store.answered_before("acme", "k2", "h1", 1003.0) is None
    assert await store.answered_before("beta", "k1", "h1", 1003.0) is None  # keys are the account's
    assert await store.answered_before("acme", "k1", "h1", 1000.0 + 86400) is None  # a day later: free
    later = [make_message(at=1000.0 + 86400)]
    assert await store.accept_once(later, None, 0.0, account="acme", key="k1", body_hash="h1", render=render,
                                   at=1000.0 + 86400) is None
    assert (await store.get(later[0].id)).status is Status.QUEUED


async def check_export_by_creation_time_and_purge_by_age(store):
    store.untried = untried
    old, new = make_message(at=1000.0), make_message(at=5000.0)
    await store.accept([old, new], "gw1", 1e9)
    assert [m.id for m in await store.export("acme", 0.0, 2000.0)] == [old.id]
    assert [m.id for m in await store.export("acme", 0.0, 9000.0)] == [old.id, new.id]
    for m, at in ((old, 1001.0), (new, 5001.0)):
        await store.record_submit(m.id, "cheap", [m.id + "-k"], at)
        await store.apply_receipt(receipt(m.id + "-k"), at + 1)
    assert await store.apply_receipt(receipt("orphan"), 1500.0) is None
    assert await store.purge(6000.0, 3000.0, 100.0) == 1  # final and older than 3000 s
    assert await store.get(old.id) is None and (await store.get(new.id)).status is Status.DELIVERED
    # The orphan receipt is gone too: a submit with its id now applies nothing.
    late = make_message(at=5500.0)
    await store.accept([late], "gw1", 1e9)
    assert [t.message.status for t in await store.record_submit(late.id, "cheap", ["orphan"], 5501.0)] == [
        Status.SUBMITTED]


async def check_the_purge_takes_a_chunk_a_call_until_nothing_old_is_left(store):
    """Retention at volume: each call deletes at most ``limit`` messages (with their history and
    ids) and says how many went; called again until it says fewer, every old message is gone."""
    store.untried = untried
    old = [make_message(to=f"4670000{i:04d}", at=1000.0 + i) for i in range(5)]
    new = make_message(at=5000.0)
    await store.accept([*old, new], "gw1", 1e9)
    for m in [*old, new]:
        await store.record_submit(m.id, "cheap", [m.id + "-k"], m.created_at + 1)
        await store.apply_receipt(receipt(m.id + "-k"), m.created_at + 2)
    assert [await store.purge(6000.0, 3000.0, 100.0, limit=2) for _ in range(4)] == [2, 2, 1, 0]
    assert [await store.get(m.id) for m in old] == [None] * 5
    assert (await store.get(new.id)).status is Status.DELIVERED
    assert (await store.get(new.id)).events[-1].status is Status.DELIVERED


async def check_what_deliveries_teach_is_attached_when_claimed(store):
    with_rules(store)
    await store.ensure_accounts({"acme": Decimal(100)})
    m = make_message(to="46709999999")
    await store.accept([m], "gw1", 1e9)
    await store.record_submit(m.id, "cheap", ["t1"], 1001.0)
    await store.apply_receipt(receipt("t1", ReceiptOutcome.FAILED, stat="UNDELIV"), 1002.0, "gw1", 1e9)
    await store.record_submit(m.id, "dear", ["t2"], 1003.0)
    await store.apply_receipt(receipt("t2", operator="dear"), 1004.0)
    nxt = make_message(to="46709999999", at=1005.0)
    await store.accept([nxt], None, 0.0)
    [claimed] = await store.claim("gw1", 1006.0, 1e9, 10)
    assert claimed.id == nxt.id and claimed.preferred == "dear" and claimed.recent_failures == ("cheap",)






async def check_receipts_waiting_for_an_esme_are_kept_for_the_retention_only(store):
    store.untried = untried
    old, new = (make_message(at=at, callback_url="smpp", callback_statuses="final") for at in (1000.0, 5000.0))
    await store.accept([old, new], "gw1", 1e9)
    for m, at in ((old, 1001.0), (new, 5001.0)):
        await store.record_submit(m.id, "cheap", [m.id + "-k"], at)
        await store.apply_receipt(receipt(m.id + "-k"), at + 1)
    assert [j.subject for j in await store.pending_push_jobs()] == [old.id, new.id]
    assert all(j.url == "smpp" for j in await store.pending_push_jobs())
    # Each carries what its deliver_sm says of the message: sending it reads nothing.
    assert [j.body["esme"] for j in await store.pending_push_jobs()] == [
        {"sender": "ACME", "submitted_at": at, "done_at": at + 2, "text": "hi", "cancelled": False}
        for at in (1000.0, 5000.0)]
    # Only ESME deliveries are claimed with smpp=True, and HTTP pushes never take them.
    assert await store.claim_push_jobs("gw1", 5100.0, 5200.0, 10) == []
    assert [j.subject for j in await store.claim_push_jobs("gw1", 5100.0, 5200.0, 10, smpp=True,
                                                           accounts=["globex"])] == []
    await store.purge(6000.0, 3000.0, 100.0)
    assert [j.subject for j in await store.pending_push_jobs()] == [new.id]


async def check_block_evidence_is_taught_by_new_operators_and_loaded_for_numbers_without_one(store):
    """SPEC §7 (policies.blocks): a delivery that gives a number a new operator teaches every
    tracked prefix of it, in the same transaction; a message to a number without an operator of its
    own to use carries the evidence of its prefixes (at acceptance, at claim, and when it is sent on
    after a failure); one whose number has its own does not."""
    from policies.blocks import prefixes

    with_rules(store)
    await store.ensure_accounts({"acme": Decimal(10)})

    def tallies(m):
        return {(t.prefix, t.operator): (t.delivered, t.failed) for t in m.block}

    a = make_message(to="46761200001")
    await store.accept([a], "gw1", 1e9)
    assert a.preferred is None and a.block == ()  # nothing learned anywhere yet
    await store.record_submit(a.id, "cheap", ["b1"], 1001.0)
    t = await store.apply_receipt(receipt("b1", ReceiptOutcome.FAILED, stat="UNDELIV"), 1002.0, "gw1", 1e9)
    assert t.requeue and list(t.message.tried) == ["cheap"] and t.message.block == ()
    await store.record_submit(a.id, "dear", ["b2"], 1003.0)
    await store.apply_receipt(receipt("b2", operator="dear"), 1004.0)

    b = make_message(to="46761200002", at=1005.0)  # same block, never sent to
    await store.accept([b], "gw1", 1e9)
    taught = {(p, op): counts for p in prefixes("46761200001") for op, counts in
              (("dear", (1.0, 0.0)), ("cheap", (0.0, 1.0)))}
    assert b.preferred is None and tallies(b) == taught
    c = make_message(to="46761200001", at=1006.0)  # the number itself: its own operator decides
    await store.accept([c], None, 0.0)  # (the daily limit is 4: a, b, c and d)
    [claimed] = await store.claim("gw1", 1007.0, 1e9, 10)
    assert claimed.id == c.id and claimed.preferred == "dear" and claimed.block == ()
    # Delivered again by its own operator: nothing new for the block.
    await store.record_submit(c.id, "dear", ["b3"], 1008.0)
    await store.apply_receipt(receipt("b3", operator="dear"), 1009.0)
    d = make_message(to="46761200003", at=1010.0)
    await store.accept([d], "gw1", 1e9)
    assert tallies(d) == taught




async def check_daily_counts_of_days_before_the_retention_are_purged(store):
    with_rules(store)
    await store.ensure_accounts({"acme": Decimal(100)})
    day = 86400.0
    for at in (10 * day, 12 * day):
        await store.accept([make_message(to="46701234567", at=at)], None, 0.0)
    assert [(await store.account_states(day_of(d)))["acme"].sent_today for d in (10 * day, 12 * day)] == [1, 1]
    await store.purge(12 * day + 60.0, day, 100.0)  # keeps the days with a moment in the last day: 11 and 12
    assert [(await store.account_states(day_of(d)))["acme"].sent_today for d in (10 * day, 12 * day)] == [0, 1]


async def _consents_paged(store) -> list:
    """Every consent, two a page."""
    seen, after = [], None
    while True:
        page = await store.consent_entries(after=after, limit=2)
        seen.extend(page)
        if len(page) < 2:
            return seen
        after = (page[-1].account, page[-1].number)


async def check_consents_paged_by_account_and_number_apart_from_the_stop_list(store):
    from smscore.store.lookups import ConsentEntry

    with_rules(store)
    assert await store.consent_entries() == []
    await store.stoplist_change(["46700000001", "46700000002"], account="acme", consent=True, at=10.0)
    await store.stoplist_change(["46700000001"], account="beta", consent=True, at=11.0)
    await store.stoplist_change(["46700000001"], account="acme", at=12.0)  # a stop entry: withdraws acme's
    await store.stoplist_change(["46700000003"], at=13.0)  # do-not-call: not a consent, withdraws none
    seen = await _consents_paged(store)
    await store.stoplist_change(["46700000004"], account="acme", consent=True, at=14.0)
    seen = await _consents_paged(store)
    assert seen == [ConsentEntry("acme", "46700000002", 10.0), ConsentEntry("acme", "46700000004", 14.0),
                    ConsentEntry("beta", "46700000001", 11.0)]
    assert [e.account for e in await store.consent_entries(number="46700000001")] == ["beta"]
    assert [e.number for e in await store.consent_entries(account="acme", after=("acme", "46700000002"))] == [
        "46700000004"]
    assert await store.consent_entries(account="*") == []
    assert [(e.account, e.number) for e in await store.stoplist_entries()] == [("*", "46700000003"),
                                                                                ("acme", "46700000001")]
    await store.stoplist_change(["46700000004"], account="acme", consent=True, remove=True, at=20.0)
    assert [(e.account, e.number) for e in await store.consent_entries()] == [("acme", "46700000002"),
                                                                               ("beta", "46700000001")]


async def check_a_consent_lets_messages_through_both_lists_until_a_later_stop_entry(store):
    """SPEC §7: listed numbers are stopped unless the account holds consent; a stop entry added
    after the consent (ops, or a phone's stop word) withdraws it, so the later of the two wins."""
    with_rules(store)
    await store.ensure_accounts({"acme": Decimal(10)})
    mine, dnc = "46700000021", "46700000022"
    await store.stoplist_change([mine], account="acme", at=1.0)
    await store.stoplist_change([dnc], at=1.0)
    await store.stoplist_change([mine, dnc], account="acme", consent=True, at=2.0)

    async def statuses(at):
        ms = [make_message(to=mine, at=at), make_message(to=dnc, at=at + 0.5)]
        await store.accept(ms, None, 0.0)
        return [m.status for m in ms]

    assert await statuses(1000.0) == [Status.QUEUED, Status.QUEUED]
    assert await store.stoplist_change([mine], account="acme", at=3.0) == 0  # listed already; the consent goes
    assert await statuses(1001.0) == [Status.STOPPED, Status.QUEUED]
    assert [e.number for e in await store.consent_entries(account="acme")] == [dnc]


async def check_a_failover_of_a_paused_accounts_message_waits_paused(store):
    """An operator fails a message after ops paused its account: it does not go on to the next
    operator while paused (the failover is a new submission); the resume sends it on."""
    with_rules(store)
    await store.ensure_accounts({"acme": Decimal(10)})
    m = make_message(to="46701234571", at=1000.0)
    await store.accept([m], "gw1", 1030.0)
    await store.record_submit(m.id, "cheap", ["k-failover"], 1001.0)
    await store.set_paused("acme", True, 1002.0)
    t = await store.apply_receipt(receipt("k-failover", outcome=ReceiptOutcome.FAILED, stat="UNDELIV"), 1003.0)
    assert t.message.status is Status.PAUSED and not t.requeue
    assert [e.status for e in (await store.get(m.id)).events][-3:] == [Status.FAILED, Status.QUEUED, Status.PAUSED]
    resumed = await store.set_paused("acme", False, 1004.0)
    assert [r.id for r in resumed] == [m.id]
    got = await store.get(m.id)
    assert got.status is Status.QUEUED and got.tried == ("cheap",)


async def check_a_top_up_and_a_pause_are_kept_for_an_account_given_no_opening_balance_yet(store):
    """An account the store has no state for (one a reload added, before ``ensure_accounts``
    reached it) keeps what ops do to it: a top-up's balance, a pause that holds its messages."""
    with_rules(store)
    assert await store.topup("acme", Decimal(5), 1000.0) == Decimal(5)
    assert await store.topup("acme", Decimal(5), 1001.0) == Decimal(10)
    assert await store.account_state("acme") == (Decimal(10), False)
    await store.ensure_accounts({"acme": Decimal(99)})  # the opening balance comes once, and too late
    assert await store.account_state("acme") == (Decimal(10), False)
    await store.set_paused("beta", True, 1002.0)
    assert await store.account_state("beta") == (Decimal(0), True)
    await store.set_paused("beta", False, 1003.0)
    assert await store.account_state("beta") == (Decimal(0), False)


CHECKS = [v for k, v in sorted(globals().items()) if k.startswith("check_")]
