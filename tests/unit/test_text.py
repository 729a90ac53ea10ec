"""connectors.smpp.text: GSM 03.38 / Latin-1 / UCS-2, choosing the encoding, parts (7-bit packing
and the UDH: test_text_packing.py)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.smpp.text import (
    GSM_BASIC,
    GSM_EXTENSION,
    Encoding,
    Part,
    UnencodableText,
    choose_encoding,
    count_parts,
    decode,
    encoded_length,
    encoding_and_parts,
    fits_gsm,
    gsm_decode,
    gsm_encode,
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


def test_each_encoding_is_its_api_name():
    assert [e.value for e in Encoding] == ["gsm7", "latin1", "ucs2"]
    for e in Encoding:
        assert type(e.value) is str and e == e.value and Encoding(e.value) is e
        assert repr(e) == f"<Encoding.{e.name}: {e.value!r}>"


def test_unknown_requested_encoding():
    with pytest.raises(ValueError, match="unknown encoding"):
        choose_encoding("x", "utf8")
    with pytest.raises(ValueError, match="unknown encoding"):
        encoding_and_parts("x", "utf8")
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


@settings(max_examples=400)
@given(texts, st.sampled_from(["auto", "gsm7", "latin1", "ucs2", Encoding.UCS2]), st.booleans())
def test_encoding_and_parts_answers_as_choose_encoding_then_count_parts(text, requested, latin1_ok):
    try:
        expected = choose_encoding(text, requested, latin1_ok)
    except UnencodableText as exc:
        with pytest.raises(UnencodableText) as info:
            encoding_and_parts(text, requested, latin1_ok)
        assert (info.value.char, info.value.position, info.value.encoding) == (exc.char, exc.position, exc.encoding)
        return
    assert encoding_and_parts(text, requested, latin1_ok) == (expected, count_parts(text, expected))


@pytest.mark.parametrize("text, requested, expected", [
    ("a" * 160, "auto", (Encoding.GSM7, 1)), ("a" * 158 + "\r", "auto", (Encoding.GSM7, 1)),
    ("a" * 159 + "\r", "auto", (Encoding.GSM7, 2)), ("a" * 159 + "\r", "gsm7", (Encoding.GSM7, 2)),
    ("a" * 159 + "€", "auto", (Encoding.GSM7, 2)), ("back`tick" * 20, "auto", (Encoding.UCS2, 3)),
    ("ж" * 71, "auto", (Encoding.UCS2, 2)), ("é" * 141, "latin1", (Encoding.LATIN1, 2)),
])
def test_encoding_and_parts(text, requested, expected):
    assert encoding_and_parts(text, requested) == expected


@given(st.text(alphabet=GSM_ALPHABET))
def test_gsm_encode_decode_roundtrip(text):
    assert gsm_decode(gsm_encode(text)) == text
    assert fits_gsm(text)
