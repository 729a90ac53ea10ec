"""Every account rule through the HTTP API of a real in-process gateway: SQLite in tmp_path, three
simulated operators over loopback SMPP (cheap < mid < dear, each with numbers it cannot reach), a
loopback push backend that checks signatures. State is read back only through the API (GET a
message, GET /v1/account, pulls, the CSV export) and what each simulated SMSC received.

Operators: ``cheap`` (0.10) cannot reach 4670999…, ``mid`` (0.20) cannot reach 467099988… and
467099977…, ``dear`` (0.35) cannot reach 467099977…: a 4670999… number is delivered by mid, a
467099988… number by dear, a 467099977… number by nobody.
"""

from __future__ import annotations

import csv
import io
import json
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
import pytest_twisted
import treq
from prometheus_client import CollectorRegistry
from twisted.internet import reactor
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.task import deferLater

from smscore.app import Gateway
from smscore.config import parse_config
from tests.backend import PushBackend
from tests.waiting import eventually

SECRET = "acme-push-secret"

CONFIG = """
[gateway]
node = "rules"
max_parts_cap = 3
[store]
url = "sqlite:///gw.db"
[http]
listen = "127.0.0.1:0"
[metrics]
listen = "127.0.0.1:0"
[admin]
api_keys = ["ops-key"]
[push]
timeout = "1s"
retry_for = "1h"
allow_networks = ["127.0.0.0/8"]
[operators.cheap]
type = "simulated"
cost = 0.10
unreachable_prefixes = ["4670999"]
receipt_delay = "10ms"
[operators.mid]
type = "simulated"
cost = 0.20
unreachable_prefixes = ["467099988", "467099977"]
receipt_delay = "10ms"
[operators.dear]
type = "simulated"
cost = 0.35
unreachable_prefixes = ["467099977"]
receipt_delay = "10ms"
[profiles.standard]
operators = ["cheap", "mid", "dear"]
[accounts.acme]
api_keys = ["acme-key"]
senders = ["ACME", "4670111111", "72550"]
default_sender = "ACME"
max_parts = 2
billing = "prepaid"
balance = "1000.30"
prices = {{ "46" = "0.50", "4790" = 250, "4791" = 150, "default" = "0.80" }}
callback_url = "{callback}"
secret = "{secret}"
approved_domains = ["acme.example"]
callback_hosts = ["127.0.0.1", "evil.example", "*.example"]
[accounts.beta]
api_keys = ["beta-key"]
senders = ["BETA"]
billing = "postpaid"
prices = {{ "default" = "0.40" }}
[accounts.vol]
api_keys = ["vol-key"]
senders = ["VOL"]
daily_volume_limit = 3
[accounts.fast]
api_keys = ["fast-key"]
senders = ["FAST"]
tps = 2
[[shortcodes]]
number = "72550"
[[keywords]]
shortcode = "72550"
keyword = "PIZZA"
account = "acme"
reply = "Thanks"
"""

OPERATORS = ("cheap", "mid", "dear")
FINAL = {"delivered", "failed", "expired", "unknown", "stopped", "rejected"}


def D(value) -> Decimal:
    """A JSON number (or CSV cell) as the exact decimal it spells."""
    return Decimal(str(value))


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


async def sleep(seconds: float) -> None:
    await deferLater(reactor, seconds, lambda: None)


class Rig:
    """One gateway on files in tmp_path; ``restart`` builds a new one on the same files."""

    def __init__(self, tmp_path, backend):
        self.tmp_path, self.backend = tmp_path, backend
        self.gw: Gateway | None = None
        self.pdus: dict[str, list[dict]] = {}

    async def start(self) -> Gateway:
        text = CONFIG.format(callback=self.backend.url("/status"), secret=SECRET)
        self.gw = Gateway(parse_config(text, path=self.tmp_path / "gw.toml"), reactor, CollectorRegistry())
        self.gw.push_worker.retry_first = 0.3
        await self.gw.start()
        self.pdus = {}
        for name, sim in self.gw.sims.items():
            self.pdus[name] = seen = []
            original = sim.submit_status

            def spy(pdu, original=original, seen=seen):
                seen.append(dict(pdu.params))  # the whole submit_sm, TON/NPI included
                return original(pdu)

            sim.submit_status = spy
        for _ in range(500):
            if all(self.gw.links[name].is_up() for name in OPERATORS):
                break
            await sleep(0.01)
        else:
            raise AssertionError("the operators did not bind")
        return self.gw

    async def stop(self) -> None:
        if self.gw is not None:
            gw, self.gw = self.gw, None
            await gw.stop()

    async def restart(self) -> Gateway:
        await self.stop()
        return await self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.gw.http_port.getHost().port}"

    async def call(self, method, path, body=None, key="acme-key", headers=None, raw=None):
        """(status, parsed JSON body or text, response headers)."""
        hdrs = {"Content-Type": ["application/json"]}
        if key is not None:
            hdrs["Authorization"] = [f"Bearer {key}"]
        for name, value in (headers or {}).items():
            hdrs[name] = [value]
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        resp = await treq.request(method, self.url + path, data=data, headers=hdrs)
        content = await resp.content()
        ctype = resp.headers.getRawHeaders("content-type", [""])[0]
        parsed = json.loads(content) if ctype.startswith("application/json") else content.decode("utf-8")
        return resp.code, parsed, resp.headers

    async def api(self, method, path, body=None, key="acme-key", headers=None):
        code, parsed, _ = await self.call(method, path, body, key, headers)
        return code, parsed

    async def send(self, body, key="acme-key", headers=None) -> dict:
        """POST /v1/messages that must be accepted: the one message of the answer."""
        code, answer = await self.api("POST", "/v1/messages", body, key, headers)
        assert code == 202, answer
        assert len(answer["messages"]) == 1, answer
        return answer["messages"][0]

    async def get(self, mid, key="acme-key") -> dict:
        code, body = await self.api("GET", f"/v1/messages/{mid}", key=key)
        assert code == 200, body
        return body

    async def until(self, mid, statuses=FINAL, key="acme-key", timeout=10.0) -> dict:
        statuses = {statuses} if isinstance(statuses, str) else set(statuses)
        deadline = time.monotonic() + timeout
        while True:
            body = await self.get(mid, key)
            if body["status"] in statuses:
                return body
            if time.monotonic() > deadline:
                raise AssertionError(f"message {mid} is {body['status']}, not {sorted(statuses)}: {body['events']}")
            await sleep(0.02)

    async def balance(self, key="acme-key") -> Decimal:
        code, body = await self.api("GET", "/v1/account", key=key)
        assert code == 200, body
        return D(body["balance"])

    async def admin(self, path, body=None, key="ops-key"):
        return await self.api("POST", "/v1/admin" + path, body if body is not None else {}, key=key)

    def submits(self, operator, number) -> int:
        return sum(1 for s in self.gw.sims[operator].submits if s.destination_addr == number)

    def submit_counts(self, number) -> dict[str, int]:
        return {op: self.submits(op, number) for op in OPERATORS}


@pytest.fixture
def backend():
    b = PushBackend.listening(reactor, secret=SECRET)
    b.no_content()
    yield b
    pytest_twisted.blockon(b.stop())


@pytest.fixture
def rig(tmp_path, backend):
    r = Rig(tmp_path, backend)
    pytest_twisted.blockon(Deferred.fromCoroutine(r.start()))
    yield r
    pytest_twisted.blockon(Deferred.fromCoroutine(r.stop()))


def history(message) -> list[tuple]:
    return [(e["status"], e["operator"], e["final"]) for e in message["events"]]


def attempt_costs(message) -> list[Decimal]:
    """The cost each submitted attempt's event reports (``cost=…`` in its detail)."""
    out = []
    for e in message["events"]:
        if e["status"] == "submitted":
            [cost] = [w.split("=", 1)[1] for w in e["detail"].split() if w.startswith("cost=")]
            out.append(Decimal(cost))
    return out


def refusal(code, body, status, error, field=None):
    assert code == status, body
    assert body["error"]["code"] == error, body
    assert body["error"].get("field") == field, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]


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
    assert attempt_costs(m) == [Decimal("0.10"), Decimal("0.20")]
    assert D(m["cost"]) == sum(attempt_costs(m)) == Decimal("0.30")
    assert m["error"] is None and m["reference"] == "r1"

    m = await rig.until(second["id"])
    assert m["status"] == "delivered" and m["operator"] == "dear"
    assert [s for s, _, _ in history(m)] == ["queued", "submitted", "failed", "queued", "submitted", "failed",
                                             "queued", "submitted", "delivered"]
    assert [o for s, o, _ in history(m) if s == "submitted"] == ["cheap", "mid", "dear"]
    assert D(m["cost"]) == sum(attempt_costs(m)) == Decimal("0.65")

    m = await rig.until(third["id"])
    assert m["status"] == "failed"
    assert history(m)[-1] == ("failed", "dear", True)
    assert [f for s, _, f in history(m) if s == "failed"] == [False, False, True]
    assert D(m["cost"]) == sum(attempt_costs(m)) == Decimal("0.65")
    assert m["error"] and "UNDELIV" in m["error"]

    assert rig.submit_counts(ported) == {"cheap": 1, "mid": 1, "dear": 0}
    assert rig.submit_counts(far) == {"cheap": 1, "mid": 1, "dear": 1}

    # The next message to each number goes straight to the operator that delivered.
    again = await rig.send({"to": ported, "text": "ported again"})
    m = await rig.until(again["id"])
    assert history(m) == [("queued", None, False), ("submitted", "mid", False), ("delivered", "mid", True)]
    assert D(m["cost"]) == Decimal("0.20") and m["operator"] == "mid"
    assert rig.submit_counts(ported) == {"cheap": 1, "mid": 2, "dear": 0}
    again_far = await rig.send({"to": far, "text": "far again"})
    m = await rig.until(again_far["id"])
    assert [o for s, o, _ in history(m) if s == "submitted"] == ["dear"] and D(m["cost"]) == Decimal("0.35")

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
    assert D(row["cost"]) == Decimal("0.30") and D(row["charged"]) == Decimal("0.50")
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
    assert m["parts"] == 2 and D(m["cost"]) == Decimal("0.20")  # 0.10 a part
    assert rig.submits("cheap", "46703000001") == 2 and rig.submits("cheap", "46703000003") == 0
    # refused whole: nothing of the two-number request was stored
    code, page = await rig.api("GET", "/v1/messages?to=46703000003")
    assert code == 200 and page["messages"] == []
    assert await rig.balance() == Decimal("1000.30") - Decimal("1.00") - Decimal("1.00")


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
    import treq
    from twisted.internet import reactor

    from smscore.api import api_factory

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
    # ... but not the account's own stop list
    code, body = await rig.admin("/stoplist", {"numbers": [mine], "account": "acme", "consent": True})
    assert code == 200
    assert (await rig.send({"to": mine, "text": "still stopped"}))["status"] == "stopped"
    # removing from the stop list lets messages go again
    code, body = await rig.admin("/stoplist", {"numbers": [mine], "account": "acme", "remove": True})
    assert (code, body) == (200, {"changed": 1, "numbers": 1})
    again = await rig.send({"to": mine, "text": "welcome back"})
    assert again["status"] == "queued"
    # withdrawing the consent stops do-not-call numbers again
    code, body = await rig.admin("/stoplist", {"numbers": [dnc], "account": "acme", "consent": True, "remove": True})
    assert (code, body) == (200, {"changed": 1, "numbers": 1})
    assert (await rig.send({"to": dnc, "text": "no more consent"}))["status"] == "stopped"

    for mid, key in ((ok["id"], "acme-key"), (again["id"], "acme-key"), (beta_mine, "beta-key")):
        assert (await rig.until(mid, key=key))["status"] == "delivered"
    assert rig.submits("cheap", dnc) == 1 and rig.submits("cheap", mine) == 2  # acme's again, beta's

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


# -- money --------------------------------------------------------------------------------------------
@pytest_twisted.ensureDeferred
async def test_prepaid_charges_per_part_refuses_whole_refunds_and_notifies_the_balance(rig, backend):
    code, account = await rig.api("GET", "/v1/account")
    assert code == 200
    assert account == {
        "account": "acme", "balance": account["balance"], "billing": "prepaid", "paused": False,
        "senders": ["ACME", "4670111111", "72550"], "default_sender": "ACME", "profile": "standard",
        "max_parts": 2, "tps": None, "daily_volume_limit": None, "approved_domains": ["acme.example"],
        "callback_url": backend.url("/status")}
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
    code, _ = await rig.api("DELETE", f"/v1/messages/{sched['id']}")
    assert code == 200 and await rig.balance() == Decimal("98.00")                 # refunded

    code, body = await rig.admin("/accounts/acme/topup", {"amount": 1000})
    assert code == 200 and body == {"balance": body["balance"]} and D(body["balance"]) == Decimal("1098.00")
    code, body = await rig.admin("/accounts/acme/topup", {"amount": "0.25"})
    assert code == 200 and D(body["balance"]) == Decimal("1098.25")
    assert await rig.balance() == Decimal("1098.25")
    now_ok = await rig.send({"to": "4790000006", "text": "x"})                     # 250 now fits
    assert now_ok["status"] == "queued" and await rig.balance() == Decimal("848.25")  # crossed 1000
    for bad in ("abc", None, True, [1], "NaN", "Infinity"):
        code, body = await rig.admin("/accounts/acme/topup", {"amount": bad})
        refusal(code, body, 400, "invalid_request", "amount")
    code, body = await rig.admin("/accounts/nobody/topup", {"amount": 1})
    refusal(code, body, 404, "not_found")
    code, body = await rig.api("POST", "/v1/admin/accounts/acme/topup", {"amount": 1})
    refusal(code, body, 403, "forbidden")
    assert await rig.balance() == Decimal("848.25")

    def notices():
        return [r for r in backend.requests if r.path == "/status" and r.json().get("type") == "balance"]

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
