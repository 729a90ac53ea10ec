"""What the unit tests of the SMPP server for customers' ESMEs share: credentials and settings, a fake
application whose Deferreds the test fires, our ESME-side ``SMPPProtocol`` as the customer, and the
``Harness`` that wires them through ``twisted.test.iosim`` (or a ``StringTransport``) on a ``Clock``."""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass

from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.test.iosim import FakeTransport, connectedServerAndClient

from connectors.smpp.codec import PDU, encode
from connectors.smpp.defs import ESME_ROK
from connectors.smpp.deliver_fields import receipt
from connectors.smpp.protocol import RequestFailed, SMPPProtocol
from connectors.smpp.server import ClientSession, CustomerSMPPServer
from connectors.smpp.session import ESME


T0 = 1_700_000_000.0
PASSWORD = "s3cret"
#: system_id → (account, password)
CREDENTIALS = {"acme-esme": ("acme", PASSWORD), "beta-esme": ("beta", "b3ta")}
ENQUIRE_LINK = 30.0
RESPONSE_TIMEOUT = 30.0
BIND_TIMEOUT = 10.0
WINDOW = 2


def authenticate(system_id: str, password: str) -> str | None:
    account, expected = CREDENTIALS.get(system_id, (None, None))
    return account if password == expected else None


# --- doubles --------------------------------------------------------------------------------------
@dataclass
class Call:
    name: str
    session: ClientSession
    arg: object
    deferred: Deferred


class App:
    """The application: records every call and leaves its Deferred to the test."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.receivers: list[ClientSession] = []
        self.counts: dict[str, Counter] = {}  # account → (command, direction) → PDUs

    def _call(self, name, session, arg) -> Deferred:
        d: Deferred = Deferred()
        self.calls.append(Call(name, session, arg, d))
        return d

    def submit(self, session, message):
        return self._call("submit", session, message)

    def query(self, session, message_id):
        return self._call("query", session, message_id)

    def cancel(self, session, message_id):
        return self._call("cancel", session, message_id)

    def receiver_bound(self, session):
        self.receivers.append(session)

    def pdu_counts(self, account):
        return self.counts.setdefault(account, Counter())

    @property
    def pdus(self) -> Counter:
        """(account, command, direction) → PDUs counted, every account's."""
        return Counter({(account, *key): n for account, counts in self.counts.items()
                        for key, n in counts.items()})


class Esme:
    """The customer's ESME: keeps every deliver_sm; answers it with ``status`` at once, or,
    when ``status`` is None, when the test calls ``answer``."""

    def __init__(self, status: int | None = ESME_ROK) -> None:
        self.status = status
        self.received: list[PDU] = []
        self.unanswered: list[tuple[SMPPProtocol, PDU]] = []
        self.closed: list[str] = []
        self.unexpected: list[PDU] = []

    def request_received(self, proto, pdu):
        self.received.append(pdu)
        if self.status is None:
            self.unanswered.append((proto, pdu))
        else:
            proto.respond(pdu, self.status)

    def answer(self, status: int = ESME_ROK) -> None:
        proto, pdu = self.unanswered.pop(0)
        proto.respond(pdu, status)

    def connection_closed(self, proto, reason):
        self.closed.append(reason)

    def protocol_error(self, proto, event):  # answers to requests written raw by the test
        self.unexpected.append(event.pdu)


def result(d: Deferred):
    """The result of a Deferred that must have fired (raising its failure)."""
    out = []

    def keep(outcome):  # a result stays in the chain for later readers, a failure is taken
        out.append(outcome)
        return None if isinstance(outcome, Failure) else outcome
    d.addBoth(keep)
    assert out, "the Deferred has not fired"
    if isinstance(out[0], Failure):
        out[0].raiseException()
    return out[0]


def status_of(d: Deferred) -> int:
    """The command_status a request was answered with (ESME_ROK or its error)."""
    try:
        return result(d).status
    except RequestFailed as exc:
        return exc.status


class Conn:
    def __init__(self, client, server, pump, esme) -> None:
        self.client, self.server, self.pump, self.esme = client, server, pump, esme

    def send(self, command, params=None, tlvs=None) -> Deferred:
        d = self.client.request(command, params, tlvs)
        self.pump.flush()
        return d

    def raw(self, command, sequence, params=None) -> PDU:
        """Write a request our ESME-side session would refuse to send; the server's answer."""
        self.client.transport.write(encode(PDU(command, sequence, params=params or {})))
        self.pump.flush()
        return self.esme.unexpected[-1]

    def bind(self, command="bind_transceiver", system_id="acme-esme", password=PASSWORD):
        return self.send(command, {"system_id": system_id, "password": password})

    def submit(self, text=b"Hello", command="submit_sm", **extra) -> Deferred:
        params = {"source_addr": "Acme", "destination_addr": "46701234567",
                  "registered_delivery": 1}
        if command == "submit_sm":
            params["short_message"] = text
            tlvs = None
        else:
            tlvs = {"message_payload": text}
        params.update(extra)
        return self.send(command, params, tlvs)

    @property
    def open(self) -> bool:
        return not self.client.closed


class Harness:
    def __init__(self, max_binds: int = 4, **kw) -> None:
        self.clock = Clock()
        self.clock.rightNow = T0
        self.app = App()
        self.server = CustomerSMPPServer(
            self.clock, authenticate=kw.pop("authenticate", authenticate),
            max_binds=lambda account: max_binds, handler=self.app, enquire_link=ENQUIRE_LINK,
            window=WINDOW, response_timeout=RESPONSE_TIMEOUT, bind_timeout=BIND_TIMEOUT, **kw)
        self.conns: list[Conn] = []
        self.told: list[tuple[Deferred, object]] = []
        self._ports = itertools.count(40001)

    def connect(self, esme: Esme | None = None) -> Conn:
        esme = esme or Esme()
        peer = IPv4Address("TCP", "203.0.113.7", next(self._ports))
        client, server, pump = connectedServerAndClient(
            self.server.build_protocol,
            lambda: SMPPProtocol(ESME, esme, self.clock, enquire_link=3600),
            serverTransportFactory=lambda p: FakeTransport(p, isServer=True, peerAddress=peer),
            clock=self.clock)
        conn = Conn(client, server, pump, esme)
        self.conns.append(conn)
        return conn

    def bound(self, command="bind_transceiver", system_id="acme-esme", password=PASSWORD,
              esme: Esme | None = None) -> Conn:
        conn = self.connect(esme)
        resp = result(conn.bind(command, system_id, password))
        assert resp.params["system_id"] == "smsgw"
        return conn

    def flush(self) -> None:
        for conn in self.conns:
            conn.pump.flush()

    def wait(self, seconds: float) -> None:
        """Let ``seconds`` pass one second at a time, moving bytes after each."""
        for _ in range(int(seconds)):
            self.clock.advance(1)
            self.flush()

    def deliver(self, account="acme", ref="m1") -> Deferred:
        item = receipt(ref, "delivered", to="46701234567", sender="Acme", submitted_at=T0,
                       done_at=T0 + 5, text="Hello")
        d = self.deliver_item(account, item)
        self.flush()
        return d

    def deliver_item(self, account: str, item) -> Deferred:
        """``server.deliver(account, item, then, arg)`` with what ``then`` is told as a Deferred
        (``result`` reads it); ``told`` lists every ``(arg, DeliveryResult)`` it was told, so a
        test sees a delivery told twice."""
        d: Deferred = Deferred()

        def then(outcome, arg):
            self.told.append((arg, outcome))
            if arg is d and not d.called:
                d.callback(outcome)

        self.server.deliver(account, item, then, d)
        return d
