"""A character a phone split between two UCS-2 parts of one SMS comes back whole
(``connectors.smpp.halves``): any text, split between any two code units, in any number of parts."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from connectors.smpp.addressing import decode_mo_text
from connectors.smpp.halves import decode_ucs2_part, encode_ucs2_part, join_parts, whole
from connectors.smpp.submit_fields import decode_text
from connectors.smpp.text import Encoding, concat_udh, one_part_with_udh
from smscore.model import assemble_mo

EMOJI = "\U0001F600"


@given(st.text(alphabet=st.sampled_from(["a", "é", "Ж", EMOJI, "\U0001F44D", "\uFFFD", "\U000F0000"]), min_size=1,
               max_size=40), st.lists(st.integers(min_value=0, max_value=80), max_size=6))
def test_any_text_split_between_any_code_units_joins_back_to_itself(text, cuts):
    units = text.encode("utf-16-be")
    bounds = sorted({2 * (c % (len(units) // 2 + 1)) for c in cuts} | {0, len(units)})
    parts = [decode_ucs2_part(units[a:b]) for a, b in zip(bounds, bounds[1:])]
    assert join_parts(parts) == text


def test_a_half_whose_other_half_never_came_is_a_replacement_character():
    first = decode_ucs2_part(("PULL " + EMOJI).encode("utf-16-be")[:-2])
    assert first != "PULL \ufffd"  # kept for the part beside it ...
    assert join_parts([first, ""]) == "PULL \ufffd"  # ... which is missing
    assert whole(first) == "PULL \ufffd"  # an SMS that was not a part after all
    assert assemble_mo([(1, first)], 2)[0] == "PULL \ufffd"


def test_a_broken_unit_inside_a_part_or_an_odd_octet_is_a_replacement_character_at_once():
    assert decode_ucs2_part(b"\x00a\xd8\x3d\x00b") == "a\ufffdb"  # a lone half, not at an edge
    assert decode_ucs2_part(b"\xde\x00\x00a") != "\ufffda"  # a low half at the start: kept
    assert decode_ucs2_part(b"\x00a\xd8\x3d\x00") == "a\ufffd\ufffd"  # the high half is not the end: an odd octet is
    assert decode_ucs2_part(b"\x00a\xd8") == "a\ufffd"


def test_mo_parts_on_the_wire_reassemble_an_emoji_split_between_them():
    one = bytes.fromhex("050003770201") + ("PULL " + EMOJI).encode("utf-16-be")[:-2]
    two = bytes.fromhex("050003770202") + (EMOJI + " ok").encode("utf-16-be")[2:]
    (t1, c1), (t2, c2) = decode_mo_text(one, 8, udhi=True), decode_mo_text(two, 8, udhi=True)
    assert (c1.seq, c2.seq) == (1, 2)
    assert assemble_mo([(2, t2), (1, t1)], 2) == ("PULL " + EMOJI + " ok", "")


@given(st.text(alphabet=st.sampled_from(["a", "é", "Ж", EMOJI, "\U0001F44D", "\uFFFD", "\U000F0000"]), min_size=1,
               max_size=30), st.integers(min_value=0, max_value=60))
def test_a_part_goes_on_as_the_very_code_units_it_came_in(text, cut):
    """An ESME's own UCS-2 parts (SPEC §13): decoded as a part, sent on as a part, the operator
    gets the octets the ESME sent, a half character at either edge included."""
    units = text.encode("utf-16-be")
    at = 2 * (cut % (len(units) // 2 + 1))
    for payload in (units[:at], units[at:]):
        part, encoding = decode_text(payload, 8, part=True)
        assert encoding is Encoding.UCS2
        assert encode_ucs2_part(part) == payload
        assert one_part_with_udh(part, Encoding.UCS2, concat_udh(1, 2, 1)).payload == payload  # 120 octets at most


def test_a_whole_sms_keeps_no_half_and_a_half_inside_a_part_is_a_replacement_character():
    high_end = ("ab" + EMOJI).encode("utf-16-be")[:-2]
    assert decode_text(high_end, 8) == ("ab\ufffd", Encoding.UCS2)  # not a part: broken at once
    assert encode_ucs2_part(decode_text(high_end, 8, part=True)[0]) == high_end
    assert decode_text(b"\x00a\xd8\x3d\x00b", 8, part=True)[0] == "a\ufffdb"
    assert encode_ucs2_part("") == b""
