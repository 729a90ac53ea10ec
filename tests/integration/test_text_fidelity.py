"""Text fidelity on the wire: what the gateway submits reads back as exactly the text it was given.

Real loopback TCP, our ``OperatorLink`` against the ``RecordingSMSC`` of
``tests/text_fidelity_rig.py``, which keeps the raw octets; smpplib parses them and an independent
reader checks every part (what ``check_message`` checks is in that module's docstring). The same
checks through the HTTP API: ``test_text_fidelity_api.py``.

Nothing sleeps: every wait is a Deferred (a bind, a submit's keys, the SMSC's n-th submit) with a
timeout, so a bug fails instead of hanging.
"""

from __future__ import annotations

import random
from collections import Counter

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred, succeed

from connectors.api import SubmitRequest
from connectors.smpp.client import LinkSettings, OperatorLink
from connectors.smsc_sim import SimSettings
from tests.independent_sms import (
    GSM_BASIC,
    GSM_EXTENSION,
    NotAnSms,
    read_user_data,
    reassemble,
    split_udh,
    unpack_septets,
)
from tests.text_fidelity_rig import (
    EXT_CHARS,
    GSM,
    GSM_400,
    GSM_EXT_TEXT,
    LATIN1,
    LATIN1_300,
    UCS2,
    UCS2_TEXT,
    WAIT,
    RecordingSMSC,
    check_message,
    submits_on_the_wire,
)


def test_the_texts_are_what_the_cases_say():
    """The texts exercise what they claim to, checked against the independent tables."""
    gsm = set(GSM_BASIC.values())
    ext = set(GSM_EXTENSION.values())
    assert set(GSM_400) <= gsm and len(GSM_400) == 400
    assert set(GSM_EXT_TEXT) <= gsm | ext and sum(c in ext for c in GSM_EXT_TEXT) == 200
    septets = len(GSM_EXT_TEXT) + sum(c in ext for c in GSM_EXT_TEXT)
    starts = {0}
    pos = 0
    for c in GSM_EXT_TEXT:
        if c in ext:
            starts.add(pos)
        pos += 2 if c in ext else 1
    assert all(k in starts for k in range(152, septets - 1, 152))
    assert set(LATIN1_300) - gsm - ext >= set("ðþÿÞóô«»½°ç")
    assert all(ord(c) <= 0xFF for c in LATIN1_300)
    units = UCS2_TEXT.encode("utf-16-be")
    highs = {i // 2 for i in range(0, len(units), 2) if 0xD8 <= units[i] <= 0xDB}
    assert all(k in highs for k in range(66, len(units) // 2 - 1, 66))


# --- link and SMSC on loopback ---------------------------------------------------------------------
class Listener:
    """A LinkListener (connectors/api.py): records binds; receipts and MOs are stored at once."""

    def __init__(self) -> None:
        self.up: Deferred = Deferred()

    def link_ready(self, operator: str) -> None:
        pass

    def receipt_received(self, receipt) -> Deferred:
        return succeed(None)

    def mo_received(self, mo) -> Deferred:
        return succeed(None)

    def bind_changed(self, operator: str, session: str, up: bool) -> None:
        if up and not self.up.called:
            self.up.callback(session)

    def pdu_counts(self, operator):
        return Counter()


@pytest.fixture
def loopback():
    """``await loopback(**link_settings)`` → (sim, link), bound; both stopped after the test."""
    started = []

    async def start(**settings):
        sim = RecordingSMSC(SimSettings(receipt_delay=3600.0), reactor, name="fidelity")
        port = await sim.listen("127.0.0.1", 0)
        listener = Listener()
        link = OperatorLink("op", LinkSettings(host="127.0.0.1", port=port, window=50, **settings),
                            listener, reactor)
        started.append((sim, link))
        link.start()
        await listener.up.addTimeout(WAIT, reactor)
        return sim, link

    yield start
    for sim, link in started:
        pytest_twisted.blockon(link.stop().addTimeout(WAIT, reactor))
        pytest_twisted.blockon(sim.stop())


CASES = [
    # id, text, requested encoding, operator settings, parts, data_coding on the wire
    ("gsm-400", GSM_400, "gsm7", {}, 3, GSM),
    ("gsm-400-packed", GSM_400, "gsm7", {"packed_gsm": True}, 3, GSM),
    ("gsm-ext-straddling", GSM_EXT_TEXT, "gsm7", {}, 4, GSM),
    ("gsm-ext-straddling-packed", GSM_EXT_TEXT, "gsm7", {"packed_gsm": True}, 4, GSM),
    ("latin1-300", LATIN1_300, "latin1", {"latin1": True}, 3, LATIN1),
    ("latin1-300-to-an-operator-without-latin1", LATIN1_300, "latin1", {}, 5, UCS2),
    ("ucs2-latin1-only-to-a-latin1-operator", LATIN1_300, "ucs2", {"latin1": True}, 3, LATIN1),
    ("ucs2-emoji-straddling", UCS2_TEXT, "ucs2", {}, 4, UCS2),
    ("ucs2-emoji-straddling-latin1-operator", UCS2_TEXT, "ucs2", {"latin1": True}, 4, UCS2),
    ("gsm-one-part", "Hello § @ £ Δ ñ 12:00!", "gsm7", {}, 1, GSM),
    ("gsm-one-part-packed", "Hello § @ £ Δ ñ 12:00!", "gsm7", {"packed_gsm": True}, 1, GSM),
    ("gsm-160-septets", GSM_400[:160], "gsm7", {"packed_gsm": True}, 1, GSM),
    ("gsm-161-septets", GSM_400[:161], "gsm7", {}, 2, GSM),
    ("ext-one-part-80-euros", "€" * 80, "gsm7", {}, 1, GSM),
    ("ext-81-euros", "€" * 81, "gsm7", {"packed_gsm": True}, 2, GSM),
    ("ext-one-part-mixed", "[a] {b} ~c\\ ^d| €5", "gsm7", {}, 1, GSM),
    ("latin1-one-part", "Ça va? þæð ÿ", "latin1", {"latin1": True}, 1, LATIN1),
    ("latin1-140", LATIN1_300[:140], "latin1", {"latin1": True}, 1, LATIN1),
    ("ucs2-one-part", "Привет 👋 мир", "ucs2", {}, 1, UCS2),
    ("ucs2-35-emoji-70-units", "👋" * 35, "ucs2", {}, 1, UCS2),
    ("ucs2-36-emoji", "👋" * 36, "ucs2", {}, 2, UCS2),
]


@pytest.mark.parametrize("text, encoding, settings, parts, data_coding",
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
@pytest_twisted.ensureDeferred
async def test_parts_on_the_wire_reassemble_to_the_text(loopback, text, encoding, settings, parts,
                                                        data_coding):
    sim, link = await loopback(**settings)
    keys = await link.submit(SubmitRequest("m1", "46701234567", "ACME", text, encoding)).addTimeout(
        WAIT, reactor)
    assert len(keys) == parts
    pdus = submits_on_the_wire(sim)
    check_message(pdus, text, parts=parts, data_coding=data_coding,
                  packed=settings.get("packed_gsm", False))
    assert len(sim.submits) == parts


def _all_gsm(text: str) -> bool:
    return set(text) <= {*GSM_BASIC.values(), *GSM_EXTENSION.values()}


def _random_text(rng: random.Random, kind: str, packed: bool) -> str:
    gsm = "".join(GSM_BASIC.values())
    alphabets = {
        "gsm7": gsm + EXT_CHARS * 4,
        "latin1": "".join(map(chr, range(0x20, 0x100))),
        "ucs2": "abcПриветΓειά你好€" + "😀👍🎉🚀🤖" * 3,
    }
    return "".join(rng.choice(alphabets[kind]) for _ in range(rng.randint(1, 700)))


@pytest.mark.parametrize("settings", [{"latin1": True}, {"packed_gsm": True}],
                         ids=["latin1-operator", "packed-gsm-operator"])
@pytest_twisted.ensureDeferred
async def test_random_texts_of_every_kind_reassemble(loopback, settings):
    """60 random texts, 1 to 700 characters, of every encoding, in flight together; each to its
    own number so the parts group by message."""
    sim, link = await loopback(**settings)
    rng = random.Random(23038)
    sent = {}
    waits = []
    for i in range(60):
        encoding = ("gsm7", "latin1", "ucs2")[i % 3]
        text = _random_text(rng, encoding, settings.get("packed_gsm", False))
        to = f"4670{i:07d}"
        sent[to] = (text, encoding)
        waits.append(link.submit(SubmitRequest(f"m{i}", to, "ACME", text, encoding)))
    counts = [len(await d.addTimeout(WAIT, reactor)) for d in waits]
    by_to: dict[str, list] = {}
    for p in submits_on_the_wire(sim):
        by_to.setdefault(p.destination_addr.decode(), []).append(p)
    for (to, (text, encoding)), count in zip(sent.items(), counts):
        wire = {"gsm7": GSM, "ucs2": UCS2,
                "latin1": LATIN1 if settings.get("latin1") else GSM if _all_gsm(text) else UCS2}
        data_coding = wire[encoding]
        if encoding == "ucs2" and settings.get("latin1") and all(ord(c) <= 0xFF for c in text):
            data_coding = LATIN1
        check_message(by_to[to], text, parts=count, data_coding=data_coding,
                      packed=settings.get("packed_gsm", False))
    references = {p.short_message[3] for ps in by_to.values() if len(ps) > 1 for p in ps}
    multipart = sum(1 for ps in by_to.values() if len(ps) > 1)
    assert len(references) == multipart  # one reference per message in flight


@pytest.mark.parametrize("text", ["a" * 152 + "\r" + "b" * 10, "a" * 159 + "\r"],
                         ids=["cr-ends-a-full-part", "cr-ends-a-full-single-part"])
@pytest_twisted.ensureDeferred
async def test_packed_part_ending_in_cr_stays_within_140_octets(loopback, text):
    sim, link = await loopback(packed_gsm=True)
    keys = await link.submit(SubmitRequest("m1", "46701234567", "ACME", text, "gsm7")).addTimeout(
        WAIT, reactor)
    check_message(submits_on_the_wire(sim), text, parts=len(keys), data_coding=GSM, packed=True)


# --- the independent reader, on vectors that do not come from our encoder --------------------------
def test_independent_reader_on_known_vectors():
    # "hellohello", the classic packed example (7 bits a septet, LSB first)
    assert unpack_septets(bytes.fromhex("E8329BFD4697D9EC37")) == b"hellohello"
    # "abcdefg": 7 septets leave 7 spare bits in the 7th octet, which hold CR (23.038 §6.1.2.3.1)
    assert unpack_septets(bytes.fromhex("61F1985C369F1B")) == b"abcdefg"
    # after a 6-octet UDH one fill bit: "A" starts at bit 1 of the next octet
    assert unpack_septets(bytes([0x41 << 1]), skip_bits=1) == b"A"
    concat8, rest = split_udh(bytes.fromhex("050003CC0201") + b"\x01\x02")
    assert concat8 == {0x00: bytes.fromhex("CC0201")} and rest == b"\x01\x02"
    part = read_user_data(bytes.fromhex("0608041234030200410042"), UCS2, True)
    assert (part.concat.ref, part.concat.total, part.concat.seq, part.concat.ref_bits) == (
        0x1234, 3, 2, 16)
    assert part.text == "AB"
    # ESC 0x65 is the euro sign; § is 0x5F in the basic table, ¤ is 0x24
    assert read_user_data(b"\x1b\x65\x5f\x24", GSM, False).text == "€§¤"
    assert read_user_data("😀".encode("utf-16-be"), UCS2, False).text == "😀"
    for broken, coding in [(b"abc\x1b", GSM), (b"\x1b\x41", GSM), (b"\x80", GSM),
                           ("😀".encode("utf-16-be")[:2], UCS2), ("😀".encode("utf-16-be")[2:], UCS2)]:
        with pytest.raises(NotAnSms):
            read_user_data(broken, coding, False)
    with pytest.raises(NotAnSms):
        read_user_data(bytes.fromhex("050003CC02"), GSM, True)  # UDHL runs past the data
    with pytest.raises(NotAnSms):
        reassemble([read_user_data(bytes.fromhex("050003CC0201") + b"a", GSM, True),
                    read_user_data(bytes.fromhex("050003CD0202") + b"b", GSM, True)])


def test_the_two_gsm_tables_agree():
    """Typed apart, from the same standard: any difference is a typo in one of them."""
    from connectors.smpp.text import gsm_encode

    for code, char in GSM_BASIC.items():
        assert gsm_encode(char) == bytes([code]), (hex(code), char)
    for code, char in GSM_EXTENSION.items():
        assert gsm_encode(char) == bytes([0x1B, code]), (hex(code), char)

