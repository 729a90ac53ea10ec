"""The simulated SMSC without sockets (``tests.smsc_sim_rig``): binds, submits, receipts and
stopping. Its MO and the pure pieces (receipt text and fields, MO parts): test_smsc_sim_mo.py."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs
from twisted.internet.task import Clock

from connectors.smpp.defs import (
    ESME_RBINDFAIL,
    ESME_RINVDSTADR,
    ESME_RINVPASWD,
    ESME_RINVSYSID,
    ESME_ROK,
    ESME_RQUERYFAIL,
    ESME_RTHROTTLED,
    ESME_RX_T_APPN,
)
from connectors.smpp.session import UnexpectedResponse
from connectors.smpp.text import gsm_encode
from connectors.smsc_sim import SimSettings, SimulatedSMSC
from tests.smsc_sim_rig import FIRST_ID, Esme, Harness, failure_status, result


# --- binds -------------------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["bind_transmitter", "bind_receiver", "bind_transceiver"])
def test_bind_with_right_credentials_answers_with_the_sims_name(command):
    h = Harness()
    conn = h.bound(command)
    assert h.sim.bound == [("opsim#1", "gw", command)]
    assert conn.client.session.is_bound


def test_bind_with_wrong_system_id_is_refused_and_may_be_retried():
    h = Harness()
    conn = h.connect()
    d = conn.send("bind_transceiver", {"system_id": "other", "password": "secret"})
    assert failure_status(d) == ESME_RINVSYSID
    assert h.sim.bound == []
    resp = conn.call("bind_transceiver", {"system_id": "gw", "password": "secret"})
    assert resp.status == ESME_ROK and h.sim.bound == [("opsim#1", "gw", "bind_transceiver")]


def test_bind_with_wrong_password_is_refused():
    h = Harness()
    conn = h.connect()
    d = conn.send("bind_transmitter", {"system_id": "gw", "password": "guess"})
    assert failure_status(d) == ESME_RINVPASWD
    assert h.sim.bound == []


def test_bind_without_configured_credentials_accepts_anyone():
    h = Harness(SimSettings())
    h.bound(system_id="anyone", password="whatever")
    assert h.sim.bound == [("opsim#1", "anyone", "bind_transceiver")]


def test_enquire_link_and_unbind_are_answered():
    h = Harness()
    conn = h.bound()
    assert conn.call("enquire_link").command == "enquire_link_resp"
    assert conn.call("unbind").command == "unbind_resp"
    assert h.sim.bound == []


def test_garbage_gets_a_generic_nack_and_the_session_carries_on():
    h = Harness()
    conn = h.bound()
    conn.client.transport.write(bytes.fromhex("00000010 000000ff 00000000 00000063"))
    conn.pump.flush()
    [event] = conn.esme.errors
    assert isinstance(event, UnexpectedResponse)
    assert (event.pdu.command, event.pdu.sequence) == ("generic_nack", 0x63)
    assert conn.submit().called


def test_unsupported_requests_get_their_commands_failure():
    h = Harness()
    conn = h.bound()
    d = conn.send("query_sm", {"message_id": "1a2b3c", "source_addr": "Acme"})
    assert failure_status(d) == ESME_RQUERYFAIL


# --- submits -----------------------------------------------------------------------------------
def test_submit_answers_lowercase_hex_ids_from_a_counter():
    h = Harness()
    conn = h.bound()
    assert result(conn.submit()).params["message_id"] == "1a2b3c"
    assert result(conn.submit()).params["message_id"] == "1a2b3d"
    rec = h.sim.submits[0]
    assert rec == ("gw", "opsim#1", "Acme", "46701234567", 0, 0, b"Hello world", {}, "1a2b3c",
                   "", 5, 0, 1, 1, "")


def test_each_accepted_submit_is_logged_without_the_password():
    h = Harness()
    with capture_logs() as logs:
        conn = h.bound()
        result(conn.submit())
    [entry] = [e for e in logs if e["event"] == "submit_sm accepted"]
    assert (entry["destination_addr"], entry["smsc_message_id"], entry["system_id"]) == (
        "46701234567", "1a2b3c", "gw")
    # ``message_id`` is the gateway's id on its lines: the SMSC's id under that key mixed the two
    assert "message_id" not in entry
    assert not any("secret" in repr(e) for e in logs)


def test_submit_answers_decimal_ids_when_asked():
    h = Harness(SimSettings(message_id_format="dec"))
    conn = h.bound()
    assert result(conn.submit()).params["message_id"] == str(FIRST_ID)
    assert result(conn.submit()).params["message_id"] == str(FIRST_ID + 1)


def test_default_ids_start_somewhere_random_and_are_hex():
    a = SimulatedSMSC(SimSettings(), Clock())
    b = SimulatedSMSC(SimSettings(), Clock())
    ids = [a.new_message_id(), a.new_message_id(), b.new_message_id()]
    assert all(i == i.lower() and int(i, 16) >= 0x100000 for i in ids)
    assert int(ids[1], 16) == int(ids[0], 16) + 1


def test_submit_without_destination_is_refused():
    h = Harness()
    conn = h.bound()
    assert failure_status(conn.submit(to="")) == ESME_RINVDSTADR
    assert h.sim.submits == []


def test_data_sm_is_accepted_and_its_payload_recorded():
    h = Harness()
    conn = h.bound()
    resp = conn.call("data_sm", {"source_addr": "Acme", "destination_addr": "46701234567",
                                 "registered_delivery": 1},
                     {"message_payload": b"via data sm"})
    assert (resp.command, resp.params["message_id"]) == ("data_sm_resp", "1a2b3c")
    assert h.sim.submits[0].short_message == b"via data sm"
    h.advance(60, conn)
    [r] = conn.esme.receipts
    assert r.params["short_message"].endswith(b"stat:DELIVRD err:000 text:via data sm")


# --- receipts ----------------------------------------------------------------------------------
def test_receipt_comes_after_exactly_receipt_delay_with_text_and_tlvs():
    h = Harness()
    conn = h.bound()
    message_id = result(conn.submit(text=gsm_encode("Hello world, a longer text"))
                        ).params["message_id"]
    h.advance(59, conn)
    assert conn.esme.receipts == []
    h.advance(1, conn)
    [r] = conn.esme.receipts
    assert r.params["short_message"] == (
        b"id:1a2b3c sub:001 dlvrd:001 submit date:2311142213 done date:2311142214"
        b" stat:DELIVRD err:000 text:Hello world, a longe")
    assert r.tlvs == {"receipted_message_id": message_id, "message_state": 2}
    assert (r.params["source_addr_ton"], r.params["source_addr_npi"], r.params["source_addr"]) == (
        1, 1, "46701234567")
    assert (r.params["dest_addr_ton"], r.params["dest_addr_npi"], r.params["destination_addr"]) == (
        5, 0, "Acme")
    assert (r.params["esm_class"], r.params["data_coding"]) == (0x04, 0)
    assert h.sim.receipts_acked == 1 and h.sim.receipts_pending == 0


def test_unreachable_prefix_is_accepted_then_gets_an_undeliv_receipt():
    h = Harness(SimSettings(receipt_delay=1.0, unreachable_prefixes=("4670999", "4673")))
    conn = h.bound()
    assert result(conn.submit(to="46709991234")).status == ESME_ROK
    result(conn.submit(to="46701234567"))
    h.advance(1, conn)
    undeliv, ok = conn.esme.receipts
    assert b" dlvrd:000 " in undeliv.params["short_message"]
    assert b" stat:UNDELIV err:001 " in undeliv.params["short_message"]
    assert undeliv.tlvs == {"receipted_message_id": "1a2b3c", "message_state": 5}
    assert b" stat:DELIVRD err:000 " in ok.params["short_message"]
    assert ok.tlvs == {"receipted_message_id": "1a2b3d", "message_state": 2}


@pytest.mark.parametrize("registered_delivery, to, receipts", [
    (0, "46701234567", 0), (1, "46701234567", 1), (1, "4699", 1),
    (2, "46701234567", 0), (2, "4699", 1), (3, "46701234567", 1), (3, "4699", 0),
    (0x11, "46701234567", 1),  # SME acknowledgement bits do not hide the receipt bits
])
def test_registered_delivery_decides_whether_a_receipt_comes(registered_delivery, to, receipts):
    h = Harness(SimSettings(receipt_delay=1.0, unreachable_prefixes=("4699",)))
    conn = h.bound()
    result(conn.submit(to=to, registered_delivery=registered_delivery))
    h.advance(10, conn)
    assert len(conn.esme.receipts) == receipts


def test_receipt_is_held_until_a_receiver_of_the_same_system_id_binds():
    h = Harness(SimSettings(receipt_delay=1.0))
    tx = h.bound("bind_transmitter", system_id="gw")
    other = h.bound("bind_receiver", system_id="someone-else")
    message_id = result(tx.submit()).params["message_id"]
    h.advance(3600, tx, other)
    assert h.sim.receipts_pending == 1
    assert other.esme.received == [] and tx.esme.received == []
    rx = h.bound("bind_receiver", system_id="gw")
    [r] = rx.esme.receipts
    assert r.tlvs["receipted_message_id"] == message_id
    assert h.sim.receipts_pending == 0 and h.sim.receipts_acked == 1


def test_receipts_go_round_robin_over_the_receivers_of_the_system_id():
    h = Harness(SimSettings(receipt_delay=1.0))
    a = h.bound()
    b = h.bound()
    for _ in range(4):
        result(a.submit())
    h.advance(1, a, b)
    got_a = [r.tlvs["receipted_message_id"] for r in a.esme.receipts]
    got_b = [r.tlvs["receipted_message_id"] for r in b.esme.receipts]
    assert len(got_a) == len(got_b) == 2
    assert sorted(got_a + got_b) == ["1a2b3c", "1a2b3d", "1a2b3e", "1a2b3f"]


def test_refused_receipt_is_retried_later_until_acknowledged():
    h = Harness(SimSettings(receipt_delay=1.0))
    conn = h.bound(esme=Esme(status=ESME_RX_T_APPN))
    result(conn.submit())
    h.advance(1, conn)
    assert len(conn.esme.receipts) == 1 and h.sim.receipts_acked == 0
    h.advance(h.sim.receipt_retry_delay - 0.5, conn)
    assert len(conn.esme.receipts) == 1
    conn.esme.status = ESME_ROK
    h.advance(0.5, conn)
    first, second = conn.esme.receipts
    assert second.tlvs == first.tlvs == {"receipted_message_id": "1a2b3c", "message_state": 2}
    assert h.sim.receipts_acked == 1 and h.sim.receipts_dropped == 0


def test_refused_receipt_is_dropped_after_the_bounded_attempts():
    h = Harness(SimSettings(receipt_delay=1.0))
    conn = h.bound(esme=Esme(status=ESME_RX_T_APPN))
    with capture_logs() as logs:
        result(conn.submit())
        h.advance(1, conn)
        for _ in range(10):
            h.advance(h.sim.receipt_retry_delay, conn)
    assert len(conn.esme.receipts) == h.sim.receipt_max_attempts == 5
    assert (h.sim.receipts_acked, h.sim.receipts_dropped, h.sim.receipts_pending) == (0, 1, 0)
    receipts = [e for e in logs if e["event"] in ("receipt not acknowledged, will retry", "receipt dropped")]
    assert [e["event"] for e in receipts] == ["receipt not acknowledged, will retry"] * 4 + ["receipt dropped"]
    assert all(e["smsc_message_id"] == "1a2b3c" and "message_id" not in e for e in receipts)


def test_unanswered_receipt_times_out_and_is_sent_again():
    h = Harness(SimSettings(receipt_delay=1.0))
    conn = h.bound(esme=Esme(status=None))
    result(conn.submit())
    h.advance(1, conn)
    assert len(conn.esme.receipts) == 1
    conn.esme.status = ESME_ROK
    for _ in range(int(h.sim.response_timeout + h.sim.receipt_retry_delay) + 1):
        h.advance(1, conn)
    assert len(conn.esme.receipts) == 2 and h.sim.receipts_acked == 1


def test_receipt_in_flight_when_the_receiver_drops_goes_to_another_receiver():
    h = Harness(SimSettings(receipt_delay=1.0))
    a = h.bound(esme=Esme(status=None))
    result(a.submit())
    h.advance(1, a)
    assert len(a.esme.receipts) == 1
    b = h.bound()
    a.client.transport.loseConnection()
    a.pump.flush()
    b.pump.flush()
    [r] = b.esme.receipts
    assert r.tlvs["receipted_message_id"] == "1a2b3c" and h.sim.receipts_acked == 1


def test_receipt_waits_for_a_free_window_slot_and_goes_when_a_response_frees_one():
    h = Harness(SimSettings(receipt_delay=1.0))
    h.sim.window = 1
    conn = h.bound(esme=Esme(status=None))
    mo = h.sim.inject_mo("46701234567", "72550", "hi")
    result(conn.submit())
    h.advance(1, conn)
    [held_mo] = conn.esme.received
    assert h.sim.receipts_pending == 1 and conn.esme.receipts == []
    conn.client.respond(held_mo, ESME_ROK)  # the MO's answer frees the only slot
    conn.pump.flush()
    assert result(mo) == "delivered"
    [r] = conn.esme.receipts
    assert r.tlvs["receipted_message_id"] == "1a2b3c" and h.sim.receipts_pending == 0


def test_each_part_of_a_concatenated_submit_has_its_own_id_and_receipt():
    h = Harness(SimSettings(receipt_delay=1.0))
    conn = h.bound()
    udh = [bytes((5, 0, 3, 0x42, 2, seq)) for seq in (1, 2)]
    texts = ["Part one of the text", "and here is part two"]
    ids = [result(conn.submit(text=u + gsm_encode(t), esm_class=0x40)).params["message_id"]
           for u, t in zip(udh, texts)]
    assert ids == ["1a2b3c", "1a2b3d"]
    assert [r.esm_class for r in h.sim.submits] == [0x40, 0x40]
    h.advance(1, conn)
    receipts = {r.tlvs["receipted_message_id"]: r.params["short_message"]
                for r in conn.esme.receipts}
    assert set(receipts) == set(ids)
    assert receipts["1a2b3c"].endswith(b"text:Part one of the text")
    assert receipts["1a2b3d"].endswith(b"text:and here is part two")


def test_throttle_refuses_submits_over_the_rate_within_one_second():
    h = Harness(SimSettings(receipt_delay=1.0, throttle_tps=2))
    conn = h.bound()
    assert result(conn.submit()).params["message_id"] == "1a2b3c"
    h.advance(0.5, conn)
    assert result(conn.submit()).params["message_id"] == "1a2b3d"
    assert failure_status(conn.submit()) == ESME_RTHROTTLED
    h.advance(0.5, conn)  # the first left the one-second window
    assert result(conn.submit()).params["message_id"] == "1a2b3e"
    assert failure_status(conn.submit()) == ESME_RTHROTTLED
    h.advance(5, conn)
    assert [r.message_id for r in h.sim.submits] == ["1a2b3c", "1a2b3d", "1a2b3e"]
    assert sorted(r.tlvs["receipted_message_id"] for r in conn.esme.receipts) == [
        "1a2b3c", "1a2b3d", "1a2b3e"]
    assert h.sim.throttled == 2


# --- stop --------------------------------------------------------------------------------------
def test_stop_unbinds_every_bound_esme_and_closes_every_connection():
    h = Harness()
    bound = h.bound()
    idle = h.connect()
    d = h.sim.stop()
    bound.pump.flush()
    idle.pump.flush()
    assert (bound.esme.unbound, idle.esme.unbound) == (1, 0)
    assert result(d) is None
    assert bound.esme.closed and idle.esme.closed and h.sim.bound == []
    late = h.connect()
    assert failure_status(late.send("bind_transceiver", {"system_id": "gw", "password": "secret"})
                          ) == ESME_RBINDFAIL


def test_stop_gives_up_on_an_esme_that_does_not_answer_unbind():
    h = Harness()
    conn = h.bound()
    conn.client.dataReceived = lambda data: None  # deaf: never answers
    d = h.sim.stop()
    conn.pump.flush()
    assert not d.called
    h.advance(h.sim.unbind_timeout, conn)
    assert result(d) is None and conn.esme.closed


def test_stop_cancels_scheduled_receipts():
    h = Harness()
    conn = h.bound()
    result(conn.submit())
    d = h.sim.stop()
    conn.pump.flush()
    result(d)
    assert h.clock.getDelayedCalls() == []
