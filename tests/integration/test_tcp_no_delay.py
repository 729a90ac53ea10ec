"""Every TCP connection the gateway makes or takes sends small writes at once (TCP_NODELAY,
connectors/tcp.py): SMPP both ways (to operators, from ESMEs, plain and TLS), the HTTP API, and
the HTTP client of callbacks and MO pushes. Checked on the real sockets, over loopback: without
it an answer on an idle link waited for the peer's delayed ACK (docs/benchmarks.md)."""

from __future__ import annotations

import socket

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.protocol import Factory
from twisted.protocols.tls import TLSMemoryBIOProtocol

from connectors.http_client import Pool, default_endpoint_for
from connectors.http_server import HTTPServerFactory
from connectors.smpp.listener import listen
from connectors.smpp.protocol import SMPPProtocol
from connectors.smpp.session import ESME, SMSC
from connectors.tcp import no_delay
from tests.certs import TestCA
from tests.harness.waiting import eventually


def nagle_off(transport) -> bool:
    """Whether the TCP socket under ``transport`` (beneath TLS, if any) has TCP_NODELAY."""
    while isinstance(transport, TLSMemoryBIOProtocol):
        transport = transport.transport
    return bool(transport.getHandle().getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))


class Ends:
    """The handler of SMPPProtocols here: keeps each one as its connection is made."""

    def __init__(self) -> None:
        self.made: list[SMPPProtocol] = []
        self.closed: list[str] = []
        self.waiting: list[Deferred] = []

    def connection_made(self, proto) -> None:
        self.made.append(proto)
        waiting, self.waiting = self.waiting, []
        for d in waiting:
            d.callback(proto)

    def connection_closed(self, proto, reason) -> None:
        self.closed.append(reason)

    def next(self) -> Deferred:
        d: Deferred = Deferred()
        self.waiting.append(d)
        return d.addTimeout(5, reactor)


def smpp_factory(role, ends: Ends) -> Factory:
    factory = Factory()
    factory.buildProtocol = lambda addr: SMPPProtocol(role, ends, reactor)
    return factory


@pytest_twisted.ensureDeferred
async def test_smpp_connections_send_at_once_on_both_ends():
    smscs, esmes = Ends(), Ends()
    port = await listen(reactor, smpp_factory(SMSC, smscs), "127.0.0.1:0")
    try:
        accepted = smscs.next()
        client = await TCP4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port).connect(
            smpp_factory(ESME, esmes))
        server = await accepted
        assert nagle_off(client.transport) and nagle_off(server.transport)
    finally:
        for proto in (*smscs.made, *esmes.made):
            proto.transport.abortConnection()
        await port.stopListening()


@pytest_twisted.ensureDeferred
async def test_an_smpp_connection_over_tls_sends_at_once(tmp_path):
    ca = TestCA(tmp_path)
    cert, key = ca.issue("smsc", ip="127.0.0.1")
    smscs = Ends()
    port = await listen(reactor, smpp_factory(SMSC, smscs), "127.0.0.1:0", tls_cert=cert, tls_key=key)
    raw = socket.create_connection(("127.0.0.1", port.getHost().port))  # the handshake need not finish
    try:
        server = await smscs.next()
        assert isinstance(server.transport, TLSMemoryBIOProtocol) and nagle_off(server.transport)
    finally:
        raw.close()
        for proto in smscs.made:
            proto.transport.abortConnection()
        await port.stopListening()


class _Handler:
    def render(self, request):
        return b"ok"


@pytest_twisted.ensureDeferred
async def test_the_http_api_and_the_push_client_send_at_once():
    factory = HTTPServerFactory(_Handler(), clock=reactor, error_body=lambda status, code, message: b"")
    made: list = []
    build = factory.buildProtocol
    factory.buildProtocol = lambda addr: made.append(build(addr)) or made[-1]
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    pool = Pool(default_endpoint_for(reactor, 5.0))
    try:
        client = await pool.connect(("http", "127.0.0.1", port.getHost().port))
        await eventually(lambda: made, "the server's side of the connection", timeout=5)
        assert nagle_off(client.transport) and nagle_off(made[0].transport)
    finally:
        for proto in made:
            proto.transport.abortConnection()
        await port.stopListening()


def test_a_transport_without_tcp_options_is_left_as_it_is():
    no_delay(object())  # like a test's in-memory transport, or a UNIX socket's: no setTcpNoDelay

    class Closed:
        asked: list[bool] = []

        def setTcpNoDelay(self, enabled):
            self.asked.append(enabled)
            raise OSError("Bad file descriptor")

    closed = Closed()
    no_delay(closed)  # no error: a socket that went away is nothing to set
    assert closed.asked == [True]
