"""The store contract: one set of checks that every Store implementation must pass.

Test modules bind ``make_store`` to an implementation and import these checks; each check is an
async function taking a freshly opened store. Continued in ``store_contract_accounts`` (account
rules, ops and customers' operations), ``store_contract_leases`` (claims, leases, nodes),
``store_contract_push`` (push jobs and callbacks) and ``store_contract_receipts``.
"""

from __future__ import annotations

from decimal import Decimal

from connectors.api import ReceiptFacts, ReceiptOutcome
from smscore.model import Event, Message, Status, new_message_id

PROFILE = ("cheap", "dear")


def untried(message: Message):
    return [op for op in PROFILE if op not in message.tried]


def make_message(to="46701234567", parts=1, at=1000.0, **kw) -> Message:
    m = Message(id=new_message_id(at), account="acme", to=to, sender="ACME", text="hi", encoding="gsm7",
                parts=parts, profile="standard", created_at=at, updated_at=at, **kw)
    m.events.append(Event(at=at, status=Status.QUEUED))
    return m


def receipt(key, outcome=ReceiptOutcome.DELIVERED, operator="cheap", stat="DELIVRD", number=""):
    return ReceiptFacts(operator=operator, keys=(key,), outcome=outcome, stat=stat, err="000", raw_id=key,
                        number=number)


async def check_accept_and_get(store):
    m = make_message(reference="ref-1")
    await store.accept([m], "gw1", 1030.0)
    got = await store.get(m.id)
    assert got.id == m.id and got.to == "46701234567" and got.reference == "ref-1"
    assert got.status is Status.QUEUED and got.cost == Decimal(0)
    assert [e.status for e in got.events] == [Status.QUEUED]
    assert await store.get("nope") is None


async def check_submit_then_receipt(store):
    store.cost_of = lambda operator, number: Decimal("0.10") if operator == "cheap" else None
    m = make_message()
    await store.accept([m], "gw1", 1030.0)
    ts = await store.record_submit(m.id, "cheap", ["abc"], 1001.0)
    assert [t.message.status for t in ts] == [Status.SUBMITTED]
    t = await store.apply_receipt(receipt("abc"), 1002.0)
    assert t.message.status is Status.DELIVERED and not t.requeue
    got = await store.get(m.id)
    assert got.status is Status.DELIVERED and got.operator == "cheap" and got.cost == Decimal("0.10")
    assert got.events[1].detail == "ids=abc cost=0.10"
    assert [(e.status, e.operator, e.final) for e in got.events] == [
        (Status.QUEUED, None, False), (Status.SUBMITTED, "cheap", False), (Status.DELIVERED, "cheap", True)]
    assert "stat=DELIVRD" in got.events[-1].detail
    # A duplicate receipt changes nothing.
    t2 = await store.apply_receipt(receipt("abc"), 1003.0)
    assert not t2.changed
    assert len((await store.get(m.id)).events) == 3


async def check_multipart_waits_for_every_part(store):
    """One event per change of status (SPEC §4): a part delivered while others are not is kept
    (the last part's receipt delivers the message) but is no event, and does not move the message
    in the pull of changes."""
    m = make_message(parts=3)
    await store.accept([m], "gw1", 1030.0)
    await store.record_submit(m.id, "cheap", ["p1", "p2", "p3"], 1001.0)
    [(position, _)] = await store.updates(m.account, 0, 10)
    for key in ("p1", "p3"):
        await store.apply_receipt(receipt(key), 1002.0)
        assert (await store.get(m.id)).status is Status.SUBMITTED
    await store.apply_receipt(receipt("p3"), 1002.5)  # a duplicate
    assert await store.updates(m.account, position, 10) == []
    await store.apply_receipt(receipt("p2"), 1003.0)
    got = await store.get(m.id)
    assert got.status is Status.DELIVERED
    assert [(e.status, e.detail.split(" stat")[0]) for e in got.events] == [
        (Status.QUEUED, ""), (Status.SUBMITTED, "ids=p1,p2,p3"), (Status.DELIVERED, "part 2/3")]
    assert [r[1].id for r in await store.updates(m.account, position, 10)] == [m.id]


async def check_failed_receipt_fails_over_then_fails(store):
    store.untried = untried
    m = make_message()
    await store.accept([m], "gw1", 1030.0)
    await store.record_submit(m.id, "cheap", ["x1"], 1001.0)
    t = await store.apply_receipt(receipt("x1", ReceiptOutcome.FAILED, stat="UNDELIV"), 1002.0, "gw2", 1040.0)
    assert t.requeue and t.message.status is Status.QUEUED and t.message.tried == ("cheap",)
    # The requeued message is held by the node that applied the receipt.
    assert await store.claim("gw3", 1003.0, 1050.0, 10) == []
    await store.record_submit(m.id, "dear", ["y1"], 1004.0)
    t = await store.apply_receipt(receipt("y1", ReceiptOutcome.FAILED, operator="dear", stat="UNDELIV"), 1005.0)
    assert not t.requeue and t.message.status is Status.FAILED
    got = await store.get(m.id)
    assert [(e.status, e.operator, e.final) for e in got.events] == [
        (Status.QUEUED, None, False), (Status.SUBMITTED, "cheap", False), (Status.FAILED, "cheap", False),
        (Status.QUEUED, None, False), (Status.SUBMITTED, "dear", False), (Status.FAILED, "dear", True)]
    assert got.tried == ("cheap", "dear")


async def check_submit_error_requeues(store):
    store.untried = untried
    m = make_message()
    await store.accept([m], "gw1", 1030.0)
    t = await store.record_submit_failed(m.id, "cheap", "ESME_RINVDSTADR", 1001.0)
    assert t.requeue and t.message.status is Status.QUEUED
    got = await store.get(m.id)
    assert got.tried == ("cheap",) and got.error == "ESME_RINVDSTADR"
    # the last operator refuses it too: failed, and the message names that operator, as after a receipt
    t = await store.record_submit_failed(m.id, "dear", "ESME_RINVDSTADR", 1002.0)
    assert not t.requeue and (await store.get(m.id)).status is Status.FAILED
    assert (await store.get(m.id)).operator == "dear"


async def check_scheduled_messages_are_released_when_due(store):
    m = make_message(status=Status.SCHEDULED, send_at=2000.0)
    m.events[0] = Event(at=1000.0, status=Status.SCHEDULED)
    await store.accept([m], "gw1", 1030.0)
    assert await store.release_due(1999.0) == 0
    assert await store.claim("gw1", 1999.0, 2030.0, 10, own_before=2000.0) == []
    assert await store.release_due(2000.0) == 1
    got = await store.claim("gw1", 2000.0, 2030.0, 10, own_before=2000.0)
    assert [x.id for x in got] == [m.id]
    events = (await store.get(m.id)).events
    assert [(e.status, e.detail) for e in events] == [(Status.SCHEDULED, ""), (Status.QUEUED, "send_at reached")]


async def check_intermediate_receipts_change_nothing_and_buffered_then_delivered(store):
    m = make_message()
    await store.accept([m], "gw1", 1030.0)
    await store.record_submit(m.id, "cheap", ["i1"], 1001.0)
    await store.apply_receipt(receipt("i1", ReceiptOutcome.ACCEPTED, stat="ENROUTE"), 1002.0)
    await store.apply_receipt(receipt("i1", ReceiptOutcome.BUFFERED, stat="BUFFRED"), 1003.0)
    await store.apply_receipt(receipt("i1", ReceiptOutcome.BUFFERED, stat="BUFFRED"), 1003.5)  # still buffered
    await store.apply_receipt(receipt("i1"), 1004.0)
    got = await store.get(m.id)
    assert [(e.status, e.detail.split()[0] if e.detail else "") for e in got.events] == [
        (Status.QUEUED, ""), (Status.SUBMITTED, "ids=i1"), (Status.BUFFERED, "stat=BUFFRED"),
        (Status.DELIVERED, "stat=DELIVRD")]


async def check_no_receipt_within_the_timeout_is_unknown(store):
    a, b, c = make_message(at=1000.0), make_message(at=1000.0), make_message(at=1000.0)
    await store.accept([a, b, c], "gw1", 1030.0)
    await store.record_submit(a.id, "cheap", ["ta"], 1001.0)
    await store.record_submit(b.id, "cheap", ["tb"], 1500.0)
    await store.record_submit(c.id, "cheap", ["tc"], 1001.0)
    await store.apply_receipt(receipt("tc"), 1002.0)
    ts = await store.expire_unanswered(older_than=1400.0, now=2000.0, waited=400.0)
    assert [t.message.id for t in ts] == [a.id]
    got = await store.get(a.id)
    assert got.status is Status.UNKNOWN and got.events[-1].final and "400" in got.events[-1].detail
    assert (await store.get(b.id)).status is Status.SUBMITTED
    assert (await store.get(c.id)).status is Status.DELIVERED
    assert await store.expire_unanswered(older_than=1400.0, now=2001.0, waited=400.0) == []




async def check_mo_whole_and_reassembled_from_parts_in_any_order(store):
    from connectors.api import MoFacts

    whole = await store.store_mo(MoFacts("op", "46701234567", "72550", "PIZZA large"), 1000.0)
    assert (await store.get_mo(whole.id)).text == "PIZZA large"
    part = lambda seq, text, ref=7: MoFacts("op", "46701234567", "72550", text, (ref, 3, seq))  # noqa: E731
    assert await store.store_mo(part(3, "three"), 1001.0) is None
    assert await store.store_mo(part(1, "one "), 1002.0) is None
    assert await store.store_mo(part(1, "one "), 1002.5) is None  # a repeated part
    assert await store.store_mo(part(1, "other ref", ref=8), 1002.6) is None
    mo = await store.store_mo(part(2, "two "), 1003.0)
    assert (mo.text, mo.parts, mo.note, mo.received_at) == ("one two three", 3, "", 1001.0)
    assert (await store.get_mo(mo.id)).text == "one two three"
    # The other reference never completes: after the timeout what came is stored, with a note.
    assert await store.expire_mo_parts(older_than=1002.0, now=1400.0) == []
    [late] = await store.expire_mo_parts(older_than=1003.0, now=1400.0)
    assert late.text == "other ref" and "1 of 3 parts" in late.note and "missing part(s) 2, 3" in late.note
    assert await store.expire_mo_parts(older_than=5000.0, now=5000.0) == []


async def check_an_emoji_a_phone_split_between_two_mo_parts_is_whole_again(store):
    """A part keeps the half of a surrogate pair at its edge as a placeholder (connectors.smpp.
    halves): every store keeps it as text, and the reassembly pairs it with the other half."""
    from connectors.api import MoFacts
    from connectors.smpp.halves import decode_ucs2_part

    first, second = decode_ucs2_part("PULL \U0001F600".encode("utf-16-be")[:-2]), decode_ucs2_part(
        "\U0001F600 ok".encode("utf-16-be")[2:])
    part = lambda seq, text: MoFacts("op", "46701234567", "72550", text, (9, 2, seq))  # noqa: E731
    assert await store.store_mo(part(2, second), 1000.0) is None
    mo = await store.store_mo(part(1, first), 1001.0)
    assert mo.text == "PULL \U0001F600 ok" and (await store.get_mo(mo.id)).text == "PULL \U0001F600 ok"


def mo_routing(mo, spent, *, url="http://backend/mo", reply=None):
    """A routing decision as smscore.mo would make it (the store applies whatever it is given)."""
    from decimal import Decimal

    from smscore.model import MoRouting, PushJob

    r = MoRouting(outcome="keyword", account="acme", keyword="PIZZA", payload="large",
                  events=[("routed", "keyword PIZZA")], inbox=True,
                  spend=("72550", mo.sender, "2026-11", Decimal("10")))
    r.push = PushJob("mo", "acme", mo.id, url, {"id": mo.id, "spent_before": str(spent("72550", mo.sender, "2026-11"))})
    if reply:
        m = make_message(to=mo.sender, at=mo.received_at)
        m.origin, m.sender, m.text = "reply", mo.to, reply
        r.replies.append(m)
    return r


async def check_mo_routing_is_stored_with_the_mo(store):
    from connectors.api import MoFacts

    mo = await store.store_mo(MoFacts("op", "46701234567", "72550", "PIZZA large"), 1000.0,
                              lambda m, spent: mo_routing(m, spent, reply="thanks"), "gw1", 1030.0)
    assert (mo.account, mo.keyword, mo.payload, mo.outcome) == ("acme", "PIZZA", "large", "keyword")
    reply = mo.routing.replies[0]
    got = await store.get_mo(mo.id)
    assert [(e.status, e.detail) for e in got.events] == [("received", ""), ("routed", "keyword PIZZA")]
    assert got.seq is not None
    # the reply is a stored MT, claimed by the node that routed
    stored_reply = await store.get(reply.id)
    assert stored_reply.origin == "reply" and stored_reply.to == "46701234567"
    assert await store.claim("gw2", 1001.0, 1100.0, 10) == []
    # the spend is counted: a second MO sees it
    mo2 = await store.store_mo(MoFacts("op", "46701234567", "72550", "PIZZA small"), 1001.0,
                               lambda m, spent: mo_routing(m, spent), "gw1", 1030.0)
    jobs = await store.pending_push_jobs()
    assert [(j.subject, j.body.get("spent_before")) for j in jobs] == [(mo.id, "0"), (mo2.id, "10")]
    # the inbox lists them oldest first, paged by position
    first = await store.inbox("acme", 0, 1)
    assert [m.id for m in first] == [mo.id]
    assert [m.id for m in await store.inbox("acme", first[-1].seq, 10)] == [mo2.id]
    assert await store.inbox("other", 0, 10) == []



# -- admin look-ups (SPEC §14): newest first, paged by the last id seen ---------------------------
async def _pages(find, limit):
    """Every id ``find(before, limit)`` gives, page after page, and how many pages it took."""
    seen, before, pages = [], None, 0
    while True:
        page = await find(before, limit)
        pages += 1
        seen.extend(x.id for x in page)
        if len(page) < limit:
            return seen, pages
        before = page[-1].id


async def check_admin_message_look_ups_filter_and_page_newest_first(store):
    from smscore.store.lookups import MessageQuery

    made = []
    for i in range(7):
        m = make_message(to="46700000001" if i % 2 else "46700000002", at=1000.0 + i)
        m.account = "acme" if i < 5 else "globex"
        made.append(m)
    await store.accept(made, "gw1", 1e9)
    await store.record_submit(made[3].id, "cheap", ["k3"], 1010.0)
    await store.record_submit(made[4].id, "dear", ["k4"], 1010.0)
    newest_first = [m.id for m in reversed(made)]
    every = lambda before, limit: store.find_messages(MessageQuery(), before, limit)  # noqa: E731
    assert await _pages(every, 3) == (newest_first, 3)  # 3 + 3 + 1: no repeat, no gap
    assert await _pages(every, 7) == (newest_first, 2)
    find = lambda **kw: store.find_messages(MessageQuery(**kw), None, 100)  # noqa: E731
    assert [m.id for m in await find(account="globex")] == newest_first[:2]
    assert [m.id for m in await find(to="46700000001")] == [made[5].id, made[3].id, made[1].id]
    assert [m.id for m in await find(status="submitted")] == [made[4].id, made[3].id]
    assert [m.id for m in await find(operator="cheap")] == [made[3].id]
    assert [m.id for m in await find(since=1002.0, until=1004.0)] == [made[3].id, made[2].id]
    assert [m.id for m in await find(account="acme", to="46700000002", since=1001.0)] == [made[4].id, made[2].id]
    assert await find(account="nobody") == []
    # Lists carry no history unless asked; with it, each message has its own.
    [plain] = await store.find_messages(MessageQuery(operator="dear"), None, 10)
    [full] = await store.find_messages(MessageQuery(operator="dear"), None, 10, events=True)
    assert plain.events == [] and plain.status is Status.SUBMITTED and plain.operator == "dear"
    assert [(e.status, e.operator) for e in full.events] == [(Status.QUEUED, None), (Status.SUBMITTED, "dear")]


async def check_admin_mo_look_ups_filter_and_page_newest_first(store):
    from connectors.api import MoFacts

    from smscore.store.lookups import MoQuery

    routed = [await store.store_mo(MoFacts("op", sender, "72550", "PIZZA large"), at, mo_routing, "gw1", 1030.0)
              for sender, at in (("46701111111", 1000.0), ("46702222222", 1001.0), ("46701111111", 1002.0))]
    stray = await store.store_mo(MoFacts("op", "46701111111", "72550", "HELLO"), 1003.0)  # not routed
    ids = [stray.id] + [mo.id for mo in reversed(routed)]
    every = lambda before, limit: store.find_mo(MoQuery(), before, limit)  # noqa: E731
    assert await _pages(every, 2) == (ids, 3)
    find = lambda **kw: store.find_mo(MoQuery(**kw), None, 100)  # noqa: E731
    assert [mo.id for mo in await find(sender="46701111111")] == [stray.id, routed[2].id, routed[0].id]
    assert [mo.id for mo in await find(account="acme", keyword="PIZZA")] == ids[1:]
    assert await find(account="acme", keyword="SALAD") == []
    newest = (await find(account="acme", sender="46701111111"))[0]
    assert (newest.text, newest.payload, newest.keyword, newest.events) == ("PIZZA large", "large", "PIZZA", [])


async def check_number_facts_and_stop_list_entries_paged_by_account_and_number(store):
    from smscore.store.lookups import StopEntry
    from smscore.store.rules import DO_NOT_CALL
    from tests.store_contract_accounts import with_rules

    with_rules(store)
    number = "46709999999"
    empty = await store.number_facts(number)
    assert (empty.learned, empty.stop, empty.consents) == (None, (), ())
    # What failed and what delivered is learned (with the account rules on).
    await store.ensure_accounts({"acme": Decimal(100)})
    m = make_message(to=number)
    await store.accept([m], "gw1", 1e9)
    await store.record_submit(m.id, "cheap", ["n1"], 1001.0)
    await store.apply_receipt(receipt("n1", ReceiptOutcome.FAILED, stat="UNDELIV"), 1002.0, "gw1", 1e9)
    await store.record_submit(m.id, "dear", ["n2"], 1003.0)
    await store.apply_receipt(receipt("n2", operator="dear"), 1004.0)
    await store.stoplist_change([number, "46700000005"], account="acme", at=10.0)
    await store.stoplist_change([number], account="beta", at=11.0, source="import")
    await store.stoplist_change([number], at=12.0)  # do-not-call
    await store.stoplist_change([number], account="beta", consent=True, at=13.0)
    facts = await store.number_facts(number)
    assert facts.learned.operator == "dear" and dict(facts.learned.failures) == {"cheap": 1002.0}
    assert facts.stop == (StopEntry(DO_NOT_CALL, number, 12.0, "ops"), StopEntry("acme", number, 10.0, "ops"),
                          StopEntry("beta", number, 11.0, "import"))
    assert facts.consents == (("beta", 13.0),)
    # Every entry once, page after page, in (account, number) order; filters by number and account.
    seen, after = [], None
    while True:
        page = await store.stoplist_entries(after=after, limit=2)
        seen.extend((e.account, e.number) for e in page)
        if len(page) < 2:
            break
        after = (page[-1].account, page[-1].number)
    assert seen == [(DO_NOT_CALL, number), ("acme", "46700000005"), ("acme", number), ("beta", number)]
    assert [e.account for e in await store.stoplist_entries(number=number)] == [DO_NOT_CALL, "acme", "beta"]
    assert [e.number for e in await store.stoplist_entries(account="acme", after=("acme", "46700000005"))] == [number]
    await store.stoplist_change([number], account="acme", remove=True, at=20.0)
    assert [e.account for e in (await store.number_facts(number)).stop] == [DO_NOT_CALL, "beta"]


async def check_account_states_tell_balance_pause_and_todays_count(store):
    from smscore.store.rules import day_of
    from tests.store_contract_accounts import with_rules

    with_rules(store)
    assert await store.account_states(day_of(1000.0)) == {}
    await store.ensure_accounts({"acme": Decimal(10), "beta": Decimal(0)})
    await store.accept([make_message(at=1000.0), make_message(to="46701234568", at=1000.0)], "gw1", 1e9)
    await store.set_paused("beta", True, 1001.0)
    states = await store.account_states(day_of(1000.0))
    assert sorted(states) == ["acme", "beta"]
    acme, beta = states["acme"], states["beta"]
    assert (acme.balance, acme.paused, acme.sent_today) == (Decimal(8), False, 2)  # prepaid at 1 a part
    assert (beta.balance, beta.paused, beta.sent_today) == (Decimal(0), True, 0)
    assert (await store.account_states(day_of(1000.0 + 86400)))["acme"].sent_today == 0


CHECKS = [v for k, v in sorted(globals().items()) if k.startswith("check_")]
