"""The customers' own look-ups of SPEC §14 (``GET /v1/messages/search``, ``/v1/numbers/{n}``,
``/v1/stoplist`` with its consents) and the binds detail the console shows ops, through a real in-process gateway
(the Rig of tests/account_rig.py, the ``rig`` fixture: SQLite in tmp_path, three simulated operators over loopback SMPP).

What matters most is the account boundary: two accounts (acme, beta) write to the same numbers,
and each key sees its own account's data and nothing of the other's — not its messages to the
number, not its stop entry, not its consent, nor what the gateway learned or the do-not-call list.
"""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest_twisted

from tests.account_rig import refusal
from tests.paging import every_page

PORTED = "46709990001"  # cheap cannot reach it: mid delivers (tests/account_rig.py's operators)
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
SUMMARY_KEYS = {"id", "to", "from", "text", "status", "parts", "profile", "reference", "operator", "cost", "error",
                "created_at", "updated_at", "send_at"}


async def ok(rig, path, key="acme-key") -> dict:
    code, body = await rig.api("GET", path, key=key)
    assert code == 200, (path, body)
    return body


@pytest_twisted.ensureDeferred
async def test_search_lists_the_accounts_own_messages_newest_first_paged_and_filtered(rig):
    sent = [(await rig.send({"to": to, "text": f"acme {i}"}))["id"]
            for i, to in enumerate(["46701000001", "46701000002", "46701000001", "46701000003"])]
    theirs = (await rig.send({"to": "46701000001", "text": "beta"}, key="beta-key"))["id"]
    for mid in sent[:2]:
        await rig.until(mid, "delivered")
    for limit in (1, 3, 100):
        items, pages = await every_page(lambda p: ok(rig, p), "/v1/messages/search", limit)
        assert [m["id"] for m in items] == sent[::-1], limit  # beta's is not there; no repeat, no gap
        assert pages == len(sent) // limit + 1
    [first, *_] = (await ok(rig, "/v1/messages/search?limit=1"))["messages"]
    assert set(first) == SUMMARY_KEYS  # GET /v1/messages' shape: no account, no events
    assert (first["id"], first["to"], first["from"], first["text"]) == (sent[3], "46701000003", "ACME", "acme 3")
    to_one = (await ok(rig, "/v1/messages/search?to=%2B46701000001"))["messages"]
    assert [m["id"] for m in to_one] == [sent[2], sent[0]]  # not beta's to the same number
    delivered = (await ok(rig, "/v1/messages/search?status=delivered"))["messages"]
    assert set(sent[:2]) <= {m["id"] for m in delivered} and all(m["status"] == "delivered" for m in delivered)
    one, three = await rig.get(sent[1]), await rig.get(sent[3])
    window = (await ok(rig, f"/v1/messages/search?since={one['created_at']}&until={three['created_at']}"))
    assert [m["id"] for m in window["messages"]] == [sent[2], sent[1]]
    assert (await ok(rig, "/v1/messages/search?until=2000-01-01"))["messages"] == []
    assert [m["id"] for m in (await ok(rig, "/v1/messages/search", key="beta-key"))["messages"]] == [theirs]


@pytest_twisted.ensureDeferred
async def test_a_number_shows_the_accounts_own_mt_mo_stop_entry_and_consent_only(rig):
    code, _ = await rig.api("POST", "/v1/admin/operators/cheap/mo",
                            {"from": PORTED, "to": "72550", "text": "PIZZA large"}, key="ops-key")
    assert code == 202  # acme's keyword: the MO is acme's, and so is its reply ("Thanks") to the number
    ids = [(await rig.send({"to": PORTED, "text": f"try {i}"}))["id"] for i in range(3)]
    beta = (await rig.send({"to": PORTED, "text": "beta's"}, key="beta-key"))["id"]
    for mid in ids:
        await rig.until(mid, "delivered")
    assert (await rig.admin("/stoplist", {"numbers": [PORTED], "account": "beta"}))[0] == 200
    assert (await rig.admin("/stoplist", {"numbers": [PORTED], "account": "acme"}))[0] == 200
    assert (await rig.admin("/stoplist", {"numbers": [PORTED]}))[0] == 200  # do-not-call
    assert (await rig.admin("/stoplist", {"numbers": [PORTED], "account": "acme", "consent": True}))[0] == 200

    body = await ok(rig, f"/v1/numbers/{quote('+' + PORTED)}?limit=2")
    assert set(body) == {"number", "messages", "next_cursor", "mo", "mo_next_cursor", "stop_list", "consent"}
    assert body["number"] == PORTED
    assert [m["id"] for m in body["messages"]] == ids[:0:-1] and body["next_cursor"] == ids[1]
    assert all(set(m) == SUMMARY_KEYS for m in body["messages"])
    rest = await ok(rig, f"/v1/numbers/{PORTED}?limit=2&cursor={body['next_cursor']}")
    assert [m["id"] for m in rest["messages"]][:1] == ids[:1]
    [reply] = rest["messages"][1:]
    assert (reply["from"], reply["text"]) == ("72550", "Thanks")
    assert beta not in [m["id"] for m in body["messages"] + rest["messages"]]
    [mo] = body["mo"]
    assert set(mo) == {"id", "from", "to", "keyword", "text", "payload", "received_at"}  # mo_push_body
    assert (mo["from"], mo["to"], mo["keyword"], mo["text"], mo["payload"]) == (
        PORTED, "72550", "PIZZA", "PIZZA large", "large")
    assert body["mo_next_cursor"] is None
    [entry] = body["stop_list"]
    assert set(entry) == {"number", "list", "added_at", "source"}
    assert (entry["number"], entry["list"], entry["source"]) == (PORTED, "stop", "ops")
    assert RFC3339.match(entry["added_at"]) and RFC3339.match(body["consent"]["added_at"])

    theirs = await ok(rig, f"/v1/numbers/{PORTED}", key="beta-key")
    assert [m["id"] for m in theirs["messages"]] == [beta]
    assert theirs["mo"] == [] and theirs["consent"] is None  # the MO and the consent are acme's
    assert [(e["number"], e["list"]) for e in theirs["stop_list"]] == [(PORTED, "stop")]  # its own entry
    unknown = await ok(rig, "/v1/numbers/46700000000")
    assert (unknown["messages"], unknown["mo"], unknown["stop_list"], unknown["consent"]) == ([], [], [], None)
    refusal(*await rig.api("GET", "/v1/numbers/0701234567"), 422, "invalid_number", "number")


@pytest_twisted.ensureDeferred
async def test_the_stop_list_is_the_accounts_own_paged_by_number(rig):
    numbers = [f"4670300000{i}" for i in range(5)]
    assert (await rig.admin("/stoplist", {"numbers": numbers, "account": "acme"}))[0] == 200
    assert (await rig.admin("/stoplist", {"numbers": numbers[:2] + ["46703000009"], "account": "beta"}))[0] == 200
    assert (await rig.admin("/stoplist", {"numbers": ["46703000008"]}))[0] == 200  # do-not-call: nobody's list
    for limit in (1, 2, 5, 100):
        items, pages = await every_page(lambda p: ok(rig, p), "/v1/stoplist", limit, items="entries")
        assert [e["number"] for e in items] == numbers, limit
        assert pages == len(numbers) // limit + 1
    assert all(set(e) == {"number", "list", "added_at", "source"} and e["list"] == "stop" for e in items)
    body = await ok(rig, "/v1/stoplist?limit=2")
    assert body["next_cursor"] == numbers[1]
    assert [e["number"] for e in (await ok(rig, "/v1/stoplist?number=%2B46703000001"))["entries"]] == [numbers[1]]
    assert (await ok(rig, "/v1/stoplist?number=46703000009"))["entries"] == []  # beta's only
    theirs, _ = await every_page(lambda p: ok(rig, p, "beta-key"), "/v1/stoplist", 100, items="entries")
    assert [e["number"] for e in theirs] == numbers[:2] + ["46703000009"]


@pytest_twisted.ensureDeferred
async def test_the_stop_list_answer_lists_the_accounts_own_consents_apart_from_its_entries(rig):
    numbers = [f"4670400000{i}" for i in range(3)]
    assert (await rig.admin("/stoplist", {"numbers": numbers, "account": "acme", "consent": True}))[0] == 200
    assert (await rig.admin("/stoplist", {"numbers": ["46704000009"], "account": "beta", "consent": True}))[0] == 200
    assert (await rig.admin("/stoplist", {"numbers": ["46704000008"], "account": "acme"}))[0] == 200  # a stop entry
    assert (await rig.admin("/stoplist", {"numbers": numbers[:1]}))[0] == 200  # do-not-call: not shown
    body = await ok(rig, "/v1/stoplist")
    assert set(body) == {"entries", "next_cursor", "consents", "consents_next_cursor"}
    assert [e["number"] for e in body["entries"]] == ["46704000008"]  # a consent is no stop entry
    assert [c["number"] for c in body["consents"]] == numbers  # not beta's
    assert all(set(c) == {"number", "added_at"} and RFC3339.match(c["added_at"]) for c in body["consents"])
    assert body["next_cursor"] is None and body["consents_next_cursor"] is None
    # paged by their own cursor, which leaves the entries' paging as it was
    seen, cursor, pages = [], None, 0
    while True:
        page = await ok(rig, "/v1/stoplist?limit=2" + (f"&consents_cursor={cursor}" if cursor else ""))
        assert [e["number"] for e in page["entries"]] == ["46704000008"]
        seen += [c["number"] for c in page["consents"]]
        pages += 1
        cursor = page["consents_next_cursor"]
        if cursor is None:
            break
    assert (seen, pages) == (numbers, 2)
    assert [c["number"] for c in (await ok(rig, f"/v1/stoplist?number={numbers[1]}"))["consents"]] == [numbers[1]]
    assert (await ok(rig, "/v1/stoplist?number=46704000009"))["consents"] == []  # beta's
    assert [c["number"] for c in (await ok(rig, "/v1/stoplist", key="beta-key"))["consents"]] == ["46704000009"]
    assert (await rig.admin("/stoplist", {"numbers": numbers[:1], "account": "acme", "consent": True,
                                          "remove": True}))[0] == 200
    assert [c["number"] for c in (await ok(rig, "/v1/stoplist"))["consents"]] == numbers[1:]


PATHS = ["/v1/messages/search", "/v1/numbers/46701000001", "/v1/stoplist"]


@pytest_twisted.ensureDeferred
async def test_the_look_ups_need_a_customer_key(rig):
    for path in PATHS:
        refusal(*await rig.api("GET", path, key=None), 401, "unauthorized")
        refusal(*await rig.api("GET", path, key="wrong"), 401, "unauthorized")
        refusal(*await rig.api("GET", path, key="ops-key"), 401, "unauthorized")  # an admin key is no customer
        code, body, headers = await rig.call("GET", path, key=None)
        assert headers.getRawHeaders("www-authenticate") == ['Bearer realm="smsgw"']
        code, body, headers = await rig.call("POST", path, {})
        refusal(code, body, 405, "method_not_allowed")
        assert headers.getRawHeaders("allow") == ["GET"]


@pytest_twisted.ensureDeferred
async def test_bad_parameters_are_refused_naming_them(rig):
    for path in PATHS:
        refusal(*await rig.api("GET", f"{path}?colour=red"), 400, "invalid_request", "colour")
        refusal(*await rig.api("GET", f"{path}?limit=0"), 400, "invalid_request", "limit")
        refusal(*await rig.api("GET", f"{path}?limit={'9' * 4301}"), 400, "invalid_request", "limit")
        refusal(*await rig.api("GET", f"{path}?limit=1&limit=2"), 400, "invalid_request", "limit")
    for path, field in (("/v1/messages/search?since=yesterday", "since"),
                        ("/v1/messages/search?until=2026-13-01", "until"),
                        ("/v1/messages/search?cursor=xyz", "cursor"), ("/v1/messages/search?cursor=ABC", "cursor"),
                        ("/v1/messages/search?status=lost", "status"),
                        ("/v1/messages/search?limit=1001", "limit"),
                        ("/v1/messages/search?account=beta", "account"),  # no filter to reach another account
                        ("/v1/numbers/46701000001?cursor=q", "cursor"),
                        ("/v1/numbers/46701000001?mo_cursor=q", "mo_cursor"),
                        ("/v1/stoplist?cursor=acme:46701000001", "cursor"), ("/v1/stoplist?cursor=a%20b", "cursor"),
                        ("/v1/stoplist?consents_cursor=acme:46701000001", "consents_cursor"),
                        ("/v1/stoplist?account=beta", "account")):
        refusal(*await rig.api("GET", path), 400, "invalid_request", field)
    refusal(*await rig.api("GET", "/v1/messages/search?to=12"), 422, "invalid_number", "to")
    refusal(*await rig.api("GET", "/v1/stoplist?number=1"), 422, "invalid_number", "number")
    refusal(*await rig.api("GET", "/v1/numbers/abc"), 422, "invalid_number", "number")


@pytest_twisted.ensureDeferred
async def test_binds_say_since_when_last_error_submit_rate_and_in_flight(rig):
    for i in range(3):
        await rig.send({"to": f"4670100000{i}", "text": "hi"})
    mid = (await rig.send({"to": "46701000009", "text": "last"}))["id"]
    await rig.until(mid, "delivered")
    code, body = await rig.api("GET", "/v1/admin/binds", key="ops-key")
    assert code == 200
    by_name = {o["operator"]: o for o in body["operators"]}
    assert set(by_name) == {"cheap", "mid", "dear"}  # simulated operators describe themselves too
    for o in by_name.values():
        assert isinstance(o["in_flight"], int) and o["in_flight"] >= 0
        assert o["in_flight"] == sum(s["in_flight"] for s in o["sessions"])
        for s in o["sessions"]:
            assert s["bound"] and RFC3339.match(s["since"]) and s["last_error"] is None
    assert by_name["cheap"]["submits_per_second"] == 0.4  # four submit_sm in the last 10 s
    assert by_name["dear"]["submits_per_second"] == 0.0
