"""Pushes reach only the addresses SPEC §15 allows, checked on the address actually connected to.

Real sockets on loopback: a customer backend (tests.backend.PushBackend) counts the connections it
accepts, so "refused" means the gateway never opened one, not that the backend answered an error.
"""

import ipaddress
import sqlite3

import pytest
import pytest_twisted
import treq
from prometheus_client import CollectorRegistry
from twisted.internet import reactor

from connectors.http_push import Pusher
from policies.callback_urls import address_problem
from smscore.app import Gateway
from smscore.config import parse_config
from tests.harness.waiting import eventually

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)

CONFIG = """
[gateway]
node = "ssrf"
[store]
url = "sqlite:///gw.db"
[http]
listen = "127.0.0.1:0"
[metrics]
listen = "127.0.0.1:0"
[push]
timeout = "1s"
retry_for = "1h"
{allow}
[operators.sim_a]
type = "simulated"
receipt_delay = "10ms"
[profiles.standard]
operators = ["sim_a"]
[accounts.acme]
api_keys = ["acme-key"]
secret = "s3cret"
callback_url = "{callback}"
callback_hosts = ["localhost", "127.0.0.1"]
"""


def pusher(allow=(), listeners=()):
    return Pusher(reactor, timeout=2.0, address_check=lambda a, p: address_problem(a, p, allow, listeners))


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "[::ffff:127.0.0.1]"])
async def test_a_name_or_address_on_loopback_is_refused_before_connecting(backend, host):
    p = pusher()
    result = await p.push(f"http://{host}:{backend.port}/status", {"id": "1"}, "k")
    await p.close()
    assert not result.ok and result.error.startswith("refused address: "), result
    assert "not a globally routable address" in result.error
    assert backend.connections_opened == 0 and backend.requests == []


@pytest_twisted.ensureDeferred
async def test_allow_networks_opens_the_loopback_backend(backend):
    p = pusher(allow=LOOPBACK)
    result = await p.push(f"http://localhost:{backend.port}/status", {"id": "1"}, "k")
    await p.close()
    assert result.ok, result
    assert backend.connections_opened == 1 and [r.path for r in backend.requests] == ["/status"]


@pytest_twisted.ensureDeferred
async def test_the_gateways_own_listener_is_refused_even_in_an_allowed_network(backend):
    p = pusher(allow=LOOPBACK, listeners=[("127.0.0.1", backend.port)])
    result = await p.push(backend.url("/v1/admin/reload"), {}, "k")
    await p.close()
    assert not result.ok and "own listeners" in result.error, result
    assert backend.connections_opened == 0


class Rig:
    def __init__(self, tmp_path, callback, allow=""):
        config = CONFIG.format(callback=callback, allow=allow)
        self.gw = Gateway(parse_config(config, path=tmp_path / "gw.toml"), reactor, CollectorRegistry())
        self.db = tmp_path / "gw.db"

    async def send(self, body):
        port = self.gw.http_port.getHost().port
        resp = await treq.post(f"http://127.0.0.1:{port}/v1/messages", json=body,
                               headers={"Authorization": ["Bearer acme-key"]})
        return resp.code, await resp.json()

    async def push_errors_for(self, callback_url):
        """Send one message whose status callbacks go to ``callback_url``; the errors of the push
        attempts once there are some."""
        code, answer = await self.send({"to": "46701234567", "text": "hi", "callback_url": callback_url})
        assert code == 202, answer  # the host is one of callback_hosts; the address is judged at connect
        await eventually(lambda: self.push_errors(), "a push attempt", state=self.push_errors)
        return self.push_errors()

    def push_errors(self):
        with sqlite3.connect(self.db) as conn:
            return [row[0] for row in conn.execute("SELECT last_error FROM push_jobs WHERE attempts > 0")]


@pytest_twisted.ensureDeferred
async def test_the_gateway_never_connects_to_a_callback_url_that_resolves_to_loopback(tmp_path, backend):
    rig = Rig(tmp_path, callback=f"http://localhost:{backend.port}/status")
    await rig.gw.start()
    try:
        code, answer = await rig.send({"to": "46701234567", "text": "hi"})
        assert code == 202, answer
        await eventually(lambda: rig.push_errors(), "a push attempt", state=rig.push_errors)
        assert all(e.startswith("refused address: ") for e in rig.push_errors()), rig.push_errors()
        assert backend.connections_opened == 0
    finally:
        await rig.gw.stop()


@pytest_twisted.ensureDeferred
async def test_a_request_callback_url_naming_the_gateways_own_api_is_never_pushed_to(tmp_path, backend):
    rig = Rig(tmp_path, callback=f"http://127.0.0.1:{backend.port}/status",
              allow='allow_networks = ["127.0.0.0/8"]')
    await rig.gw.start()
    try:
        api = rig.gw.http_port.getHost().port
        errors = await rig.push_errors_for(f"http://127.0.0.1:{api}/v1/admin/reload")
        assert all("own listeners" in e for e in errors), errors
        code, answer = await rig.send({"to": "46701234567", "text": "hi"})  # the account's own URL: allowed
        await eventually(lambda: backend.requests, "a callback to the allowed backend")
    finally:
        await rig.gw.stop()


@pytest_twisted.ensureDeferred
async def test_the_in_process_simulated_operators_are_the_gateways_own_listeners_too(tmp_path, backend):
    rig = Rig(tmp_path, callback=f"http://127.0.0.1:{backend.port}/status",
              allow='allow_networks = ["127.0.0.0/8"]')
    await rig.gw.start()
    try:
        host, port = rig.gw.sims["sim_a"].address
        errors = await rig.push_errors_for(f"http://{host}:{port}/x")
        assert all("own listeners" in e for e in errors), errors
    finally:
        await rig.gw.stop()

