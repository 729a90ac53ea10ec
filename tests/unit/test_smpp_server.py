"""The SMPP server for customers' ESMEs without sockets: our ESME-side ``SMPPProtocol`` plays the
customer, wired to the server through ``twisted.test.iosim`` (or a ``StringTransport`` where the
test must hold the bytes), time is a ``Clock``, and the application is a fake whose Deferreds the
test fires. Nothing sleeps."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest
from structlog.testing import capture_logs
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.test.iosim import FakeTransport, connectedServerAndClient

from connectors.smpp.codec import PDU, decode, encode
from connectors.smpp.defs import (
    ESME_RALYBND,
    ESME_RBINDFAIL,
    ESME_RCANCELFAIL,
    ESME_RINVBNDSTS,
    ESME_RINVCMDID,
    ESME_RINVCMDLEN,
    ESME_RINVDSTADR,
    ESME_RINVEXPIRY,
    ESME_RINVMSGLEN,
    ESME_RINVSCHED,
    ESME_RINVSRCADR,
    ESME_RMSGQFUL,
    ESME_ROK,
    ESME_RQUERYFAIL,
    ESME_RSUBMITFAIL,
    ESME_RSYSERR,
    ESME_RTHROTTLED,
    ESME_RX_P_APPN,
    ESME_RX_T_APPN,
)
from connectors.smpp.deliver_fields import DeliverSm, QueryAnswer, receipt
from connectors.smpp.protocol import RequestFailed, SMPPProtocol
from connectors.smpp.server import ClientSession, CustomerSMPPServer, DeliveryResult, Refused
from connectors.smpp.session import ESME
from connectors.smpp.submit_fields import CustomerSubmit, ReceiptRequest

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
        self.pdus: list[tuple[str, str, str]] = []

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

    def pdu_seen(self, session, command, direction):
        self.pdus.append((session.account, command, direction))


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
        d = self.server.deliver(account, item)
        self.flush()
        return d


# --- binds ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("command, bind, receives", [
    ("bind_transmitter", "transmitter", False),
    ("bind_receiver", "receiver", True),
    ("bind_transceiver", "transceiver", True),
])
def test_each_bind_kind_binds_to_the_account(command, bind, receives):
    h = Harness()
    conn = h.bound(command)
    [session] = h.server.sessions()
    assert (session.account, session.system_id, session.bind) == ("acme", "acme-esme", bind)
    assert session.peer == "203.0.113.7:40001"
    assert h.server.session_counts() == {("acme", bind): 1}
    assert h.app.receivers == ([session] if receives else [])
    assert conn.client.session.is_bound


@pytest.mark.parametrize("system_id, password", [("acme-esme", "guess"),
                                                 ("nobody", PASSWORD)])
def test_unknown_system_id_and_wrong_password_get_the_same_refusal(system_id, password):
    h = Harness()
    conn = h.connect()
    with capture_logs() as logs:
        assert status_of(conn.bind(system_id=system_id, password=password)) == ESME_RBINDFAIL
    assert h.server.sessions() == [] and not conn.open
    [refusal] = [e for e in logs if e["event"] == "bind refused"]
    assert (refusal["system_id"], refusal["peer"]) == (system_id, "203.0.113.7:40001")
    assert password not in repr(logs) and PASSWORD not in repr(logs)


def test_password_never_logged_on_success_or_second_bind():
    h = Harness()
    with capture_logs() as logs:
        conn = h.bound()
        answer = conn.raw("bind_transmitter", 99, {"system_id": "acme-esme",
                                                   "password": PASSWORD})
        conn.send("unbind")
    assert (answer.command, answer.sequence, answer.status) == ("bind_transmitter_resp", 99,
                                                                 ESME_RALYBND)
    assert any(e["event"] == "protocol error from esme" for e in logs)
    assert any(e["event"] == "esme bound" for e in logs)
    assert PASSWORD not in repr(logs)


def test_max_binds_per_account():
    h = Harness(max_binds=2)
    first = h.bound("bind_transmitter")
    h.bound("bind_receiver")
    h.bound(system_id="beta-esme", password="b3ta")  # another account's binds do not count
    third = h.connect()
    assert status_of(third.bind()) == ESME_RBINDFAIL
    assert not third.open
    assert result(first.send("unbind")).command == "unbind_resp"
    assert h.server.session_counts() == {("acme", "receiver"): 1, ("beta", "transceiver"): 1}
    h.bound()
    assert len(h.server.sessions("acme")) == 2


def test_authentication_may_answer_later_and_the_esme_may_leave_meanwhile():
    pending: list[Deferred] = []

    def slow(system_id, password):
        pending.append(Deferred())
        return pending[-1]

    h = Harness(authenticate=slow)
    conn = h.connect()
    bind = conn.bind()
    assert not bind.called
    pending[0].callback("acme")
    h.flush()
    assert status_of(bind) == ESME_ROK
    gone = h.connect()
    gone.bind()
    gone.client.transport.loseConnection()
    h.flush()
    pending[1].callback("acme")
    h.flush()
    assert [s.account for s in h.server.sessions()] == ["acme"]
    assert h.server.connection_count == 1


def test_authenticate_raising_refuses_the_bind():
    def broken(system_id, password):
        raise RuntimeError("store down")

    h = Harness(authenticate=broken)
    conn = h.connect()
    with capture_logs() as logs:
        assert status_of(conn.bind()) == ESME_RBINDFAIL
    assert any(e["event"] == "bind handling failed" for e in logs)
    assert PASSWORD not in repr(logs)


def test_a_connection_that_does_not_bind_is_closed():
    h = Harness()
    conn = h.connect()
    h.wait(BIND_TIMEOUT - 1)
    assert conn.open
    h.wait(2)
    assert not conn.open and h.server.connection_count == 0


def test_binds_are_refused_while_stopping():
    h = Harness()
    h.server.stop()
    assert status_of(h.connect().bind()) == ESME_RBINDFAIL


# --- protocol rules the session enforces --------------------------------------------------------
def test_submit_before_bind_and_on_a_receiver_get_rinvbndsts():
    h = Harness()
    submit = {"destination_addr": "46701234567", "short_message": b"hi"}
    answer = h.connect().raw("submit_sm", 5, submit)
    assert (answer.command, answer.status) == ("submit_sm_resp", ESME_RINVBNDSTS)
    answer = h.bound("bind_receiver").raw("submit_sm", 6, submit)
    assert (answer.command, answer.status) == ("submit_sm_resp", ESME_RINVBNDSTS)
    assert h.app.calls == []


def test_commands_the_gateway_does_not_offer_get_rinvcmdid():
    h = Harness()
    conn = h.bound()
    assert status_of(conn.send("replace_sm", {"message_id": "1"})) == ESME_RINVCMDID
    conn.raw("deliver_sm", 77, {"short_message": b"x"})  # a request only an SMSC sends
    unknown = (16).to_bytes(4, "big") + bytes.fromhex("00000042 00000000 00000063")
    conn.client.transport.write(unknown)
    conn.pump.flush()
    assert [(p.command, p.sequence, p.status) for p in conn.esme.unexpected] == [
        ("deliver_sm_resp", 77, ESME_RINVCMDID), ("generic_nack", 0x63, ESME_RINVCMDID)]
    assert conn.open
    conn.submit()
    assert len(h.app.calls) == 1  # the session carries on


def test_enquire_link_and_unbind_from_the_esme_are_answered():
    h = Harness()
    conn = h.bound()
    assert result(conn.send("enquire_link")).command == "enquire_link_resp"
    assert result(conn.send("unbind")).command == "unbind_resp"
    assert h.server.sessions() == [] and h.server.connection_count == 0


def test_command_length_0xffffffff_gets_a_nack_and_the_connection_closed():
    h = Harness()
    other = h.bound()
    proto = h.server.build_protocol()
    transport = StringTransport()
    proto.makeConnection(transport)
    proto.dataReceived(b"\xff\xff\xff\xff" + b"\x00" * 12)
    nack = decode(transport.value())
    assert (nack.command, nack.status) == ("generic_nack", ESME_RINVCMDLEN)
    assert transport.disconnecting
    proto.connectionLost(Failure(ConnectionDone()))
    assert status_of(other.send("enquire_link")) == ESME_ROK


# --- requests to the application ------------------------------------------------------------------
def test_submit_is_answered_when_the_application_answers():
    h = Harness()
    conn = h.bound("bind_transmitter")
    d = conn.submit(b"Hello", schedule_delivery_time="000000010000000R")
    [call] = h.app.calls
    message = call.arg
    assert isinstance(message, CustomerSubmit)
    assert (message.source, message.destination, message.text) == ("Acme", "46701234567",
                                                                    "Hello")
    assert (message.send_at, message.receipts) == (T0 + 3600, ReceiptRequest.ALL)
    assert call.session.account == "acme"
    assert not d.called  # nothing before the application stored it
    call.deferred.callback("msg-1")
    conn.pump.flush()
    resp = result(d)
    assert (resp.command, resp.params["message_id"]) == ("submit_sm_resp", "msg-1")


def test_answers_may_come_out_of_order_and_data_sm_is_a_submit():
    h = Harness()
    conn = h.bound()
    first, second = conn.submit(b"one"), conn.submit(b"two", command="data_sm", data_coding=1)
    h.app.calls[1].deferred.callback("id-2")
    conn.pump.flush()
    assert result(second).params["message_id"] == "id-2" and not first.called
    assert result(second).command == "data_sm_resp"
    h.app.calls[0].deferred.callback("id-1")
    conn.pump.flush()
    assert result(first).params["message_id"] == "id-1"


@pytest.mark.parametrize("reason, status", [
    ("invalid_number", ESME_RINVDSTADR), ("invalid_sender", ESME_RINVSRCADR),
    ("text_too_long", ESME_RINVMSGLEN), ("insufficient_balance", ESME_RSUBMITFAIL),
    ("rate_limited", ESME_RTHROTTLED), ("unavailable", ESME_RMSGQFUL),
    ("send_at_out_of_range", ESME_RINVSCHED), ("invalid_request", ESME_RSUBMITFAIL),
])
def test_refusals_are_answered_with_their_status(reason, status):
    h = Harness()
    conn = h.bound()
    d = conn.submit()
    h.app.calls[0].deferred.errback(Refused(reason, "because"))
    conn.pump.flush()
    assert status_of(d) == status


def test_a_handler_failure_answers_rsyserr_and_the_session_carries_on():
    h = Harness()
    conn = h.bound()
    d = conn.submit()
    with capture_logs() as logs:
        h.app.calls[0].deferred.errback(RuntimeError("disk on fire"))
        conn.pump.flush()
    assert status_of(d) == ESME_RSYSERR
    assert any("disk on fire" in e.get("error", "") for e in logs)
    h.app.submit = lambda session, message: fail(ZeroDivisionError())  # fails at once
    assert status_of(conn.submit()) == ESME_RSYSERR

    def raises(session, message):
        raise KeyError("sync")
    h.app.submit = raises
    assert status_of(conn.submit()) == ESME_RSYSERR
    h.app.submit = lambda session, message: succeed("ok-1")
    assert result(conn.submit()).params["message_id"] == "ok-1"


def test_a_submit_refused_by_its_fields_never_reaches_the_application():
    h = Harness()
    conn = h.bound()
    assert status_of(conn.submit(b"abc", data_coding=4)) == ESME_RSUBMITFAIL
    assert status_of(conn.submit(b"abc", validity_period="x")) == ESME_RINVEXPIRY
    assert h.app.calls == []


def test_a_session_with_too_many_requests_waiting_gets_rmsgqful():
    h = Harness(max_pending=2)
    conn = h.bound()
    waiting = [conn.submit(), conn.submit()]
    assert status_of(conn.submit()) == ESME_RMSGQFUL
    h.app.calls[0].deferred.callback("a")
    conn.pump.flush()
    assert result(waiting[0]).params["message_id"] == "a"
    third = conn.submit()
    assert not third.called and len(h.app.calls) == 3


def test_query_sm():
    h = Harness()
    conn = h.bound()
    d = conn.send("query_sm", {"message_id": "m-7", "source_addr": "Acme"})
    call = h.app.calls[0]
    assert (call.name, call.arg) == ("query", "m-7")
    call.deferred.callback(QueryAnswer("delivered", final_at=T0 + 60))
    conn.pump.flush()
    assert result(d).params == {"message_id": "m-7", "final_date": "231114221420000+",
                                "message_state": 2, "error_code": 0}
    unknown = conn.send("query_sm", {"message_id": "nope"})
    h.app.calls[1].deferred.errback(Refused("not_found"))
    conn.pump.flush()
    assert status_of(unknown) == ESME_RQUERYFAIL
    assert status_of(conn.send("query_sm", {"message_id": ""})) == ESME_RQUERYFAIL


def test_cancel_sm():
    h = Harness()
    conn = h.bound()
    d = conn.send("cancel_sm", {"message_id": "m-8"})
    assert (h.app.calls[0].name, h.app.calls[0].arg) == ("cancel", "m-8")
    h.app.calls[0].deferred.callback(None)
    conn.pump.flush()
    assert result(d).command == "cancel_sm_resp"
    late = conn.send("cancel_sm", {"message_id": "m-9"})
    h.app.calls[1].deferred.errback(Refused("conflict", "already submitted"))
    conn.pump.flush()
    assert status_of(late) == ESME_RCANCELFAIL
    assert status_of(conn.send("cancel_sm", {"destination_addr": "467"})) == ESME_RCANCELFAIL


def test_an_answer_after_the_esme_left_is_dropped():
    h = Harness()
    conn = h.bound()
    conn.submit()
    conn.client.transport.loseConnection()
    h.flush()
    h.app.calls[0].deferred.callback("stored anyway")  # must not raise
    assert h.server.connection_count == 0


def test_pdus_of_bound_sessions_are_reported():
    h = Harness()
    conn = h.bound()
    conn.send("enquire_link")
    assert ("acme", "bind_transceiver_resp", "out") in h.app.pdus
    assert ("acme", "enquire_link", "in") in h.app.pdus


# --- deliveries -----------------------------------------------------------------------------------
def test_no_receiver_means_not_done_at_once():
    h = Harness()
    h.bound("bind_transmitter")
    assert result(h.deliver()) == DeliveryResult(False, "no receiver bound")


def test_a_delivery_reaches_the_esme_and_completes_on_its_answer():
    h = Harness()
    conn = h.bound(esme=Esme(status=None))
    d = h.deliver(ref="m-1")
    [pdu] = conn.esme.received
    assert pdu.command == "deliver_sm" and pdu.tlvs["receipted_message_id"] == "m-1"
    assert not d.called
    conn.esme.answer(ESME_ROK)
    conn.pump.flush()
    assert result(d) == DeliveryResult(True, "acknowledged")


@pytest.mark.parametrize("status, done", [(ESME_RX_P_APPN, True), (ESME_RX_T_APPN, False),
                                          (ESME_RSYSERR, False)])
def test_the_esmes_status_decides_whether_it_is_done(status, done):
    h = Harness()
    h.bound(esme=Esme(status=status))
    assert result(h.deliver()).done is done


def test_round_robin_within_the_window_then_in_order_from_the_queue():
    h = Harness()
    a = h.bound("bind_receiver", esme=Esme(status=None))
    b = h.bound("bind_transceiver", esme=Esme(status=None))
    h.bound("bind_transmitter")  # never gets a deliver_sm
    results = [h.deliver(ref=f"m{i}") for i in range(6)]

    def refs(conn):
        return [p.tlvs["receipted_message_id"] for p in conn.esme.received]
    assert (refs(a), refs(b)) == (["m0", "m2"], ["m1", "m3"])
    assert h.server.queued("acme") == 2 and h.server.capacity("acme") == 0
    b.esme.answer()
    b.pump.flush()
    assert result(results[1]).done
    assert refs(b) == ["m1", "m3", "m4"]  # the only free slot, the oldest waiting item
    a.esme.answer()
    a.pump.flush()
    assert refs(a) == ["m0", "m2", "m5"] and h.server.queued("acme") == 0


def test_a_full_window_is_skipped():
    h = Harness()
    a = h.bound("bind_receiver", esme=Esme(status=None))
    b = h.bound("bind_receiver", esme=Esme(status=ESME_ROK))
    results = [h.deliver(ref=f"m{i}") for i in range(5)]
    assert [d.called for d in results] == [False, True, False, True, True]
    assert [p.tlvs["receipted_message_id"] for p in b.esme.received] == ["m1", "m3", "m4"]
    assert len(a.esme.received) == WINDOW


def test_a_slow_reader_times_out_and_nothing_is_lost():
    h = Harness()
    h.bound(esme=Esme(status=None))
    results = [h.deliver(ref=f"m{i}") for i in range(5)]
    h.wait(RESPONSE_TIMEOUT + 1)
    assert [result(d) for d in results[:2]] == [DeliveryResult(False, "timeout")] * 2
    h.wait(RESPONSE_TIMEOUT + 1)
    h.wait(RESPONSE_TIMEOUT + 1)
    assert [result(d).reason for d in results] == ["timeout"] * 5
    assert h.server.queued("acme") == 0


def test_connection_lost_fails_what_was_sent_and_what_waited():
    h = Harness()
    a = h.bound("bind_receiver", esme=Esme(status=None))
    results = [h.deliver(ref=f"m{i}") for i in range(4)]
    a.client.transport.loseConnection()
    h.flush()
    assert [result(d) for d in results] == [DeliveryResult(False, "connection lost")] * 2 + [
        DeliveryResult(False, "no receiver bound")] * 2
    assert h.server.queued("acme") == 0


def test_waiting_items_move_to_another_receiver_when_one_drops():
    h = Harness()
    a = h.bound("bind_receiver", esme=Esme(status=None))
    b = h.bound("bind_receiver", esme=Esme(status=None))
    results = [h.deliver(ref=f"m{i}") for i in range(5)]
    a.client.transport.loseConnection()
    h.flush()
    assert [result(results[i]).reason for i in (0, 2)] == ["connection lost"] * 2
    b.esme.answer()
    b.pump.flush()
    assert [p.tlvs["receipted_message_id"] for p in b.esme.received] == ["m1", "m3", "m4"]


def test_receiver_bound_lets_the_application_send_what_waited():
    h = Harness()
    sent = []
    h.app.receiver_bound = lambda session: sent.append(h.server.deliver(
        session.account, receipt("w1", "failed", to="46701234567", sender="Acme",
                                 submitted_at=T0, done_at=T0, text="")))
    conn = h.bound("bind_receiver")
    h.flush()
    assert result(sent[0]).done and conn.esme.received[0].tlvs["message_state"] == 5


def test_a_deliver_sm_that_cannot_be_encoded_is_reported():
    h = Harness()
    h.bound()
    bad = DeliverSm({"source_addr": "x" * 30}, {}, "mo", "x")
    outcome = result(h.server.deliver("acme", bad))
    assert not outcome.done and outcome.reason.startswith("cannot encode")


# --- keep-alive, dead peers, leaks ----------------------------------------------------------------
def test_idle_session_gets_enquire_link_and_a_dead_one_is_closed():
    h = Harness()
    proto = h.server.build_protocol()
    aborted = []
    transport = StringTransport()
    transport.abortConnection = lambda: aborted.append(True)
    proto.makeConnection(transport)
    proto.dataReceived(encode(PDU("bind_receiver", 1, params={"system_id": "acme-esme",
                                                              "password": PASSWORD})))
    assert decode(transport.value()).status == ESME_ROK
    transport.clear()
    h.wait(ENQUIRE_LINK - 1)
    assert transport.value() == b""
    h.wait(1)
    assert decode(transport.value()).command == "enquire_link"
    h.wait(RESPONSE_TIMEOUT)
    assert transport.disconnecting and proto.close_reason == "no answer to enquire_link"
    assert not aborted
    h.wait(2)  # still not closed (a peer that does not read holds loseConnection): abort
    assert aborted == [True]
    proto.connectionLost(Failure(ConnectionDone()))
    assert h.server.connection_count == 0 and h.clock.getDelayedCalls() == []


def test_an_answered_enquire_link_keeps_the_session():
    h = Harness()
    conn = h.bound()
    h.wait(ENQUIRE_LINK + RESPONSE_TIMEOUT + 5)
    assert conn.open and ("acme", "enquire_link", "out") in h.app.pdus


def test_a_thousand_connections_opened_and_dropped_leave_nothing_behind():
    pending: list[Deferred] = []

    def sometimes_slow(system_id, password):
        if len(pending) % 3 == 0:
            pending.append(Deferred())
            return pending[-1]
        pending.append(None)
        return authenticate(system_id, password)

    h = Harness(max_binds=10_000, authenticate=sometimes_slow)
    bind = encode(PDU("bind_transceiver", 1, params={"system_id": "acme-esme",
                                                     "password": PASSWORD}))
    protos = []
    for i in range(1000):
        proto = h.server.build_protocol()
        proto.makeConnection(StringTransport(peerAddress=IPv4Address("TCP", "198.51.100.1", i)))
        if i % 2:
            proto.dataReceived(bind)
        protos.append(proto)
    h.server.deliver("acme", DeliverSm({"short_message": b"x"}))
    assert h.server.connection_count == 1000 and h.server.sessions()
    for proto in protos:
        proto.connectionLost(Failure(ConnectionDone()))
    for d in pending:
        if d is not None:
            d.callback("acme")  # authentication answers after the connection is gone
    assert h.server.connection_count == 0
    assert h.server.sessions() == [] and h.server.session_counts() == {}
    assert h.server.queued("acme") == 0
    assert h.clock.getDelayedCalls() == []


def test_stop_unbinds_everyone_and_fails_what_waited():
    h = Harness()
    a = h.bound(esme=Esme(status=None))
    waiting = [h.deliver(ref=f"m{i}") for i in range(3)]
    stopped = h.server.stop()
    h.flush()
    assert result(waiting[2]) == DeliveryResult(False, "server stopping")
    assert result(waiting[0]) == DeliveryResult(False, "connection lost")
    result(stopped)
    assert not a.open and h.server.connection_count == 0
    assert result(h.deliver()) == DeliveryResult(False, "server stopping")
