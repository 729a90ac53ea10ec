"""The SMPP server for customers' ESMEs on real loopback sockets, plain and TLS, with smpplib (an
independent SMPP implementation) as the customer's ESME and a small fake application that answers
submits with ids. Ports are 0 (the OS picks); nothing sleeps: Deferreds and conditions wait.

smpplib is blocking, so it runs in a thread (``deferToThread``) with a socket timeout while the
reactor serves the gateway side. smpplib has no cancel_sm: that one request goes over smpplib's
own bound socket as bytes from our codec, and its answer is read back the same way.
"""

from __future__ import annotations

import datetime
import ipaddress
import itertools
import socket
import ssl
import threading

import pytest
import pytest_twisted
import smpplib.client
import smpplib.consts
import smpplib.exceptions
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from twisted.internet import reactor
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol
from twisted.internet.threads import deferToThread

from connectors.smpp.codec import PDU, decode, encode
from connectors.smpp.defs import ESME_RBINDFAIL, ESME_RCANCELFAIL, ESME_RINVCMDLEN, ESME_ROK
from connectors.smpp.deliver_fields import QueryAnswer, receipt
from connectors.smpp.server import CustomerSMPPServer, DeliveryResult, Refused, listen
from connectors.smpp.submit_fields import ReceiptRequest
from tests.esme import bind_status, cancel_over, read_until, smpplib_client
from tests.harness.waiting import eventually

PASSWORD = "s3cret"
SYSTEM_ID = "acme-esme"


def authenticate(system_id: str, password: str) -> str | None:
    return "acme" if (system_id, password) == (SYSTEM_ID, PASSWORD) else None


class FakeApp:
    """The application behind the server: stores nothing, answers each submit with a new id one
    reactor turn later (as after a durable write), sends a receipt for it when asked, knows the
    messages it answered for query_sm and cancels the ones whose id ends in "-c"."""

    def __init__(self) -> None:
        self.server: CustomerSMPPServer | None = None
        self.submits: list = []
        self.deliveries: list[Deferred] = []
        self.cancelled: list[str] = []
        self._ids = itertools.count(1)

    def submit(self, session, message):
        message_id = f"gw-{next(self._ids)}" + ("-c" if message.text.endswith("cancel me") else "")
        self.submits.append((session, message, message_id))
        stored = Deferred()
        reactor.callLater(0, stored.callback, message_id)  # one reactor turn later, as after a write
        if message.receipts is ReceiptRequest.ALL:
            stored.addCallback(self._receipt_later, session.account, message)
        return stored

    def _receipt_later(self, message_id, account, message):
        def send():
            now = reactor.seconds()
            item = receipt(message_id, "delivered", to=message.destination,
                           sender=message.source, submitted_at=now, done_at=now,
                           text=message.text)
            told: Deferred = Deferred()
            self.deliveries.append(told)
            self.server.deliver(account, item, lambda outcome, d: d.callback(outcome), told)
        reactor.callLater(0, send)
        return message_id

    def _known(self, message_id: str) -> bool:
        return any(m == message_id for _, _, m in self.submits)

    def query(self, session, message_id):
        if not self._known(message_id):
            return fail(Refused("not_found"))
        return succeed(QueryAnswer("delivered", final_at=1_700_000_000.0))

    def cancel(self, session, message_id):
        if not self._known(message_id) or not message_id.endswith("-c"):
            return fail(Refused("conflict", "already submitted"))
        self.cancelled.append(message_id)
        return succeed(None)

    def receiver_bound(self, session):
        pass


async def start(app: FakeApp, **tls) -> tuple[CustomerSMPPServer, object]:
    server = CustomerSMPPServer(reactor, authenticate=authenticate, max_binds=lambda a: 4,
                                handler=app, enquire_link=30.0, window=10)
    app.server = server
    port = await listen(reactor, server.factory, "127.0.0.1:0", **tls)
    return server, port


@pytest.fixture
def gateway():
    app = FakeApp()
    server, port = pytest_twisted.blockon(Deferred.fromCoroutine(start(app)))
    yield server, app, port.getHost().port
    pytest_twisted.blockon(port.stopListening())
    pytest_twisted.blockon(server.stop())


# --- smpplib as the customer's ESME ---------------------------------------------------------------
def submit_and_read(client, seen: dict, text: bytes, registered_delivery: int = 1) -> str:
    seen.pop("resp", None)
    client.send_message(source_addr_ton=smpplib.consts.SMPP_TON_ALNUM, source_addr_npi=0,
                        source_addr="Acme", dest_addr_ton=smpplib.consts.SMPP_TON_INTL,
                        dest_addr_npi=1, destination_addr="46701234567", short_message=text,
                        registered_delivery=registered_delivery)
    read_until(client, seen, "resp")
    return seen["resp"].message_id.decode()


def esme_session(port: int, ssl_context=None) -> dict:
    """Bind as transceiver, submit with a receipt, read the receipt (smpplib answers it
    deliver_sm_resp ROK), query it, cancel two messages, unbind. Runs in a thread."""
    client = smpplib_client(port, ssl_context)
    seen: dict = {}

    def keep(key):
        def handler(pdu, **_):
            seen[key] = pdu
        return handler

    client.set_message_sent_handler(keep("resp"))
    client.set_message_received_handler(keep("receipt"))
    client.set_query_resp_handler(keep("query"))
    client.connect()
    try:
        seen["bind"] = client.bind_transceiver(system_id=SYSTEM_ID, password=PASSWORD)
        seen["message_id"] = submit_and_read(client, seen, b"Hello from smpplib")
        read_until(client, seen, "receipt")
        client.query_message(message_id=seen["message_id"], source_addr_ton=5,
                             source_addr_npi=0, source_addr="Acme")
        read_until(client, seen, "query")
        seen["too_late"] = cancel_over(client, seen["message_id"], 900)
        cancellable = submit_and_read(client, seen, b"please cancel me", registered_delivery=0)
        seen["cancelled"] = (cancellable, cancel_over(client, cancellable, 901))
        seen["unbind"] = client.unbind().command
    finally:
        client.disconnect()
    return seen


@pytest_twisted.ensureDeferred
async def test_smpplib_binds_submits_gets_its_receipt_queries_cancels_and_unbinds(gateway):
    server, app, port = gateway
    seen = await deferToThread(esme_session, port)
    assert (seen["bind"].command, seen["bind"].system_id) == ("bind_transceiver_resp", b"smsgw")
    [(session, message, message_id), _] = app.submits
    assert seen["message_id"] == message_id == "gw-1"
    assert (session.account, session.bind) == ("acme", "transceiver")
    assert (message.source, message.destination, message.text) == (
        "Acme", "46701234567", "Hello from smpplib")
    rcpt = seen["receipt"]
    assert (rcpt.esm_class, rcpt.source_addr, rcpt.destination_addr) == (
        0x04, b"46701234567", b"Acme")
    assert rcpt.receipted_message_id == b"gw-1"
    assert rcpt.message_state == 2
    assert rcpt.short_message.startswith(b"id:gw-1 sub:001 dlvrd:001 submit date:")
    assert rcpt.short_message.endswith(b" stat:DELIVRD err:000 text:Hello from smpplib")
    assert await app.deliveries[0] == DeliveryResult(True, "acknowledged")
    query = seen["query"]
    assert (query.message_id, query.message_state, query.final_date) == (
        b"gw-1", 2, b"231114221320000+")
    assert seen["too_late"].status == ESME_RCANCELFAIL
    cancellable, answer = seen["cancelled"]
    assert (answer.command, answer.status) == ("cancel_sm_resp", ESME_ROK)
    assert app.cancelled == [cancellable]
    assert seen["unbind"] == "unbind_resp"
    await eventually(lambda: server.connection_count == 0, "the unbound connection to close")


@pytest_twisted.ensureDeferred
async def test_smpplib_bind_with_a_wrong_password_is_refused(gateway):
    server, app, port = gateway
    assert await deferToThread(bind_status, port, SYSTEM_ID, "wrong") == ESME_RBINDFAIL
    assert server.sessions() == []


# --- hostile bytes --------------------------------------------------------------------------------
class RawPeer(Protocol):
    """Writes ``data`` on connect, keeps what comes back, fires ``closed`` when cut off."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.received = b""
        self.closed: Deferred = Deferred()

    def connectionMade(self):
        self.transport.write(self.data)

    def dataReceived(self, data):
        self.received += data

    def connectionLost(self, reason):
        self.closed.callback(None)


@pytest_twisted.ensureDeferred
async def test_a_pdu_of_length_0xffffffff_is_cut_off_and_others_are_served(gateway):
    server, app, port = gateway
    # Only a header: bytes left unread when the server closes would turn its FIN into a RST.
    peer = RawPeer(bytes.fromhex("ffffffff 00000004 00000000 00000001"))
    await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port), peer)
    await peer.closed
    nack = decode(peer.received)
    assert (nack.command, nack.status) == ("generic_nack", ESME_RINVCMDLEN)
    assert await deferToThread(bind_status, port, SYSTEM_ID, PASSWORD) == ESME_ROK
    await eventually(lambda: server.connection_count == 0, "every connection to be gone")


def open_and_drop(port: int, count: int) -> None:
    for _ in range(count):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(encode(PDU("bind_transmitter", 1, params={
                "system_id": SYSTEM_ID, "password": PASSWORD}))[:20])  # half a bind, then gone


@pytest_twisted.ensureDeferred
async def test_connections_opened_and_dropped_leave_nothing_behind(gateway):
    server, app, port = gateway
    await deferToThread(open_and_drop, port, 200)
    await eventually(lambda: server.connection_count == 0, "every dropped connection to go",
                     state=lambda: server.connection_count)
    assert server.sessions() == []


# --- TLS ------------------------------------------------------------------------------------------
@pytest.fixture
def self_signed(tmp_path):
    """A self-signed certificate for 127.0.0.1 and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "smsgw test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def verifying_context(cert_path) -> ssl.SSLContext:
    """Trusts only the test certificate (smpplib gives no server_hostname: the chain is
    verified, the name is not)."""
    context = ssl.create_default_context(cafile=str(cert_path))
    context.check_hostname = False
    return context


@pytest_twisted.ensureDeferred
async def test_tls_bind_submit_and_receipt_with_a_self_signed_certificate(self_signed):
    cert_path, key_path = self_signed
    app = FakeApp()
    server, port = await start(app, tls_cert=cert_path, tls_key=key_path)
    try:
        seen = await deferToThread(esme_session, port.getHost().port,
                                   verifying_context(cert_path))
        assert seen["bind"].status == ESME_ROK and seen["message_id"] == "gw-1"
        assert await app.deliveries[0] == DeliveryResult(True, "acknowledged")
        plain = await deferToThread(smpplib_bind_expecting_failure, port.getHost().port)
        assert plain
    finally:
        await port.stopListening()
        await server.stop()


def smpplib_bind_expecting_failure(port: int) -> bool:
    """A plain-text bind on the TLS port gets no bind_resp."""
    client = smpplib.client.Client("127.0.0.1", port, timeout=2, allow_unknown_opt_params=True)
    client.connect()
    try:
        client.bind_transmitter(system_id=SYSTEM_ID, password=PASSWORD)
    except (smpplib.exceptions.ConnectionError, smpplib.exceptions.PDUError):
        return True
    finally:
        client.disconnect()
    return False


def flood_without_reading(port: int, pdus: int, go: threading.Event, sent: threading.Event,
                          close: threading.Event, seconds: float) -> int:
    """Connect and bind; once ``go`` is set, send ``pdus`` enquire_links as fast as the socket
    takes them, reading nothing; set ``sent`` and keep the connection until ``close`` is set.
    Returns how many bytes went out."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting: a small window
    sock.connect(("127.0.0.1", port))
    try:
        sock.sendall(encode(PDU("bind_transceiver", 1, params={"system_id": SYSTEM_ID, "password": PASSWORD})))
        data = b"".join(encode(PDU("enquire_link", 2 + i)) for i in range(pdus))
        go.wait(10)
        sock.settimeout(seconds)
        done = 0
        try:
            while done < len(data):
                done += sock.send(data[done:done + 65536])
        except (socket.timeout, OSError):
            pass
        sent.set()
        close.wait(10)
        return done
    finally:
        sock.close()


@pytest_twisted.ensureDeferred
async def test_a_client_that_never_reads_its_answers_is_paused_not_buffered(gateway):
    # 100,000 enquire_links (1.6 MB) whose answers are never read: the server stops reading once
    # its own writes back up, instead of holding every answer in memory. The kernel's buffers are
    # made small on both sides so that "backed up" comes soon.
    server, app, port = gateway
    go, sent, close = threading.Event(), threading.Event(), threading.Event()
    flood = deferToThread(flood_without_reading, port, 100_000, go, sent, close, 3.0)
    try:
        await eventually(lambda: server.sessions(), "the flooding client bound")
        proto = list(server._connections)[0]
        proto.transport.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        go.set()
        await eventually(lambda: proto.transport.producerPaused, "the server to stop reading the flooding client")

        def buffered():
            return len(proto.transport.dataBuffer) + sum(len(b) for b in proto.transport._tempDataBuffer)

        assert buffered() < 200_000, buffered()
        await eventually(sent.is_set, "every request out (the kernel holds what the server did not read)")
        assert proto.transport.producerPaused and buffered() < 200_000, buffered()
    finally:
        close.set()
        await flood
    await eventually(lambda: server.connection_count == 0, "the flooding client gone")
