"""Calls between a node's processes over real loopback sockets when the other side accepts the
connection and never answers (a process stopped with SIGSTOP: the kernel still accepts for it).
A customer's request an API worker hands to the main worker, and a reload the main worker hands to
the API workers, end after ``timeout``; before, they waited for ever."""

from __future__ import annotations

import time
from io import BytesIO
from types import SimpleNamespace

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import TimeoutError
from twisted.web._newclient import ResponseNeverReceived

from smscore.workers import Forwarder, WorkersControl
from tests.harness.silent import listen_silent


#: how a cancelled request ends: Agent's own ResponseNeverReceived when it was waiting for the answer
ENDED = (TimeoutError, ResponseNeverReceived)



@pytest.fixture
def silent():
    port = listen_silent(reactor)
    yield port.getHost().port
    pytest_twisted.blockon(port.stopListening())


@pytest_twisted.ensureDeferred
async def test_a_request_handed_to_a_silent_main_worker_ends_after_the_timeout(silent):
    forwarder = Forwarder(reactor, silent, timeout=0.5)
    request = SimpleNamespace(method=b"GET", uri=b"/readyz", headers={b"host": b"127.0.0.1"}, content=BytesIO(b""))
    started = time.monotonic()
    with pytest.raises(ENDED):
        await forwarder.forward(request)
    with pytest.raises(ENDED):
        await forwarder.call("/internal/cancel", {"id": "x", "account": "acme"}, {})
    assert time.monotonic() - started < 5


@pytest_twisted.ensureDeferred
async def test_a_reload_handed_to_a_silent_api_worker_ends_after_the_timeout(silent):
    control = WorkersControl(reactor, [silent], timeout=0.5)
    started = time.monotonic()
    await control.reload_all()  # logged as not reached; the reload's answer is not held up
    assert time.monotonic() - started < 5
