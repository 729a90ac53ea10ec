"""OperatorLink receiving (``tests.smpp_link_rig``): receipts and MO from the SMSC, each answered
only once the core stored it."""

from __future__ import annotations

import pytest
import structlog
from structlog.testing import capture_logs
from twisted.internet.defer import Deferred, fail, succeed

from connectors.api import MoFacts, ReceiptOutcome
from connectors.smpp.addressing import decode_mo_text
from connectors.smpp.codec import PDU
from connectors.smpp.defs import ESME_ROK, ESME_RX_T_APPN
from connectors.smpp.inbound import InboundRequests
from connectors.smpp.link_settings import LinkSettings
from connectors.smpp.text import gsm_encode, gsm_pack
from tests.smpp_link_rig import Net


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


def test_a_receipt_status_not_understood_changes_nothing_and_is_a_warning():
    # SPEC §5: unknown is no receipt within receipt_timeout; a stat no table knows is no verdict
    net = Net()
    with capture_logs() as logs:
        net.smsc.deliver({"esm_class": 0x04, "short_message": RECEIPT_TEXT.replace(b"DELIVRD", b"BOGUS")})
        net.smsc.deliver({"esm_class": 0x04, "short_message": RECEIPT_TEXT})
        net.flush()
    (odd, _), (good, _) = net.listener.receipts
    assert (odd.outcome, odd.stat) == (ReceiptOutcome.ACCEPTED, "BOGUS") and good.outcome is ReceiptOutcome.DELIVERED
    [line] = [e for e in logs if e["log_level"] == "warning"]
    assert line["event"].startswith("receipt status not understood") and line["stat"] == "BOGUS"
    assert line["smsc_message_id"] == "0000A1B2"


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
    (bytes([9, 0, 3]) + b"xy", 0, True, False, "Ç@¥xy", None),  # a UDH longer than the data: read as text
    (bytes([3, 0, 7, 9]) + b"HELLO", 0, True, False, "HELLO", None),  # fits, its element does not: skipped
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


# --- answering fails --------------------------------------------------------------------------------
class _BrokenAnswers:
    """A connection whose answers raise (a bug, a transport gone wrong): ``answered`` lists the tries."""

    def __init__(self) -> None:
        self.answered: list[int] = []

    def respond(self, pdu, status, params=None) -> None:
        self.answered.append(status)
        raise ZeroDivisionError("a transport bug")


@pytest.mark.parametrize("stored, status", [(True, ESME_ROK), (False, ESME_RX_T_APPN)])
def test_an_answer_that_raises_is_logged_with_its_traceback_and_not_left_in_the_deferred(stored, status):
    """No errback follows the answer (one callback fewer for each receipt): each side logs what it
    raises itself, as ``receipt answer failed`` with the traceback, and nothing stays in the
    Deferred to surface later as an unhandled error."""
    d: Deferred = Deferred()
    listener = type("Listener", (), {"receipt_received": lambda self, facts: d})()
    with capture_logs() as logs:
        inbound = InboundRequests("telia", LinkSettings(host="smsc", port=2775), listener, structlog.get_logger())
        proto = _BrokenAnswers()
        inbound.received(proto, PDU("deliver_sm", 7, params={"esm_class": 0x04, "short_message": RECEIPT_TEXT}))
        d.callback(None) if stored else d.errback(RuntimeError("disk full"))
    assert proto.answered == [status]
    [entry] = [e for e in logs if e["event"] == "receipt answer failed"]
    assert entry["log_level"] == "error" and "ZeroDivisionError: a transport bug" in entry["error"]
    assert d.called and d.result is None
