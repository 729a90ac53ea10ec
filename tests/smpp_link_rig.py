"""The operator link's unit-test rig: a test SMSC built from our own ``SMPPProtocol(SMSC)``, with
no real sockets and no real time (a ``MemoryReactorClock`` records the link's TCP connections,
``iosim`` pumps the bytes between the two protocols, and the clock is advanced by hand), the
listener the core would be, and ``Net``, the two wired together. Used by
tests/unit/test_smpp_client_*.py."""

from __future__ import annotations

from collections import Counter

from twisted.internet.defer import Deferred
from twisted.internet.protocol import Factory
from twisted.internet.testing import MemoryReactorClock
from twisted.test.iosim import ConnectionCompleter

from connectors.api import SubmitError, SubmitRequest
from connectors.smpp import defs
from connectors.smpp.client import LinkSettings, OperatorLink
from connectors.smpp.codec import PDU, encode
from connectors.smpp.defs import ESME_ROK
from connectors.smpp.protocol import SMPPProtocol
from connectors.smpp.session import SMSC

PORT = 2775


# --- the test SMSC -----------------------------------------------------------------------------------
class TestSMSC:
    """The SMSC end of the wire: answers binds with ``bind_status``; answers submit_sm at once with
    ids 0001, 0002 ... when ``auto``, else keeps them in ``held`` for the test to answer."""

    __test__ = False

    def __init__(self) -> None:
        self.protos: list[SMPPProtocol] = []
        self.binds: list = []
        self.submits: list = []  # every submit_sm PDU, in arrival order
        self.held: list = []  # (proto, pdu) not answered yet
        self.bind_status = ESME_ROK
        self.auto = True
        self.answer_binds = True
        self.answer_unbind = True
        self.next_id = 0

    # handler
    def connection_made(self, proto) -> None:
        self.protos.append(proto)

    def connection_closed(self, proto, reason) -> None:
        if proto in self.protos:
            self.protos.remove(proto)

    def request_received(self, proto, pdu) -> None:
        if pdu.command.startswith("bind_"):
            self.binds.append(pdu)
            if self.answer_binds:
                ok = self.bind_status == ESME_ROK
                proto.respond(pdu, self.bind_status, {"system_id": "TESTSMSC"} if ok else None)
        elif pdu.command == "submit_sm":
            self.submits.append(pdu)
            self.held.append((proto, pdu))
            if self.auto:
                self.answer()

    # steering
    def answer(self, index: int = 0, status: int = ESME_ROK, message_id: str | None = None) -> str:
        proto, pdu = self.held.pop(index)
        if status != ESME_ROK:
            proto.respond(pdu, status)
            return ""
        if message_id is None:
            self.next_id += 1
            message_id = f"{self.next_id:04X}"
        proto.respond(pdu, ESME_ROK, {"message_id": message_id})
        return message_id

    def nack(self, index: int = 0, status: int = defs.ESME_RINVCMDLEN) -> None:
        proto, pdu = self.held.pop(index)
        proto.transport.write(raw_pdu("generic_nack", pdu.sequence, status))

    def deliver(self, params: dict, tlvs: dict | None = None, command: str = "deliver_sm",
                proto=None) -> list:
        """Send a deliver_sm (or data_sm); returns a list that receives its response PDU or
        failure."""
        proto = proto or self.protos[0]
        got: list = []
        proto.request(command, params, tlvs).addBoth(got.append)
        return got


def raw_pdu(command: str, sequence: int, status: int) -> bytes:
    return encode(PDU(command, sequence, status))


class Listener:
    """A LinkListener that records every call; receipts and MOs wait on Deferreds the test fires."""

    def __init__(self) -> None:
        self.ready = 0
        self.receipts: list = []
        self.mos: list = []
        self.binds: list = []
        self.pdus: Counter = Counter()  # (command, direction) → PDUs, counted by the connections

    def link_ready(self, operator: str) -> None:
        assert operator == "telia"
        self.ready += 1

    def receipt_received(self, receipt) -> Deferred:
        d: Deferred = Deferred()
        self.receipts.append((receipt, d))
        return d

    def mo_received(self, mo) -> Deferred:
        d: Deferred = Deferred()
        self.mos.append((mo, d))
        return d

    def bind_changed(self, operator: str, session: str, up: bool) -> None:
        self.binds.append((session, up))

    def pdu_counts(self, operator: str) -> Counter:
        assert operator == "telia"
        return self.pdus


class Net:
    """One link, one test SMSC, and the in-memory network between them."""

    def __init__(self, start: bool = True, connect: bool = True, **settings) -> None:
        self.reactor = MemoryReactorClock()
        self.reactor.advance(1_000_000)
        self.smsc = TestSMSC()
        factory = Factory()
        factory.buildProtocol = lambda addr: SMPPProtocol(SMSC, self.smsc, self.reactor)
        self.reactor.listenTCP(PORT, factory)
        self.completer = ConnectionCompleter(self.reactor)
        self.pumps: list = []
        self.listener = Listener()
        values = dict(host="smsc.test", port=PORT, system_id="acme", password="secret",
                      system_type="VMA")
        values.update(settings)
        self.link = OperatorLink("telia", LinkSettings(**values), self.listener, self.reactor,
                                 jitter=lambda: 0.0)
        if start:
            self.link.start()
            if connect:
                self.connect()

    def connect(self) -> int:
        """Complete every pending TCP connection attempt; returns how many."""
        n = 0
        while self.reactor.tcpClients:
            self.pumps.append(self.completer.succeedOnce())
            n += 1
        self.flush()
        return n

    def refuse(self) -> None:
        self.completer.failOnce()

    def flush(self) -> None:
        moved = True
        while moved:
            moved = any([p.flush() for p in self.pumps])
        self.pumps = [p for p in self.pumps
                      if not (p.clientIO.disconnected and p.serverIO.disconnected)]

    def advance(self, seconds: float) -> None:
        self.reactor.advance(seconds)
        self.flush()

    def submit(self, text: str = "hello", encoding: str = "gsm7", sender: str = "ACME",
               to: str = "46701234567") -> list:
        got: list = []
        self.link.submit(SubmitRequest("m1", to, sender, text, encoding)).addBoth(got.append)
        self.flush()
        return got

    def drop(self) -> None:
        """The SMSC closes every connection."""
        for proto in list(self.smsc.protos):
            proto.transport.loseConnection()
        self.flush()


def error_of(got: list) -> SubmitError:
    assert len(got) == 1, got
    assert hasattr(got[0], "value"), got[0]
    assert isinstance(got[0].value, SubmitError), got[0]
    return got[0].value
