"""The pusher over real loopback TCP against ``tests.backend.PushBackend`` (twisted.web on
127.0.0.1, port chosen by the OS). The backend checks signatures with its own HMAC. Nothing sleeps:
the pusher's Deferred, the backend's ``wait_for_requests`` and ``connections_closed`` wait."""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import reactor

from connectors.http_push import Pusher, encode_body
from tests.backend import Answer

SECRET = "change-me"
TIMEOUT = 1.0
MO = {"id": "mo-1", "from": "46701234567", "to": "72550", "keyword": "PIZZA",
      "text": "PIZZA margherita åäö", "payload": "margherita åäö",
      "received_at": "2026-01-01T12:00:00Z"}


@pytest.fixture
def pusher():
    pusher = Pusher(reactor, timeout=TIMEOUT)
    yield pusher
    pytest_twisted.blockon(pusher.close())


@pytest_twisted.ensureDeferred
async def test_healthy_backend_gets_a_signed_push_and_its_reply_comes_back(backend, pusher):
    backend.reply_json("Your pizza is on its way 🍕")
    result = await pusher.push(backend.url("/sms/mo"), MO, SECRET)
    assert (result.ok, result.status, result.reply, result.error) == (
        True, 200, "Your pizza is on its way 🍕", None)
    [seen] = await backend.wait_for_requests(1, timeout=1)
    assert seen.signature_valid is True
    assert seen.json() == MO and seen.body == encode_body(MO)
    assert seen.headers["content-type"] == "application/json"
    assert seen.headers["user-agent"].startswith("smsgw/")
    assert abs(int(seen.headers["x-smsgw-timestamp"]) - reactor.seconds()) <= 2


@pytest_twisted.ensureDeferred
async def test_text_plain_reply(backend, pusher):
    backend.reply_text("  Tack!\n")
    result = await pusher.push(backend.url(), MO, SECRET)
    assert (result.ok, result.status, result.reply, result.error) == (True, 200, "Tack!", None)


@pytest_twisted.ensureDeferred
async def test_no_content_is_ok_without_reply(backend, pusher):
    backend.no_content()
    result = await pusher.push(backend.url(), MO, None)
    assert (result.ok, result.status, result.reply, result.error) == (True, 204, None, None)
    assert (await backend.wait_for_requests(1))[0].signature_valid is False  # none was sent


@pytest_twisted.ensureDeferred
async def test_slow_backend_times_out_within_half_a_second_of_the_timeout(backend, pusher):
    backend.slow(TIMEOUT + 5)
    started = reactor.seconds()
    result = await pusher.push(backend.url(), MO, SECRET)
    took = reactor.seconds() - started
    assert (result.ok, result.status, result.error) == (False, None, "timeout")
    assert TIMEOUT <= took < TIMEOUT + 0.5
    assert TIMEOUT <= result.elapsed < TIMEOUT + 0.5
    await backend.connections_closed()  # the pusher hung up; the late answer is never sent


@pytest_twisted.ensureDeferred
async def test_a_trickling_body_is_cut_at_the_timeout(backend, pusher):
    backend.stall()
    started = reactor.seconds()
    result = await pusher.push(backend.url(), MO, SECRET)
    assert (result.ok, result.status, result.reply, result.error) == (True, 200, None, "reply timeout")
    assert TIMEOUT <= reactor.seconds() - started < TIMEOUT + 0.5
    await backend.connections_closed()


@pytest_twisted.ensureDeferred
async def test_failing_backend(backend, pusher):
    backend.failing(500)
    result = await pusher.push(backend.url(), MO, SECRET)
    assert (result.ok, result.status, result.reply, result.error) == (False, 500, None, "http 500")


@pytest_twisted.ensureDeferred
async def test_garbage_under_json_is_ok_but_noted(backend, pusher):
    backend.garbage()
    result = await pusher.push(backend.url(), MO, SECRET)
    assert (result.ok, result.status, result.reply, result.error) == (
        True, 200, None, "invalid reply json")


@pytest_twisted.ensureDeferred
async def test_redirect_is_not_followed(backend, pusher):
    backend.answer(Answer(status=302, body=b"", headers=(("Location", backend.url("/other")),)))
    result = await pusher.push(backend.url(), MO, SECRET)
    assert (result.ok, result.status, result.error) == (False, 302, "http 302")
    assert [r.path for r in backend.requests] == ["/push"]


@pytest_twisted.ensureDeferred
async def test_huge_reply_is_cut_off(backend, pusher):
    backend.answer(Answer(body=b'{"reply":"' + b"x" * (1 << 20) + b'"}'))
    result = await pusher.push(backend.url(), MO, SECRET)
    assert (result.ok, result.status, result.reply, result.error) == (True, 200, None, "reply too large")
    await backend.connections_closed()


@pytest_twisted.ensureDeferred
async def test_refused_then_listening_again_on_the_same_port(backend, pusher):
    await backend.refuse()
    result = await pusher.push(backend.url(), MO, SECRET)
    assert (result.ok, result.status, result.error) == (False, None, "connection refused")
    assert result.elapsed < TIMEOUT
    port = backend.port
    backend.accept()
    assert backend.port == port
    result = await pusher.push(backend.url(), MO, SECRET)
    assert (result.ok, result.reply) == (True, "ok")
    assert len(await backend.wait_for_requests(1)) == 1


@pytest_twisted.ensureDeferred
async def test_pushes_reuse_one_connection(backend, pusher):
    for n in range(3):
        assert (await pusher.push(backend.url(), {"n": n}, SECRET)).ok
    assert [r.json() for r in await backend.wait_for_requests(3)] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert backend.connections_opened == 1
    await pusher.close()
    await backend.connections_closed()


@pytest_twisted.ensureDeferred
async def test_the_backend_is_told_before_it_answers(backend, pusher):
    """wait_for_requests fires on arrival, not on answer: a slow backend has the request at once."""
    backend.slow(TIMEOUT / 2)
    pushed = pusher.push(backend.url(), MO, SECRET)
    [seen] = await backend.wait_for_requests(1, timeout=TIMEOUT)
    assert not pushed.called and seen.signature_valid is True
    assert (await pushed).ok


@pytest_twisted.ensureDeferred
async def test_a_wrong_secret_is_caught_by_the_backend(backend, pusher):
    assert (await pusher.push(backend.url(), MO, "guessed")).ok  # the backend answers anyway
    assert (await backend.wait_for_requests(1))[0].signature_valid is False
