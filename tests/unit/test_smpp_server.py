"""The SMPP server for customers' ESMEs: binds, the protocol rules the session enforces, keep-alive,
dead peers and leaks.

Without sockets: our ESME-side ``SMPPProtocol`` plays the customer, wired through iosim, time is
a ``Clock``, the application a fake (tests/smpp_server_rig.py). Nothing sleeps."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from connectors.smpp.codec import PDU, decode, encode
from connectors.smpp.defs import (
    ESME_RALYBND,
    ESME_RBINDFAIL,
    ESME_RINVBNDSTS,
    ESME_RINVCMDID,
    ESME_RINVCMDLEN,
    ESME_ROK,
)
from connectors.smpp.deliver_fields import DeliverSm
from connectors.smpp.server import DeliveryResult
from tests.smpp_server_rig import (
    BIND_TIMEOUT,
    ENQUIRE_LINK,
    PASSWORD,
    RESPONSE_TIMEOUT,
    authenticate,
    Esme,
    Harness,
    result,
    status_of,
)


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
    h.deliver_item("acme", DeliverSm({"short_message": b"x"}))
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
