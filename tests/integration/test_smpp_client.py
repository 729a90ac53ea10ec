"""OperatorLink over real loopback TCP against a minimal SMSC written here on our own
``SMPPProtocol(SMSC)`` (smpplib has no server side). Port 0, the real reactor, no sleeps: every
wait is a Deferred fired by the SMSC or the listener, with a timeout so a bug fails instead of
hanging."""

from __future__ import annotations

from collections import Counter

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred, succeed
from twisted.internet.protocol import Factory

from connectors.api import ReceiptOutcome, SubmitError, SubmitRequest
from connectors.smpp.client import LinkSettings, OperatorLink
from connectors.smpp.defs import ESME_RBINDFAIL, ESME_ROK
from connectors.smpp.protocol import SMPPProtocol
from connectors.smpp.session import SMSC

WAIT = 5.0


class Waiters:
    """Deferreds for "the next time X happens"."""

    def __init__(self) -> None:
        self._waiting: dict[str, list[Deferred]] = {}

    def next(self, what: str) -> Deferred:
        d: Deferred = Deferred()
        self._waiting.setdefault(what, []).append(d)
        return d.addTimeout(WAIT, reactor)

    def fire(self, what: str, value=None) -> None:
        for d in self._waiting.pop(what, []):
            d.callback(value)


class MiniSMSC:
    """Just enough SMSC: binds (refused ``refuse_binds`` times first), submit_sm answered with
    hex ids, deliver_sm sent on demand."""

    def __init__(self) -> None:
        self.events = Waiters()
        self.protos: list[SMPPProtocol] = []
        self.submits: list = []
        self.binds = 0
        self.refuse_binds = 0
        self.hold = False  # True: submit_sm is never answered
        self.next_id = 0x1F0

    def connection_made(self, proto) -> None:
        self.protos.append(proto)

    def connection_closed(self, proto, reason) -> None:
        self.protos.remove(proto)
        self.events.fire("closed", reason)

    def peer_unbound(self, proto) -> None:
        self.events.fire("unbound")

    def request_received(self, proto, pdu) -> None:
        if pdu.command.startswith("bind_"):
            self.binds += 1
            if self.refuse_binds:
                self.refuse_binds -= 1
                proto.respond(pdu, ESME_RBINDFAIL)
            else:
                proto.respond(pdu, ESME_ROK, {"system_id": "MINI"})
        elif pdu.command == "submit_sm":
            self.submits.append(pdu)
            if self.hold:
                self.events.fire("submit", pdu)
                return
            self.next_id += 1
            proto.respond(pdu, ESME_ROK, {"message_id": f"{self.next_id:08X}"})
            self.events.fire("submit", pdu)


class Listener:
    def __init__(self) -> None:
        self.events = Waiters()
        self.receipts: list = []
        self.mos: list = []
        self.binds: list = []

    def link_ready(self, operator) -> None:
        pass

    def receipt_received(self, receipt) -> Deferred:
        self.receipts.append(receipt)
        self.events.fire("receipt", receipt)
        return succeed(None)

    def mo_received(self, mo) -> Deferred:
        self.mos.append(mo)
        self.events.fire("mo", mo)
        return succeed(None)

    def bind_changed(self, operator, session, up) -> None:
        self.binds.append((session, up))
        self.events.fire("up" if up else "down", session)

    def pdu_counts(self, operator):
        return Counter()


@pytest.fixture
def smsc():
    server = MiniSMSC()
    factory = Factory()
    factory.buildProtocol = lambda addr: SMPPProtocol(SMSC, server, reactor)
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    server.port = port.getHost().port
    yield server
    for proto in list(server.protos):
        proto.transport.abortConnection()
    pytest_twisted.blockon(port.stopListening())


def make_link(smsc, listener, **settings) -> OperatorLink:
    values = dict(host="127.0.0.1", port=smsc.port, system_id="acme", password="pw",
                  reconnect_min=0.05, reconnect_max=0.2)
    values.update(settings)
    return OperatorLink("telia", LinkSettings(**values), listener, reactor)


@pytest_twisted.ensureDeferred
async def test_bind_submit_multipart_receipt_and_clean_unbind(smsc):
    listener = Listener()
    link = make_link(smsc, listener)
    up = listener.events.next("up")
    link.start()
    assert await up == "telia/1"
    assert link.is_up() and link.capacity() == 10

    keys = await link.submit(SubmitRequest("m1", "46701234567", "ACME", "x" * 200, "gsm7"))
    assert keys == ["1f1", "1f2"]
    assert [p.params["short_message"][:6] for p in smsc.submits] == [
        bytes([5, 0, 3, 1, 2, 1]), bytes([5, 0, 3, 1, 2, 2])]

    # the SMSC prints the id of part 2 in decimal in its receipt (0x1F2 = 498)
    got = listener.events.next("receipt")
    resp = smsc.protos[0].request("deliver_sm", {
        "esm_class": 0x04, "short_message":
        b"id:498 sub:001 dlvrd:001 submit date:2401011200 done date:2401011201 stat:DELIVRD "
        b"err:000 text:xxxx"})
    receipt = await got
    assert "1f2" in receipt.keys and receipt.outcome is ReceiptOutcome.DELIVERED
    assert (await resp.addTimeout(WAIT, reactor)).status == ESME_ROK

    unbound = smsc.events.next("unbound")
    await link.stop().addTimeout(WAIT, reactor)
    await unbound
    assert listener.binds == [("telia/1", True), ("telia/1", False)]
    assert not link.is_up()


@pytest_twisted.ensureDeferred
async def test_mo_over_a_receiver_session(smsc):
    listener = Listener()
    link = make_link(smsc, listener, bind="transmitter+receiver")
    rx_up = Deferred()
    ups: set = set()

    def seen(session):
        ups.add(session)
        if len(ups) == 2:
            rx_up.callback(None)
        else:
            listener.events.next("up").addCallback(seen)

    listener.events.next("up").addCallback(seen)
    link.start()
    await rx_up.addTimeout(WAIT, reactor)
    assert ups == {"telia/1-tx", "telia/1-rx"}
    [rx] = [p for p in smsc.protos if p.session.state.name == "BOUND_RX"]
    got = listener.events.next("mo")
    resp = rx.request("deliver_sm", {"source_addr": "46701234567", "destination_addr": "72550",
                                     "data_coding": 8,
                                     "short_message": "Пицца".encode("utf-16-be")})
    mo = await got
    assert (mo.sender, mo.to, mo.text) == ("46701234567", "72550", "Пицца")
    assert (await resp.addTimeout(WAIT, reactor)).status == ESME_ROK
    await link.stop().addTimeout(WAIT, reactor)


@pytest_twisted.ensureDeferred
async def test_refused_bind_then_dropped_connection_are_retried(smsc):
    smsc.refuse_binds = 2
    listener = Listener()
    link = make_link(smsc, listener)
    up = listener.events.next("up")
    link.start()
    await up
    assert smsc.binds == 3

    # the SMSC drops the connection with a submit outstanding: it fails at once, then a rebind
    smsc.hold = True
    arrived = smsc.events.next("submit")
    pending = link.submit(SubmitRequest("m2", "46701234567", "ACME", "hi", "gsm7"))
    await arrived
    up = listener.events.next("up")
    smsc.protos[0].transport.loseConnection()
    with pytest.raises(SubmitError) as info:
        await pending.addTimeout(WAIT, reactor)
    assert (info.value.kind, info.value.detail) == (SubmitError.TRANSIENT, "connection lost")
    smsc.hold = False
    await up
    assert smsc.binds == 4
    assert await link.submit(SubmitRequest("m3", "46701234567", "ACME", "hi", "gsm7")) == ["1f1"]
    await link.stop().addTimeout(WAIT, reactor)
