"""The SMPP session state machine and its Window: state rules, auto-answers, sequence numbers,
keep-alive. The property that nothing the peer sends makes it raise: test_smpp_session_property.py."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.smpp import defs
from connectors.smpp.codec import NEED_DATA, PDU, EncodeError, LocalProtocolError, decode, encode
from connectors.smpp.defs import (
    ESME_RALYBND,
    ESME_RBINDFAIL,
    ESME_RINVBNDSTS,
    ESME_RINVCMDID,
    ESME_RINVCMDLEN,
    ESME_RINVMSGLEN,
    ESME_ROK,
    ESME_RTHROTTLED,
)
from connectors.smpp.session import (
    ESME,
    MAX_SEQUENCE,
    SMSC,
    EnquireLinkAnswered,
    GenericNackSent,
    MustClose,
    PeerUnbound,
    RequestReceived,
    RequestRejected,
    ResponseReceived,
    Session,
    State,
    UnexpectedResponse,
    Window,
    WindowFull,
)
from tests.smpp_session_rig import SUBMIT, bound_esme, bound_smsc, events, one_event


# --- Window ---------------------------------------------------------------------------------------
def test_window_offer_complete_expire_drain():
    window = Window(3)
    a, b, c = PDU("submit_sm", 1), PDU("submit_sm", 2), PDU("enquire_link", 3)
    window.offer(1, a, now=10.0, timeout=5.0)
    window.offer(2, b, now=11.0, timeout=5.0)
    window.offer(3, c, now=12.0, timeout=1.0)
    assert (len(window), window.free) == (3, 0)
    entry = window.complete(1, PDU("submit_sm_resp", 1))
    assert (entry.sequence, entry.request, entry.sent_at, entry.deadline) == (1, a, 10.0, 15.0)
    assert 1 not in window and window.free == 1
    assert window.complete(1, PDU("submit_sm_resp", 1)) is None  # already completed
    assert [e.sequence for e in window.expired(now=13.0)] == [3]  # deadline 13.0 is inclusive
    assert window.expired(now=15.9) == []
    assert [e.request for e in window.drain()] == [b]
    assert len(window) == 0 and window.drain() == []


def test_window_full_raises_unless_forced():
    window = Window(1)
    window.offer(1, PDU("submit_sm", 1), 0.0, 1.0)
    with pytest.raises(WindowFull):
        window.offer(2, PDU("submit_sm", 2), 0.0, 1.0)
    window.offer(3, PDU("enquire_link", 3), 0.0, 1.0, force=True)
    assert len(window) == 2 and window.free == 0


@given(st.integers(1, 4), st.lists(st.tuples(st.sampled_from(["offer", "force", "complete", "expire", "drain"]),
                                             st.integers(1, 6)), max_size=40))
def test_window_free_is_what_is_left_of_its_size_after_any_changes(size, steps):
    window = Window(size)
    for what, sequence in steps:
        if what in ("offer", "force") and sequence not in window and (window.free or what == "force"):
            window.offer(sequence, PDU("submit_sm", sequence), float(sequence), 1.0, force=what == "force")
        elif what == "complete":
            window.complete(sequence, PDU("submit_sm_resp", sequence))
        elif what == "expire":
            window.expired(now=float(sequence))
        elif what == "drain":
            window.drain()
        assert window.free == max(0, size - len(window))


def test_window_complete_checks_the_response_command():
    window = Window(2)
    window.offer(5, PDU("submit_sm", 5), 0.0, 1.0)
    assert window.complete(5, PDU("deliver_sm_resp", 5)) is None
    assert 5 in window
    assert window.complete(5, PDU("generic_nack", 5, 3)).sequence == 5


def test_window_refuses_duplicate_sequence_and_bad_size():
    window = Window(2)
    window.offer(5, PDU("submit_sm", 5), 0.0, 1.0)
    with pytest.raises(LocalProtocolError, match="5"):
        window.offer(5, PDU("submit_sm", 5), 0.0, 1.0)
    with pytest.raises(ValueError):
        Window(0)


# --- ESME side ------------------------------------------------------------------------------------
def test_esme_bind_flow():
    session = Session(ESME, now=100.0)
    sequence, data = session.send_request(
        "bind_transceiver", {"system_id": "user", "password": "pw", "interface_version": 0x34},
        now=100.0)
    assert sequence == 1 and session.state is State.BINDING
    assert decode(data).params["system_id"] == "user"
    event = one_event(session, encode(PDU("bind_transceiver_resp", 1, params={"system_id": "S"})),
                      now=100.25)
    assert isinstance(event, ResponseReceived)
    assert (event.request.command, event.elapsed) == ("bind_transceiver", 0.25)
    assert session.state is State.BOUND_TRX and session.peer_system_id == "S" and session.is_bound
    session.send_request("unbind", now=101.0)
    assert session.state is State.UNBINDING and not session.is_bound


@pytest.mark.parametrize("bind, state", [("bind_transmitter", State.BOUND_TX),
                                         ("bind_receiver", State.BOUND_RX)])
def test_esme_bind_kinds(bind, state):
    assert bound_esme(bind).state is state


def test_esme_bind_refused_returns_to_open():
    session = Session(ESME, now=0.0)
    session.send_request("bind_transmitter", now=0.0)
    event = one_event(session, encode(PDU("bind_transmitter_resp", 1, ESME_RBINDFAIL)))
    assert event.pdu.status == ESME_RBINDFAIL
    assert session.state is State.OPEN and not session.is_bound


def test_submit_before_bind_is_refused_locally_and_consumes_nothing():
    session = Session(ESME, now=0.0)
    with pytest.raises(LocalProtocolError, match="submit_sm not allowed in state OPEN"):
        session.send_request("submit_sm", SUBMIT, now=0.0)
    assert len(session.window) == 0
    assert session.send_request("bind_transmitter", now=0.0)[0] == 1


def test_requests_our_role_never_sends_are_refused():
    with pytest.raises(LocalProtocolError, match="never sends deliver_sm"):
        bound_esme().send_request("deliver_sm", now=0.0)
    with pytest.raises(LocalProtocolError, match="never sends submit_sm"):
        bound_smsc().send_request("submit_sm", now=0.0)
    with pytest.raises(LocalProtocolError, match="not a request"):
        bound_esme().send_request("submit_sm_resp", now=0.0)


def test_submit_on_receiver_bind_is_refused():
    with pytest.raises(LocalProtocolError, match="BOUND_RX"):
        bound_esme("bind_receiver").send_request("submit_sm", SUBMIT, now=0.0)


def test_submit_and_response_through_the_window():
    session = bound_esme(response_timeout=7.0)
    sequence, data = session.send_request("submit_sm", SUBMIT, {"sar_msg_ref_num": 9}, now=50.0)
    assert sequence == 2
    assert decode(data) == PDU("submit_sm", 2, 0, decode(data).params, {"sar_msg_ref_num": 9})
    assert session.window.expired(56.9) == [] and 2 in session.window
    event = one_event(session, encode(PDU("submit_sm_resp", 2, params={"message_id": "ab"})),
                      now=50.5)
    assert isinstance(event, ResponseReceived)
    assert event.pdu.params["message_id"] == "ab" and event.request.params is SUBMIT
    assert event.elapsed == 0.5 and len(session.window) == 0


def test_response_timeout_comes_from_the_session_or_the_call():
    session = bound_esme(response_timeout=7.0)
    session.send_request("submit_sm", SUBMIT, now=0.0)
    session.send_request("submit_sm", SUBMIT, now=0.0, timeout=2.0)
    assert [e.sequence for e in session.window.expired(2.0)] == [3]
    assert [e.sequence for e in session.window.expired(7.0)] == [2]


def test_error_response_and_generic_nack_complete_their_request():
    session = bound_esme()
    session.send_request("submit_sm", SUBMIT, now=0.0)
    session.send_request("submit_sm", SUBMIT, now=0.0)
    first = one_event(session, encode(PDU("submit_sm_resp", 2, ESME_RTHROTTLED)))
    second = one_event(session, encode(PDU("generic_nack", 3, ESME_RINVCMDLEN)))
    assert (first.pdu.status, first.request.sequence) == (ESME_RTHROTTLED, 2)
    assert (second.pdu.command, second.request.sequence) == ("generic_nack", 3)


def test_unexpected_responses():
    session = bound_esme()
    session.send_request("submit_sm", SUBMIT, now=0.0)
    unknown = one_event(session, encode(PDU("submit_sm_resp", 99, params={"message_id": "x"})))
    wrong_kind = one_event(session, encode(PDU("deliver_sm_resp", 2)))
    assert isinstance(unknown, UnexpectedResponse) and unknown.pdu.sequence == 99
    assert isinstance(wrong_kind, UnexpectedResponse) and 2 in session.window


def test_window_full_refuses_submit_but_not_enquire_link_or_unbind():
    session = bound_esme(window_size=2)
    session.send_request("submit_sm", SUBMIT, now=0.0)
    session.send_request("submit_sm", SUBMIT, now=0.0)
    with pytest.raises(WindowFull):
        session.send_request("submit_sm", SUBMIT, now=0.0)
    assert session.send_request("enquire_link", now=0.0)[0] == 4  # the refusal used no number
    assert session.send_request("unbind", now=0.0)[0] == 5
    assert len(session.window) == 4


def test_encode_error_leaves_sequence_and_window_untouched():
    session = bound_esme()
    with pytest.raises(EncodeError):
        session.send_request("submit_sm", {"destination_addr": "1" * 30}, now=0.0)
    assert len(session.window) == 0
    assert session.send_request("submit_sm", SUBMIT, now=0.0)[0] == 2


def test_sequence_numbers_wrap_to_one():
    session = Session(ESME, now=0.0, first_sequence=MAX_SEQUENCE - 1)
    session.send_request("enquire_link", now=0.0)
    assert [session.send_request("enquire_link", now=0.0)[0] for _ in range(3)] == [
        MAX_SEQUENCE, 1, 2]
    with pytest.raises(ValueError):
        Session(ESME, now=0.0, first_sequence=0)


def test_our_unbind_then_its_response_closes():
    session = bound_esme()
    sequence, data = session.send_request("unbind", now=0.0)
    assert decode(data).command == "unbind" and session.state is State.UNBINDING
    with pytest.raises(LocalProtocolError, match="UNBINDING"):
        session.send_request("submit_sm", SUBMIT, now=0.0)
    event = one_event(session, encode(PDU("unbind_resp", sequence)))
    assert isinstance(event, ResponseReceived) and session.state is State.CLOSED


# --- requests from the peer -----------------------------------------------------------------------
def test_peer_enquire_link_is_answered_in_any_live_state():
    for session in (Session(ESME, now=0.0), bound_esme(), bound_smsc()):
        state = session.state
        event = one_event(session, encode(PDU("enquire_link", 77)))
        assert isinstance(event, EnquireLinkAnswered) and event.pdu.sequence == 77
        assert event.reply == encode(PDU("enquire_link_resp", 77))
        assert session.state is state


def test_peer_unbind_is_answered_and_closes():
    session = bound_esme()
    session.send_request("submit_sm", SUBMIT, now=0.0)
    event = one_event(session, encode(PDU("unbind", 40)))
    assert isinstance(event, PeerUnbound)
    assert event.reply == encode(PDU("unbind_resp", 40))
    assert session.state is State.CLOSED
    assert [e.sequence for e in session.connection_lost()] == [2]


def test_simultaneous_unbind_is_answered():
    session = bound_esme()
    session.send_request("unbind", now=0.0)
    assert isinstance(one_event(session, encode(PDU("unbind", 9))), PeerUnbound)


def test_peer_submit_while_unbound_gets_rinvbndsts():
    session = Session(SMSC, now=0.0)
    event = one_event(session, encode(PDU("submit_sm", 5, params=SUBMIT)))
    assert isinstance(event, RequestRejected) and event.status == ESME_RINVBNDSTS
    assert decode(event.reply) == PDU("submit_sm_resp", 5, ESME_RINVBNDSTS, {"message_id": ""})
    assert len(event.reply) == 16  # error response: header only


def test_peer_deliver_sm_on_transmitter_bind_gets_rinvbndsts():
    session = bound_esme("bind_transmitter")
    event = one_event(session, encode(PDU("deliver_sm", 5)))
    assert isinstance(event, RequestRejected)
    assert decode(event.reply).command == "deliver_sm_resp"
    assert decode(event.reply).status == ESME_RINVBNDSTS


def test_second_bind_gets_ralybnd():
    session = bound_smsc()
    event = one_event(session, encode(PDU("bind_transceiver", 2)))
    assert isinstance(event, RequestRejected) and event.status == ESME_RALYBND
    assert decode(event.reply).command == "bind_transceiver_resp"
    assert session.state is State.BOUND_TRX


def test_command_the_peer_role_never_sends_gets_rinvcmdid():
    event = one_event(bound_esme(), encode(PDU("submit_sm", 3, params=SUBMIT)))
    assert isinstance(event, RequestRejected) and event.status == ESME_RINVCMDID
    assert decode(event.reply) == PDU("submit_sm_resp", 3, ESME_RINVCMDID, {"message_id": ""})


def test_request_without_response_is_rejected_with_generic_nack():
    event = one_event(bound_esme(), encode(PDU("outbind", 3)))
    assert isinstance(event, RequestRejected)
    assert decode(event.reply) == PDU("generic_nack", 3, ESME_RINVBNDSTS)


def test_esme_receives_deliver_sm_and_answers_it():
    session = bound_esme()
    event = one_event(session, encode(PDU("deliver_sm", 6, tlvs={"receipted_message_id": "ab"})))
    assert isinstance(event, RequestReceived)
    assert event.pdu.tlvs == {"receipted_message_id": "ab"}
    reply = session.send_response(event.pdu)
    assert decode(reply) == PDU("deliver_sm_resp", 6, 0, {"message_id": ""})


# --- SMSC side ------------------------------------------------------------------------------------
def test_smsc_bind_flow_and_submit():
    session = Session(SMSC, now=0.0)
    bind = one_event(session, encode(PDU("bind_transmitter", 1, params={"system_id": "u1"})))
    assert isinstance(bind, RequestReceived) and session.state is State.BINDING
    reply = session.send_response(bind.pdu, ESME_ROK, {"system_id": "SMSC"})
    assert decode(reply) == PDU("bind_transmitter_resp", 1, 0, {"system_id": "SMSC"})
    assert session.state is State.BOUND_TX and session.peer_system_id == "u1"
    submit = one_event(session, encode(PDU("submit_sm", 2, params=SUBMIT)))
    assert isinstance(submit, RequestReceived)
    assert submit.pdu.params["destination_addr"] == "46701234567"
    with pytest.raises(LocalProtocolError, match="BOUND_TX"):
        session.send_request("deliver_sm", now=0.0)


def test_smsc_refusing_a_bind_returns_to_open():
    session = Session(SMSC, now=0.0)
    bind = one_event(session, encode(PDU("bind_transceiver", 1)))
    reply = session.send_response(bind.pdu, defs.ESME_RINVPASWD)
    assert decode(reply) == PDU("bind_transceiver_resp", 1, defs.ESME_RINVPASWD,
                                {"system_id": ""})
    assert session.state is State.OPEN


def test_smsc_sends_deliver_sm_when_bound_for_receiving():
    session = bound_smsc("bind_receiver")
    sequence, data = session.send_request("deliver_sm", {"short_message": b"id:1"}, now=0.0)
    assert decode(data).command == "deliver_sm" and sequence in session.window


def test_send_response_refuses_what_has_no_response():
    session = bound_esme()
    with pytest.raises(LocalProtocolError):
        session.send_response(PDU("alert_notification", 1))
    with pytest.raises(LocalProtocolError):
        session.send_response(PDU("submit_sm_resp", 1))


# --- decode errors through the session ------------------------------------------------------------
def test_malformed_pdu_gets_generic_nack_and_the_session_carries_on():
    session = bound_esme()
    bad = bytes.fromhex("00000013 00000005 00000000 0000002a 616263".replace(" ", ""))
    got = events(session, bad + encode(PDU("enquire_link", 43)))
    assert isinstance(got[0], GenericNackSent)
    assert (got[0].sequence, got[0].status) == (42, ESME_RINVCMDLEN)
    assert got[0].reply == encode(PDU("generic_nack", 42, ESME_RINVCMDLEN))
    assert isinstance(got[1], EnquireLinkAnswered) and session.is_bound


def test_short_message_past_end_nack_carries_rinvmsglen():
    wire = encode(PDU("deliver_sm", 8, params={"short_message": b"abcd"}))
    cut = (len(wire) - 1).to_bytes(4, "big") + wire[4:-1]  # sm_length 4, 3 octets follow
    event = one_event(bound_esme(), cut)
    assert isinstance(event, GenericNackSent) and event.status == ESME_RINVMSGLEN


def test_lost_framing_must_close_once():
    session = bound_esme()
    session.send_request("submit_sm", SUBMIT, now=0.0)
    got = events(session, b"\x00\x00\x00\x05" + encode(PDU("enquire_link", 1)))
    assert len(got) == 1 and isinstance(got[0], MustClose)
    assert "command_length 5" in got[0].reason
    assert got[0].reply == encode(PDU("generic_nack", 0, ESME_RINVCMDLEN))
    assert session.state is State.CLOSED
    assert events(session, encode(PDU("enquire_link", 2))) == []
    assert [e.sequence for e in session.connection_lost()] == [2]


def test_max_length_is_passed_to_the_decoder():
    session = Session(ESME, now=0.0, max_length=100)
    assert isinstance(one_event(session, (101).to_bytes(4, "big")), MustClose)


# --- keep-alive -----------------------------------------------------------------------------------
def test_needs_enquire_link():
    session = Session(ESME, now=0.0, enquire_link_interval=30.0)
    assert not session.needs_enquire_link(100.0)  # not bound
    session.send_request("bind_transceiver", now=1.0)
    one_event(session, encode(PDU("bind_transceiver_resp", 1)), now=2.0)
    assert session.last_received == 2.0
    assert not session.needs_enquire_link(31.9)
    assert session.needs_enquire_link(32.0)
    sequence, _ = session.send_request("enquire_link", now=32.0)
    assert not session.needs_enquire_link(70.0)  # one is outstanding
    one_event(session, encode(PDU("enquire_link_resp", sequence)), now=33.0)
    assert not session.needs_enquire_link(62.9)
    assert session.needs_enquire_link(63.0)


def test_any_received_bytes_postpone_the_keep_alive():
    session = bound_esme()
    session.receive_data(b"\x00", now=25.0)  # a partial PDU still shows the peer is alive
    assert session.next_event() is NEED_DATA
    assert not session.needs_enquire_link(54.9) and session.needs_enquire_link(55.0)


def test_expired_enquire_link_allows_another():
    session = bound_esme(response_timeout=5.0)
    session.send_request("enquire_link", now=30.0)
    assert not session.needs_enquire_link(34.0)
    assert [e.request.command for e in session.window.expired(35.0)] == ["enquire_link"]
    assert session.needs_enquire_link(35.0)


def test_constructor_validates_role():
    with pytest.raises(ValueError):
        Session("client", now=0.0)
