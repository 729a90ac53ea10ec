"""Account rules through the HTTP API of a real in-process gateway (``tests.account_rig``):
SmartConfirm (failover, learning, cost), sender ids and parts, the stop list and do-not-call,
approval and paused accounts. State is read back only through the API (GET a message, GET
/v1/account, pulls, the CSV export) and what each simulated SMSC received."""

from __future__ import annotations

import csv
import io
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest_twisted

from tests.account_rig import D, attempt_costs, history, refusal, rfc3339, sleep


# -- SmartConfirm: failover, learning, cost ---------------------------------------------------------
@pytest_twisted.ensureDeferred
async def test_failover_then_learning_goes_straight_to_the_operator_that_delivered_also_after_restart(rig):
    ported, far, nowhere = "46709990001", "46709998801", "46709997701"
    first = await rig.send({"to": ported, "text": "ported away", "reference": "r1"})
    second = await rig.send({"to": far, "text": "far away"})
    third = await rig.send({"to": nowhere, "text": "nobody"})
    assert (first["status"], first["parts"], first["to"]) == ("queued", 1, ported)

    m = await rig.until(first["id"])
    assert m["status"] == "delivered" and m["operator"] == "mid"
    assert history(m) == [("queued", None, False), ("submitted", "cheap", False), ("failed", "cheap", False),
                          ("queued", None, False), ("submitted", "mid", False), ("delivered", "mid", True)]
    assert "UNDELIV" in m["events"][2]["detail"]
    assert D(m["cost"]) == Decimal("0.50")  # what acme pays for it: its price
    seen = await rig.ops_view(first["id"])  # what the operators cost the gateway
    assert attempt_costs(seen) == [Decimal("0.10"), Decimal("0.20")]
    assert D(seen["cost"]) == sum(attempt_costs(seen)) == Decimal("0.30")
    assert m["error"] is None and m["reference"] == "r1"

    m = await rig.until(second["id"])
    assert m["status"] == "delivered" and m["operator"] == "dear"
    assert [s for s, _, _ in history(m)] == ["queued", "submitted", "failed", "queued", "submitted", "failed",
                                             "queued", "submitted", "delivered"]
    assert [o for s, o, _ in history(m) if s == "submitted"] == ["cheap", "mid", "dear"]
    seen = await rig.ops_view(second["id"])
    assert D(seen["cost"]) == sum(attempt_costs(seen)) == Decimal("0.65")

    m = await rig.until(third["id"])
    assert m["status"] == "failed"
    assert history(m)[-1] == ("failed", "dear", True)
    assert [f for s, _, f in history(m) if s == "failed"] == [False, False, True]
    assert D(m["cost"]) == Decimal("0.50")  # charged at acceptance, tried: not refunded
    seen = await rig.ops_view(third["id"])
    assert D(seen["cost"]) == sum(attempt_costs(seen)) == Decimal("0.65")
    assert m["error"] and "UNDELIV" in m["error"]

    assert rig.submit_counts(ported) == {"cheap": 1, "mid": 1, "dear": 0}
    assert rig.submit_counts(far) == {"cheap": 1, "mid": 1, "dear": 1}

    # The next message to each number goes straight to the operator that delivered.
    again = await rig.send({"to": ported, "text": "ported again"})
    m = await rig.until(again["id"])
    assert history(m) == [("queued", None, False), ("submitted", "mid", False), ("delivered", "mid", True)]
    assert D((await rig.ops_view(again["id"]))["cost"]) == Decimal("0.20") and m["operator"] == "mid"
    assert rig.submit_counts(ported) == {"cheap": 1, "mid": 2, "dear": 0}
    again_far = await rig.send({"to": far, "text": "far again"})
    m = await rig.until(again_far["id"])
    assert [o for s, o, _ in history(m) if s == "submitted"] == ["dear"]
    assert D((await rig.ops_view(again_far["id"]))["cost"]) == Decimal("0.35")

    # ... also after a restart (new simulated SMSCs: their counts start at zero).
    await rig.restart()
    after = await rig.send({"to": ported, "text": "after restart"})
    after_far = await rig.send({"to": far, "text": "far after restart"})
    m = await rig.until(after["id"])
    assert history(m) == [("queued", None, False), ("submitted", "mid", False), ("delivered", "mid", True)]
    m = await rig.until(after_far["id"])
    assert m["operator"] == "dear" and [s for s, _, _ in history(m)] == ["queued", "submitted", "delivered"]
    assert rig.submit_counts(ported) == {"cheap": 0, "mid": 1, "dear": 0}
    assert rig.submit_counts(far) == {"cheap": 0, "mid": 0, "dear": 1}

    # The export tells the same story, one row per message, this account's only.
    await rig.send({"to": "46701234567", "text": "beta's own"}, key="beta-key")
    today = datetime.now(timezone.utc).date()
    code, text, headers = await rig.call(
        "GET", f"/v1/messages/export?from={today}&to={today + timedelta(days=1)}")
    assert code == 200 and headers.getRawHeaders("content-type") == ["text/csv; charset=utf-8"]
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == ["id", "created_at", "updated_at", "to", "from", "status", "parts", "profile",
                             "operator", "cost", "charged", "reference", "error"]
    assert [r["id"] for r in rows] == [first["id"], second["id"], third["id"], again["id"], again_far["id"],
                                       after["id"], after_far["id"]]
    row = rows[0]
    assert (row["to"], row["from"], row["status"], row["parts"], row["profile"], row["operator"],
            row["reference"]) == (ported, "ACME", "delivered", "1", "standard", "mid", "r1")
    assert D(row["cost"]) == D(row["charged"]) == Decimal("0.50")  # the account's cost, not the operators
    code, text, _ = await rig.call("GET", f"/v1/messages/export?from={today + timedelta(days=1)}")
    assert code == 200 and text.splitlines()[1:] == []
    code, body = await rig.api("GET", "/v1/messages/export?from=yesterday")
    refusal(code, body, 400, "invalid_request", "from")
    # SPEC §15: dates the clock cannot hold are a 400 naming the field, never a 500 (OverflowError)
    for query, field in (("to=9999-12-31T23:59:59-05:00", "to"), ("from=0001-01-01T00:00:00%2B05:00", "from")):
        code, body = await rig.api("GET", f"/v1/messages/export?{query}")
        refusal(code, body, 400, "invalid_request", field)


# -- sender IDs, max_parts --------------------------------------------------------------------------
@pytest_twisted.ensureDeferred
async def test_sender_ids_are_the_accounts_own_and_go_out_with_the_ton_npi_of_their_form(rig):
    cases = {"ACME": (5, 0, "ACME"), "+4670111111": (1, 1, "4670111111"), "4670111111": (1, 1, "4670111111"),
             "72550": (3, 0, "72550"), None: (5, 0, "ACME")}
    ids = {}
    for i, (sender, _) in enumerate(cases.items()):
        body = {"to": f"4670200000{i}", "text": "sender test"}
        if sender is not None:
            body["from"] = sender
        ids[sender] = (await rig.send(body))["id"], body["to"]
    for sender, (ton, npi, addr) in cases.items():
        mid, to = ids[sender]
        m = await rig.until(mid, "delivered")
        assert m["from"] == addr
        [pdu] = [p for p in rig.pdus["cheap"] if p["destination_addr"] == to]
        assert (pdu["source_addr_ton"], pdu["source_addr_npi"], pdu["source_addr"]) == (ton, npi, addr), sender
        assert (pdu["dest_addr_ton"], pdu["dest_addr_npi"]) == (1, 1)

    for sender in ("BETA", "OTHER", "acme", "4670111112", "72551"):
        code, body = await rig.api("POST", "/v1/messages", {"to": "46702000009", "text": "x", "from": sender})
        refusal(code, body, 422, "invalid_sender", "from")
    for sender in ("TOO-LONG-SENDER", "ÄCME", "1234567890123456", ""):
        code, body = await rig.api("POST", "/v1/messages", {"to": "46702000009", "text": "x", "from": sender})
        refusal(code, body, 422, "invalid_sender", "from")
    code, body = await rig.api("POST", "/v1/messages", {"to": "46702000009", "text": "x", "from": 4670111111})
    refusal(code, body, 400, "invalid_request", "from")
    # to and text come before from; from comes before profile and send_at
    code, body = await rig.api("POST", "/v1/messages", {"to": "12", "text": "x", "from": "OTHER"})
    refusal(code, body, 422, "invalid_number", "to")
    code, body = await rig.api("POST", "/v1/messages", {"to": "46702000009", "text": "", "from": "OTHER"})
    refusal(code, body, 400, "invalid_request", "text")
    code, body = await rig.api("POST", "/v1/messages", {"to": "46702000009", "text": "x", "from": "OTHER",
                                                        "profile": "nope", "send_at": "soon"})
    refusal(code, body, 422, "invalid_sender", "from")
    # beta may not use acme's sender, and its own default is BETA
    code, body = await rig.api("POST", "/v1/messages", {"to": "46702000009", "text": "x", "from": "ACME"},
                               key="beta-key")
    refusal(code, body, 422, "invalid_sender", "from")
    m = await rig.send({"to": "46702000008", "text": "x"}, key="beta-key")
    assert (await rig.get(m["id"], key="beta-key"))["from"] == "BETA"
    assert rig.submits("cheap", "46702000009") == 0


@pytest_twisted.ensureDeferred
async def test_max_parts_refuses_a_text_that_needs_more_parts_whole(rig):
    two = "a" * 161   # GSM: 2 parts (153 each)
    three = "a" * 307  # GSM: 3 parts
    ok = await rig.send({"to": "46703000001", "text": two})
    assert ok["parts"] == 2
    code, body = await rig.api("POST", "/v1/messages", {"to": ["46703000002", "46703000003"], "text": three})
    refusal(code, body, 422, "text_too_long", "text")  # the account's max_parts = 2
    code, body = await rig.api("POST", "/v1/messages", {"to": "46703000002", "text": three, "max_parts": 3})
    refusal(code, body, 422, "text_too_long", "text")  # a request cannot raise the account's limit
    code, body = await rig.api("POST", "/v1/messages", {"to": "46703000002", "text": two, "max_parts": 1})
    refusal(code, body, 422, "text_too_long", "text")
    code, body = await rig.api("POST", "/v1/messages", {"to": "46703000002", "text": "ж" * 71})  # UCS-2: 2
    assert code == 202 and body["messages"][0]["parts"] == 2
    code, body = await rig.api("POST", "/v1/messages", {"to": "46703000002", "text": "ж" * 135})  # UCS-2: 3
    refusal(code, body, 422, "text_too_long", "text")
    for bad in (0, -1, "2", 1.5, True):
        code, body = await rig.api("POST", "/v1/messages", {"to": "46703000002", "text": "x", "max_parts": bad})
        refusal(code, body, 400, "invalid_request", "max_parts")
    # beta has the gateway's cap (3)
    code, body = await rig.api("POST", "/v1/messages", {"to": "46703000004", "text": three}, key="beta-key")
    assert code == 202 and body["messages"][0]["parts"] == 3
    code, body = await rig.api("POST", "/v1/messages", {"to": "46703000004", "text": "a" * 460}, key="beta-key")
    refusal(code, body, 422, "text_too_long", "text")
    m = await rig.until(ok["id"], "delivered")
    assert m["parts"] == 2 and D(m["cost"]) == Decimal("1.00")  # acme's price: 0.50 a part
    assert D((await rig.ops_view(ok["id"]))["cost"]) == Decimal("0.20")  # cheap's cost: 0.10 a part
    assert rig.submits("cheap", "46703000001") == 2 and rig.submits("cheap", "46703000003") == 0
    # refused whole: nothing of the two-number request was stored
    code, page = await rig.api("GET", "/v1/messages?to=46703000003")
    assert code == 200 and page["messages"] == []
    assert await rig.balance() == Decimal("1000.30") - Decimal("1.00") - Decimal("1.00")


# -- stop list, do-not-call, consent -----------------------------------------------------------------
@pytest_twisted.ensureDeferred
async def test_stop_list_and_do_not_call_stop_messages_unless_the_account_holds_consent(rig):
    mine, dnc = "46706000001", "46706000002"
    code, body = await rig.admin("/stoplist", {"numbers": ["+" + mine], "account": "acme"})
    assert (code, body) == (200, {"changed": 1, "numbers": 1})
    code, body = await rig.admin("/stoplist", {"numbers": [dnc]})
    assert (code, body) == (200, {"changed": 1, "numbers": 1})
    code, body = await rig.admin("/stoplist", {"numbers": [dnc]})  # again: nothing changes
    assert (code, body) == (200, {"changed": 0, "numbers": 1})

    code, answer = await rig.api("POST", "/v1/messages", {"to": [mine, dnc, "46706000003"], "text": "hi"})
    assert code == 202
    assert [(m["to"], m["status"]) for m in answer["messages"]] == [
        (mine, "stopped"), (dnc, "stopped"), ("46706000003", "queued")]
    for m in answer["messages"][:2]:
        got = await rig.get(m["id"])
        assert got["status"] == "stopped" and history(got) == [("stopped", None, True)]
    assert await rig.balance() == Decimal("1000.30") - Decimal("0.50")  # stopped ones are not charged
    # beta: acme's stop list is acme's; the do-not-call list is everyone's
    code, answer = await rig.api("POST", "/v1/messages", {"to": [mine, dnc], "text": "hi"}, key="beta-key")
    assert [m["status"] for m in answer["messages"]] == ["queued", "stopped"]
    beta_mine = answer["messages"][0]["id"]

    # acme's consent overrides do-not-call, for acme only
    code, body = await rig.admin("/stoplist", {"numbers": [dnc], "account": "acme", "consent": True})
    assert (code, body) == (200, {"changed": 1, "numbers": 1})
    ok = await rig.send({"to": dnc, "text": "with consent"})
    assert ok["status"] == "queued"
    code, answer = await rig.api("POST", "/v1/messages", {"to": dnc, "text": "no consent"}, key="beta-key")
    assert answer["messages"][0]["status"] == "stopped"
    # ... and through the account's own stop list (SPEC §7: "unless the account holds consent")
    code, body = await rig.admin("/stoplist", {"numbers": [mine], "account": "acme", "consent": True})
    assert code == 200
    consented = await rig.send({"to": mine, "text": "consented"})
    assert consented["status"] == "queued"
    # a stop entry added after the consent withdraws it: the later of the two wins
    code, body = await rig.admin("/stoplist", {"numbers": [mine], "account": "acme"})
    assert (code, body) == (200, {"changed": 0, "numbers": 1})
    assert (await rig.send({"to": mine, "text": "stopped again"}))["status"] == "stopped"
    # removing from the stop list lets messages go again
    code, body = await rig.admin("/stoplist", {"numbers": [mine], "account": "acme", "remove": True})
    assert (code, body) == (200, {"changed": 1, "numbers": 1})
    again = await rig.send({"to": mine, "text": "welcome back"})
    assert again["status"] == "queued"
    # withdrawing the consent stops do-not-call numbers again
    code, body = await rig.admin("/stoplist", {"numbers": [dnc], "account": "acme", "consent": True, "remove": True})
    assert (code, body) == (200, {"changed": 1, "numbers": 1})
    assert (await rig.send({"to": dnc, "text": "no more consent"}))["status"] == "stopped"

    for mid, key in ((ok["id"], "acme-key"), (consented["id"], "acme-key"), (again["id"], "acme-key"),
                     (beta_mine, "beta-key")):
        assert (await rig.until(mid, key=key))["status"] == "delivered"
    assert rig.submits("cheap", dnc) == 1 and rig.submits("cheap", mine) == 3  # acme's two, beta's

    # refusals of the admin call
    code, body = await rig.admin("/stoplist", {"numbers": ["46706000009", "123"]})
    refusal(code, body, 422, "invalid_number", "numbers")
    code, body = await rig.admin("/stoplist", {"numbers": []})
    refusal(code, body, 400, "invalid_request", "numbers")
    code, body = await rig.admin("/stoplist", {"numbers": [dnc], "consent": True})
    refusal(code, body, 400, "invalid_request", "account")
    code, body = await rig.admin("/stoplist", {"numbers": [dnc], "account": "nobody"})
    refusal(code, body, 404, "not_found")
    assert rig.submits("cheap", "46706000009") == 0


@pytest_twisted.ensureDeferred
async def test_a_scheduled_message_to_a_number_stop_listed_meanwhile_is_stopped_not_sent(rig):
    """The recipient said STOP after the message was scheduled: it must not go out."""
    sched = await rig.send({"to": "46706100001", "text": "later", "send_at": rfc3339(time.time() + 1.0)})
    assert sched["status"] == "scheduled"
    code, _ = await rig.admin("/stoplist", {"numbers": ["46706100001"], "account": "acme"})
    assert code == 200
    await sleep(3.0)  # send_at passed, and a claim round (every 2 s) too
    m = await rig.get(sched["id"])
    assert rig.submits("cheap", "46706100001") == 0, history(m)
    assert m["status"] == "stopped", history(m)


# -- approval -----------------------------------------------------------------------------------------
@pytest_twisted.ensureDeferred
async def test_links_outside_the_approved_domains_wait_for_ops_to_approve_or_refuse(rig):
    code, answer = await rig.api("POST", "/v1/messages", {
        "to": ["46707000001", "46707000002"], "text": "Deal: https://evil.example/x",
        "callback_url": "https://evil.example/cb"})
    assert code == 202 and [m["status"] for m in answer["messages"]] == ["pending_approval"] * 2
    approve_id, refuse_id = (m["id"] for m in answer["messages"])
    m = await rig.get(approve_id)
    assert history(m) == [("pending_approval", None, False)] and "evil.example" in m["events"][0]["detail"]
    assert await rig.balance() == Decimal("999.30")  # charged at acceptance
    # approved domains and their subdomains go at once; callback_url is not a link in the text
    ok = await rig.send({"to": "46707000003", "text": "See https://shop.acme.example/d and acme.example",
                         "callback_url": "https://elsewhere.example/cb"})
    assert ok["status"] == "queued"
    bare = await rig.send({"to": "46707000004", "text": "see www.evil.example now"})
    assert bare["status"] == "pending_approval"

    await sleep(0.3)
    assert rig.submits("cheap", "46707000001") == 0
    code, approved = await rig.admin(f"/messages/{approve_id}/approve")
    assert code == 200 and approved["id"] == approve_id and approved["status"] == "queued"
    assert history(approved) == [("pending_approval", None, False), ("queued", None, False)]
    m = await rig.until(approve_id, timeout=8)
    assert m["status"] == "delivered" and rig.submits("cheap", "46707000001") == 1

    code, refused = await rig.admin(f"/messages/{refuse_id}/refuse")
    assert code == 200 and refused["status"] == "stopped"
    assert history(refused) == [("pending_approval", None, False), ("stopped", None, True)]
    assert refused == await rig.get(refuse_id)
    assert await rig.balance() == Decimal("1000.30") - Decimal("1.50")  # refunded the refused one

    for action in ("approve", "refuse"):
        code, body = await rig.admin(f"/messages/{refuse_id}/{action}")
        refusal(code, body, 409, "conflict")
        code, body = await rig.admin(f"/messages/{'0' * 24}/{action}")
        refusal(code, body, 404, "not_found")
    # a customer cancels its own pending message
    code, body = await rig.api("DELETE", f"/v1/messages/{bare['id']}")
    assert code == 200 and body["status"] == "stopped"
    assert await rig.balance() == Decimal("1000.30") - Decimal("1.00")
    await rig.until(ok["id"], "delivered")
    assert rig.submits("cheap", "46707000002") == 0 and rig.submits("cheap", "46707000004") == 0


@pytest_twisted.ensureDeferred
async def test_volume_over_the_daily_limit_waits_for_approval(rig):
    code, answer = await rig.api("POST", "/v1/messages", {"to": ["46708000001", "46708000002"], "text": "a"},
                                 key="vol-key")
    assert code == 202 and [m["status"] for m in answer["messages"]] == ["queued", "queued"]
    code, answer = await rig.api("POST", "/v1/messages", {"to": ["46708000003", "46708000004"], "text": "b"},
                                 key="vol-key")
    assert [m["status"] for m in answer["messages"]] == ["queued", "pending_approval"]
    held = answer["messages"][1]["id"]
    m = await rig.get(held, key="vol-key")
    assert history(m) == [("pending_approval", None, False)]
    assert m["events"][0]["detail"] == "over the daily volume limit of 3"
    later = await rig.send({"to": "46708000005", "text": "c"}, key="vol-key")
    assert later["status"] == "pending_approval"
    code, body = await rig.admin(f"/messages/{held}/approve")
    assert code == 200 and body["status"] == "queued"
    code, body = await rig.admin(f"/messages/{later['id']}/refuse")
    assert code == 200 and body["status"] == "stopped"
    assert (await rig.until(held, key="vol-key", timeout=8))["status"] == "delivered"
    assert rig.submits("cheap", "46708000004") == 1 and rig.submits("cheap", "46708000005") == 0
    code, account = await rig.api("GET", "/v1/account", key="vol-key")
    assert account["daily_volume_limit"] == 3 and account["billing"] == "postpaid"


# -- paused accounts ----------------------------------------------------------------------------------
@pytest_twisted.ensureDeferred
async def test_a_paused_accounts_messages_wait_as_paused_and_go_on_resume(rig):
    code, body = await rig.admin("/accounts/beta/pause")
    assert (code, body) == (200, {"account": "beta", "paused": True, "messages": 0})
    code, account = await rig.api("GET", "/v1/account", key="beta-key")
    assert account["paused"] is True
    one = await rig.send({"to": "46709100001", "text": "waits"}, key="beta-key")
    two = await rig.send({"to": "46709100002", "text": "cancelled"}, key="beta-key")
    assert one["status"] == two["status"] == "paused"
    acme = await rig.send({"to": "46709100003", "text": "not paused"})
    assert acme["status"] == "queued"
    await rig.until(acme["id"], "delivered")
    assert rig.submits("cheap", "46709100001") == 0
    code, body = await rig.api("DELETE", f"/v1/messages/{two['id']}", key="beta-key")
    assert code == 200 and history(body) == [("paused", None, False), ("stopped", None, True)]

    code, body = await rig.admin("/accounts/beta/resume")
    assert (code, body) == (200, {"account": "beta", "paused": False, "messages": 1})
    m = await rig.until(one["id"], key="beta-key", timeout=8)
    assert [s for s, _, _ in history(m)] == ["paused", "queued", "submitted", "delivered"]
    code, account = await rig.api("GET", "/v1/account", key="beta-key")
    assert account["paused"] is False
    assert rig.submits("cheap", "46709100002") == 0
    code, body = await rig.admin("/accounts/nobody/pause")
    refusal(code, body, 404, "not_found")


@pytest_twisted.ensureDeferred
async def test_a_paused_account_sends_nothing_even_when_send_at_comes_or_ops_approve(rig):
    sched = await rig.send({"to": "46709200001", "text": "later", "send_at": rfc3339(time.time() + 1.0)})
    pending = await rig.send({"to": "46709200002", "text": "https://evil.example"})
    assert (sched["status"], pending["status"]) == ("scheduled", "pending_approval")
    code, _ = await rig.admin("/accounts/acme/pause")
    assert code == 200
    code, approved = await rig.admin(f"/messages/{pending['id']}/approve")
    assert code == 200
    await sleep(3.0)  # send_at passed, and a claim round (every 2 s) too
    assert rig.submits("cheap", "46709200001") == 0, history(await rig.get(sched["id"]))
    assert rig.submits("cheap", "46709200002") == 0, history(await rig.get(pending["id"]))
    assert (await rig.get(sched["id"]))["status"] == "paused"
    assert (await rig.get(pending["id"]))["status"] == "paused"
