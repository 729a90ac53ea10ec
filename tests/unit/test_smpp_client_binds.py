"""OperatorLink's sessions (``tests.smpp_link_rig``): binding and its back-off, sessions lost and
silent SMSCs, stopping, and what ops see of the binds."""

from __future__ import annotations

from structlog.testing import capture_logs
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import globalLogPublisher
from twisted.protocols.tls import TLSMemoryBIOFactory

from connectors.api import SubmitError
from connectors.smpp.client import LinkSettings, OperatorLink
from connectors.smpp.defs import ESME_RBINDFAIL, ESME_RINVBNDSTS, ESME_ROK
from tests.smpp_link_rig import raw_pdu, Listener, Net, error_of


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


def test_a_session_offers_window_slots_only_while_it_can_submit():
    net = Net(bind="transmitter+receiver", window=3, connect=False)
    tx, rx = sorted(net.link._sessions, key=lambda s: not s.transmits)
    assert (tx.can_submit(), tx.free(), rx.can_submit(), rx.free()) == (False, 0, False, 0)  # no connection yet
    net.connect()
    assert (tx.can_submit(), tx.free(), rx.can_submit(), rx.free()) == (True, 3, False, 0)  # a receiver never
    tx.proto.close("closing")  # closing, not yet closed
    assert (tx.can_submit(), tx.free()) == (False, 0)


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
    # the lost connection's PDUs stay counted: both connections add to the operator's counts
    assert (net.listener.pdus["bind_transceiver", "out"], net.listener.pdus["submit_sm", "out"]) == (2, 2)


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


def test_a_bind_the_smsc_sends_is_refused_and_logged_without_its_password():
    from connectors.smpp.codec import PDU, encode

    net = Net()
    proto = net.smsc.protos[0]
    with capture_logs() as logs:
        proto.transport.write(encode(PDU("bind_transceiver", 77, 0, {"system_id": "them", "password": "hunter2"})))
        net.flush()
    [line] = [e for e in logs if e["event"] == "SMPP protocol error from the SMSC"]
    assert (line["command"], line["sequence"], line["status"]) == ("bind_transceiver", 77, "ESME_RINVCMDID")
    assert "hunter2" not in repr(logs) and net.link.is_up()


def test_capacity_zero_for_want_of_a_token_always_leads_to_a_link_ready():
    # A refill timer may fire a hair before a whole token is back; whoever then asks for capacity
    # gets 0 and waits for link_ready: a new timer must be pending (once this hung a node for good).
    net = Net(tps=20)
    net.submit()
    net.submit()
    bucket = net.link._pacer.pace.tps
    net.link._pacer._refill_call.cancel()
    net.link._pacer._refill_call = None
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


# --- what the log says of each failed attempt ----------------------------------------------------------
def attempts_logged(logs: list[dict]) -> list[tuple]:
    """The warning (or error) lines about the session's attempts to bind, as (event, address, error,
    failures, retry_in): not the "unbound" of a working session lost (a warning of its own)."""
    return [(e["event"], e.get("address"), e.get("error"), e.get("failures"), e.get("retry_in"))
            for e in logs if e["log_level"] in ("warning", "error") and e.get("session") == "telia/1"
            and e["event"] != "unbound"]


def test_each_refused_tcp_connect_is_one_line_with_the_address_the_error_and_the_next_delay():
    twisted_said: list[dict] = []
    globalLogPublisher.addObserver(twisted_said.append)
    try:
        with capture_logs() as logs:
            net = Net(connect=False, reconnect_min=0.5, reconnect_max=1.5,
                      alternates=(("smsc-b.test", 2776),))
            for delay in (0.5, 1.0, 1.5):
                net.refuse()
                net.advance(delay)
    finally:
        globalLogPublisher.removeObserver(twisted_said.append)
    lines = attempts_logged(logs)
    assert [(event, address, failures, retry_in) for event, address, _, failures, retry_in in lines] == [
        ("connect failed", "smsc.test:2775", 1, 0.5),
        ("connect failed", "smsc-b.test:2776", 2, 1.0),  # the alternate, in turn
        ("connect failed", "smsc.test:2775", 3, 1.5)]
    assert all("refused" in error.lower() for _, _, error, _, _ in lines), lines
    assert all(e["operator"] == "telia" and e["component"] == "smpp" for e in logs if e.get("session"))
    # ClientService's own "Scheduling retry 1 to connect <object at 0x…>" is not written
    assert [e for e in twisted_said if "Scheduling retry" in e.get("log_format", "")] == []


def test_each_refused_bind_is_one_line_with_the_smscs_status_and_the_next_delay():
    with capture_logs() as logs:
        net = Net(connect=False, reconnect_min=1.0, reconnect_max=60.0)
        net.smsc.bind_status = ESME_RBINDFAIL
        net.connect()
        for delay in (1.0, 2.0):
            net.advance(delay)
            net.connect()
    assert attempts_logged(logs) == [("bind refused", "smsc.test:2775", "status ESME_RBINDFAIL", n, delay)
                                     for n, delay in ((1, 1.0), (2, 2.0), (3, 4.0))]


def test_an_unanswered_bind_is_said_so_not_refused():
    with capture_logs() as logs:
        net = Net(connect=False, response_timeout=5.0, reconnect_min=1.0)
        net.smsc.answer_binds = False
        net.connect()
        net.advance(6.0)
    assert attempts_logged(logs) == [("no answer to the bind", "smsc.test:2775", "none in 5 s", 1, 1.0)]
    assert session_of(net)["last_error"]["reason"] == "bind refused: timeout"


def test_a_connection_lost_before_the_bind_answer_says_why():
    with capture_logs() as logs:
        net = Net(connect=False, reconnect_min=1.0)
        net.smsc.answer_binds = False
        net.connect()
        net.drop()  # the SMSC closes without answering
    [(event, address, error, failures, retry_in)] = attempts_logged(logs)
    assert (event, address, failures, retry_in) == ("connection lost before the bind answer", "smsc.test:2775", 1, 1.0)
    assert "closed" in error.lower()
    assert session_of(net)["last_error"]["reason"] == f"bind refused: connection lost: {error}"


def test_a_bound_session_lost_is_no_failed_attempt():
    with capture_logs() as logs:
        net = Net(reconnect_min=1.0)
        net.drop()
        net.advance(1.0)
        net.connect()
    assert attempts_logged(logs) == []
    assert [(e["event"], e["log_level"]) for e in logs if e.get("session") == "telia/1"
            and e["event"] in ("bound", "unbound")] == [("bound", "info"), ("unbound", "warning"), ("bound", "info")]


def test_failed_attempts_after_a_bound_session_was_lost_count_from_one():
    """``failures`` counts attempts that did not bind, this one included (docs/monitoring.md): the
    loss itself is none, so the first failed reconnect says 1 (it said 2). The delays still grow
    from the loss on: 1 s to the first attempt, then 2 s, 4 s."""
    with capture_logs() as logs:
        net = Net(reconnect_min=1.0, reconnect_max=60.0)
        net.drop()
        for delay in (1.0, 2.0):
            net.advance(delay)
            net.refuse()
    assert [(event, failures, retry_in) for event, _, _, failures, retry_in in attempts_logged(logs)] == [
        ("connect failed", 1, 2.0), ("connect failed", 2, 4.0)]
    assert session_of(net)["reconnect_failures"] == 2
    net.advance(4.0)
    net.connect()
    assert net.link.is_up() and session_of(net)["reconnect_failures"] == 0
    with capture_logs() as logs:
        net.drop()  # lost again: no failure counted, the shortest delay again
        assert session_of(net)["reconnect_failures"] == 0
        net.advance(0.99)
        assert not net.reactor.tcpClients
        net.advance(0.01)
        net.refuse()
    assert [(failures, retry_in) for _, _, _, failures, retry_in in attempts_logged(logs)] == [(1, 2.0)]


# --- smsgw_bind_up's source -----------------------------------------------------------------------------
def test_bind_states_lists_every_session_from_the_start_bound_or_not():
    net = Net(connect=False, bind="transmitter+receiver", binds=2)
    assert net.link.bind_states() == [("telia/1-tx", False), ("telia/1-rx", False),
                                      ("telia/2-tx", False), ("telia/2-rx", False)]
    net.connect()
    assert all(up for _, up in net.link.bind_states())
    net.link.stop()
    assert not any(up for _, up in net.link.bind_states())  # stopping: none counts as bound
    assert Net(start=False).link.bind_states() == [("telia/1", False)]


def test_a_bind_that_cannot_be_encoded_is_an_error_line_without_the_password():
    with capture_logs() as logs:
        net = Net(connect=False, reconnect_min=1.0, password="far-too-long-a-password")
        net.connect()
    assert attempts_logged(logs) == [("bind not sent", "smsc.test:2775",
                                      "bind_transceiver.password does not fit", 1, 1.0)]
    assert "far-too-long" not in repr(logs) + repr(net.link.describe())
    assert net.smsc.binds == []
