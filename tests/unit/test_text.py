"""connectors.smpp.text: GSM 03.38 / Latin-1 / UCS-2, 7-bit packing, parts and UDH."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.smpp.text import (
    GSM_BASIC,
    GSM_EXTENSION,
    ConcatInfo,
    Encoding,
    InvalidUDH,
    Part,
    UnencodableText,
    choose_encoding,
    concat_udh,
    count_parts,
    decode,
    encoded_length,
    fits_gsm,
    gsm_decode,
    gsm_encode,
    gsm_fill_bits,
    gsm_pack,
    gsm_unpack,
    parse_udh,
    split,
)

EXTENSION_CHARS = "\f^{}\\[~]|€"
EMOJI = "\U0001F600"  # one code point, a surrogate pair (2 code units) in UTF-16

# Capacity in payload octets: (single, per part of a concatenated message).
CAPACITY = {Encoding.GSM7: (160, 153), Encoding.UCS2: (140, 134), Encoding.LATIN1: (140, 134)}


# --- GSM tables -----------------------------------------------------------------------------------


def test_tables_have_the_documented_size_and_contents():
    assert len(GSM_BASIC) == 128
    assert "".join(sorted(GSM_EXTENSION.values())) == "".join(sorted(EXTENSION_CHARS))


@pytest.mark.parametrize(
    "char, septets",
    [
        ("@", b"\x00"),
        ("£", b"\x01"),
        ("$", b"\x02"),
        ("_", b"\x11"),
        ("¤", b"\x24"),
        ("¡", b"\x40"),
        ("§", b"\x5f"),
        ("¿", b"\x60"),
        ("à", b"\x7f"),
        ("\n", b"\x0a"),
        ("\r", b"\x0d"),
        ("A", b"\x41"),
        ("z", b"\x7a"),
        ("Ç", b"\x09"),
        ("\f", b"\x1b\x0a"),
        ("^", b"\x1b\x14"),
        ("{", b"\x1b\x28"),
        ("}", b"\x1b\x29"),
        ("\\", b"\x1b\x2f"),
        ("[", b"\x1b\x3c"),
        ("~", b"\x1b\x3d"),
        ("]", b"\x1b\x3e"),
        ("|", b"\x1b\x40"),
        ("€", b"\x1b\x65"),
    ],
)
def test_gsm_encode_single_characters(char, septets):
    assert gsm_encode(char) == septets
    assert gsm_decode(septets) == char
    assert encoded_length(char, Encoding.GSM7) == len(septets)


@pytest.mark.parametrize("char", list(EXTENSION_CHARS))
def test_every_extension_character_counts_two_septets(char):
    assert encoded_length(char, "gsm7") == 2
    assert encoded_length("a" + char * 3, "gsm7") == 7


@pytest.mark.parametrize(
    "char",
    ["`", "ç", "á", "\t", "\x1b", "\x00", "\x7f", "€€`", "Ж", EMOJI, "\u00a0"],
)
def test_characters_outside_gsm(char):
    assert not fits_gsm(char)
    assert choose_encoding(char) is Encoding.UCS2
    with pytest.raises(UnencodableText):
        gsm_encode(char)


def test_unencodable_names_the_first_offending_character():
    with pytest.raises(UnencodableText) as info:
        gsm_encode("ok {} then `x` and " + EMOJI)
    assert info.value.char == "`"
    assert info.value.position == 11  # a character index, not a septet offset
    assert info.value.encoding is Encoding.GSM7
    assert "U+0060" in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "data, text",
    [
        (b"", ""),
        (b"\x1b\x65", "€"),
        (b"\x1b\x41", "A"),  # undefined extension code: the basic character
        (b"\x1b\x0d", "\r"),
        (b"\x1b\x1b", " "),  # reserved escape to a further table: a space
        (b"ab\x1b", "ab"),  # stray trailing escape: dropped
        (b"\x1b", ""),
        (b"a\x80b", "a\ufffdb"),  # not a septet
        (b"\x1b\x80", "\ufffd"),
        (b"\x1b\x28x\x1b\x29", "{x}"),
    ],
)
def test_gsm_decode_is_lenient(data, text):
    assert gsm_decode(data) == text


def test_gsm_roundtrip_of_the_whole_alphabet():
    alphabet = GSM_BASIC.replace("\x1b", "") + EXTENSION_CHARS
    assert gsm_decode(gsm_encode(alphabet)) == alphabet
    assert encoded_length(alphabet, Encoding.GSM7) == 127 + 2 * 10


# --- choosing the encoding ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, requested, latin1_ok, expected",
    [
        ("hello", "auto", False, Encoding.GSM7),
        ("", "auto", False, Encoding.GSM7),
        ("§ 5 costs 3€ {ok}", "auto", False, Encoding.GSM7),
        ("ÄÖÜäöüßÉéèàÅåÆæØø", "auto", False, Encoding.GSM7),
        ("back`tick", "auto", False, Encoding.UCS2),
        ("back`tick", "auto", True, Encoding.LATIN1),
        ("façade", "auto", False, Encoding.UCS2),
        ("façade", "auto", True, Encoding.LATIN1),
        ("façade €", "auto", True, Encoding.UCS2),  # € is not Latin-1
        ("smile " + EMOJI, "auto", True, Encoding.UCS2),
        ("hello", "ucs2", False, Encoding.UCS2),
        ("hello", "latin1", False, Encoding.LATIN1),
        ("hello", Encoding.GSM7, False, Encoding.GSM7),
        ("smile " + EMOJI, Encoding.UCS2, False, Encoding.UCS2),
    ],
)
def test_choose_encoding(text, requested, latin1_ok, expected):
    assert choose_encoding(text, requested, latin1_ok=latin1_ok) is expected


@pytest.mark.parametrize(
    "text, requested, char",
    [
        ("smile " + EMOJI, "gsm7", EMOJI),
        ("a`b", "gsm7", "`"),
        ("3€", "latin1", "€"),
        ("Ж", "latin1", "Ж"),
        ("lone \ud800", "ucs2", "\ud800"),
        ("lone \ud800", "auto", "\ud800"),
    ],
)
def test_choose_encoding_refuses_what_cannot_be_represented(text, requested, char):
    with pytest.raises(UnencodableText) as info:
        choose_encoding(text, requested)
    assert info.value.char == char


def test_unknown_requested_encoding():
    with pytest.raises(ValueError, match="unknown encoding"):
        choose_encoding("x", "utf8")
    with pytest.raises(ValueError, match="unknown encoding"):
        split("x", "GSM7")


# --- splitting ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, encoding, part_lengths",
    [
        ("", Encoding.GSM7, [0]),
        ("", Encoding.UCS2, [0]),
        ("", Encoding.LATIN1, [0]),
        ("a" * 160, Encoding.GSM7, [160]),
        ("a" * 161, Encoding.GSM7, [153, 8]),
        ("a" * 306, Encoding.GSM7, [153, 153]),
        ("a" * 307, Encoding.GSM7, [153, 153, 1]),
        ("€" * 80, Encoding.GSM7, [160]),
        ("€" * 80 + "a", Encoding.GSM7, [152, 9]),  # 76 € then 4 € + a
        ("a" * 159 + "€", Encoding.GSM7, [153, 8]),
        # the escape straddles 153: it moves whole to the next part
        ("a" * 152 + "€" + "b" * 10, Encoding.GSM7, [152, 12]),
        ("a" * 151 + "€" + "b" * 10, Encoding.GSM7, [153, 10]),  # ends exactly at 153: stays
        ("§" * 160, Encoding.GSM7, [160]),
        ("ж" * 70, Encoding.UCS2, [140]),
        ("ж" * 71, Encoding.UCS2, [134, 8]),
        ("ж" * 134, Encoding.UCS2, [134, 134]),
        (EMOJI * 35, Encoding.UCS2, [140]),
        # the surrogate pair straddles 67 units: it moves whole to the next part
        ("ж" * 66 + EMOJI + "ж" * 5, Encoding.UCS2, [132, 14]),
        ("ж" * 65 + EMOJI + "ж" * 10, Encoding.UCS2, [134, 20]),  # ends exactly at 67: stays
        ("é" * 140, Encoding.LATIN1, [140]),
        ("é" * 141, Encoding.LATIN1, [134, 7]),
    ],
)
def test_split_part_sizes(text, encoding, part_lengths):
    parts = split(text, encoding)
    assert [len(p.payload) for p in parts] == part_lengths
    assert "".join(p.text for p in parts) == text
    assert count_parts(text, encoding) == len(part_lengths)
    for part in parts:
        assert decode(part.payload, encoding) == part.text


def test_split_escape_straddling_moves_to_next_part_content():
    parts = split("a" * 152 + "{" + "b" * 10, Encoding.GSM7)
    assert parts[0].payload == b"a" * 152
    assert parts[1].payload == b"\x1b\x28" + b"b" * 10
    assert parts[1].text == "{" + "b" * 10


def test_split_emoji_straddling_moves_whole():
    parts = split("ж" * 66 + EMOJI + "!!!!!", Encoding.UCS2)
    assert parts[0].text == "ж" * 66
    assert parts[1].text == EMOJI + "!!!!!"
    assert parts[1].payload == (EMOJI + "!!!!!").encode("utf-16-be")


@pytest.mark.parametrize(
    "text, encoding, expected",
    [
        ("a" * 160, "gsm7", 1),
        ("a" * 161, "gsm7", 2),
        ("a" * 159 + "€", "gsm7", 2),
        ("ж" * 70, "ucs2", 1),
        ("ж" * 71, "ucs2", 2),
        ("é" * 141, "latin1", 2),
        ("ab" * 230, "gsm7", 4),
    ],
)
def test_count_parts(text, encoding, expected):
    assert count_parts(text, encoding) == expected


def test_split_raises_when_text_does_not_fit():
    with pytest.raises(UnencodableText):
        split("a`", Encoding.GSM7)
    with pytest.raises(UnencodableText):
        count_parts(EMOJI, Encoding.LATIN1)


def test_part_is_frozen():
    part = split("hi", Encoding.GSM7)[0]
    assert part == Part("hi", b"hi")
    with pytest.raises(AttributeError):
        part.text = "x"  # type: ignore[misc]


@pytest.mark.parametrize(
    "text, encoding, length",
    [
        ("abc", "gsm7", 3),
        ("a€", "gsm7", 3),
        ("ab", "ucs2", 4),
        (EMOJI, "ucs2", 4),
        ("é", "latin1", 1),
    ],
)
def test_encoded_length(text, encoding, length):
    assert encoded_length(text, encoding) == length


@pytest.mark.parametrize(
    "payload, encoding, text",
    [
        (b"\xd8\x00\x00a", Encoding.UCS2, "\ufffda"),  # lone high surrogate
        (b"\xdc\x00", Encoding.UCS2, "\ufffd"),  # lone low surrogate
        (b"\x00a\x00", Encoding.UCS2, "a\ufffd"),  # odd length
        (b"\xe9", Encoding.LATIN1, "é"),
        (b"\x00\x1b\x65", Encoding.GSM7, "@€"),
    ],
)
def test_decode_never_raises(payload, encoding, text):
    assert decode(payload, encoding) == text


# --- properties -----------------------------------------------------------------------------------

GSM_ALPHABET = GSM_BASIC.replace("\x1b", "") + EXTENSION_CHARS
texts = st.one_of(
    st.text(),
    st.text(alphabet=GSM_ALPHABET, max_size=700),
    st.text(alphabet=st.sampled_from("a€{" + EMOJI + "жé`"), max_size=400),
    st.text(alphabet=st.characters(max_codepoint=0xFF, exclude_categories=("Cs",)), max_size=400),
)


@settings(max_examples=400)
@given(texts, st.booleans())
def test_split_properties(text, latin1_ok):
    encoding = choose_encoding(text, latin1_ok=latin1_ok)
    parts = split(text, encoding)
    assert "".join(p.text for p in parts) == text
    assert count_parts(text, encoding) == len(parts)
    single, multi = CAPACITY[encoding]
    limit = single if len(parts) == 1 else multi
    for part in parts:
        assert len(part.payload) <= limit
        assert part.text or len(parts) == 1
        assert decode(part.payload, encoding) == part.text
    assert sum(len(p.payload) for p in parts) == encoded_length(text, encoding)
    if len(parts) > 1:  # greedy: no part could have taken the next character
        for part, nxt in zip(parts, parts[1:]):
            first = split(nxt.text[0], encoding)[0].payload
            assert len(part.payload) + len(first) > multi


@given(st.text(alphabet=GSM_ALPHABET))
def test_gsm_encode_decode_roundtrip(text):
    assert gsm_decode(gsm_encode(text)) == text
    assert fits_gsm(text)


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
