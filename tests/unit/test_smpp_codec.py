"""The SMPP codec: one table of (PDU, wire bytes) drives encoder and decoder (h11's test_io idea),
then every decode error path, the leniencies, and every encode refusal."""

from __future__ import annotations

import pytest

from connectors.smpp import defs
from connectors.smpp.codec import (
    NEED_DATA,
    PDU,
    Decoder,
    EncodeError,
    FatalDecodeError,
    LocalProtocolError,
    RecoverableDecodeError,
    decode,
    encode,
)
from connectors.smpp.defs import (
    ESME_RINVCMDID,
    ESME_RINVCMDLEN,
    ESME_RINVMSGLEN,
    ESME_RINVOPTPARSTREAM,
    ESME_RINVPARLEN,
    ESME_RTHROTTLED,
)


def full(command: str, sequence: int, status: int = 0, tlvs: dict | None = None, **params) -> PDU:
    """The PDU as the decoder returns it: every body field present, zero when not given."""
    zero = {defs.CSTRING: "", defs.INT: 0, defs.SM: b""}
    values = {f.name: zero[f.kind] for f in defs.BODIES[command]}
    assert set(params) <= set(values), set(params) - set(values)
    values.update(params)
    return PDU(command, sequence, status, values, tlvs or {})


def h(text: str) -> bytes:
    return bytes.fromhex("".join(text.split()))


SUBMIT_BODY = (
    "00"  # service_type ''
    "05 00 41636d6500"  # source TON 5, NPI 0, 'Acme'
    "01 01 343637303132333435363700"  # dest TON 1, NPI 1, '46701234567'
    "40 00 00"  # esm_class 0x40 (UDHI), protocol_id, priority_flag
    "00 00"  # schedule_delivery_time, validity_period
    "01 00 08 00"  # registered_delivery 1, replace_if_present 0, data_coding 8, sm_default_msg_id
    "04 00680069"  # sm_length 4, short_message UCS-2 'hi'
)

#: (id, PDU as decoded, wire bytes). Encoding the PDU gives the bytes; decoding gives the PDU.
WIRE = [
    ("enquire_link", full("enquire_link", 7), h("00000010 00000015 00000000 00000007")),
    ("enquire_link_resp", full("enquire_link_resp", 7), h("00000010 80000015 00000000 00000007")),
    ("unbind", full("unbind", 8), h("00000010 00000006 00000000 00000008")),
    ("unbind_resp", full("unbind_resp", 8), h("00000010 80000006 00000000 00000008")),
    ("generic_nack", full("generic_nack", 9, status=ESME_RINVCMDID),
     h("00000010 80000000 00000003 00000009")),
    ("bind_transceiver",
     full("bind_transceiver", 1, system_id="user", password="secret", system_type="VMA",
          interface_version=0x34, addr_ton=1, addr_npi=1, address_range="467"),
     h("00000027 00000009 00000000 00000001 7573657200 73656372657400 564d4100 34 01 01 34363700")),
    ("bind_transceiver_resp",
     full("bind_transceiver_resp", 1, system_id="SMSC", tlvs={"sc_interface_version": 0x34}),
     h("0000001a 80000009 00000000 00000001 534d534300 0210 0001 34")),
    ("bind_transmitter_resp_error_no_body",
     full("bind_transmitter_resp", 2, status=defs.ESME_RINVPASWD),
     h("00000010 80000002 0000000e 00000002")),
    ("submit_sm",
     full("submit_sm", 0x7FFFFFFF, source_addr_ton=5, source_addr="Acme", dest_addr_ton=1,
          dest_addr_npi=1, destination_addr="46701234567", esm_class=0x40,
          registered_delivery=1, data_coding=8, short_message=b"\x00h\x00i"),
     h("00000034 00000004 00000000 7fffffff" + SUBMIT_BODY)),
    ("submit_sm_tlvs",
     full("submit_sm", 3, source_addr_ton=5, source_addr="Acme", dest_addr_ton=1,
          dest_addr_npi=1, destination_addr="46701234567", esm_class=0x40,
          registered_delivery=1, data_coding=8, short_message=b"\x00h\x00i",
          tlvs={"sar_msg_ref_num": 0x1234, "sar_total_segments": 2, "sar_segment_seqnum": 1,
                "message_payload": b"\x01\x02", 0x1401: b"vendor"}),
     h("00000054 00000004 00000000 00000003" + SUBMIT_BODY
       + "020c 0002 1234  020e 0001 02  020f 0001 01  0424 0002 0102  1401 0006 76656e646f72")),
    ("submit_sm_resp", full("submit_sm_resp", 3, message_id="5a1f"),
     h("00000015 80000004 00000000 00000003 3561316600")),
    ("submit_sm_resp_error_no_body", full("submit_sm_resp", 4, status=ESME_RTHROTTLED),
     h("00000010 80000004 00000058 00000004")),
    ("deliver_sm_receipt",
     full("deliver_sm", 10, source_addr_ton=1, source_addr_npi=1, source_addr="46701234567",
          destination_addr="Acme", esm_class=0x04,
          short_message=b"id:5a1f stat:DELIVRD err:000",
          tlvs={"receipted_message_id": "5a1f", "message_state": 2,
                "network_error_code": b"\x03\x00\x00"}),
     h("00000061 00000005 00000000 0000000a"
       "00 01 01 343637303132333435363700 00 00 41636d6500 04 00 00 00 00 00 00 00 00"
       "1c 69643a3561316620737461743a44454c49565244206572723a303030"
       "001e 0005 3561316600  0427 0001 02  0423 0003 030000")),
    ("deliver_sm_resp", full("deliver_sm_resp", 10), h("00000011 80000005 00000000 0000000a 00")),
    ("data_sm",
     full("data_sm", 11, source_addr="a", destination_addr="b", data_coding=4,
          tlvs={"message_payload": b"\xff"}),
     h("00000021 00000103 00000000 0000000b 00 00 00 6100 00 00 6200 00 00 04 0424 0001 ff")),
    ("alert_on_message_delivery_flag",
     full("data_sm", 12, tlvs={"alert_on_message_delivery": True}),
     h("0000001e 00000103 00000000 0000000c 00 00 00 00 00 00 00 00 00 00 130c 0000")),
]


@pytest.mark.parametrize("pdu, wire", [c[1:] for c in WIRE], ids=[c[0] for c in WIRE])
def test_encode_gives_the_wire_bytes(pdu, wire):
    assert encode(pdu) == wire


@pytest.mark.parametrize("pdu, wire", [c[1:] for c in WIRE], ids=[c[0] for c in WIRE])
def test_decode_gives_the_pdu(pdu, wire):
    assert decode(wire) == pdu


def test_stream_fed_one_byte_at_a_time_yields_every_pdu_in_order():
    stream = b"".join(wire for _, _, wire in WIRE)
    decoder = Decoder()
    got = []
    for i in range(len(stream)):
        decoder.feed(stream[i:i + 1])
        while (pdu := decoder.next_pdu()) is not NEED_DATA:
            got.append(pdu)
    assert got == [pdu for _, pdu, _ in WIRE]
    assert decoder.buffered == 0


def test_stream_fed_in_one_chunk_yields_every_pdu_then_need_data():
    decoder = Decoder()
    decoder.feed(b"".join(wire for _, _, wire in WIRE))
    got = [decoder.next_pdu() for _ in WIRE]
    assert got == [pdu for _, pdu, _ in WIRE]
    assert not decoder._buf  # the last frame ended the buffer: nothing read is kept
    assert decoder.next_pdu() is NEED_DATA


def _sample(field: defs.Field, index: int):
    if field.kind == defs.CSTRING:
        return (field.name * 8)[: field.size - 1]  # exactly the SMPP maximum
    if field.kind == defs.INT:
        return (1 << (8 * field.size)) - 1 - index  # near the top of its range
    return bytes(range(field.size))  # a full 254-octet short_message


@pytest.mark.parametrize("command", sorted(defs.BODIES))
def test_every_command_round_trips_with_every_field_at_its_maximum(command):
    body = defs.BODIES[command]
    pdu = full(command, 42, **{f.name: _sample(f, i) for i, f in enumerate(body)})
    wire = encode(pdu)
    expected_length = 16 + sum(f.size if f.kind != defs.SM else f.size + 1 for f in body)
    assert len(wire) == expected_length
    assert wire[4:8] == defs.COMMAND_IDS[command].to_bytes(4, "big")
    assert decode(wire) == pdu


def test_missing_params_encode_as_zero_values():
    assert encode(PDU("submit_sm", 1)) == h("00000021 00000004 00000000 00000001" + "00" * 17)
    assert decode(encode(PDU("submit_sm", 1))) == full("submit_sm", 1)


def test_sm_length_is_derived_and_never_a_param():
    wire = encode(PDU("submit_sm", 1, params={"short_message": b"abc"}))
    assert wire[-4:] == b"\x03abc"
    assert "sm_length" not in decode(wire).params
    with pytest.raises(EncodeError, match="sm_length"):
        encode(PDU("submit_sm", 1, params={"sm_length": 3, "short_message": b"abc"}))


def test_is_response():
    assert PDU("submit_sm_resp", 1).is_response and PDU("generic_nack", 1).is_response
    assert not PDU("submit_sm", 1).is_response


# --- decode errors --------------------------------------------------------------------------------
def _decode_error(wire: bytes, decoder: Decoder | None = None):
    decoder = decoder or Decoder()
    decoder.feed(wire)
    with pytest.raises((RecoverableDecodeError, FatalDecodeError)) as info:
        decoder.next_pdu()
    return info.value


@pytest.mark.parametrize("length", [0, 1, 15])
def test_command_length_below_16_is_fatal_and_stays_fatal(length):
    decoder = Decoder()
    err = _decode_error(length.to_bytes(4, "big"), decoder)
    assert isinstance(err, FatalDecodeError)
    assert (err.sequence, err.status) == (None, ESME_RINVCMDLEN)
    assert str(length) in err.reason
    decoder.feed(WIRE[0][2])
    with pytest.raises(FatalDecodeError):
        decoder.next_pdu()


def test_command_length_above_max_is_fatal_after_four_octets():
    decoder = Decoder(max_length=1000)
    decoder.feed(b"\x00\x00\x03")
    assert decoder.next_pdu() is NEED_DATA
    err = _decode_error(b"\xe9", decoder)  # 0x3e9 = 1001
    assert isinstance(err, FatalDecodeError)
    assert err.status == ESME_RINVCMDLEN and "1001" in err.reason


def test_command_length_at_max_is_accepted():
    wire = encode(PDU("data_sm", 1, tlvs={"message_payload": b"x" * 970}))
    assert len(wire) == 1000
    decoder = Decoder(max_length=1000)
    decoder.feed(wire)
    assert decoder.next_pdu().tlvs["message_payload"] == b"x" * 970


def test_default_max_length_is_64_kib():
    assert Decoder().max_length == 65536
    err = _decode_error((65537).to_bytes(4, "big"))
    assert isinstance(err, FatalDecodeError)


def _then_decodes_next(decoder: Decoder) -> None:
    """After a recoverable error the frame is gone and the next PDU decodes."""
    decoder.feed(WIRE[0][2])
    assert decoder.next_pdu() == WIRE[0][1]
    assert decoder.next_pdu() is NEED_DATA


RECOVERABLE = [
    ("unknown_command_id", h("00000014 00000077 00000000 00000021 deadbeef"),
     0x21, ESME_RINVCMDID, "0x00000077"),
    ("submit_multi_has_no_body_definition", h("00000011 00000021 00000000 00000022 00"),
     0x22, ESME_RINVCMDID, "submit_multi"),
    ("cstring_without_nul", h("00000013 00000004 00000000 00000023 616263"),
     0x23, ESME_RINVCMDLEN, "service_type"),
    ("int_field_past_end", h("00000013 00000004 00000000 00000024 00 05 41"),
     0x24, ESME_RINVCMDLEN, "source_addr"),
    ("int_run_past_end", h("00000012 00000004 00000000 00000025 00 05"),
     0x25, ESME_RINVCMDLEN, "source_addr_ton"),
    ("request_without_body", h("00000010 00000004 00000000 00000026"),
     0x26, ESME_RINVCMDLEN, "without its body"),
    ("sm_length_missing", h("0000002f 00000004 00000000 00000027" + SUBMIT_BODY[:-11]),
     0x27, ESME_RINVCMDLEN, "sm_length"),
    ("sm_length_past_end", h("00000033 00000004 00000000 00000028" + SUBMIT_BODY[:-2]),
     0x28, ESME_RINVMSGLEN, "sm_length 4"),
    ("tlv_header_truncated", h("00000015 80000004 00000000 00000029 6100 0427 00"),
     0x29, ESME_RINVOPTPARSTREAM, "stray"),
    ("tlv_value_past_end", h("00000018 80000004 00000000 0000002a 6100 001e 0005 6162"),
     0x2A, ESME_RINVOPTPARSTREAM, "001E"),
    ("int_tlv_empty", h("00000016 80000004 00000000 0000002b 6100 0427 0000"),
     0x2B, ESME_RINVPARLEN, "message_state"),
    ("int_tlv_too_long", h("0000001b 80000004 00000000 0000002c 6100 0427 0005 0000000002"),
     0x2C, ESME_RINVPARLEN, "message_state"),
]


@pytest.mark.parametrize("wire, sequence, status, reason", [c[1:] for c in RECOVERABLE],
                         ids=[c[0] for c in RECOVERABLE])
def test_recoverable_decode_errors_consume_the_frame(wire, sequence, status, reason):
    assert int.from_bytes(wire[:4], "big") == len(wire)  # the framing itself is right
    decoder = Decoder()
    err = _decode_error(wire, decoder)
    assert isinstance(err, RecoverableDecodeError)
    assert (err.sequence, err.status) == (sequence, status)
    assert err.command_id == int.from_bytes(wire[4:8], "big")
    assert reason in err.reason
    _then_decodes_next(decoder)


def test_decode_refuses_anything_but_exactly_one_frame():
    with pytest.raises(FatalDecodeError):
        decode(WIRE[0][2] + b"\x00")
    with pytest.raises(FatalDecodeError):
        decode(b"\x00\x00")


# --- leniency -------------------------------------------------------------------------------------
def test_receipted_message_id_without_nul_keeps_its_last_character():
    wire = h("0000001d 80000103 00000000 00000005 00 001e 0008 3041424344454647")
    assert decode(wire).tlvs == {"receipted_message_id": "0ABCDEFG"}


def test_cstring_tlv_stops_at_its_nul():
    wire = h("0000001b 80000103 00000000 00000005 00 001e 0006 616263006465")
    assert decode(wire).tlvs["receipted_message_id"] == "abc"


def test_cstring_longer_than_its_maximum_is_accepted_when_nul_terminated():
    long_id = "x" * 70  # message_id is at most 64 characters in SMPP 3.4
    body = long_id.encode() + b"\0"
    wire = (16 + len(body)).to_bytes(4, "big") + h("80000004 00000000 00000001") + body
    assert decode(wire).params == {"message_id": long_id}


def test_cstring_fields_decode_odd_bytes_as_latin1():
    wire = h("00000013 80000004 00000000 00000001 ff8000")
    assert decode(wire).params == {"message_id": "\xff\x80"}


def test_response_message_id_without_nul_at_end_of_frame_is_accepted():
    wire = h("00000013 80000004 00000000 00000001 616263")
    assert decode(wire).params == {"message_id": "abc"}


def test_empty_body_response_with_status_zero_decodes_with_zero_fields():
    assert decode(h("00000010 80000009 00000000 00000001")) == full("bind_transceiver_resp", 1)


def test_integer_tlv_of_another_size_is_read_whole():
    wire = h("00000017 80000103 00000000 00000005 00 0427 0002 0102")
    assert decode(wire).tlvs == {"message_state": 0x0102}


def test_non_empty_flag_tlv_keeps_its_bytes():
    wire = h("00000016 80000103 00000000 00000005 00 130c 0001 01")
    pdu = decode(wire)
    assert pdu.tlvs == {"alert_on_message_delivery": b"\x01"}
    assert encode(pdu) == wire


def test_unknown_tlvs_are_kept_raw_and_re_encoded_unchanged_in_order():
    wire = h("00000030 80000103 00000000 00000005 00"
             "1400 0003 616263  0427 0001 02  fffe 0000  0005 0001 07  2222 0006 000000000000")
    pdu = decode(wire)
    assert list(pdu.tlvs.items()) == [
        (0x1400, b"abc"), ("message_state", 2), (0xFFFE, b""), ("dest_addr_subunit", 7),
        (0x2222, b"\0" * 6)]
    assert encode(pdu) == wire


def test_tlvs_are_accepted_on_any_command():
    wire = h("00000015 00000015 00000000 00000001 0427 0001 05")
    assert decode(wire).tlvs == {"message_state": 5}


# --- encode refusals (we broke it) ---------------------------------------------------------------
ENCODE_ERRORS = [
    ("int_too_big", PDU("submit_sm", 1, params={"esm_class": 256}), "esm_class=256"),
    ("int_negative", PDU("submit_sm", 1, params={"data_coding": -1}), "data_coding=-1"),
    ("int_not_int", PDU("submit_sm", 1, params={"data_coding": "8"}), "data_coding='8'"),
    ("sequence_too_big", PDU("enquire_link", 1 << 32), "sequence=4294967296"),
    ("status_negative", PDU("submit_sm_resp", 1, -1), "status=-1"),
    ("cstring_too_long", PDU("submit_sm", 1, params={"destination_addr": "1" * 21}),
     "destination_addr"),
    ("cstring_not_latin1", PDU("submit_sm", 1, params={"source_addr": "Ω"}), "Latin-1"),
    ("cstring_with_nul", PDU("submit_sm", 1, params={"source_addr": "a\0b"}), "NUL"),
    ("short_message_too_long", PDU("submit_sm", 1, params={"short_message": b"x" * 255}), "255"),
    ("short_message_str", PDU("submit_sm", 1, params={"short_message": "hi"}), "bytes"),
    ("cstring_given_an_int", PDU("submit_sm", 1, params={"destination_addr": 46701234567}),
     "int"),
    ("octet_tlv_given_an_int", PDU("submit_sm", 1, tlvs={"message_payload": 10**12}), "int"),
    ("raw_tlv_given_an_int", PDU("submit_sm", 1, tlvs={0x1400: 10**12}), "int"),
    ("unknown_param", PDU("submit_sm", 1, params={"destination": "4670"}), "destination"),
    ("unknown_tlv_name", PDU("submit_sm", 1, tlvs={"sar_ref": 1}), "sar_ref"),
    ("int_tlv_out_of_range", PDU("submit_sm", 1, tlvs={"sar_total_segments": 256}),
     "sar_total_segments=256"),
    ("cstring_tlv_too_long", PDU("deliver_sm", 1, tlvs={"receipted_message_id": "x" * 65}),
     "receipted_message_id"),
    ("octet_tlv_too_long", PDU("deliver_sm", 1, tlvs={"network_error_code": b"\0" * 4}),
     "network_error_code"),
    ("raw_tlv_tag_too_big", PDU("deliver_sm", 1, tlvs={0x10000: b""}), "tag"),
    ("unknown_command", PDU("submit_sm2", 1), "submit_sm2"),
    ("command_without_body_definition", PDU("submit_multi", 1), "submit_multi"),
]


@pytest.mark.parametrize("pdu, words", [c[1:] for c in ENCODE_ERRORS],
                         ids=[c[0] for c in ENCODE_ERRORS])
def test_encode_refuses_what_does_not_fit(pdu, words):
    with pytest.raises(EncodeError, match=words) as info:
        encode(pdu)
    assert isinstance(info.value, ValueError) and isinstance(info.value, LocalProtocolError)


def test_cstring_at_its_maximum_is_encoded_whole():
    wire = encode(PDU("submit_sm_resp", 1, params={"message_id": "x" * 64}))
    assert wire[16:] == b"x" * 64 + b"\0"


def test_error_response_with_params_keeps_its_body():
    wire = encode(PDU("submit_sm_resp", 1, ESME_RTHROTTLED, {"message_id": "a"}))
    assert wire == h("00000012 80000004 00000058 00000001 6100")


def test_status_names():
    assert defs.status_name(ESME_RTHROTTLED) == "ESME_RTHROTTLED"
    assert defs.status_name(0x400) == "0x00000400"
    assert defs.STATUS_NAMES[0xC0] == "ESME_RINVOPTPARSTREAM"
    assert len(defs.STATUS_NAMES) == 48


def test_response_of_table():
    assert defs.RESPONSE_OF["submit_sm"] == "submit_sm_resp"
    assert "outbind" not in defs.RESPONSE_OF and "alert_notification" not in defs.RESPONSE_OF
    assert "generic_nack" in defs.RESPONSES and "submit_sm" not in defs.RESPONSES
