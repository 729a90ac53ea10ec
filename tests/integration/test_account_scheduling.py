"""Scheduling and cancelling through the HTTP API of a real in-process gateway
(``tests.account_rig``): ``send_at``, ``DELETE /v1/messages/{id}`` before, during and after the
submit, and the main worker's internal cancel for the ESMEs of an API worker."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest_twisted
import treq
from twisted.internet import reactor

from smscore.api import api_factory
from tests.account_rig import history, refusal, rfc3339
from tests.harness.waiting import eventually


# -- scheduling and cancelling -----------------------------------------------------------------------
@pytest_twisted.ensureDeferred
async def test_send_at_schedules_up_to_five_years_ahead_the_past_means_now_and_delete_cancels(rig):
    now = time.time()
    later = await rig.send({"to": "46704000001", "text": "in an hour", "send_at": rfc3339(now + 3600)})
    assert later["status"] == "scheduled"
    m = await rig.get(later["id"])
    assert m["status"] == "scheduled" and m["send_at"] == rfc3339(now + 3600)
    assert history(m) == [("scheduled", None, False)]
    assert await rig.balance() == Decimal("999.80")  # charged at acceptance

    code, cancelled = await rig.api("DELETE", f"/v1/messages/{later['id']}")
    assert code == 200 and cancelled["status"] == "stopped"
    assert history(cancelled) == [("scheduled", None, False), ("stopped", None, True)]
    assert cancelled == await rig.get(later["id"])  # the message as GET shows it
    assert await rig.balance() == Decimal("1000.30")  # refunded: it ended before submission
    code, body = await rig.api("DELETE", f"/v1/messages/{later['id']}")
    refusal(code, body, 409, "conflict")

    far = datetime.now(timezone.utc) + timedelta(days=5 * 365)  # inside 5 years (1 leap day to spare)
    code, body = await rig.api("POST", "/v1/messages", {"to": "46704000002", "text": "x",
                                                        "send_at": far.isoformat().replace("+00:00", "Z")})
    assert code == 202 and body["messages"][0]["status"] == "scheduled"
    too_far = datetime.now(timezone.utc) + timedelta(days=5 * 366 + 2)
    code, body = await rig.api("POST", "/v1/messages", {"to": "46704000003", "text": "x",
                                                        "send_at": too_far.isoformat()})
    refusal(code, body, 422, "send_at_out_of_range", "send_at")
    for bad in ("tomorrow", "2030-01-01", "2030-01-01T10:00:00", 1893456000):
        code, body = await rig.api("POST", "/v1/messages", {"to": "46704000003", "text": "x", "send_at": bad})
        refusal(code, body, 400, "invalid_request", "send_at")

    past = await rig.send({"to": "46704000004", "text": "past", "send_at": "2001-01-01T00:00:00+01:00"})
    assert past["status"] == "queued"
    m = await rig.until(past["id"], "delivered")
    assert m["send_at"] is None and history(m)[0] == ("queued", None, False)

    soon = await rig.send({"to": "46704000005", "text": "soon", "send_at": rfc3339(time.time() + 1.0)})
    assert soon["status"] == "scheduled"
    assert rig.submits("cheap", "46704000005") == 0
    m = await rig.until(soon["id"], "delivered", timeout=8)
    assert [s for s, _, _ in history(m)] == ["scheduled", "queued", "submitted", "delivered"]
    assert rig.submits("cheap", "46704000005") == 1 and rig.submits("cheap", "46704000001") == 0


@pytest_twisted.ensureDeferred
async def test_delete_is_409_once_submitted_and_404_for_another_accounts_id(rig):
    rig.gw.sims["cheap"].receipt_delay_for = lambda record: 60.0  # hold receipts: stays submitted
    sent = await rig.send({"to": "46705000001", "text": "on its way"})
    m = await rig.until(sent["id"], "submitted")
    code, body = await rig.api("DELETE", f"/v1/messages/{sent['id']}")
    refusal(code, body, 409, "conflict")
    assert (await rig.get(sent["id"]))["status"] == "submitted"
    assert await rig.balance() == Decimal("999.80")  # no refund once submitted

    code, body = await rig.api("DELETE", f"/v1/messages/{sent['id']}", key="beta-key")
    refusal(code, body, 404, "not_found")
    code, body = await rig.api("GET", f"/v1/messages/{sent['id']}", key="beta-key")
    refusal(code, body, 404, "not_found")
    code, body = await rig.api("DELETE", "/v1/messages/" + "0" * 24)
    refusal(code, body, 404, "not_found")
    code, body = await rig.api("DELETE", f"/v1/messages/{sent['id']}", key="nobody")
    refusal(code, body, 401, "unauthorized")
    beta = await rig.send({"to": "46705000002", "text": "b", "send_at": rfc3339(time.time() + 600)}, key="beta-key")
    code, body = await rig.api("DELETE", f"/v1/messages/{beta['id']}")  # acme cancelling beta's
    refusal(code, body, 404, "not_found")
    assert (await rig.get(beta["id"], key="beta-key"))["status"] == "scheduled"
    assert m["status"] == "submitted"


@pytest_twisted.ensureDeferred
async def test_delete_is_409_while_the_submit_sm_is_out_and_the_message_goes_as_sent(rig):
    """The SMSC has the submit_sm but its response is not in (nor stored): the message is on its
    way, so a cancel is refused then, not answered 200 for an SMS that goes out all the same."""
    sim = rig.gw.sims["cheap"]
    held = []
    answer = sim.answer_submit
    sim.answer_submit = lambda proto, pdu, record: held.append((proto, pdu, record))
    sent = await rig.send({"to": "46705000003", "text": "in the window"})
    await eventually(lambda: held, "the SMSC to hold the submit_sm")
    code, body = await rig.api("DELETE", f"/v1/messages/{sent['id']}")
    refusal(code, body, 409, "conflict")
    assert "being submitted" in body["error"]["message"]
    sim.answer_submit = answer
    for args in held:
        answer(*args)
    m = await rig.until(sent["id"], "delivered")
    assert [h[0] for h in history(m)] == ["queued", "submitted", "delivered"]
    assert await rig.balance() == Decimal("999.80")


@pytest_twisted.ensureDeferred
async def test_the_main_workers_internal_cancel_asks_its_token_and_answers_as_delete(rig):
    """``POST /internal/v1/cancel``: how an API worker that serves ESMEs has the main worker cancel
    (``cancel_sm``). Only on the listener built with the node's token, only with that token."""
    internal = reactor.listenTCP(0, api_factory(rig.gw, reactor, internal_token="n0de-t0ken"), interface="127.0.0.1")
    base = f"http://127.0.0.1:{internal.getHost().port}/internal/v1/cancel"

    async def post(url, body, token):
        resp = await treq.post(url, json=body, headers={"X-Smsgw-Node-Token": [token]} if token else {})
        return resp.code, await resp.json()

    try:
        sim = rig.gw.sims["cheap"]
        held = []
        answer = sim.answer_submit
        sim.answer_submit = lambda proto, pdu, record: held.append((proto, pdu, record))
        sent = await rig.send({"to": "46705000004", "text": "on the wire"})
        later = await rig.send({"to": "46705000005", "text": "later", "send_at": rfc3339(time.time() + 600)})
        await eventually(lambda: held, "the SMSC to hold the submit_sm")
        body = {"id": later["id"], "account": "acme"}
        for token in (None, "wrong", "n0de-t0ken"[:-1]):
            assert (await post(base, body, token))[0] == 404
        public = f"http://127.0.0.1:{rig.gw.http_port.getHost().port}/internal/v1/cancel"
        assert (await post(public, body, "n0de-t0ken"))[0] == 404  # never on the public listener
        assert (await rig.get(later["id"]))["status"] == "scheduled"
        code, cancelled = await post(base, body, "n0de-t0ken")
        assert code == 200 and cancelled["id"] == later["id"] and cancelled["status"] == "stopped"
        code, refused = await post(base, {"id": sent["id"], "account": "acme"}, "n0de-t0ken")
        assert code == 409 and refused["error"]["code"] == "conflict"
        code, refused = await post(base, {"id": sent["id"], "account": "beta"}, "n0de-t0ken")
        assert code == 404
        sim.answer_submit = answer
        for args in held:
            answer(*args)
        await rig.until(sent["id"], "delivered")
    finally:
        await internal.stopListening()
