"""Money, idempotency, rate limits and admin keys through the HTTP API of a real in-process
gateway (``tests.account_rig``): prepaid charges, refunds and balance notices, postpaid accounts,
Idempotency-Key, account tps and who may call the admin API."""

from __future__ import annotations

import csv
import io
import time
from decimal import Decimal

import pytest_twisted
from twisted.internet.defer import Deferred, gatherResults

from tests.account_rig import D, history, refusal, rfc3339, sleep


# -- money --------------------------------------------------------------------------------------------
@pytest_twisted.ensureDeferred
async def test_prepaid_charges_per_part_refuses_whole_refunds_and_notifies_the_balance(rig):
    code, account = await rig.api("GET", "/v1/account")
    assert code == 200
    assert account == {
        "account": "acme", "balance": account["balance"], "billing": "prepaid", "paused": False,
        "senders": ["ACME", "4670111111", "72550"], "default_sender": "ACME", "profile": "standard",
        "max_parts": 2, "tps": None, "daily_volume_limit": None, "approved_domains": ["acme.example"],
        "callback_url": rig.backend.url("/status")}
    assert D(account["balance"]) == Decimal("1000.30")

    await rig.send({"to": "46701000001", "text": "one part"})                     # 0.50
    assert await rig.balance() == Decimal("999.80")                                # crossed 1000
    code, answer = await rig.api("POST", "/v1/messages", {"to": ["4790000001", "4790000002"], "text": "x"})
    assert code == 202                                                             # 2 x 250
    assert await rig.balance() == Decimal("499.80")                                # crossed 500
    code, body = await rig.api("POST", "/v1/messages", {"to": ["46701000002", "4790000003", "4790000004"],
                                                        "text": "too much"})
    refusal(code, body, 402, "insufficient_balance")                               # 500.50 > 499.80
    assert await rig.balance() == Decimal("499.80")
    code, page = await rig.api("GET", "/v1/messages?to=46701000002")
    assert page["messages"] == []                                                  # nothing stored
    two_parts = await rig.send({"to": "46701000003", "text": "b" * 200})           # 2 x 0.50
    assert two_parts["parts"] == 2 and await rig.balance() == Decimal("498.80")
    await rig.send({"to": "4791000001", "text": "x"})                              # 150
    await rig.send({"to": "4790000005", "text": "x"})                              # 250
    assert await rig.balance() == Decimal("98.80")                                 # fell to 100
    await rig.send({"to": "4412345678", "text": "default price"})                  # 0.80
    assert await rig.balance() == Decimal("98.00")
    code, body = await rig.api("POST", "/v1/messages", {"to": "4790000006", "text": "x"})
    refusal(code, body, 402, "insufficient_balance")
    sched = await rig.send({"to": "46701000004", "text": "x", "send_at": rfc3339(time.time() + 3600)})
    assert await rig.balance() == Decimal("97.50")
    code, cancelled = await rig.api("DELETE", f"/v1/messages/{sched['id']}")
    assert code == 200 and await rig.balance() == Decimal("98.00")                 # refunded
    code, shown = await rig.api("GET", f"/v1/messages/{sched['id']}")
    assert cancelled == shown and D(shown["cost"]) == 0  # SPEC §11: DELETE answers as GET shows it

    code, body = await rig.admin("/accounts/acme/topup", {"amount": 1000})
    assert code == 200 and body == {"balance": body["balance"]} and D(body["balance"]) == Decimal("1098.00")
    code, body = await rig.admin("/accounts/acme/topup", {"amount": "0.25"})
    assert code == 200 and D(body["balance"]) == Decimal("1098.25")
    assert await rig.balance() == Decimal("1098.25")
    now_ok = await rig.send({"to": "4790000006", "text": "x"})                     # 250 now fits
    assert now_ok["status"] == "queued" and await rig.balance() == Decimal("848.25")  # crossed 1000
    for bad in ("abc", None, True, [1], "NaN", "Infinity", "1e999999999", "-1e999999999", "1_000", " 5 ", "1e3",
                ".5", "5.", "++5"):
        code, body = await rig.admin("/accounts/acme/topup", {"amount": bad})
        refusal(code, body, 400, "invalid_request", "amount")
    code, body = await rig.admin("/accounts/nobody/topup", {"amount": 1})
    refusal(code, body, 404, "not_found")
    code, body = await rig.api("POST", "/v1/admin/accounts/acme/topup", {"amount": 1})
    refusal(code, body, 403, "forbidden")
    assert await rig.balance() == Decimal("848.25")

    def notices():
        return [r for r in rig.backend.requests if r.path == "/status" and r.json().get("type") == "balance"]

    for _ in range(300):
        if len(notices()) >= 5:
            break
        await sleep(0.02)
    got = notices()
    assert all(r.signature_valid for r in got)
    assert [(D(r.json()["threshold"]), D(r.json()["balance"])) for r in got] == [
        (Decimal(1000), Decimal("999.80")), (Decimal(500), Decimal("499.80")), (Decimal(100), Decimal("98.80")),
        (Decimal(1000), Decimal("1098.00")), (Decimal(1000), Decimal("848.25"))]
    assert all(r.json()["account"] == "acme" and r.json()["at"].endswith("Z") for r in got)
    # the CSV export says what each message was charged
    code, text, _ = await rig.call("GET", "/v1/messages/export")
    charged = {r["to"]: D(r["charged"]) for r in csv.DictReader(io.StringIO(text))}
    assert charged == {"46701000001": Decimal("0.50"), "4790000001": Decimal(250), "4790000002": Decimal(250),
                       "46701000003": Decimal("1.00"), "4791000001": Decimal(150), "4790000005": Decimal(250),
                       "4412345678": Decimal("0.80"), "46701000004": Decimal(0), "4790000006": Decimal(250)}


@pytest_twisted.ensureDeferred
async def test_postpaid_accounts_are_not_checked_nor_charged(rig):
    assert await rig.balance("beta-key") == Decimal(0)
    code, answer = await rig.api("POST", "/v1/messages", {"to": [f"4670990{i:04d}" for i in range(5)],
                                                          "text": "c" * 200}, key="beta-key")
    assert code == 202 and all(m["status"] == "queued" and m["parts"] == 2 for m in answer["messages"])
    assert await rig.balance("beta-key") == Decimal(0)
    code, account = await rig.api("GET", "/v1/account", key="beta-key")
    assert (account["billing"], account["senders"], account["max_parts"], account["callback_url"]) == (
        "postpaid", ["BETA"], 3, None)


@pytest_twisted.ensureDeferred
async def test_a_customer_sees_what_a_message_costs_its_account_never_what_the_operators_cost(rig):
    """SPEC §14: a customer key sees no operators' costs; ops see them."""
    ported = await rig.send({"to": "46709990001", "text": "fails over"})  # cheap 0.10 fails, mid 0.20
    post = await rig.send({"to": "46701000009", "text": "c" * 200}, key="beta-key")  # postpaid, 2 x 0.40
    later = await rig.send({"to": "46701000010", "text": "x", "send_at": rfc3339(time.time() + 3600)},
                           key="beta-key")
    code, _ = await rig.api("DELETE", f"/v1/messages/{later['id']}", key="beta-key")
    assert code == 200
    got = await rig.until(ported["id"], "delivered")
    assert [e["operator"] for e in got["events"] if e["status"] == "submitted"] == ["cheap", "mid"]
    assert D(got["cost"]) == Decimal("0.50") and not any("cost=" in e["detail"] for e in got["events"])
    assert D((await rig.until(post["id"], "delivered", key="beta-key"))["cost"]) == Decimal("0.80")
    code, cancelled = await rig.api("GET", f"/v1/messages/{later['id']}", key="beta-key")
    assert (cancelled["status"], D(cancelled["cost"])) == ("stopped", Decimal(0))  # never sent: not billed
    for path in ("/v1/messages?to=46709990001", "/v1/messages/search?to=46709990001", "/v1/numbers/46709990001"):
        code, page = await rig.api("GET", path)
        assert code == 200 and [D(m["cost"]) for m in page["messages"]] == [Decimal("0.50")], path
    code, text, _ = await rig.call("GET", "/v1/messages/export")
    assert {r["to"]: D(r["cost"]) for r in csv.DictReader(io.StringIO(text))} == {"46709990001": Decimal("0.50")}
    # ops see what the attempts cost the gateway, attempt by attempt
    code, seen = await rig.api("GET", f"/v1/admin/messages/{ported['id']}", key="ops-key")
    assert code == 200 and D(seen["cost"]) == Decimal("0.30")
    assert [e["detail"].split()[-1] for e in seen["events"] if e["status"] == "submitted"] == [
        "cost=0.1", "cost=0.2"]


# -- idempotency -------------------------------------------------------------------------------------
@pytest_twisted.ensureDeferred
async def test_idempotency_key_answers_a_retry_with_the_first_response_also_after_a_restart(rig):
    body = {"to": ["46710000001", "46710000002"], "text": "once only"}
    key = {"Idempotency-Key": "order-42"}
    code, first = await rig.api("POST", "/v1/messages", body, headers=key)
    assert code == 202 and [m["status"] for m in first["messages"]] == ["queued", "queued"]
    code, again = await rig.api("POST", "/v1/messages", {"text": "once only", "to": body["to"]}, headers=key)
    assert (code, again) == (202, first)  # same body (key order does not matter): same answer
    code, other = await rig.api("POST", "/v1/messages", {**body, "text": "changed"}, headers=key)
    refusal(code, other, 409, "idempotency_conflict")
    # keys belong to an account
    code, beta = await rig.api("POST", "/v1/messages", {**body, "text": "beta's"}, key="beta-key", headers=key)
    assert code == 202 and beta != first
    assert await rig.balance() == Decimal("999.30")
    for m in first["messages"]:
        await rig.until(m["id"], "delivered")
    assert rig.submits("cheap", "46710000001") == 2  # acme's once, beta's once

    await rig.restart()
    code, after = await rig.api("POST", "/v1/messages", body, headers=key)
    assert (code, after) == (202, first)
    code, other = await rig.api("POST", "/v1/messages", {**body, "text": "changed"}, headers=key)
    refusal(code, other, 409, "idempotency_conflict")
    await sleep(0.3)
    assert rig.submits("cheap", "46710000001") == 0 and rig.submits("cheap", "46710000002") == 0
    assert await rig.balance() == Decimal("999.30")
    code, page = await rig.api("GET", "/v1/messages?to=46710000001")
    assert [m["id"] for m in page["messages"]] == [first["messages"][0]["id"]]
    code, bad = await rig.api("POST", "/v1/messages", body, headers={"Idempotency-Key": "x" * 256})
    refusal(code, bad, 400, "invalid_request", "Idempotency-Key")
    # the same request twice at once (a client retrying on its own timeout): one message
    twice = {"to": "46710000003", "text": "at once"}
    answers = await gatherResults([
        Deferred.fromCoroutine(rig.api("POST", "/v1/messages", twice, headers={"Idempotency-Key": "k2"}))
        for _ in range(2)])
    assert [code for code, _ in answers] == [202, 202] and answers[0][1] == answers[1][1]
    await rig.until(answers[0][1]["messages"][0]["id"], "delivered")
    code, page = await rig.api("GET", "/v1/messages?to=46710000003")
    assert len(page["messages"]) == 1 and rig.submits("cheap", "46710000003") == 1
    assert await rig.balance() == Decimal("998.80")


# -- rate limit and admin keys ---------------------------------------------------------------------------
@pytest_twisted.ensureDeferred
async def test_account_tps_is_429_rate_limited_with_retry_after_and_nothing_stored(rig):
    answers = []
    for i in range(3):
        answers.append(await rig.call("POST", "/v1/messages", {"to": f"4671100000{i}", "text": "x"},
                                      key="fast-key"))
    assert [a[0] for a in answers] == [202, 202, 429]
    code, body, headers = answers[2]
    refusal(code, body, 429, "rate_limited")
    assert headers.getRawHeaders("retry-after") == ["1"]
    # other accounts are not limited by fast's budget
    assert (await rig.send({"to": "46711000009", "text": "x"}))["status"] == "queued"
    code, page = await rig.api("GET", "/v1/messages?to=46711000002", key="fast-key")
    assert page["messages"] == []
    await sleep(1.0)
    code, body, _ = await rig.call("POST", "/v1/messages", {"to": "46711000002", "text": "x"}, key="fast-key")
    assert code == 202
    code, account = await rig.api("GET", "/v1/account", key="fast-key")
    assert account["tps"] == 2


@pytest_twisted.ensureDeferred
async def test_admin_endpoints_401_without_or_with_an_unknown_key_403_with_a_customers(rig):
    sent = await rig.send({"to": "46712000001", "text": "https://evil.example"})
    calls = [("POST", f"/v1/admin/messages/{sent['id']}/approve", {}),
             ("POST", f"/v1/admin/messages/{sent['id']}/refuse", {}),
             ("POST", "/v1/admin/accounts/acme/pause", {}), ("POST", "/v1/admin/accounts/acme/resume", {}),
             ("POST", "/v1/admin/accounts/acme/topup", {"amount": 5}),
             ("POST", "/v1/admin/stoplist", {"numbers": ["46712000002"]}),
             ("POST", "/v1/admin/reload", {}), ("GET", "/v1/admin/binds", None)]
    for method, path, body in calls:
        code, answer = await rig.api(method, path, body, key=None)
        refusal(code, answer, 401, "unauthorized")
        code, answer = await rig.api(method, path, body, key="not-a-key")
        refusal(code, answer, 401, "unauthorized")
        code, answer = await rig.api(method, path, body, key="acme-key")
        refusal(code, answer, 403, "forbidden")
    # nothing of it happened
    m = await rig.get(sent["id"])
    assert history(m) == [("pending_approval", None, False)]
    assert await rig.balance() == Decimal("999.80")
    assert (await rig.send({"to": "46712000002", "text": "x"}))["status"] == "queued"
    code, answer = await rig.api("GET", "/v1/admin/binds", key="ops-key")
    assert code == 200
    assert [(o["operator"], o["up"]) for o in answer["operators"]] == [("cheap", True), ("mid", True), ("dear", True)]
    code, answer = await rig.api("GET", "/v1/account", key="ops-key")
    refusal(code, answer, 401, "unauthorized")  # an admin key is no customer
