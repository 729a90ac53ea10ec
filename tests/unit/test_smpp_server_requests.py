"""The SMPP server for customers' ESMEs: submits, queries and cancels handed to the application, and
its answers (in any order, refusals, failures).

Without sockets: our ESME-side ``SMPPProtocol`` plays the customer, wired through iosim, time is
a ``Clock``, the application a fake (tests/smpp_server_rig.py). Nothing sleeps."""

from __future__ import annotations

import struct

import pytest
from structlog.testing import capture_logs
from twisted.internet.defer import fail, succeed

from connectors.smpp.defs import (
    ESME_RCANCELFAIL,
    ESME_RINVDSTADR,
    ESME_RINVEXPIRY,
    ESME_RINVMSGLEN,
    ESME_RINVSCHED,
    ESME_RINVSRCADR,
    ESME_RMSGQFUL,
    ESME_RQUERYFAIL,
    ESME_RSUBMITFAIL,
    ESME_RSYSERR,
    ESME_RTHROTTLED,
)
from connectors.smpp.codec import PDU, encode
from connectors.smpp.deliver_fields import QueryAnswer
from connectors.smpp.server import Refused
from connectors.smpp.submit_fields import CustomerSubmit, ReceiptRequest
from tests.smpp_server_rig import PASSWORD, T0, Harness, result, status_of


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


def test_a_bug_while_answering_is_logged_and_the_session_carries_on():
    """``_answer`` and ``_answer_failure`` log what they raise themselves ("smpp server error"),
    no errback after them: the answer's Deferred ends clean, the slot is free again."""
    h = Harness(max_pending=1)
    conn = h.bound()
    server_proto = h.server._receivers("acme")[0]
    real = server_proto.respond

    def broken(pdu, status=0, *args):
        if pdu.command == "submit_sm":
            raise ZeroDivisionError(f"a bug answering with {status}")
        return real(pdu, status, *args)

    server_proto.respond = broken
    with capture_logs() as logs:
        conn.submit()
        h.app.calls[0].deferred.callback("msg-1")
        conn.submit()
        h.app.calls[1].deferred.errback(RuntimeError("disk on fire"))
    bugs = [e for e in logs if e["event"] == "smpp server error"]
    assert [e["what"] for e in bugs] == ["submit_sm"] * 2 and "ZeroDivisionError" in bugs[0]["error"]
    assert [c.deferred.result for c in h.app.calls] == [None, None]  # nothing left unhandled in them
    server_proto.respond = real
    later = conn.submit()  # max_pending 1: the slot was given back both times
    h.app.calls[2].deferred.callback("msg-3")
    conn.pump.flush()
    assert result(later).params["message_id"] == "msg-3"


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


def _frame(command_id: int, sequence: int, body: bytes = b"") -> bytes:
    """A PDU as raw octets: what our ESME-side codec would never write."""
    return struct.pack(">IIII", 16 + len(body), command_id, 0, sequence) + body


def test_every_pdu_read_is_counted_in_and_every_pdu_written_out_by_its_command():
    """pdus_total (SPEC §9, §13): the generic_nack the server answers an unknown command id or
    an undecodable PDU with is one it writes ("out"), and the PDU it answers is one it read, by
    its command's name ("unknown" for an id SMPP does not define). What a connection did before
    its bind succeeded, the bind included, is counted under the account once it has bound."""
    h = Harness()
    conn = h.connect()
    conn.send("enquire_link")  # before the bind: no account to count it under yet
    assert not h.app.pdus
    conn.bind()
    conn.client.transport.write(_frame(0x00000999, 101))
    conn.send("enquire_link")
    conn.client.transport.write(_frame(0x00000004, 102, b"\x00\x05\x00OTH"))  # source_addr lacks its NUL
    conn.pump.flush()
    assert [(p.command, p.sequence) for p in conn.esme.unexpected] == [
        ("generic_nack", 101), ("generic_nack", 102)]
    conn.send("unbind")
    assert h.app.pdus == {
        ("acme", "enquire_link", "in"): 2, ("acme", "enquire_link_resp", "out"): 2,
        ("acme", "bind_transceiver", "in"): 1, ("acme", "bind_transceiver_resp", "out"): 1,
        ("acme", "unknown", "in"): 1, ("acme", "submit_sm", "in"): 1,
        ("acme", "generic_nack", "out"): 2,
        ("acme", "unbind", "in"): 1, ("acme", "unbind_resp", "out"): 1}


def test_a_connection_that_never_binds_counts_no_pdu():
    h = Harness()
    conn = h.connect()
    conn.send("enquire_link")
    conn.client.transport.write(_frame(0x00000999, 101))
    conn.pump.flush()
    conn.bind(password="wrong")
    assert not conn.open
    assert not h.app.pdus


def test_the_pdus_of_a_closed_connection_stay_counted_under_its_account():
    """The connections count into their account's counts, not their own: what one counted stays
    when it closes (a counter never goes down) and the account's next connection adds to it."""
    h = Harness()
    first = h.bound()
    first.send("enquire_link")
    first.send("unbind")
    assert not first.open and h.server.connection_count == 0
    second = h.bound()
    second.send("enquire_link")
    assert h.app.pdus == {
        ("acme", "bind_transceiver", "in"): 2, ("acme", "bind_transceiver_resp", "out"): 2,
        ("acme", "enquire_link", "in"): 2, ("acme", "enquire_link_resp", "out"): 2,
        ("acme", "unbind", "in"): 1, ("acme", "unbind_resp", "out"): 1}


def test_a_pdu_right_behind_a_bind_that_succeeds_at_once_is_counted_under_the_account():
    """Bind and submit_sm in one segment, the bind accepted while the first is being read: the
    submit_sm goes to the account's counts the connection was handed meanwhile."""
    h = Harness()
    conn = h.connect()
    bind = PDU("bind_transceiver", 1, params={"system_id": "acme-esme", "password": PASSWORD})
    submit = PDU("submit_sm", 2, params={"source_addr": "Acme", "destination_addr": "46701234567",
                                         "short_message": b"Hello"})
    conn.client.transport.write(encode(bind) + encode(submit))
    conn.pump.flush()
    assert [c.name for c in h.app.calls] == ["submit"]
    assert h.app.pdus == {
        ("acme", "bind_transceiver", "in"): 1, ("acme", "bind_transceiver_resp", "out"): 1,
        ("acme", "submit_sm", "in"): 1}
