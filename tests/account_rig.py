"""The world of the account-rule tests (tests/integration/test_account_*.py): one gateway of
this process on SQLite in tmp_path, three simulated operators over loopback SMPP and a loopback
push backend that checks signatures; ``Rig`` drives it through its HTTP API only.

Operators: ``cheap`` (0.10) cannot reach 4670999…, ``mid`` (0.20) cannot reach 467099988… and
467099977…, ``dear`` (0.35) cannot reach 467099977…: a 4670999… number is delivered by mid, a
467099988… number by dear, a 467099977… number by nobody.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from decimal import Decimal

import pytest_twisted
import treq
from prometheus_client import CollectorRegistry
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater

from smscore.app import Gateway
from smscore.config import parse_config
from tests.backend import PushBackend

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

    async def ops_view(self, message_id) -> dict:
        """The message as ops see it (``/v1/admin/messages/{id}``): the operators' cost, attempt by
        attempt (a customer sees what the message costs its account, SPEC §14)."""
        code, seen = await self.api("GET", f"/v1/admin/messages/{message_id}", key="ops-key")
        assert code == 200, seen
        return seen

    def submits(self, operator, number) -> int:
        return sum(1 for s in self.gw.sims[operator].submits if s.destination_addr == number)

    def submit_counts(self, number) -> dict[str, int]:
        return {op: self.submits(op, number) for op in OPERATORS}


def open_rig(tmp_path) -> Rig:
    """A started Rig with its push backend (``rig.backend``): the ``rig`` fixture's start."""
    backend = PushBackend.listening(reactor, secret=SECRET)
    backend.no_content()
    r = Rig(tmp_path, backend)
    pytest_twisted.blockon(Deferred.fromCoroutine(r.start()))
    return r


def close_rig(r: Rig) -> None:
    pytest_twisted.blockon(Deferred.fromCoroutine(r.stop()))
    pytest_twisted.blockon(r.backend.stop())


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
