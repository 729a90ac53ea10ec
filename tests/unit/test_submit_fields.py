"""Reading a customer's submit_sm / data_sm (``submit_fields``) and SMPP times (``times``): every
refusal of SPEC §13 as its status, and round trips of times, text codings, UDH and SAR parts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.smpp.codec import PDU
from connectors.smpp.defs import (
    ESME_RINVESMCLASS,
    ESME_RINVEXPIRY,
    ESME_RINVMSGLEN,
    ESME_RINVOPTPARAMVAL,
    ESME_RINVREGDLVFLG,
    ESME_RINVSCHED,
    ESME_RMISSINGOPTPARAM,
    ESME_RSUBMITFAIL,
)
from connectors.smpp.submit_fields import (
    ReceiptRequest,
    SubmitRefused,
    decode_text,
    read_submit,
)
from connectors.smpp.text import (
    GSM_BASIC,
    GSM_EXTENSION,
    ConcatInfo,
    Encoding,
    concat_udh,
    gsm_encode,
    parse_udh,
)
from connectors.smpp.times import InvalidTime, format_absolute, parse_time

NOW = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC


def submit(short_message=b"Hello", command="submit_sm", tlvs=None, **params) -> PDU:
    base = {"source_addr": "Acme", "destination_addr": "46701234567",
            "short_message": short_message}
    if command == "data_sm":
        base.pop("short_message")
    base.update(params)
    return PDU(command, 1, params=base, tlvs=tlvs or {})


def refused(pdu: PDU) -> int:
    with pytest.raises(SubmitRefused) as info:
        read_submit(pdu, NOW)
    return info.value.status


# --- times ------------------------------------------------------------------------------------
def smpp_absolute(moment: datetime, quarters: int) -> str:
    """``moment`` written as local time at an offset of ``quarters`` quarter hours (signed)."""
    local = moment.astimezone(timezone(timedelta(minutes=15 * quarters)))
    sign = "-" if quarters < 0 else "+"
    return (local.strftime("%y%m%d%H%M%S") + str(local.microsecond // 100_000)
            + f"{abs(quarters):02d}{sign}")


def test_absolute_time_in_utc_and_with_offsets():
    assert parse_time("231114221320000+", NOW) == NOW
    assert parse_time("231115001320008+", NOW) == NOW  # 2 h ahead of UTC
    assert parse_time("231114201320008-", NOW) == NOW  # 2 h behind
    assert parse_time("231114221320500+", NOW) == NOW + 0.5


def test_relative_time_adds_calendar_months_and_fixed_days():
    assert parse_time("000001000000000R", NOW) == NOW + 86400
    assert parse_time("000000013005000R", NOW) == NOW + 3600 + 1800 + 5
    jan31 = datetime(2024, 1, 31, 12, tzinfo=UTC).timestamp()
    feb29 = datetime(2024, 2, 29, 12, tzinfo=UTC).timestamp()
    assert parse_time("000100000000000R", jan31) == feb29  # clamped to the month's end
    assert parse_time("010000000000000R", feb29) == datetime(2025, 2, 28, 12,
                                                             tzinfo=UTC).timestamp()


def test_empty_time_is_none():
    assert parse_time("", NOW) is None


@pytest.mark.parametrize("value", [
    "23111422132000+",  # 15 characters
    "2311142213200000+",  # 17
    "231114221320000X",  # unknown kind
    "2311142213200a0+",  # not a digit
    "231131221320000+",  # 31 November
    "231314221320000+",  # month 13
    "231114241320000+",  # hour 24
    "231114221320049+",  # offset over 48 quarter hours
    "２３1114221320000+",  # non-ASCII digits
])
def test_invalid_times(value):
    with pytest.raises(InvalidTime):
        parse_time(value, NOW)


@given(st.datetimes(min_value=datetime(2000, 1, 2), max_value=datetime(2099, 12, 30),
                    timezones=st.just(UTC)),
       st.integers(min_value=-48, max_value=48))
def test_absolute_round_trip_at_any_offset(moment, quarters):
    moment = moment.replace(microsecond=moment.microsecond // 100_000 * 100_000)
    assert parse_time(smpp_absolute(moment, quarters), NOW) == pytest.approx(moment.timestamp(),
                                                                            abs=1e-6)


@given(st.floats(min_value=946_771_200, max_value=4_102_358_400))  # 2000-01-02 .. 2099-12-30
def test_format_absolute_round_trips_to_the_tenth(epoch):
    value = format_absolute(epoch)
    assert len(value) == 16 and value.endswith("00+")
    assert epoch - 0.1 < parse_time(value, NOW) <= epoch + 1e-6


@given(st.integers(0, 99), st.integers(0, 23), st.integers(0, 59), st.integers(0, 59))
def test_relative_days_and_time_are_fixed_lengths(days, hours, minutes, seconds):
    value = f"0000{days:02d}{hours:02d}{minutes:02d}{seconds:02d}000R"
    assert parse_time(value, NOW) == pytest.approx(
        NOW + ((days * 24 + hours) * 60 + minutes) * 60 + seconds, abs=1e-6)


@given(st.text(max_size=20))
def test_any_string_parses_or_raises_invalid_time(value):
    try:
        parse_time(value, NOW)
    except InvalidTime:
        pass


# --- text and data_coding ---------------------------------------------------------------------
GSM_TEXT = "Hello {world} €5 @home ÄÖÜ"


@pytest.mark.parametrize("data_coding, payload, text, encoding", [
    (0, gsm_encode(GSM_TEXT), GSM_TEXT, Encoding.GSM7),
    (1, b"plain ASCII `~", "plain ASCII `~", Encoding.LATIN1),
    (3, "café naïve".encode("latin-1"), "café naïve", Encoding.LATIN1),
    (8, "Привет ✓ 😀".encode("utf-16-be"), "Привет ✓ 😀", Encoding.UCS2),
])
def test_each_data_coding_is_decoded(data_coding, payload, text, encoding):
    message = read_submit(submit(payload, data_coding=data_coding), NOW)
    assert (message.text, message.encoding, message.payload) == (text, encoding, payload)


@pytest.mark.parametrize("data_coding", [2, 4, 5, 6, 7, 9, 0x10, 0xF0, 0xF4, 0xFF])
def test_other_data_codings_are_refused(data_coding):
    assert refused(submit(b"abc", data_coding=data_coding)) == ESME_RSUBMITFAIL


@pytest.mark.parametrize("data_coding, payload", [(0, b"abc\x80"), (1, b"caf\xe9"),
                                                  (8, b"\x00a\x00")])
def test_octets_the_coding_cannot_hold_are_refused(data_coding, payload):
    assert refused(submit(payload, data_coding=data_coding)) == ESME_RSUBMITFAIL


@pytest.mark.parametrize("data_coding, text", [(0, "à"), (1, "\x7f")])
def test_seven_bit_codings_take_every_octet_up_to_0x7f(data_coding, text):
    assert read_submit(submit(bytes(range(0x80)), data_coding=data_coding), NOW).text[-1] == text


@given(st.text(alphabet=st.characters(codec="utf-16", exclude_categories=("Cs",)), max_size=70))
def test_ucs2_round_trip(text):
    assert decode_text(text.encode("utf-16-be"), 8) == (text, Encoding.UCS2)


@given(st.text(alphabet=st.characters(codec="latin-1"), max_size=140))
def test_latin1_round_trip(text):
    assert decode_text(text.encode("latin-1"), 3) == (text, Encoding.LATIN1)


GSM_CHARACTERS = sorted(set(GSM_BASIC.replace("\x1b", "")) | set(GSM_EXTENSION.values()))


@given(st.text(alphabet=st.sampled_from(GSM_CHARACTERS), max_size=80))
def test_gsm_round_trip(text):
    assert decode_text(gsm_encode(text), 0) == (text, Encoding.GSM7)


def test_message_payload_carries_long_text():
    long_text = "x" * 400
    message = read_submit(submit(b"", tlvs={"message_payload": long_text.encode()},
                                 data_coding=1), NOW)
    assert message.text == long_text


def test_data_sm_reads_message_payload():
    pdu = submit(command="data_sm", tlvs={"message_payload": "Hej då".encode("latin-1")},
                 data_coding=3, registered_delivery=1)
    message = read_submit(pdu, NOW)
    assert (message.text, message.receipts, message.send_at) == ("Hej då", ReceiptRequest.ALL,
                                                                  None)


def test_empty_text_and_text_in_both_places_are_refused():
    assert refused(submit(b"")) == ESME_RINVMSGLEN
    assert refused(submit(b"a", tlvs={"message_payload": b"b"})) == ESME_RSUBMITFAIL


def test_addresses_are_passed_on_as_given():
    message = read_submit(submit(source_addr="+4670 not validated", destination_addr="x"), NOW)
    assert (message.source, message.destination) == ("+4670 not validated", "x")


# --- UDH and SAR ------------------------------------------------------------------------------
def test_udh_part_keeps_its_udh_and_concat():
    udh = concat_udh(0x42, 3, 2)
    message = read_submit(submit(udh + gsm_encode("part two"), esm_class=0x40), NOW)
    assert (message.udh, message.concat, message.text) == (udh, ConcatInfo(0x42, 3, 2),
                                                           "part two")


def test_udh_with_other_elements_is_kept_whole():
    udh = bytes([0x0B, 0x05, 0x04, 0x0B, 0x84, 0x23, 0xF0, 0x00, 0x03, 0x07, 0x02, 0x01])
    message = read_submit(submit(udh + b"ab", esm_class=0x40, data_coding=3), NOW)
    assert (message.udh, message.concat, message.text) == (udh, ConcatInfo(7, 2, 1), "ab")


def test_udh_that_runs_past_the_data_is_refused():
    assert refused(submit(b"\x05\x00\x03\x01", esm_class=0x40)) == ESME_RINVESMCLASS


def sar(ref, total, seq) -> dict:
    return {"sar_msg_ref_num": ref, "sar_total_segments": total, "sar_segment_seqnum": seq}


@pytest.mark.parametrize("ref, udh_length", [(7, 6), (0x1234, 7)])
def test_sar_tlvs_become_a_udh(ref, udh_length):
    message = read_submit(submit(gsm_encode("first"), tlvs=sar(ref, 2, 1)), NOW)
    assert len(message.udh) == udh_length
    assert parse_udh(message.udh + message.payload) == (ConcatInfo(ref, 2, 1), b"first")
    assert message.concat == ConcatInfo(ref, 2, 1) and message.text == "first"


def test_other_tlvs_without_sar_leave_the_text_whole():
    message = read_submit(submit(b"Hello", tlvs={"user_message_reference": 7}), NOW)
    assert (message.udh, message.concat, message.payload) == (b"", None, b"Hello")


def test_udhi_wins_over_sar_tlvs():
    udh = concat_udh(9, 2, 2)
    message = read_submit(submit(udh + b"x", esm_class=0x40, tlvs=sar(1, 3, 1)), NOW)
    assert message.concat == ConcatInfo(9, 2, 2) and message.udh == udh


def test_partial_or_impossible_sar_is_refused():
    assert refused(submit(tlvs={"sar_msg_ref_num": 1, "sar_total_segments": 2})) == (
        ESME_RMISSINGOPTPARAM)
    assert refused(submit(tlvs=sar(1, 2, 3))) == ESME_RINVOPTPARAMVAL
    assert refused(submit(tlvs=sar(1, 2, 0))) == ESME_RINVOPTPARAMVAL


@pytest.mark.parametrize("data_coding, unit, room", [
    (0, "a", 153),  # GSM: 160 septets less 7 for a 6-octet UDH
    (3, "a", 134),  # 140 octets less the UDH
    (8, "ы", 67),  # 134 octets of UCS-2
])
def test_sar_part_without_room_for_its_udh(data_coding, unit, room):
    encode = {0: gsm_encode, 3: lambda t: t.encode("latin-1"),
              8: lambda t: t.encode("utf-16-be")}[data_coding]
    fits = submit(encode(unit * room), tlvs=sar(5, 2, 1), data_coding=data_coding)
    assert read_submit(fits, NOW).text == unit * room
    too_long = submit(encode(unit * (room + 1)), tlvs=sar(5, 2, 1), data_coding=data_coding)
    assert refused(too_long) == ESME_RINVMSGLEN


def test_sar_with_a_16_bit_reference_leaves_one_less():
    assert refused(submit(gsm_encode("a" * 153), tlvs=sar(0x1234, 2, 1))) == ESME_RINVMSGLEN
    assert read_submit(submit(gsm_encode("a" * 152), tlvs=sar(0x1234, 2, 1)), NOW).concat


def test_long_text_without_concatenation_is_left_to_the_core():
    assert len(read_submit(submit(gsm_encode("a" * 254)), NOW).text) == 254


@given(st.integers(0, 0xFFFF), st.integers(1, 255).flatmap(
    lambda total: st.tuples(st.just(total), st.integers(1, total))))
def test_sar_round_trip(ref, total_seq):
    total, seq = total_seq
    message = read_submit(submit(b"txt", tlvs=sar(ref, total, seq), data_coding=1), NOW)
    assert parse_udh(message.udh + message.payload) == (ConcatInfo(ref, total, seq), b"txt")


# --- schedule, validity, receipts -------------------------------------------------------------
def test_schedule_and_validity_become_epochs():
    message = read_submit(submit(schedule_delivery_time="000000010000000R",
                                 validity_period="231115221320000+"), NOW)
    assert (message.send_at, message.expires_at) == (NOW + 3600, NOW + 86400)


def test_empty_schedule_and_validity_are_none():
    message = read_submit(submit(schedule_delivery_time="", validity_period=""), NOW)
    assert (message.send_at, message.expires_at) == (None, None)
    assert refused(submit(schedule_delivery_time=" ", validity_period="")) == ESME_RINVSCHED
    assert refused(submit(schedule_delivery_time="", validity_period=" ")) == ESME_RINVEXPIRY


def test_bad_schedule_and_validity_have_their_own_status():
    assert refused(submit(schedule_delivery_time="nonsense")) == ESME_RINVSCHED
    assert refused(submit(validity_period="231131000000000+")) == ESME_RINVEXPIRY


@pytest.mark.parametrize("registered_delivery, wanted", [
    (0, ReceiptRequest.NONE), (1, ReceiptRequest.ALL), (2, ReceiptRequest.FAILURES),
    (0x10, ReceiptRequest.NONE), (0x11, ReceiptRequest.ALL), (0x1E, ReceiptRequest.FAILURES),
])
def test_registered_delivery_bits(registered_delivery, wanted):
    assert read_submit(submit(registered_delivery=registered_delivery), NOW).receipts is wanted


def test_reserved_registered_delivery_is_refused():
    assert refused(submit(registered_delivery=3)) == ESME_RINVREGDLVFLG


def test_receipt_request_decides_which_outcomes_get_a_receipt():
    finals = ["delivered", "failed", "expired", "stopped", "rejected", "unknown"]
    assert [ReceiptRequest.ALL.wants(s) for s in finals] == [True] * 6
    assert [ReceiptRequest.FAILURES.wants(s) for s in finals] == [False] + [True] * 5
    assert not any(ReceiptRequest.NONE.wants(s) for s in finals)
