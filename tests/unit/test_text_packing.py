"""connectors.smpp.text, continued: 7-bit packing and the UDH (GSM tables, choosing the encoding
and splitting: test_text.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.smpp.text import (
    ConcatInfo,
    Encoding,
    InvalidUDH,
    concat_udh,
    gsm_encode,
    gsm_fill_bits,
    gsm_pack,
    gsm_unpack,
    parse_udh,
)


# --- 7-bit packing --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, fill_bits, packed_hex",
    [
        ("hellohello", 0, "E8329BFD4697D9EC37"),
        ("", 0, ""),
        ("a", 0, "61"),
        ("1234567", 0, "31D98C56B3DD1A"),  # 7 spare bits -> CR padding: last octet 0x1A
        ("12345678", 0, "31D98C56B3DD70"),
        ("a", 1, "C2"),
    ],
)
def test_known_packed_vectors(text, fill_bits, packed_hex):
    assert gsm_pack(gsm_encode(text), fill_bits).hex().upper() == packed_hex
    assert gsm_unpack(bytes.fromhex(packed_hex), fill_bits=fill_bits) == gsm_encode(text)


def test_trailing_cr_on_an_octet_boundary_is_doubled_and_padding_cr_is_dropped():
    packed = gsm_pack(b"1234567\r")  # 8 septets end exactly on the 7th octet
    assert len(packed) == 8
    assert gsm_unpack(packed, count=8) == b"1234567\r"
    assert gsm_unpack(packed) == b"1234567\r\r"
    assert gsm_unpack(gsm_pack(b"123456\r")) == b"123456\r"


septet_strings = st.binary(max_size=200).map(lambda b: bytes(x & 0x7F for x in b))


@given(septet_strings, st.integers(0, 6))
def test_pack_unpack_roundtrip_with_fill_bits(septets, fill_bits):
    packed = gsm_pack(septets, fill_bits)
    assert len(packed) * 8 - (7 * len(septets) + fill_bits) < 8 + 7  # at most one extra CR
    assert gsm_unpack(packed, len(septets), fill_bits) == septets
    if not septets.endswith(b"\r"):
        assert gsm_unpack(packed, fill_bits=fill_bits) == septets


def _reference_pack(septets: bytes, fill_bits: int) -> bytes:
    """An independent oracle: a bit string, least significant bit first, zero padded."""
    bits = "0" * fill_bits + "".join(format(s, "07b")[::-1] for s in septets)
    bits += "0" * (-len(bits) % 8)
    return bytes(int(bits[i : i + 8][::-1], 2) for i in range(0, len(bits), 8))


@given(septet_strings, st.integers(0, 6))
def test_pack_agrees_with_a_bit_string_oracle(septets, fill_bits):
    packed = gsm_pack(septets, fill_bits)
    reference = _reference_pack(septets, fill_bits)
    spare = len(reference) * 8 - fill_bits - 7 * len(septets)
    if spare == 7:  # padding CR in the last 7 bits
        reference = reference[:-1] + bytes([reference[-1] | 0x0D << 1])
    if septets.endswith(b"\r") and spare == 0:  # the sender's CR doubled
        reference = _reference_pack(septets + b"\r", fill_bits)
    assert packed == reference


def test_fill_bits_are_zero_and_leading():
    assert gsm_pack(b"\x7f", 3) == bytes([0x7F << 3 & 0xFF, 0x7F >> 5])


@pytest.mark.parametrize("bad", [-1, 7])
def test_fill_bits_out_of_range(bad):
    with pytest.raises(ValueError):
        gsm_pack(b"a", bad)
    with pytest.raises(ValueError):
        gsm_unpack(b"a", fill_bits=bad)


def test_pack_refuses_octets_that_are_not_septets():
    with pytest.raises(ValueError):
        gsm_pack(b"\x80")


def test_unpack_count_past_the_data():
    with pytest.raises(ValueError):
        gsm_unpack(b"\x00", count=2)


@pytest.mark.parametrize("udh_octets, fill", [(6, 1), (7, 0), (0, 0), (1, 6), (12, 2)])
def test_gsm_fill_bits(udh_octets, fill):
    assert gsm_fill_bits(udh_octets) == fill
    assert (udh_octets * 8 + fill) % 7 == 0


# --- UDH ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ref, total, seq, ref16, udh",
    [
        (0x42, 3, 1, False, "050003420301"),
        (0, 1, 1, False, "050003000101"),
        (255, 255, 255, False, "050003FFFFFF"),
        (0x1234, 2, 2, True, "06080412340202"),
        (0xFFFF, 9, 4, True, "060804FFFF0904"),
    ],
)
def test_concat_udh_build_and_parse(ref, total, seq, ref16, udh):
    expected = bytes.fromhex(udh)
    assert concat_udh(ref, total, seq, ref16=ref16) == expected
    info, rest = parse_udh(expected + b"body")
    assert info == ConcatInfo(ref, total, seq)
    assert (info.ref, info.total, info.seq) == (ref, total, seq)
    assert rest == b"body"


@given(st.integers(0, 0xFFFF), st.integers(1, 255), st.data())
def test_concat_udh_roundtrip(ref, total, data):
    seq = data.draw(st.integers(1, total))
    ref16 = ref > 0xFF or data.draw(st.booleans())
    udh = concat_udh(ref, total, seq, ref16)
    assert parse_udh(udh + b"x") == (ConcatInfo(ref, total, seq), b"x")


@pytest.mark.parametrize(
    "args",
    [
        (256, 2, 1, False),
        (-1, 2, 1, False),
        (0x10000, 2, 1, True),
        (1, 0, 0, False),
        (1, 2, 3, False),
        (1, 256, 1, False),
    ],
)
def test_concat_udh_refuses_bad_values(args):
    with pytest.raises(ValueError):
        concat_udh(*args)


@pytest.mark.parametrize(
    "data, info, rest",
    [
        ("00", None, ""),  # empty UDH
        ("0270007F", None, "7F"),  # another element only
        ("08 0401AB 0003070201 CAFE", ConcatInfo(7, 2, 1), "CAFE"),  # concat after another IE
        ("050003070300 41", None, "41"),  # seq 0: ignored per 23.040
        ("050003070204 41", None, "41"),  # seq past total: ignored
    ],
)
def test_parse_udh(data, info, rest):
    assert parse_udh(bytes.fromhex(data.replace(" ", ""))) == (info, bytes.fromhex(rest))


@pytest.mark.parametrize(
    "data",
    ["", "05000307", "060804123402", "0300050102", "0100"],
)
def test_parse_udh_refuses_lengths_past_the_end(data):
    with pytest.raises(InvalidUDH):
        parse_udh(bytes.fromhex(data))
    assert issubclass(InvalidUDH, ValueError)


def test_a_full_gsm_part_never_ends_in_cr():
    # Packed, a full part ending in CR needs a second CR (23.038 6.1.2.3.1) and a 141st octet.
    from connectors.smpp.text import count_parts, split

    assert [len(p.payload) for p in split("a" * 159 + "\r", "gsm7")] == [153, 7]
    assert count_parts("a" * 159 + "\r", "gsm7") == 2
    assert count_parts("a" * 158 + "\r" + "b", "gsm7") == 1
    parts = split("a" * 152 + "\r" + "b" * 10, "gsm7")
    assert [p.text for p in parts] == ["a" * 152, "\r" + "b" * 10]


def test_a_part_with_its_own_udh_stays_one_sms_or_is_refused():
    from connectors.smpp.text import one_part_with_udh, udh_room

    udh = bytes.fromhex("050003370201")  # 6 octets: 7 septets in GSM
    assert udh_room(b"a" * 153, Encoding.GSM7, udh) == (160, 160, "septets")
    assert one_part_with_udh("a" * 153, Encoding.GSM7, udh).payload == b"a" * 153
    with pytest.raises(ValueError):
        one_part_with_udh("a" * 154, Encoding.GSM7, udh)
    assert udh_room("é".encode("utf-16-be") * 67, Encoding.UCS2, udh) == (140, 140, "octets")
    with pytest.raises(ValueError):
        one_part_with_udh("é" * 68, Encoding.UCS2, udh)
