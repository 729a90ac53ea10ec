"""The SMPP server for customers' ESMEs: deliver_sm to the account's receivers (round robin within
the window, the ESME's status, slow readers, lost connections).

Without sockets: our ESME-side ``SMPPProtocol`` plays the customer, wired through iosim, time is
a ``Clock``, the application a fake (tests/smpp_server_rig.py). Nothing sleeps."""

from __future__ import annotations

import pytest

from connectors.smpp.defs import ESME_ROK, ESME_RSYSERR, ESME_RX_P_APPN, ESME_RX_T_APPN
from connectors.smpp.deliver_fields import DeliverSm, receipt
from connectors.smpp.server import DeliveryResult
from tests.smpp_server_rig import RESPONSE_TIMEOUT, T0, WINDOW, Esme, Harness, result


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


def test_a_receipt_not_acknowledged_is_logged_with_its_message_id():
    """SPEC §9: ``message_id`` on every line about a message."""
    from structlog.testing import capture_logs

    h = Harness()
    h.bound(esme=Esme(status=ESME_RSYSERR))
    with capture_logs() as logs:
        assert result(h.deliver(ref="m-7")).done is False
    [line] = [e for e in logs if e["event"] == "deliver_sm not acknowledged"]
    assert (line["kind"], line["message_id"]) == ("receipt", "m-7") and "ref" not in line


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
    h.app.receiver_bound = lambda session: sent.append(h.deliver_item(
        session.account, receipt("w1", "failed", to="46701234567", sender="Acme",
                                 submitted_at=T0, done_at=T0, text="")))
    conn = h.bound("bind_receiver")
    h.flush()
    assert result(sent[0]).done and conn.esme.received[0].tlvs["message_state"] == 5


def test_a_deliver_sm_that_cannot_be_encoded_is_reported():
    h = Harness()
    h.bound()
    bad = DeliverSm({"source_addr": "x" * 30}, {}, "mo", "x")
    outcome = result(h.deliver_item("acme", bad))
    assert not outcome.done and outcome.reason.startswith("cannot encode")


def test_every_delivery_is_told_once_whichever_way_it_ends():
    """Answered, refused, timed out, its connection lost, its last receiver gone while it waited,
    or the server stopping: ``then`` hears of each delivery exactly once, with the arg it gave."""
    h = Harness()
    a = h.bound("bind_receiver", esme=Esme(status=None))
    b = h.bound("bind_receiver", esme=Esme(status=None))
    results = [h.deliver(ref=f"m{i}") for i in range(7)]  # a: m0 m2, b: m1 m3, m4-m6 wait
    a.esme.answer(ESME_ROK)
    a.esme.answer(ESME_RSYSERR)
    a.pump.flush()  # a took m4 and m5 from the queue
    h.wait(RESPONSE_TIMEOUT + 1)  # everything sent times out, m6 goes out and times out in turn
    h.wait(RESPONSE_TIMEOUT + 1)
    late = [h.deliver(ref=f"late{i}") for i in range(5)]
    b.client.transport.loseConnection()
    a.client.transport.loseConnection()
    h.flush()
    h.server.stop()
    stopped = h.deliver(ref="after")
    everything = results + late + [stopped]
    assert sorted(id(arg) for arg, _ in h.told) == sorted(id(d) for d in everything)
    assert [result(results[i]).reason for i in (0, 2, 1)] == ["acknowledged", "status ESME_RSYSERR", "timeout"]
    assert {result(d).reason for d in late} == {"connection lost", "no receiver bound"}
    assert result(stopped) == DeliveryResult(False, "server stopping")


def test_what_the_callback_raises_is_logged_and_the_outbox_goes_on():
    from structlog.testing import capture_logs

    h = Harness()
    conn = h.bound(esme=Esme(status=None))
    told = []

    def broken(outcome, ref):
        told.append((ref, outcome.reason))
        raise ZeroDivisionError("an application bug")

    with capture_logs() as logs:
        for ref in ("m0", "m1", "m2"):  # a window of 2: m2 waits
            h.server.deliver("acme", receipt(ref, "delivered", to="46701234567", sender="Acme",
                                             submitted_at=T0, done_at=T0, text=""), broken, ref)
        h.flush()
        conn.esme.answer()
        conn.pump.flush()  # m0 told; m2 goes out all the same
        assert [p.tlvs["receipted_message_id"] for p in conn.esme.received] == ["m0", "m1", "m2"]
        conn.client.transport.loseConnection()
        h.flush()
    assert told == [("m0", "acknowledged"), ("m1", "connection lost"), ("m2", "connection lost")]
    errors = [e for e in logs if e["event"] == "outbox error"]
    assert len(errors) == 3 and all(e["log_level"] == "error" and e["exc_info"] for e in errors)
