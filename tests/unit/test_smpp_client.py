"""OperatorLink against a test SMSC built from our own ``SMPPProtocol(SMSC)``, with no real sockets
and no real time: a ``MemoryReactorClock`` records the link's TCP connections, ``iosim`` pumps the
bytes between the two protocols, and the clock is advanced by hand."""

from __future__ import annotations

import pytest
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.protocol import Factory
from twisted.internet.testing import MemoryReactorClock
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.test.iosim import ConnectionCompleter

from connectors.api import MoFacts, ReceiptOutcome, SubmitError, SubmitRequest
from connectors.smpp import defs
from connectors.smpp.addressing import decode_mo_text, source_address
from connectors.smpp.client import (
    SUBMIT_STATUS_KINDS,
    LinkSettings,
    OperatorLink,
)
from connectors.smpp.codec import PDU, encode
from connectors.smpp.defs import (
    ESME_RBINDFAIL,
    ESME_RINVBNDSTS,
    ESME_RINVDSTADR,
    ESME_RMSGQFUL,
    ESME_ROK,
    ESME_RSYSERR,
    ESME_RTHROTTLED,
    ESME_RX_T_APPN,
)
from connectors.smpp.protocol import SMPPProtocol
from connectors.smpp.session import SMSC
from connectors.smpp.text import concat_udh, gsm_encode, gsm_pack

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
        self.pdus: list = []

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

    def pdu(self, operator: str, command: str, direction: str) -> None:
        self.pdus.append((command, direction))


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


# --- binding -----------------------------------------------------------------------------------------
def test_bind_transceiver_sends_the_credentials_and_reports_the_bind():
    net = Net()
    [bind] = net.smsc.binds
    assert bind.command == "bind_transceiver"
    assert (bind.params["system_id"], bind.params["password"], bind.params["system_type"],
            bind.params["interface_version"]) == ("acme", "secret", "VMA", 0x34)
    assert net.listener.binds == [("telia/1", True)]
    assert net.link.is_up()
    assert net.link.capacity() == 10
    assert net.listener.ready == 1
    assert ("bind_transceiver", "out") in net.listener.pdus
    assert ("bind_transceiver_resp", "in") in net.listener.pdus


def test_transmitter_plus_receiver_binds_two_sessions_per_bind_and_only_tx_counts():
    net = Net(bind="transmitter+receiver", binds=2, window=3)
    assert sorted(b.command for b in net.smsc.binds) == [
        "bind_receiver", "bind_receiver", "bind_transmitter", "bind_transmitter"]
    assert sorted(net.listener.binds) == [("telia/1-rx", True), ("telia/1-tx", True),
                                          ("telia/2-rx", True), ("telia/2-tx", True)]
    assert net.link.capacity() == 6


def test_nothing_is_up_before_the_bind_answer():
    net = Net(connect=False)
    assert not net.link.is_up() and net.link.capacity() == 0
    net.smsc.answer_binds = False
    net.connect()
    assert len(net.smsc.binds) == 1
    assert not net.link.is_up() and net.link.capacity() == 0
    got = net.submit()
    assert error_of(got).kind == SubmitError.TRANSIENT


def test_refused_bind_closes_and_retries_with_growing_backoff():
    net = Net(connect=False, reconnect_min=1.0, reconnect_max=60.0)
    net.smsc.bind_status = ESME_RBINDFAIL
    net.connect()
    assert len(net.smsc.binds) == 1 and net.smsc.protos == []  # refused, then closed
    assert not net.link.is_up() and net.listener.binds == []
    for delay in (1.0, 2.0, 4.0):
        net.advance(delay - 0.01)
        assert not net.reactor.tcpClients, f"reconnected before {delay} s"
        net.advance(0.01)
        assert len(net.reactor.tcpClients) == 1
        net.connect()
    assert len(net.smsc.binds) == 4
    net.smsc.bind_status = ESME_ROK
    net.advance(8.0)
    net.connect()
    assert net.link.is_up() and net.listener.binds == [("telia/1", True)]
    # bound, then dropped: the next attempt is at the shortest delay again
    net.drop()
    assert net.listener.binds[-1] == ("telia/1", False)
    net.advance(0.99)
    assert not net.reactor.tcpClients
    net.advance(0.01)
    assert net.connect() == 1 and net.link.is_up()


def test_refused_tcp_connections_back_off_too():
    net = Net(connect=False, reconnect_min=0.5, reconnect_max=1.5)
    delays = [0.5, 1.0, 1.5, 1.5]  # capped at reconnect_max
    for delay in delays:
        net.refuse()
        net.advance(delay - 0.01)
        assert not net.reactor.tcpClients
        net.advance(0.01)
        assert len(net.reactor.tcpClients) == 1
    net.connect()
    assert net.link.is_up()


def test_endpoint_description_quotes_the_host_and_tls_is_layered_over_it():
    seen = []

    def endpoint_factory(reactor, description):
        seen.append(description)
        from twisted.internet.endpoints import clientFromString
        return clientFromString(reactor, description)

    reactor = MemoryReactorClock()
    link = OperatorLink("telia", LinkSettings(host="smsc.test", port=2776, tls=True), Listener(),
                        reactor, endpoint_factory=endpoint_factory)
    link.start()
    assert seen == ["tcp:host=smsc.test:port=2776"]
    assert len(reactor.tcpClients) == 1 and reactor.tcpClients[0][1] == 2776
    assert isinstance(reactor.tcpClients[0][2]._wrappedFactory, TLSMemoryBIOFactory)
    assert OperatorLink.endpoint_description("::1", 2775) == "tcp:host=\\:\\:1:port=2775"


# --- submitting ----------------------------------------------------------------------------------------
def test_single_gsm_part_fields_and_key():
    net = Net()
    got = net.submit("Hello @ £ {x}", sender="ACME", to="+46701234567")
    [pdu] = net.smsc.submits
    p = pdu.params
    assert (p["source_addr_ton"], p["source_addr_npi"], p["source_addr"]) == (5, 0, "ACME")
    assert (p["dest_addr_ton"], p["dest_addr_npi"], p["destination_addr"]) == (1, 1, "46701234567")
    assert (p["esm_class"], p["data_coding"], p["registered_delivery"]) == (0, 0, 1)
    # one septet per octet; '{' is ESC + 0x28
    assert p["short_message"] == b"Hello \x00 \x01 \x1b\x28x\x1b\x29"
    assert got == [["1"]]  # "0001" normalised


def test_multipart_gsm_has_udh_esm_class_and_a_rolling_reference():
    net = Net()
    net.smsc.auto = False
    text = "a" * 153 + "b" * 100
    got = net.submit(text)
    first, second = net.smsc.submits
    for n, pdu in enumerate((first, second), start=1):
        assert pdu.params["esm_class"] == 0x40
        assert pdu.params["data_coding"] == 0
        assert pdu.params["short_message"][:6] == bytes([5, 0, 3, 1, 2, n])
    assert first.params["short_message"][6:] == b"a" * 153
    assert second.params["short_message"][6:] == b"b" * 100
    # answered out of order: the keys still come back in part order
    net.smsc.answer(1, message_id="00BB")
    net.flush()
    assert got == []
    net.smsc.answer(0, message_id="00AA")
    net.flush()
    assert got == [["aa", "bb"]]
    net.smsc.auto = True
    net.submit(text)
    assert net.smsc.submits[2].params["short_message"][:6] == bytes([5, 0, 3, 2, 2, 1])
    net.submit("short")
    assert net.smsc.submits[4].params["esm_class"] == 0  # a single part takes no reference


def test_ucs2_and_latin1_data_coding():
    net = Net(latin1=True)
    net.submit("Привет", encoding="ucs2")
    net.submit("Café", encoding="latin1")
    ucs2, latin1 = net.smsc.submits
    assert (ucs2.params["data_coding"], ucs2.params["short_message"]) == (
        8, "Привет".encode("utf-16-be"))
    assert (latin1.params["data_coding"], latin1.params["short_message"]) == (3, b"Caf\xe9")


def test_multipart_ucs2_udh():
    net = Net()
    text = "Ж" * 100
    net.submit(text, encoding="ucs2")
    first, second = net.smsc.submits
    assert first.params["short_message"] == concat_udh(1, 2, 1) + ("Ж" * 67).encode("utf-16-be")
    assert second.params["short_message"] == concat_udh(1, 2, 2) + ("Ж" * 33).encode("utf-16-be")
    assert first.params["data_coding"] == 8 and first.params["esm_class"] == 0x40


def test_packed_gsm_single_and_multipart():
    net = Net(packed_gsm=True)
    net.submit("hello")
    text = "x" * 160 + "y"
    net.submit(text)
    single, first, second = net.smsc.submits
    assert single.params["short_message"] == gsm_pack(b"hello") == bytes.fromhex("e8329bfd06")
    assert first.params["short_message"] == concat_udh(1, 2, 1) + gsm_pack(b"x" * 153, 1)
    assert second.params["short_message"] == concat_udh(1, 2, 2) + gsm_pack(b"x" * 7 + b"y", 1)
    assert single.params["data_coding"] == 0


@pytest.mark.parametrize("request_kwargs, detail", [
    ({"text": "Привет", "encoding": "gsm7"}, "cannot be encoded"),
    ({"text": "hi", "encoding": "klingon"}, "unknown encoding"),
    ({"text": "hi", "to": "4" * 25}, "cannot encode"),
])
def test_what_the_link_cannot_send_fails_permanent_never_raises(request_kwargs, detail):
    net = Net()
    got = net.submit(**request_kwargs)
    err = error_of(got)
    assert err.kind == SubmitError.PERMANENT and detail in err.detail


@pytest.mark.parametrize("sender, expected", [
    ("ACME", (5, 0, "ACME")),
    ("Acme2024", (5, 0, "Acme2024")),
    ("72550", (3, 0, "72550")),
    ("123456", (3, 0, "123456")),
    ("4670111111", (1, 1, "4670111111")),
    ("+4670111111", (1, 1, "4670111111")),
    ("", (0, 0, "")),
])
def test_source_address_ton_npi(sender, expected):
    assert source_address(sender) == expected


@pytest.mark.parametrize("status, kind", [
    (ESME_RTHROTTLED, SubmitError.THROTTLED),
    (ESME_RMSGQFUL, SubmitError.THROTTLED),
    (ESME_RSYSERR, SubmitError.TRANSIENT),
    (defs.ESME_RX_T_APPN, SubmitError.TRANSIENT),
    (ESME_RINVDSTADR, SubmitError.PERMANENT),
    (defs.ESME_RINVSRCADR, SubmitError.PERMANENT),
    (0x104, SubmitError.PERMANENT),  # ESME_RINVDCS
    (defs.ESME_RINVESMCLASS, SubmitError.PERMANENT),
    (defs.ESME_RSUBMITFAIL, SubmitError.PERMANENT),
    (defs.ESME_RX_P_APPN, SubmitError.PERMANENT),
    (defs.ESME_RINVMSGLEN, SubmitError.PERMANENT),
    (0x400, SubmitError.PERMANENT),  # a vendor code
])
def test_submit_status_maps_to_an_error_kind(status, kind):
    net = Net()
    net.smsc.auto = False
    got = net.submit()
    net.smsc.answer(status=status)
    net.flush()
    err = error_of(got)
    assert err.kind == kind
    assert err.detail == defs.status_name(status)


def test_the_status_table_is_data():
    assert SUBMIT_STATUS_KINDS[ESME_RTHROTTLED] == SubmitError.THROTTLED
    assert all(k in (SubmitError.THROTTLED, SubmitError.TRANSIENT, SubmitError.PERMANENT)
               for k in SUBMIT_STATUS_KINDS.values())


def test_generic_nack_and_response_timeout_are_transient():
    net = Net(response_timeout=10.0)
    net.smsc.auto = False
    nacked = net.submit()
    net.smsc.nack()
    net.flush()
    assert error_of(nacked).kind == SubmitError.TRANSIENT
    assert "generic_nack" in error_of(nacked).detail
    waiting = net.submit()
    net.advance(9.0)
    assert waiting == []
    ready = net.listener.ready
    net.advance(2.0)
    err = error_of(waiting)
    assert (err.kind, err.detail) == (SubmitError.TRANSIENT, "response timeout")
    assert net.listener.ready > ready  # the window slot is free again


def test_multipart_failing_part_way_fails_whole_with_the_first_error():
    net = Net()
    net.smsc.auto = False
    got = net.submit("z" * 400)  # 3 parts
    assert len(net.smsc.held) == 3
    net.smsc.answer(0)
    net.smsc.answer(0, status=ESME_RINVDSTADR)
    net.flush()
    err = error_of(got)
    assert (err.kind, err.detail) == (SubmitError.PERMANENT, "ESME_RINVDSTADR")
    net.smsc.answer(0, status=ESME_RSYSERR)  # a later answer changes nothing
    net.flush()
    assert len(got) == 1


def test_unsent_parts_of_a_failed_message_are_dropped():
    net = Net(window=1)
    net.smsc.auto = False
    got = net.submit("z" * 400)  # 3 parts, window of 1: one on the wire, two queued
    assert len(net.smsc.held) == 1
    net.smsc.answer(status=ESME_RINVDSTADR)
    net.flush()
    assert error_of(got).kind == SubmitError.PERMANENT
    assert len(net.smsc.submits) == 1
    assert net.link.capacity() == 1


def test_parts_wait_for_window_room_and_capacity_counts_them():
    net = Net(window=2)
    net.smsc.auto = False
    got = net.submit("z" * 400)  # 3 parts
    assert len(net.smsc.held) == 2
    assert net.link.capacity() == 0
    net.smsc.answer(0)
    net.flush()
    assert len(net.smsc.held) == 2  # the third part went out in the freed slot
    assert net.link.capacity() == 0
    net.smsc.answer(0)
    net.smsc.answer(0)
    net.flush()
    assert got == [["1", "2", "3"]]
    assert net.link.capacity() == 2


def test_window_full_gives_capacity_zero_and_a_response_makes_room():
    net = Net(window=2)
    net.smsc.auto = False
    net.submit()
    assert net.link.capacity() == 1
    net.submit()
    assert net.link.capacity() == 0
    ready = net.listener.ready
    net.smsc.answer()
    net.flush()
    assert net.link.capacity() == 1
    assert net.listener.ready == ready + 1


def test_parts_go_to_the_least_loaded_session():
    net = Net(binds=2, window=5)
    net.smsc.auto = False
    for _ in range(4):
        net.submit()
    per_session = {}
    for proto, _ in net.smsc.held:
        per_session[proto] = per_session.get(proto, 0) + 1
    assert sorted(per_session.values()) == [2, 2]
    assert net.link.capacity() == 6


# --- throttling and tps ---------------------------------------------------------------------------------
def test_throttled_backs_off_then_recovers_with_link_ready_and_grows_on_repeats():
    net = Net()
    net.smsc.auto = False
    got = net.submit()
    net.smsc.answer(status=ESME_RTHROTTLED)
    net.flush()
    assert error_of(got).kind == SubmitError.THROTTLED
    assert net.link.capacity() == 0 and net.link.is_up()
    ready = net.listener.ready
    net.advance(0.99)
    assert net.link.capacity() == 0
    assert net.listener.ready == ready
    net.advance(0.01)
    assert net.link.capacity() == 10
    assert net.listener.ready == ready + 1
    # throttled again right away: the back-off doubles
    net.submit()
    net.smsc.answer(status=ESME_RMSGQFUL)
    net.flush()
    net.advance(1.99)
    assert net.link.capacity() == 0
    net.advance(0.01)
    assert net.link.capacity() == 10
    # an accepted part resets it
    net.submit()
    net.smsc.answer()
    net.submit()
    net.smsc.answer(status=ESME_RTHROTTLED)
    net.flush()
    net.advance(1.0)
    assert net.link.capacity() == 10


def test_many_throttled_responses_of_one_window_are_one_back_off():
    net = Net()
    net.smsc.auto = False
    for _ in range(5):
        net.submit()
    for _ in range(5):
        net.smsc.answer(status=ESME_RTHROTTLED)
    net.flush()
    net.advance(1.0)
    assert net.link.capacity() == 10  # 1 s, not 1+2+4+8+16


def test_parts_queued_during_a_back_off_go_out_when_it_ends():
    net = Net(window=1)
    net.smsc.auto = False
    first = net.submit()
    second = net.submit()  # queued behind the first in the window
    net.smsc.answer(status=ESME_RTHROTTLED)
    net.flush()
    assert error_of(first).kind == SubmitError.THROTTLED
    assert len(net.smsc.submits) == 1  # the queued part waits out the back-off
    net.advance(1.0)
    assert len(net.smsc.submits) == 2
    net.smsc.answer()
    net.flush()
    assert second == [["1"]]


def test_tps_bucket_limits_capacity_and_refills_with_link_ready():
    net = Net(tps=20)  # a bucket of 2 tokens (0.1 s worth), one token every 0.05 s
    assert net.link.capacity() == 2
    assert net.reactor.getDelayedCalls()  # the protocols' timers
    timers = len(net.reactor.getDelayedCalls())
    net.submit()
    assert len(net.reactor.getDelayedCalls()) == timers  # not dry yet: no refill timer
    net.submit()
    assert net.link.capacity() == 0
    assert len(net.reactor.getDelayedCalls()) == timers + 1  # ran dry: one refill timer
    ready = net.listener.ready
    net.advance(0.049)
    assert net.link.capacity() == 0 and net.listener.ready == ready
    net.advance(0.001)
    assert net.listener.ready == ready + 1
    assert net.link.capacity() == 1


def test_tps_holds_back_parts_of_a_multipart_message():
    net = Net(tps=10)  # one token, refilled every 0.1 s
    got = net.submit("q" * 400)  # 3 parts
    assert len(net.smsc.submits) == 1
    net.advance(0.1)
    assert len(net.smsc.submits) == 2
    net.advance(0.1)
    assert len(net.smsc.submits) == 3
    assert got == [["1", "2", "3"]]


def test_tps_shared_across_sessions():
    net = Net(tps=10, binds=3)
    assert net.link.capacity() == 1
    net.submit()
    assert net.link.capacity() == 0


# --- connections lost ------------------------------------------------------------------------------------
def test_connection_lost_fails_pending_submits_at_once_and_the_link_reconnects():
    net = Net(window=2)
    net.smsc.auto = False
    single = net.submit()
    multi = net.submit("z" * 400)  # one part on the wire, two queued in the link
    assert len(net.smsc.held) == 2
    net.drop()  # no clock advance: nothing waits for a timeout
    for got in (single, multi):
        err = error_of(got)
        assert (err.kind, err.detail) == (SubmitError.TRANSIENT, "connection lost")
    assert net.listener.binds == [("telia/1", True), ("telia/1", False)]
    assert not net.link.is_up() and net.link.capacity() == 0
    assert error_of(net.submit()).kind == SubmitError.TRANSIENT
    net.advance(1.0)
    assert net.connect() == 1
    assert net.link.is_up() and net.link.capacity() == 2


def test_a_message_still_wholly_queued_fails_at_once_when_the_last_session_drops():
    net = Net(window=1)
    net.smsc.auto = False
    on_the_wire = net.submit()
    queued = net.submit("z" * 400)  # none of its 3 parts has left the link
    assert len(net.smsc.submits) == 1
    net.drop()
    assert error_of(on_the_wire).detail == "connection lost"
    err = error_of(queued)
    assert (err.kind, err.detail) == (SubmitError.TRANSIENT, "connection lost")
    net.advance(1.0)
    net.connect()
    assert len(net.smsc.submits) == 1  # nothing left over is sent after the rebind
    assert net.link.capacity() == 1


def test_a_lost_session_does_not_fail_parts_another_session_can_send():
    net = Net(binds=2, window=1)
    net.smsc.auto = False
    got = net.submit("z" * 400)  # 2 parts out, 1 queued
    proto_a = net.smsc.held[0][0]
    assert len(net.smsc.held) == 2
    net.smsc.answer(1)  # answer the part on the other session
    proto_a.transport.loseConnection()
    net.flush()
    err = error_of(got)  # the part on the lost session fails the message ...
    assert err.detail == "connection lost"
    assert len(net.smsc.submits) == 2  # ... and its queued part is dropped, not sent
    assert net.link.is_up()


def test_a_silent_smsc_is_closed_after_enquire_link_goes_unanswered_and_rebound():
    net = Net(enquire_link=10.0, response_timeout=5.0)
    net.smsc.protos[0].dataReceived = lambda data: None  # deaf and mute, TCP still up
    net.advance(15.0)
    assert net.link.is_up()  # an enquire_link is out, its answer not due yet
    net.advance(2.0)  # 10 + 5 + 1 s of silence
    assert net.listener.binds == [("telia/1", True), ("telia/1", False)]
    assert not net.link.is_up()
    net.advance(1.0)
    net.connect()
    assert net.link.is_up()


def test_a_quiet_but_answering_smsc_stays_bound():
    net = Net(enquire_link=10.0, response_timeout=5.0)
    for _ in range(100):
        net.advance(1.0)  # one second at a time, so the bytes move between the ticks
    assert net.listener.binds == [("telia/1", True)]
    assert ("enquire_link", "out") in net.listener.pdus


def test_rinvbndsts_closes_the_session_to_rebind():
    net = Net()
    net.smsc.auto = False
    got = net.submit()
    net.smsc.answer(status=ESME_RINVBNDSTS)
    net.flush()
    assert error_of(got).kind == SubmitError.TRANSIENT
    assert net.listener.binds[-1] == ("telia/1", False)
    net.advance(1.0)
    net.connect()
    assert net.link.is_up()


# --- receipts ------------------------------------------------------------------------------------------
RECEIPT_TEXT = (b"id:0000A1B2 sub:001 dlvrd:001 submit date:2401011200 done date:2401011201 "
                b"stat:DELIVRD err:000 text:hello")


def test_receipt_is_acknowledged_only_after_the_listener_stored_it():
    net = Net()
    resp = net.smsc.deliver({"esm_class": 0x04, "short_message": RECEIPT_TEXT})
    net.flush()
    [(facts, d)] = net.listener.receipts
    assert facts.operator == "telia"
    assert facts.keys == ("a1b2", "41394")
    assert (facts.outcome, facts.stat, facts.err, facts.raw_id) == (
        ReceiptOutcome.DELIVERED, "DELIVRD", "000", "0000A1B2")
    assert resp == []  # not answered while the store works
    d.callback(None)
    net.flush()
    assert resp[0].command == "deliver_sm_resp" and resp[0].status == ESME_ROK


def test_receipt_the_listener_failed_to_store_is_answered_temporary_error():
    net = Net()
    resp = net.smsc.deliver({"esm_class": 0x04, "short_message": RECEIPT_TEXT})
    net.flush()
    net.listener.receipts[0][1].errback(RuntimeError("disk full"))
    net.flush()
    assert resp[0].value.status == ESME_RX_T_APPN


def test_receipt_from_tlvs_and_intermediate_notification_and_data_sm():
    net = Net(receipt_id_format="hex")
    net.smsc.deliver({"esm_class": 0x20, "short_message": b""},
                     {"receipted_message_id": "00ff", "message_state": 6})
    net.smsc.deliver({"esm_class": 0x04}, {"receipted_message_id": "ABC", "message_state": 5},
                     command="data_sm")
    net.flush()
    (first, _), (second, _) = net.listener.receipts
    assert (first.keys, first.outcome, first.stat) == (("ff",), ReceiptOutcome.ACCEPTED, "ACCEPTD")
    assert (second.keys, second.outcome, second.stat) == (("abc",), ReceiptOutcome.FAILED,
                                                          "UNDELIV")


def test_tlv_id_wins_over_the_text_id():
    net = Net()
    net.smsc.deliver({"esm_class": 0x04, "short_message": RECEIPT_TEXT},
                     {"receipted_message_id": "77"})
    net.flush()
    [(facts, _)] = net.listener.receipts
    assert facts.raw_id == "77" and facts.keys[0] == "77"


def test_receipt_without_an_id_is_acknowledged_and_dropped():
    net = Net()
    resp = net.smsc.deliver({"esm_class": 0x04, "short_message": b"stat:DELIVRD err:000"})
    net.flush()
    assert net.listener.receipts == []
    assert resp[0].status == ESME_ROK


def test_sme_acknowledgement_is_answered_and_not_passed_on():
    net = Net()
    resp = net.smsc.deliver({"esm_class": 0x08, "short_message": b"ack"})
    net.flush()
    assert net.listener.receipts == [] and net.listener.mos == []
    assert resp[0].status == ESME_ROK


# --- MO ----------------------------------------------------------------------------------------------
def test_mo_is_decoded_and_acknowledged_after_the_listener():
    net = Net()
    resp = net.smsc.deliver({"source_addr": "46701234567", "destination_addr": "72550",
                             "esm_class": 0, "data_coding": 0,
                             "short_message": gsm_encode("PIZZA 2 @ 5€")})
    net.flush()
    [(mo, d)] = net.listener.mos
    assert mo == MoFacts("telia", "46701234567", "72550", "PIZZA 2 @ 5€")
    assert resp == []
    d.callback(None)
    net.flush()
    assert resp[0].status == ESME_ROK


def test_mo_the_listener_refuses_gets_a_temporary_error():
    net = Net()
    net.listener.mo_received = lambda mo: fail(RuntimeError("no MO yet"))
    resp = net.smsc.deliver({"source_addr": "4670", "short_message": b"hi"})
    net.flush()
    assert resp[0].value.status == ESME_RX_T_APPN


def test_mo_listener_raising_synchronously_is_a_temporary_error_too():
    net = Net()

    def boom(mo):
        raise RuntimeError("bug")

    net.listener.mo_received = boom
    resp = net.smsc.deliver({"source_addr": "4670", "short_message": b"hi"})
    net.flush()
    assert resp[0].value.status == ESME_RX_T_APPN


def test_mo_message_payload_tlv():
    net = Net()
    net.listener.mo_received = lambda mo: (net.listener.mos.append((mo, None)), succeed(None))[1]
    net.smsc.deliver({"data_coding": 8}, {"message_payload": "Ωмега".encode("utf-16-be")},
                     command="data_sm")
    net.flush()
    assert net.listener.mos[0][0].text == "Ωмега"


@pytest.mark.parametrize("data, data_coding, udhi, packed, text, concat", [
    (b"Hello \x00\x1b\x65", 0, False, False, "Hello @€", None),
    (b"Hi \xff", 0, False, False, "Hi \ufffd", None),  # lenient
    (b"Hi", 0xF1, False, False, "Hi", None),
    ("Привет".encode("utf-16-be"), 8, False, False, "Привет", None),
    (b"Caf\xe9", 3, False, False, "Café", None),
    (b"Caf\xe9", 4, False, False, "Café", None),  # unknown: Latin-1
    (bytes([5, 0, 3, 9, 2, 1]) + b"part one", 0, True, False, "part one", (9, 2, 1)),
    (gsm_pack(b"hello"), 0, False, True, "hello", None),
    (bytes([5, 0, 3, 9, 2, 2]) + gsm_pack(b"two", 1), 0, True, True, "two", (9, 2, 2)),
    (bytes([9, 0, 3]) + b"xy", 0, True, False, "Ç@¥xy", None),  # broken UDH: read as text
])
def test_decode_mo_text(data, data_coding, udhi, packed, text, concat):
    got_text, got_concat = decode_mo_text(data, data_coding, udhi, packed)
    assert got_text == text
    assert (tuple(got_concat) if got_concat else None) == concat


def test_a_part_of_a_concatenated_mo_is_passed_on_with_its_place():
    net = Net()
    net.smsc.deliver({"source_addr": "4670", "esm_class": 0x40,
                      "short_message": bytes([5, 0, 3, 7, 2, 1]) + b"first half"})
    net.smsc.deliver({"source_addr": "4670", "short_message": b"second half"},
                     tlvs={"sar_msg_ref_num": 300, "sar_total_segments": 2, "sar_segment_seqnum": 2})
    net.smsc.deliver({"source_addr": "4670", "short_message": b"whole"},
                     tlvs={"sar_msg_ref_num": 1, "sar_total_segments": 1, "sar_segment_seqnum": 1})
    net.flush()
    got = [(mo.text, mo.concat) for mo, *_ in net.listener.mos]
    assert got == [("first half", (7, 2, 1)), ("second half", (300, 2, 2)), ("whole", None)]


# --- stopping ------------------------------------------------------------------------------------------
def test_stop_unbinds_and_does_not_reconnect():
    net = Net(bind="transmitter+receiver")
    net.smsc.auto = False
    pending = net.submit()
    done: list = []
    net.link.stop().addBoth(done.append)
    net.flush()
    assert ("unbind", "out") in net.listener.pdus
    assert ("unbind_resp", "in") in net.listener.pdus
    assert done == [None]
    assert net.smsc.protos == []
    assert sorted(net.listener.binds[-2:]) == [("telia/1-rx", False), ("telia/1-tx", False)]
    assert error_of(pending).kind == SubmitError.TRANSIENT
    assert not net.link.is_up() and net.link.capacity() == 0
    net.advance(300)
    assert not net.reactor.tcpClients
    assert error_of(net.submit()).detail == "link stopped"


def test_stop_does_not_wait_forever_for_unbind_resp():
    net = Net(response_timeout=30.0)
    # the SMSC goes deaf: it neither answers the unbind nor closes
    net.smsc.protos[0].dataReceived = lambda data: None
    done: list = []
    net.link.stop().addBoth(done.append)
    net.flush()
    assert done == []
    net.advance(5.0)
    assert done == [None]


def test_stop_before_start_and_while_disconnected():
    net = Net(start=False)
    done: list = []
    net.link.stop().addBoth(done.append)
    assert done == [None]
    net2 = Net(connect=False)
    net2.refuse()
    done2: list = []
    net2.link.stop().addBoth(done2.append)
    net2.flush()
    assert done2 == [None]


def test_a_session_whose_responses_stopped_is_closed_and_bound_again():
    net = Net(response_timeout=5.0)
    net.smsc.auto = False
    first_proto = net.smsc.protos[0]
    binds = len(net.smsc.binds)
    for _ in range(2):
        net.submit()
        net.advance(6.0)
    assert net.smsc.protos == [first_proto]  # two timeouts in a row: still the same session
    net.submit()
    net.advance(6.0)  # the third closes it
    assert first_proto not in net.smsc.protos and not net.link.is_up()
    net.advance(120.0)  # the link reconnects with backoff and binds again
    net.connect()
    assert len(net.smsc.binds) == binds + 1 and net.link.is_up()


def test_protocol_errors_are_logged_without_dropping_the_session():
    from structlog.testing import capture_logs

    net = Net()
    proto = net.smsc.protos[0]
    with capture_logs() as logs:
        proto.transport.write(raw_pdu("submit_sm_resp", 99999, 0))  # answers nothing we sent
        net.flush()
    assert net.smsc.protos == [proto] and net.link.is_up()
    assert any(e["event"] == "SMPP protocol error from the SMSC" and e["kind"] == "UnexpectedResponse"
               for e in logs)


def test_capacity_zero_for_want_of_a_token_always_leads_to_a_link_ready():
    # A refill timer may fire a hair before a whole token is back; whoever then asks for capacity
    # gets 0 and waits for link_ready: a new timer must be pending (once this hung a node for good).
    net = Net(tps=20)
    net.submit()
    net.submit()
    bucket = net.link._bucket
    net.link._refill_call.cancel()
    net.link._refill_call = None
    net.advance(0.0499)  # 0.998 tokens: the situation a rounding left behind
    assert bucket.available(net.reactor.seconds()) < 1
    ready = net.listener.ready
    assert net.link.capacity() == 0
    net.advance(0.01)
    assert net.listener.ready == ready + 1 and net.link.capacity() == 1


# --- what ops see (GET /v1/admin/binds) ------------------------------------------------------------------
def at(seconds: float) -> str:
    """The reactor time ``seconds`` as describe writes it (the Net's clock starts at 1,000,000 s)."""
    from datetime import datetime, timezone

    return datetime.fromtimestamp(seconds, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def session_of(net: Net, index: int = 0) -> dict:
    return net.link.describe()["sessions"][index]


def test_describe_says_since_when_a_session_is_bound_or_not_and_its_last_error():
    net = Net(connect=False, reconnect_min=1.0)
    assert (session_of(net)["since"], session_of(net)["last_error"]) == (None, None)  # never bound, nothing wrong
    net.refuse()  # TCP refused at 1,000,000
    error = session_of(net)["last_error"]
    assert error["at"] == at(1_000_000) and error["reason"].startswith("connect failed: ")
    assert session_of(net)["since"] is None
    net.advance(1.0)
    net.connect()
    assert session_of(net)["bound"] and session_of(net)["since"] == at(1_000_001)
    assert session_of(net)["last_error"] == error  # binding clears nothing: the last error stays
    net.advance(2.5)
    net.drop()  # lost while bound
    s = session_of(net)
    assert not s["bound"] and s["since"] == at(1_000_003.5)
    assert s["last_error"]["at"] == at(1_000_003.5) and s["last_error"]["reason"].startswith("connection lost: ")
    net.smsc.bind_status = ESME_RBINDFAIL
    net.advance(1.0)
    net.connect()  # connected, bind refused
    s = session_of(net)
    assert s["since"] == at(1_000_003.5)  # was unbound, still is
    assert s["last_error"] == {"at": at(1_000_004.5), "reason": "bind refused: status ESME_RBINDFAIL"}


def test_stopping_the_link_changes_since_but_is_no_error():
    net = Net()
    net.advance(3.0)
    done: list = []
    net.link.stop().addBoth(done.append)
    net.flush()
    assert done == [None]
    s = session_of(net)
    assert not s["bound"] and s["since"] == at(1_000_003) and s["last_error"] is None


def test_describe_counts_submits_per_second_over_ten_seconds_and_in_flight():
    net = Net(binds=2, window=5)
    net.smsc.auto = False
    for _ in range(4):
        net.submit()
    net.advance(5.0)
    net.submit("z" * 400)  # three parts: three submit_sm
    d = net.link.describe()
    assert d["submits_per_second"] == 0.7  # 7 submit_sm in the last 10 s
    assert d["in_flight"] == 7 == sum(s["in_flight"] for s in d["sessions"])
    while net.smsc.held:
        net.smsc.answer()
    net.flush()
    net.advance(5.5)  # the first four are over 10 s old
    d = net.link.describe()
    assert (d["submits_per_second"], d["in_flight"]) == (0.3, 0)
    net.advance(5.0)
    assert net.link.describe()["submits_per_second"] == 0.0
