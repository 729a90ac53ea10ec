"""The encoding a link puts on the wire for each operator (SPEC §7: Latin-1 only for operators with
``latin1 = true``): ``wire_encoding`` as a table, then through ``OperatorLink`` on the in-memory
network of ``tests.smpp_link_rig`` (MemoryReactorClock, iosim, no sockets, no real time)."""

from __future__ import annotations

import pytest

from connectors.api import SubmitError
from connectors.smpp.addressing import wire_encoding
from connectors.smpp.text import Encoding, concat_udh
from tests.smpp_link_rig import Net, error_of

G, L, U = Encoding.GSM7, Encoding.LATIN1, Encoding.UCS2


@pytest.mark.parametrize("encoding, text, latin1, expected", [
    (G, "Hello {world} €", False, G),
    (G, "Hello {world} €", True, G),  # GSM stays GSM even where Latin-1 is allowed
    (L, "Ça þýðir ÿ", True, L),
    (L, "Ça þýðir ÿ", False, U),  # the operator takes no Latin-1, and þ is not GSM
    (L, "Ça va? {ok} é", False, G),  # no Latin-1 there, but every character is GSM: as auto
    (U, "Ça þýðir ÿ", True, L),  # every character is Latin-1: fewer parts
    (U, "Ça þýðir ÿ", False, U),
    (U, "plain ascii `", True, L),
    (U, "\x80\x9f\xa0\xff", True, L),  # the edges of Latin-1
    (U, "Ā", True, U),  # U+0100, the first character past Latin-1
    (U, "price 5 €", True, U),  # the euro sign is not in Latin-1
    (U, "ok 👍", True, U),
    (U, "Привет", True, U),
    (U, "", True, L),
])
def test_wire_encoding(encoding, text, latin1, expected):
    assert wire_encoding(encoding, text, latin1) is expected


LATIN1_TEXT = "Þetta er ðað sem ég sagði, ÿ « » ° ½ "  # characters outside GSM 03.38


def test_latin1_to_an_operator_without_latin1_goes_as_ucs2():
    net = Net(latin1=False)
    got = net.submit("Café þæð", encoding="latin1")
    [pdu] = net.smsc.submits
    assert (pdu.params["data_coding"], pdu.params["esm_class"]) == (8, 0)
    assert pdu.params["short_message"] == "Café þæð".encode("utf-16-be")
    assert got == [["1"]]


def test_latin1_as_ucs2_may_take_more_parts_than_latin1():
    text = (LATIN1_TEXT * 4)[:140]  # one Latin-1 part of 140 octets; 67 + 67 + 6 in UCS-2
    net = Net(latin1=True)
    net.submit(text, encoding="latin1")
    assert len(net.smsc.submits) == 1
    net = Net(latin1=False)
    got = net.submit(text, encoding="latin1")
    parts = net.smsc.submits
    assert [p.params["short_message"] for p in parts] == [
        concat_udh(1, 3, 1) + text[:67].encode("utf-16-be"),
        concat_udh(1, 3, 2) + text[67:134].encode("utf-16-be"),
        concat_udh(1, 3, 3) + text[134:].encode("utf-16-be"),
    ]
    assert {(p.params["data_coding"], p.params["esm_class"]) for p in parts} == {(8, 0x40)}
    assert got == [["1", "2", "3"]]


def test_latin1_as_ucs2_up_to_255_parts_is_sent_and_past_that_fails_permanent():
    net = Net(latin1=False, window=300)
    got = net.submit("ð" * (67 * 255), encoding="latin1")  # 128 Latin-1 parts, 255 UCS-2 parts
    assert len(net.smsc.submits) == 255 and len(got[0]) == 255
    assert net.smsc.submits[-1].params["short_message"][:6] == concat_udh(1, 255, 255)
    got = net.submit("ð" * (67 * 255 + 1), encoding="latin1")  # 128 Latin-1 parts, 256 UCS-2
    err = error_of(got)
    assert err.kind == SubmitError.PERMANENT and "255" in err.detail
    assert len(net.smsc.submits) == 255  # nothing of it was sent


def test_ucs2_with_only_latin1_characters_goes_as_latin1_to_a_latin1_operator():
    text = (LATIN1_TEXT * 4)[:134]  # two UCS-2 parts (67 + 67), one Latin-1 part
    net = Net(latin1=True)
    got = net.submit(text, encoding="ucs2")
    [pdu] = net.smsc.submits
    assert (pdu.params["data_coding"], pdu.params["esm_class"]) == (3, 0)
    assert pdu.params["short_message"] == text.encode("latin-1")
    assert got == [["1"]]


def test_ucs2_stays_ucs2_when_a_character_is_not_latin1_or_the_operator_takes_no_latin1():
    net = Net(latin1=True)
    net.submit("Þú átt 5 € 👍", encoding="ucs2")
    [pdu] = net.smsc.submits
    assert pdu.params["data_coding"] == 8
    assert pdu.params["short_message"] == "Þú átt 5 € 👍".encode("utf-16-be")
    net = Net(latin1=False)
    net.submit("Þú átt", encoding="ucs2")
    assert net.smsc.submits[0].params["data_coding"] == 8


@pytest.mark.parametrize("latin1", [False, True])
def test_gsm_stays_gsm(latin1):
    net = Net(latin1=latin1)
    net.submit("Hæ § {ok}", encoding="gsm7")
    [pdu] = net.smsc.submits
    assert pdu.params["data_coding"] == 0
    assert pdu.params["short_message"] == b"H\x1d \x5f \x1b\x28ok\x1b\x29"
