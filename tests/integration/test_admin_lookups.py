"""The admin look-ups of SPEC §14 through a real in-process gateway (the Rig of tests/account_rig.py, the ``rig`` fixture:
SQLite in tmp_path, three simulated operators over loopback SMPP): every endpoint, paging by
cursor without repeats or gaps, filters, and the refusals (no admin key, a customer's key, bad
parameters, unknown ids and accounts)."""

from __future__ import annotations

from urllib.parse import quote

import pytest_twisted

from tests.account_rig import refusal
from tests.harness.waiting import eventually
from tests.paging import every_page

PORTED = "46709990001"  # cheap cannot reach it: mid delivers (tests/account_rig.py's operators)


async def look(rig, path, key="ops-key"):
    """GET an admin look-up: (status, body)."""
    return await rig.api("GET", "/v1/admin" + path, key=key)


async def ok(rig, path) -> dict:
    code, body = await look(rig, path)
    assert code == 200, (path, body)
    return body


@pytest_twisted.ensureDeferred
async def test_messages_of_every_account_newest_first_paged_and_filtered(rig):
    sent = []
    for i, to in enumerate(["46701000001", "46701000002", "46701000001", "46701000003", "46701000001"]):
        sent.append((await rig.send({"to": to, "text": f"hello {i}"}))["id"])
    for to in ("46701000001", "46701000004"):
        sent.append((await rig.send({"to": to, "text": "beta"}, key="beta-key"))["id"])
    for mid in sent[:3]:
        await rig.until(mid, "delivered")
    newest_first = sent[::-1]
    for limit in (1, 2, 3, 7, 100):
        items, pages = await every_page(lambda p: ok(rig, p), "/messages", limit)
        assert [m["id"] for m in items] == newest_first, limit  # no repeat, no gap
        assert pages == len(sent) // limit + 1
    [item] = (await ok(rig, "/messages?to=%2B46701000004"))["messages"]
    assert item["id"] == sent[6] and item["account"] == "beta" and item["to"] == "46701000004"
    assert "events" not in item and item["from"] == "BETA" and item["text"] == "beta"
    assert [m["id"] for m in (await ok(rig, "/messages?account=beta"))["messages"]] == sent[:4:-1]
    assert [m["id"] for m in (await ok(rig, "/messages?account=acme&to=46701000001"))["messages"]] == [
        sent[4], sent[2], sent[0]]
    delivered = (await ok(rig, "/messages?status=delivered&operator=cheap&account=acme"))["messages"]
    assert set(sent[:3]) <= {m["id"] for m in delivered} and all(m["status"] == "delivered" for m in delivered)
    assert (await ok(rig, "/messages?operator=dear"))["messages"] == []
    first = await rig.get(sent[1])
    last = await rig.get(sent[3])
    window = (await ok(rig, f"/messages?since={first['created_at']}&until={last['created_at']}"))["messages"]
    assert sent[1] in [m["id"] for m in window] and sent[3] not in [m["id"] for m in window]
    assert (await ok(rig, "/messages?until=2000-01-01"))["messages"] == []
    assert (await ok(rig, "/messages?account=nobody"))["next_cursor"] is None


@pytest_twisted.ensureDeferred
async def test_one_message_of_any_account_with_its_history(rig):
    mid = (await rig.send({"to": PORTED, "text": "ported"}, key="beta-key"))["id"]
    await rig.until(mid, "delivered", key="beta-key")
    body = await ok(rig, f"/messages/{mid}")
    theirs = await rig.get(mid, key="beta-key")
    # as the account sees it, plus the account; but the cost is the operators' (SPEC §14: a customer
    # key sees what the message costs it), and so is each attempt's in its event's detail
    assert body["account"] == "beta"
    assert {k: v for k, v in body.items() if k not in ("account", "cost", "events")} == {
        k: v for k, v in theirs.items() if k not in ("cost", "events")}
    assert [{**e, "detail": None} for e in body["events"]] == [{**e, "detail": None} for e in theirs["events"]]
    assert any("cost=" in e["detail"] for e in body["events"]) and body["cost"] != theirs["cost"]
    assert [(e["status"], e["operator"]) for e in body["events"]][-3:] == [
        ("queued", None), ("submitted", "mid"), ("delivered", "mid")]
    refusal(*await look(rig, "/messages/0123456789abcdef01234567"), 404, "not_found")


@pytest_twisted.ensureDeferred
async def test_a_numbers_mt_mo_learned_operator_stop_list_and_consent(rig):
    code, _ = await rig.api("POST", "/v1/admin/operators/cheap/mo",
                            {"from": PORTED, "to": "72550", "text": "PIZZA large"}, key="ops-key")
    assert code == 202  # the keyword's reply ("Thanks") is an MT to the number too, the oldest
    ids = [(await rig.send({"to": PORTED, "text": f"try {i}"}))["id"] for i in range(3)]
    for mid in ids:
        await rig.until(mid, "delivered")
    assert (await rig.admin("/stoplist", {"numbers": [PORTED], "account": "beta"}))[0] == 200
    assert (await rig.admin("/stoplist", {"numbers": [PORTED]}))[0] == 200  # do-not-call
    assert (await rig.admin("/stoplist", {"numbers": [PORTED], "account": "acme", "consent": True}))[0] == 200
    body = await ok(rig, f"/numbers/{quote('+' + PORTED)}?limit=2")
    assert body["number"] == PORTED
    assert [m["id"] for m in body["messages"]] == ids[:0:-1] and body["next_cursor"] == ids[1]
    rest = await ok(rig, f"/numbers/{PORTED}?limit=2&cursor={body['next_cursor']}")
    assert [m["id"] for m in rest["messages"]][:1] == ids[:1]
    [reply] = rest["messages"][1:]
    assert (reply["from"], reply["text"], reply["account"]) == ("72550", "Thanks", "acme")
    assert (await ok(rig, f"/numbers/{PORTED}?limit=2&cursor={rest['next_cursor']}"))["messages"] == []
    [mo] = body["mo"]
    assert (mo["from"], mo["to"], mo["keyword"], mo["account"], mo["text"]) == (
        PORTED, "72550", "PIZZA", "acme", "PIZZA large")
    assert body["mo_next_cursor"] is None
    assert body["learned"]["operator"] == "mid"
    assert [(f["operator"], f["counts"]) for f in body["learned"]["failures"]] == [("cheap", True)]
    assert [(e["account"], e["list"], e["source"]) for e in body["stop_list"]] == [("beta", "stop", "ops")]
    assert body["do_not_call"]["list"] == "do_not_call" and body["do_not_call"]["account"] is None
    assert [c["account"] for c in body["consents"]] == ["acme"]
    # "why this operator": its first delivery taught its block (SPEC §7); too little to decide on yet
    block = body["block"]
    assert block["basis"] is None and block["chances"] == {}
    assert {(e["prefix"], e["operator"]): (e["delivered"], e["failed"]) for e in block["evidence"]
            if e["prefix"] == PORTED[:-2]} == {(PORTED[:-2], "mid"): (1.0, 0.0), (PORTED[:-2], "cheap"): (0.0, 1.0)}
    assert [len(e["prefix"]) for e in block["evidence"]][::2] == [9, 8, 7, 6, 5, 4]  # longest first
    # ... and where the next message would go: its own history (mid) first, cheap (failed lately) last
    choice = {c["profile"]: c for c in body["choice"]}
    assert all(c["because"] == "number" and c["order"][0] == "mid" and c["lookup"] is None for c in choice.values())
    assert all(c["order"][-1] == "cheap" for c in choice.values() if len(c["order"]) > 1)
    unknown = await ok(rig, "/numbers/46700000000")
    assert {c["because"] for c in unknown["choice"]} == {"price"}
    assert (unknown["messages"], unknown["mo"], unknown["learned"], unknown["stop_list"], unknown["do_not_call"],
            unknown["consents"]) == ([], [], None, [], None, [])
    refusal(*await look(rig, "/numbers/0701234567"), 422, "invalid_number", "number")


@pytest_twisted.ensureDeferred
async def test_accounts_with_balance_pause_and_todays_volume(rig):
    await rig.send({"to": "46701000001", "text": "one"}, key="vol-key")
    assert (await rig.admin("/accounts/beta/pause"))[0] == 200
    body = await ok(rig, "/accounts")
    assert [a["account"] for a in body["accounts"]] == ["acme", "beta", "fast", "vol"]
    by_name = {a["account"]: a for a in body["accounts"]}
    assert by_name["acme"]["billing"] == "prepaid" and by_name["acme"]["balance"] == 1000.30
    assert by_name["acme"]["senders"] == ["ACME", "4670111111", "72550"] and by_name["acme"]["profile"] == "standard"
    assert by_name["beta"]["paused"] is True and by_name["acme"]["paused"] is False
    assert by_name["fast"]["tps"] == 2 and by_name["acme"]["tps"] is None
    assert (by_name["vol"]["daily_volume_limit"], by_name["vol"]["sent_today"]) == (3, 1)
    assert by_name["acme"]["sent_today"] is None  # no limit: not counted
    assert await ok(rig, "/accounts/vol") == by_name["vol"]
    refusal(*await look(rig, "/accounts/nobody"), 404, "not_found")


@pytest_twisted.ensureDeferred
async def test_the_approval_queue_says_why_each_message_is_held(rig):
    held = [(await rig.send({"to": f"4670100000{i}", "text": f"see http://evil.example/{i}"}))["id"] for i in range(3)]
    await rig.send({"to": "46701000009", "text": "no link"})
    items, pages = await every_page(lambda p: ok(rig, p), "/approvals", 2)
    assert [m["id"] for m in items] == held[::-1] and pages == 2
    assert all(m["status"] == "pending_approval" and m["account"] == "acme" for m in items)
    assert "evil.example" in items[0]["held_because"] and items[0]["held_at"]
    assert (await ok(rig, "/approvals?account=beta"))["messages"] == []
    assert (await rig.admin(f"/messages/{held[0]}/approve"))[0] == 200
    assert [m["id"] for m in (await ok(rig, "/approvals"))["messages"]] == held[:0:-1]


@pytest_twisted.ensureDeferred
async def test_inbound_of_every_account_filtered_and_paged(rig):
    for sender, text in (("46702000001", "PIZZA one"), ("46702000002", "PIZZA two"), ("46702000001", "HELLO"),
                         ("46702000001", "PIZZA three")):
        code, body = await rig.api("POST", "/v1/admin/operators/cheap/mo", {"from": sender, "to": "72550", "text": text},
                                   key="ops-key")
        assert code == 202, body
    items, pages = await every_page(lambda p: ok(rig, p), "/inbound", 3)
    assert [m["text"] for m in items] == ["PIZZA three", "HELLO", "PIZZA two", "PIZZA one"] and pages == 2
    assert len({m["id"] for m in items}) == 4
    pizza = (await ok(rig, "/inbound?account=acme&keyword=PIZZA&from=%2B46702000001"))["messages"]
    assert [m["payload"] for m in pizza] == ["three", "one"] and all(m["account"] == "acme" for m in pizza)
    [hello] = (await ok(rig, "/inbound?from=46702000001&limit=1&cursor=" + items[0]["id"]))["messages"]
    assert hello["text"] == "HELLO" and hello["outcome"] != "keyword"


@pytest_twisted.ensureDeferred
async def test_stop_list_entries_paged_and_filtered(rig):
    numbers = [f"4670300000{i}" for i in range(5)]
    assert (await rig.admin("/stoplist", {"numbers": numbers, "account": "acme"}))[0] == 200
    assert (await rig.admin("/stoplist", {"numbers": numbers[:2], "account": "beta"}))[0] == 200
    assert (await rig.admin("/stoplist", {"numbers": numbers[:1]}))[0] == 200
    items, pages = await every_page(lambda p: ok(rig, p), "/stoplist", 3, items="entries")
    assert [(e["account"], e["number"]) for e in items] == (
        [(None, numbers[0])] + [("acme", n) for n in numbers] + [("beta", n) for n in numbers[:2]])
    assert pages == 3
    assert [e["account"] for e in (await ok(rig, f"/stoplist?number={numbers[1]}"))["entries"]] == ["acme", "beta"]
    assert [e["number"] for e in (await ok(rig, "/stoplist?account=beta"))["entries"]] == numbers[:2]
    assert [e["list"] for e in (await ok(rig, "/stoplist?account=*"))["entries"]] == ["do_not_call"]


@pytest_twisted.ensureDeferred
async def test_the_stop_list_answer_lists_every_accounts_consents_apart_from_the_entries(rig):
    numbers = [f"4670400000{i}" for i in range(3)]
    assert (await rig.admin("/stoplist", {"numbers": numbers[:2], "account": "acme", "consent": True}))[0] == 200
    assert (await rig.admin("/stoplist", {"numbers": numbers[1:], "account": "beta", "consent": True}))[0] == 200
    assert (await rig.admin("/stoplist", {"numbers": numbers[:1]}))[0] == 200  # do-not-call
    assert (await rig.admin("/stoplist", {"numbers": numbers[:1], "account": "beta"}))[0] == 200
    body = await ok(rig, "/stoplist")
    assert set(body) == {"entries", "next_cursor", "consents", "consents_next_cursor"}
    assert [(e["account"], e["list"]) for e in body["entries"]] == [(None, "do_not_call"), ("beta", "stop")]
    everyone = [("acme", numbers[0]), ("acme", numbers[1]), ("beta", numbers[1]), ("beta", numbers[2])]
    assert [(c["account"], c["number"]) for c in body["consents"]] == everyone
    assert all(set(c) == {"number", "account", "added_at"} for c in body["consents"])
    seen, cursor, pages = [], None, 0
    while True:
        page = await ok(rig, "/stoplist?limit=3" + (f"&consents_cursor={cursor}" if cursor else ""))
        seen += [(c["account"], c["number"]) for c in page["consents"]]
        pages += 1
        cursor = page["consents_next_cursor"]
        if cursor is None:
            break
    assert (seen, pages) == (everyone, 2)
    assert [c["account"] for c in (await ok(rig, f"/stoplist?number={numbers[1]}"))["consents"]] == ["acme", "beta"]
    assert [c["number"] for c in (await ok(rig, "/stoplist?account=beta"))["consents"]] == numbers[1:]
    assert (await ok(rig, "/stoplist?account=*"))["consents"] == []  # the do-not-call list is nobody's consent


PATHS = ["/messages", "/messages/0123456789abcdef01234567", "/numbers/46701000001", "/accounts", "/accounts/acme",
         "/approvals", "/inbound", "/stoplist"]


@pytest_twisted.ensureDeferred
async def test_look_ups_need_an_admin_key(rig):
    for path in PATHS:
        refusal(*await look(rig, path, key=None), 401, "unauthorized")
        refusal(*await look(rig, path, key="acme-key"), 403, "forbidden")
        refusal(*await look(rig, path, key="wrong"), 401, "unauthorized")


@pytest_twisted.ensureDeferred
async def test_bad_parameters_are_refused_naming_them(rig):
    for path in PATHS:
        sep = "&" if "?" in path else "?"
        refusal(*await look(rig, f"{path}{sep}colour=red"), 400, "invalid_request", "colour")
        refusal(*await look(rig, f"{path}{sep}limit={'9' * 4301}"), 400, "invalid_request", "limit")
    for path, field in (("/messages?since=yesterday", "since"), ("/messages?until=2026-13-01", "until"),
                        ("/messages?cursor=xyz", "cursor"), ("/messages?cursor=ABC", "cursor"),
                        ("/messages?limit=0", "limit"), ("/messages?limit=1001", "limit"),
                        ("/messages?status=lost", "status"), ("/messages?account=a%20b", "account"),
                        ("/messages?limit=1&limit=2", "limit"), ("/approvals?cursor=-1", "cursor"),
                        ("/inbound?cursor=zz", "cursor"), ("/numbers/46701000001?mo_cursor=q", "mo_cursor"),
                        ("/stoplist?cursor=nocolon", "cursor"), ("/stoplist?consents_cursor=nocolon", "consents_cursor"),
                        ("/inbound?keyword=", "keyword")):
        refusal(*await look(rig, path), 400, "invalid_request", field)
    refusal(*await look(rig, "/messages?to=12"), 422, "invalid_number", "to")
    refusal(*await look(rig, "/inbound?from=abc"), 422, "invalid_number", "from")
    refusal(*await look(rig, "/stoplist?number=1"), 422, "invalid_number", "number")
    refusal(*await look(rig, "/nothing"), 404, "not_found")


@pytest_twisted.ensureDeferred
async def test_a_stop_from_a_sender_written_with_a_plus_stops_the_number_and_is_found_by_it(rig):
    """SPEC §6/§7: a STOP adds the sender to the stop list and messages to listed numbers become
    stopped. An SMSC that writes the sender "+46..." stored it so: the MT to "46..." went out, and
    no look-up by the number found the MO or the entry. The STOP withdraws a consent given before
    it (a consent lets messages through the stop list: the later of the two wins)."""
    number = "46701237777"
    code, _ = await rig.api("POST", "/v1/admin/stoplist", {"numbers": [number], "account": "acme", "consent": True},
                            key="ops-key")
    assert code == 200 and (await ok(rig, f"/stoplist?number={number}"))["consents"] != []
    code, _ = await rig.api("POST", "/v1/admin/operators/cheap/mo", {"from": "+" + number, "to": "72550", "text": "STOP"},
                            key="ops-key")
    assert code == 202

    async def listed():
        return (await ok(rig, f"/stoplist?number={number}"))["entries"] != []

    await eventually(listed, "the STOP stored")
    [entry] = (await ok(rig, f"/stoplist?number={number}"))["entries"]
    assert entry["number"] == number
    mid = (await rig.send({"to": "+" + number, "text": "after the STOP"}))["id"]
    assert (await rig.get(mid))["status"] == "stopped"
    assert (await ok(rig, f"/stoplist?number={number}"))["consents"] == []
    [mo] = (await ok(rig, f"/numbers/{number}"))["mo"]
    assert (mo["from"], mo["text"]) == (number, "STOP")
    assert entry["source"] == f"stop word from {number} to 72550"  # as docs/api.md says


@pytest_twisted.ensureDeferred
async def test_one_mo_with_its_history_says_what_became_of_it(rig):
    """An audit: an MO whose reply was not sent, or whose push was abandoned, showed "outcome":
    "keyword" and nothing more in every look-up; its history (docs/api.md) was in no answer."""
    number = "46701237778"
    code, _ = await rig.api("POST", "/v1/admin/operators/cheap/mo", {"from": number, "to": "72550", "text": "STOP"},
                            key="ops-key")
    assert code == 202

    async def stored():
        return (await ok(rig, f"/inbound?from={number}"))["messages"]

    await eventually(stored, "the MO stored")
    [mo] = await stored()
    one = await ok(rig, f"/inbound/{mo['id']}")
    assert {k: one[k] for k in mo} == mo  # what the list shows, and its history besides
    statuses = [e["status"] for e in one["events"]]
    assert statuses[0] == "received" and "stop" in statuses, one["events"]
    assert all(set(e) == {"at", "status", "detail"} for e in one["events"])
    refusal(*await look(rig, "/inbound/" + "0" * 24), 404, "not_found")


def test_a_message_of_no_account_shows_its_account_as_null():
    """A reply to a help word or a stop of every account on a shortcode belongs to no account: the
    admin look-ups showed "" where an MO routed to none shows null."""
    from smscore.api.lookups import _message
    from tests.store_contract import make_message

    reply = make_message()
    assert _message(reply)["account"] == "acme"
    reply.account = ""  # as the store keeps it
    assert _message(reply)["account"] is None


@pytest_twisted.ensureDeferred
async def test_an_injected_mo_with_an_empty_text_is_refused_as_empty(rig):
    """It was told the field "is required and must be a string": it was there, a string (an audit)."""
    code, body = await rig.api("POST", "/v1/admin/operators/cheap/mo",
                               {"from": "46701237779", "to": "72550", "text": ""}, key="ops-key")
    assert (code, body["error"]["code"], body["error"]["field"]) == (400, "invalid_request", "text")
    assert body["error"]["message"] == "Field 'text' must not be empty."
