"""Our codec against smpplib, an independent SMPP implementation, byte for byte and both ways:
what we encode smpplib parses to the same values, what smpplib generates we decode to the same
values. No sockets: smpplib's ``make_pdu(...).generate()`` and ``parse_pdu(bytes)`` suffice.

smpplib quirks met here (its bugs, not ours; worked around or tested against hand-built bytes):
* ``make_pdu(..., sequence=n)`` ignores ``sequence`` (its ``_set_vars`` only fills attributes that
  are None and the property reads the client's counter): we set ``pdu.sequence`` afterwards.
* Parsing a request calls ``client.next_sequence()``: we pass a small client object.
* smpplib returns C-strings as ``bytes`` and parses a C-string TLV by dropping its last octet, so a
  ``receipted_message_id`` sent without its trailing NUL loses its last character (``abc`` →
  ``ab``); see ``test_receipted_message_id_without_nul``.
* smpplib reads an integer TLV with the size of its own table, ignoring the TLV's length field.
"""

from __future__ import annotations

import smpplib.consts
import smpplib.smpp

from connectors.smpp.codec import PDU, decode, encode
from connectors.smpp.defs import ESME_RINVCMDID, ESME_RTHROTTLED


class _Client:
    """What smpplib's PDU classes want from a client: a sequence counter."""

    sequence = 0

    def next_sequence(self) -> int:
        self.sequence += 1
        return self.sequence


def theirs(command: str, sequence: int, **fields) -> bytes:
    pdu = smpplib.smpp.make_pdu(command, client=_Client(), **fields)
    pdu.sequence = sequence
    return pdu.generate()


def parse(data: bytes):
    return smpplib.smpp.parse_pdu(data, client=_Client())


UCS2_TEXT = "Привет, мир! ✓"
UCS2 = UCS2_TEXT.encode("utf-16-be")
RECEIPT = (b"id:0A1B2C sub:001 dlvrd:001 submit date:2401011200 done date:2401011201 "
           b"stat:DELIVRD err:000 text:hello")


# --- bind_transceiver(+resp) ----------------------------------------------------------------------
def test_bind_transceiver_ours_to_theirs():
    data = encode(PDU("bind_transceiver", 1, params={
        "system_id": "gateway", "password": "s3cret", "system_type": "SMPP",
        "interface_version": 0x34, "addr_ton": 1, "addr_npi": 1, "address_range": "4670"}))
    p = parse(data)
    assert (p.command, p.sequence, p.status) == ("bind_transceiver", 1, 0)
    assert (p.system_id, p.password, p.system_type) == (b"gateway", b"s3cret", b"SMPP")
    assert (p.interface_version, p.addr_ton, p.addr_npi, p.address_range) == (
        0x34, 1, 1, b"4670")


def test_bind_transceiver_theirs_to_ours():
    data = theirs("bind_transceiver", 1, system_id="gateway", password="s3cret",
                  system_type="SMPP", addr_ton=1, addr_npi=1, address_range="4670")
    assert decode(data) == PDU("bind_transceiver", 1, 0, {
        "system_id": "gateway", "password": "s3cret", "system_type": "SMPP",
        "interface_version": 0x34, "addr_ton": 1, "addr_npi": 1, "address_range": "4670"})
    assert encode(decode(data)) == data


def test_bind_transceiver_resp_both_ways():
    ours = encode(PDU("bind_transceiver_resp", 1, params={"system_id": "SMSC"},
                      tlvs={"sc_interface_version": 0x34}))
    p = parse(ours)
    assert (p.command, p.sequence, p.system_id, p.sc_interface_version) == (
        "bind_transceiver_resp", 1, b"SMSC", 0x34)
    data = theirs("bind_transceiver_resp", 1, system_id="SMSC", sc_interface_version=0x34)
    assert decode(data) == PDU("bind_transceiver_resp", 1, 0, {"system_id": "SMSC"},
                               {"sc_interface_version": 0x34})
    assert data == ours


# --- submit_sm(+resp) -----------------------------------------------------------------------------
SUBMIT_PARAMS = {
    "service_type": "", "source_addr_ton": 5, "source_addr_npi": 0, "source_addr": "Acme",
    "dest_addr_ton": 1, "dest_addr_npi": 1, "destination_addr": "46701234567", "esm_class": 0,
    "protocol_id": 0, "priority_flag": 1, "schedule_delivery_time": "",
    "validity_period": "000001000000000R", "registered_delivery": 1,
    "replace_if_present_flag": 0, "data_coding": 8, "sm_default_msg_id": 0, "short_message": UCS2,
}


def test_submit_sm_ucs2_ours_to_theirs():
    p = parse(encode(PDU("submit_sm", 1234, params=SUBMIT_PARAMS)))
    assert (p.command, p.sequence) == ("submit_sm", 1234)
    assert (p.source_addr_ton, p.source_addr, p.dest_addr_ton, p.dest_addr_npi) == (
        5, b"Acme", 1, 1)
    assert (p.destination_addr, p.priority_flag, p.validity_period) == (
        b"46701234567", 1, b"000001000000000R")
    assert (p.registered_delivery, p.data_coding, p.sm_length) == (1, 8, len(UCS2))
    assert p.short_message.decode("utf-16-be") == UCS2_TEXT


def test_submit_sm_ucs2_theirs_to_ours():
    data = theirs("submit_sm", 1234, **SUBMIT_PARAMS)
    pdu = decode(data)
    assert pdu == PDU("submit_sm", 1234, 0, SUBMIT_PARAMS, {})
    assert pdu.params["short_message"].decode("utf-16-be") == UCS2_TEXT
    assert encode(pdu) == data


SAR = {"sar_msg_ref_num": 0xBEEF, "sar_total_segments": 3, "sar_segment_seqnum": 2,
       "source_port": 9200, "destination_port": 2948, "user_message_reference": 77}


def test_submit_sm_with_tlvs_ours_to_theirs():
    data = encode(PDU("submit_sm", 5, params=SUBMIT_PARAMS, tlvs=SAR))
    p = parse(data)
    assert {k: getattr(p, k) for k in SAR} == SAR
    assert p.short_message == UCS2


def test_submit_sm_with_tlvs_theirs_to_ours():
    data = theirs("submit_sm", 5, **SUBMIT_PARAMS, **SAR)
    pdu = decode(data)
    assert pdu.tlvs == SAR and pdu.params == SUBMIT_PARAMS


def test_submit_sm_with_message_payload_both_ways():
    long_payload = "ü".encode("utf-16-be") * 200  # 400 octets: too long for short_message
    params = dict(SUBMIT_PARAMS, short_message=b"")
    ours = encode(PDU("submit_sm", 6, params=params, tlvs={"message_payload": long_payload}))
    p = parse(ours)
    assert (p.sm_length, p.message_payload) == (0, long_payload)
    data = theirs("submit_sm", 6, **params, message_payload=long_payload)
    assert decode(data).tlvs == {"message_payload": long_payload}
    assert data == ours


def test_submit_sm_resp_both_ways():
    ours = encode(PDU("submit_sm_resp", 1234, params={"message_id": "0A1B2C3D"}))
    p = parse(ours)
    assert (p.command, p.sequence, p.status, p.message_id) == (
        "submit_sm_resp", 1234, 0, b"0A1B2C3D")
    data = theirs("submit_sm_resp", 1234, message_id="0A1B2C3D")
    assert decode(data) == PDU("submit_sm_resp", 1234, 0, {"message_id": "0A1B2C3D"})
    assert data == ours


def test_submit_sm_resp_error_both_ways():
    ours = encode(PDU("submit_sm_resp", 9, ESME_RTHROTTLED))
    assert len(ours) == 16  # no body in an error response (SMPP 3.4 §4.4.2)
    p = parse(ours)
    assert (p.command, p.sequence, p.status) == ("submit_sm_resp", 9, ESME_RTHROTTLED)
    assert p.is_error()
    # smpplib writes an empty message_id (one NUL) even for an error; we accept that too.
    data = theirs("submit_sm_resp", 9, status=smpplib.consts.SMPP_ESME_RTHROTTLED)
    assert decode(data) == PDU("submit_sm_resp", 9, ESME_RTHROTTLED, {"message_id": ""})


# --- deliver_sm with a receipt --------------------------------------------------------------------
RECEIPT_PARAMS = {
    "service_type": "", "source_addr_ton": 1, "source_addr_npi": 1,
    "source_addr": "46701234567", "dest_addr_ton": 5, "dest_addr_npi": 0,
    "destination_addr": "Acme", "esm_class": 0x04, "protocol_id": 0, "priority_flag": 0,
    "schedule_delivery_time": "", "validity_period": "", "registered_delivery": 0,
    "replace_if_present_flag": 0, "data_coding": 0, "sm_default_msg_id": 0,
    "short_message": RECEIPT,
}
RECEIPT_TLVS = {"receipted_message_id": "0A1B2C", "message_state": 2,
                "network_error_code": b"\x03\x00\x00"}

#: RECEIPT_PARAMS as their wire bytes, built by hand.
RECEIPT_PARAMS_WIRE = (
    b"\x00" + b"\x01\x01" + b"46701234567\x00" + b"\x05\x00" + b"Acme\x00"
    + b"\x04\x00\x00" + b"\x00\x00" + b"\x00\x00\x00\x00" + bytes([len(RECEIPT)]) + RECEIPT
)


def test_deliver_sm_receipt_ours_to_theirs():
    p = parse(encode(PDU("deliver_sm", 77, params=RECEIPT_PARAMS, tlvs=RECEIPT_TLVS)))
    assert (p.command, p.sequence, p.esm_class, p.short_message) == (
        "deliver_sm", 77, 0x04, RECEIPT)
    assert (p.receipted_message_id, p.message_state, p.network_error_code) == (
        b"0A1B2C", 2, b"\x03\x00\x00")
    assert (p.source_addr, p.destination_addr) == (b"46701234567", b"Acme")


def test_deliver_sm_receipt_theirs_to_ours():
    data = theirs("deliver_sm", 77, **RECEIPT_PARAMS, **RECEIPT_TLVS)
    pdu = decode(data)
    assert pdu.params == RECEIPT_PARAMS
    assert pdu.tlvs == RECEIPT_TLVS
    assert encode(pdu) == data


def test_receipted_message_id_without_nul():
    # smpplib bug: its parser assumes the TLV length counts a NUL and drops the last octet.
    # Both sides are therefore tested against hand-built bytes, not against each other.
    body = RECEIPT_PARAMS_WIRE + bytes.fromhex("001e0006") + b"0A1B2C"
    wire = (16 + len(body)).to_bytes(4, "big") + bytes.fromhex("00000005000000000000004d") + body
    assert decode(wire).tlvs == {"receipted_message_id": "0A1B2C"}
    assert parse(wire).receipted_message_id == b"0A1B2"  # the bug, pinned so we notice a fix


def test_receipt_params_wire_matches_both_encoders():
    ours = encode(PDU("deliver_sm", 1, params=RECEIPT_PARAMS))
    assert ours[16:] == RECEIPT_PARAMS_WIRE
    assert theirs("deliver_sm", 1, **RECEIPT_PARAMS)[16:] == RECEIPT_PARAMS_WIRE


def test_deliver_sm_resp_both_ways():
    ours = encode(PDU("deliver_sm_resp", 77))
    p = parse(ours)
    assert (p.command, p.sequence, p.status, p.message_id) == ("deliver_sm_resp", 77, 0, b"")
    assert decode(theirs("deliver_sm_resp", 77)) == PDU("deliver_sm_resp", 77, 0,
                                                        {"message_id": ""})
    assert theirs("deliver_sm_resp", 77) == ours


# --- enquire_link, unbind, generic_nack -----------------------------------------------------------
def test_header_only_pdus_both_ways():
    cases = [("enquire_link", 11, 0), ("enquire_link_resp", 11, 0), ("unbind", 12, 0),
             ("unbind_resp", 12, 0), ("generic_nack", 13, ESME_RINVCMDID)]
    for command, sequence, status in cases:
        ours = encode(PDU(command, sequence, status))
        p = parse(ours)
        assert (p.command, p.sequence, p.status) == (command, sequence, status)
        data = theirs(command, sequence, status=status)
        assert decode(data) == PDU(command, sequence, status)
        assert data == ours == (16).to_bytes(4, "big") + ours[4:]
