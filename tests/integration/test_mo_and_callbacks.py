"""MO routing and customer pushes through the real gateway (SQLite, a simulated operator over
loopback SMPP) and a real HTTP backend on loopback that checks signatures on its own."""

from __future__ import annotations

import json

import pytest
import pytest_twisted
import treq
from prometheus_client import CollectorRegistry
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater

from connectors.smpp.text import gsm_decode
from smscore.app import Gateway
from smscore.config import parse_config
from tests.backend import Answer

SECRET = "s3cret-of-acme"

CONFIG = """
[gateway]
reply_profile = "standard"
[store]
url = "sqlite:///gw.db"
[http]
listen = "127.0.0.1:0"
[metrics]
listen = "127.0.0.1:0"
[push]
timeout = "1s"
retry_for = "1h"
allow_networks = ["127.0.0.0/8"]
[operators.sim_a]
type = "simulated"
receipt_delay = "10ms"
[profiles.standard]
operators = ["sim_a"]
[accounts.acme]
api_keys = ["acme-key"]
senders = ["ACME", "72550"]
secret = "{secret}"
callback_url = "{status_url}"
[accounts.beta]
api_keys = ["beta-key"]
senders = ["BETA"]
[accounts.gamma]
api_keys = ["gamma-key"]
senders = ["GAMMA"]
secret = "{secret}"
callback_url = "{gamma_url}"
callback_statuses = "final"
callback_batch = 10
callback_linger = "100ms"
[[shortcodes]]
number = "72550"
unknown_keyword_reply = "Unknown service."
[[keywords]]
shortcode = "72550"
keyword = "PIZZA"
aliases = ["PIZA"]
account = "acme"
url = "{mo_url}"
unavailable_reply = "Service not available."
"""


async def wait(predicate, timeout=10.0, what="a condition"):
    for _ in range(int(timeout / 0.02)):
        value = await predicate()
        if value:
            return value
        await deferLater(reactor, 0.02, lambda: None)
    raise AssertionError(f"timed out waiting for {what}")


class Rig:
    def __init__(self, tmp_path, backend):
        self.tmp_path, self.backend = tmp_path, backend
        self.gw = None

    async def start(self):
        text = CONFIG.format(secret=SECRET, mo_url=self.backend.url("/mo"), status_url=self.backend.url("/status"),
                             gamma_url=self.backend.url("/gamma"))
        self.gw = Gateway(parse_config(text, path=self.tmp_path / "gw.toml"), reactor, CollectorRegistry())
        self.gw.push_worker.retry_first = 0.3
        await self.gw.start()
        await wait(self._bound, what="the bind")
        return self.gw

    async def _bound(self):
        return self.gw.links["sim_a"].is_up()

    async def stop(self):
        if self.gw is not None:
            await self.gw.stop()
            self.gw = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.gw.http_port.getHost().port}"

    def replies_to(self, number):
        """Texts the simulated operator received for ``number`` (single-part GSM)."""
        return [gsm_decode(s.short_message) for s in self.gw.sims["sim_a"].submits if s.destination_addr == number]

    async def api(self, method, path, body=None, key="acme-key"):
        resp = await treq.request(method, self.url + path, data=json.dumps(body).encode() if body else None,
                                  headers={"Authorization": [f"Bearer {key}"]})
        return resp.code, json.loads(await resp.content())


@pytest.fixture
def rig(tmp_path, backend):
    r = Rig(tmp_path, backend)
    yield r
    pytest_twisted.blockon(Deferred.fromCoroutine(r.stop()))


@pytest_twisted.ensureDeferred
async def test_mo_reaches_the_backend_signed_and_its_reply_reaches_the_phone(rig, backend):
    gw = await rig.start()
    backend.reply_json("Your pizza is on its way")
    assert await gw.sims["sim_a"].inject_mo("46701234567", "72550", "pizza large") == "delivered"
    [req] = await backend.wait_for_requests(1, timeout=10)
    assert req.path == "/mo" and req.signature_valid is True
    body = req.json()
    assert (body["from"], body["to"], body["keyword"], body["text"], body["payload"]) == (
        "46701234567", "72550", "PIZZA", "pizza large", "large")
    assert body["received_at"].endswith("Z")

    async def replied():
        return rig.replies_to("46701234567")

    assert await wait(replied, what="the reply SMS") == ["Your pizza is on its way"]
    [mt] = [s for s in gw.sims["sim_a"].submits if s.destination_addr == "46701234567"]
    assert mt.source_addr == "72550"

    async def history():
        mo = await gw.store.get_mo(body["id"])
        return mo if any(e.status == "reply queued" for e in mo.events) else None

    mo = await wait(history, what="the MO's history")
    assert [e.status for e in mo.events] == ["received", "routed", "push queued", "pushed", "reply queued"]
    assert mo.account == "acme" and mo.keyword == "PIZZA"
    # the reply is an MT of the account's, from the shortcode, visible and delivered
    reply_id = mo.events[-1].detail.split()[1]

    async def reply_delivered():
        m = await gw.store.get(reply_id)
        return m if m.status.value == "delivered" else None

    reply = await wait(reply_delivered, what="the reply's receipt")
    assert (reply.sender, reply.to, reply.origin) == ("72550", "46701234567", "reply")
    # the MO is in the account's inbox, and only there
    code, inbound = await rig.api("GET", "/v1/inbound")
    assert code == 200 and [m["id"] for m in inbound["messages"]] == [body["id"]]
    code, other = await rig.api("GET", "/v1/inbound", key="beta-key")
    assert code == 200 and other["messages"] == []
    m = gw.metrics.registry.get_sample_value
    assert m("smsgw_mo_total", {"shortcode": "72550", "keyword": "PIZZA", "outcome": "keyword"}) == 1
    assert m("smsgw_callbacks_total", {"kind": "mo", "outcome": "ok"}) == 1


@pytest_twisted.ensureDeferred
async def test_backend_down_unavailable_reply_once_then_delivered_after_a_restart(rig, backend):
    await backend.refuse()
    gw = await rig.start()
    assert await gw.sims["sim_a"].inject_mo("46701234567", "72550", "PIZA margherita") == "delivered"

    async def unavailable_sent():
        return rig.replies_to("46701234567")

    assert await wait(unavailable_sent, what="the unavailable reply") == ["Service not available."]
    # more failed attempts do not send it again
    await deferLater(reactor, 1.5, lambda: None)
    assert rig.replies_to("46701234567") == ["Service not available."]
    code, inbound = await rig.api("GET", "/v1/inbound")
    [pulled] = inbound["messages"]
    assert (pulled["keyword"], pulled["payload"]) == ("PIZZA", "margherita")
    # restart with the backend still down, then bring it back: the MO is pushed, once
    await rig.stop()
    gw = await rig.start()
    backend.reply_json("")  # an empty reply: nothing to send back
    backend.accept()
    [req] = await backend.wait_for_requests(1, timeout=15)
    assert req.json()["id"] == pulled["id"] and req.signature_valid is True

    async def pushed():
        mo = await gw.store.get_mo(pulled["id"])
        return mo if mo.events[-1].status == "pushed" else None

    mo = await wait(pushed, what="the push to be recorded")
    statuses = [e.status for e in mo.events]
    assert statuses.count("unavailable reply queued") == 1 and statuses.count("push failed") >= 2
    assert await gw.store.pending_push_jobs() == []
    assert rig.replies_to("46701234567") == []  # this gateway process sent nothing more
    # still in the inbox for pull, with a cursor that moves on
    code, page = await rig.api("GET", f"/v1/inbound?cursor={inbound['next_cursor']}")
    assert code == 200 and page["messages"] == [] and page["next_cursor"] == inbound["next_cursor"]


@pytest_twisted.ensureDeferred
async def test_status_callbacks_in_order_for_a_batch_and_none_lost_over_a_restart(rig, backend):
    backend.failing(500)
    gw = await rig.start()
    to = [f"4670123{i:04d}" for i in range(5)]
    code, body = await rig.api("POST", "/v1/messages", {"to": to, "text": "hello", "reference": "batch"})
    assert code == 202
    ids = [m["id"] for m in body["messages"]]

    async def delivered():
        ms = [await gw.store.get(i) for i in ids]
        return all(m.status.value == "delivered" for m in ms)

    await wait(delivered, what="every message delivered")
    await backend.wait_for_requests(1, timeout=10)  # callbacks are being attempted, and failing
    await rig.stop()
    backend.reply_json("ignored")
    gw = await rig.start()

    async def all_pushed():
        return await gw.store.pending_push_jobs() == []

    await wait(all_pushed, timeout=15, what="every callback delivered")
    got = [r.json() for r in backend.requests if r.path == "/status" and r.signature_valid]
    assert all(r.signature_valid for r in backend.requests if r.path == "/status")
    by_message: dict[str, list[str]] = {}
    seen_events = set()
    for cb in got:
        if cb["event_id"] in seen_events:
            continue  # a repeat after a failed attempt: the receiver drops it by event_id
        seen_events.add(cb["event_id"])
        by_message.setdefault(cb["id"], []).append(cb["status"])
        assert cb["reference"] == "batch" and cb["to"] in to and cb["at"].endswith("Z")
    assert by_message == {i: ["submitted", "delivered"] for i in ids}
    # pulls see the same final state
    code, page = await rig.api("GET", "/v1/messages?status=delivered&limit=3")
    assert code == 200 and len(page["messages"]) == 3
    code, rest = await rig.api("GET", f"/v1/messages?status=delivered&cursor={page['next_cursor']}")
    assert [m["id"] for m in page["messages"] + rest["messages"]] == ids


@pytest_twisted.ensureDeferred
async def test_final_events_in_signed_batches_once_each_and_a_request_may_choose_others(rig, backend):
    """gamma takes only final events, up to 10 per POST; one request of gamma's asks for submitted
    and delivered instead. The first POSTs fail: batches are retried whole."""
    backend.failing(500)
    gw = await rig.start()
    to = [f"4670124{i:04d}" for i in range(25)]
    code, body = await rig.api("POST", "/v1/messages", {"to": to, "text": "hello"}, key="gamma-key")
    assert code == 202
    finals = [m["id"] for m in body["messages"]]
    code, body = await rig.api("POST", "/v1/messages", {"to": to[:3], "text": "hi", "reference": "own",
                                                        "callback_statuses": ["delivered", "submitted"]},
                               key="gamma-key")
    assert code == 202
    chosen = [m["id"] for m in body["messages"]]
    # The first POST was answered 500 once a second one arrives (answers are not delayed): that
    # batch is retried whole later.
    await backend.wait_for_requests(2, timeout=10)
    backend.reply_json("ignored")

    async def all_pushed():
        ms = [await gw.store.get(i) for i in finals + chosen]
        return all(m.status.value == "delivered" for m in ms) and await gw.store.pending_push_jobs() == []

    await wait(all_pushed, timeout=20, what="every callback delivered")
    posts = [r for r in backend.requests if r.path == "/gamma"]
    assert posts and all(r.signature_valid for r in posts)
    batches = [r.json()["events"] for r in posts]  # every body is {"events": [...]}
    assert all(1 <= len(events) <= 10 for events in batches)
    assert any(len(events) > 1 for events in batches)
    seen, by_message = set(), {}
    for events in batches:
        for e in events:
            if e["event_id"] in seen:
                continue  # a repeat of a batch that failed: dropped by event_id
            seen.add(e["event_id"])
            by_message.setdefault(e["id"], []).append((e["status"], e["final"]))
    assert by_message == {**{i: [("delivered", True)] for i in finals},
                          **{i: [("submitted", False), ("delivered", True)] for i in chosen}}
    assert sum(len(events) for events in batches) > len(seen)  # the refused batch came again
    assert not any(r.path == "/status" for r in backend.requests)  # acme sent nothing


@pytest_twisted.ensureDeferred
async def test_an_answer_that_is_no_reply_says_so_in_the_mos_history(rig, backend):
    """``{"reply": 5}`` or JSON that is not JSON: no SMS goes, and the MO's history said only
    "pushed" (an audit); it says why no reply went. An answer without a reply says nothing more."""
    gw = await rig.start()
    answers = [(Answer(body=b'{"reply": 5}'), "the backend's answer: reply is not a string"),
               (Answer(body=b"<html>this is not json</html>"), "the backend's answer: invalid reply json"),
               (Answer(body=b'{"reply": null}'), None)]
    for n, (answer, why) in enumerate(answers):
        backend.answer(answer)
        assert await gw.sims["sim_a"].inject_mo(f"4670123450{n}", "72550", "pizza large") == "delivered"
        [req] = (await backend.wait_for_requests(n + 1, timeout=10))[n:]

        async def pushed():
            mo = await gw.store.get_mo(req.json()["id"])
            return mo if any(e.status == "pushed" for e in mo.events) else None

        mo = await wait(pushed, what="the MO pushed")
        assert [(e.status, e.detail) for e in mo.events if e.status == "reply not sent"] == (
            [("reply not sent", why)] if why else [])
        assert rig.replies_to(f"4670123450{n}") == []
