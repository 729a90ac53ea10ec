"""Text fidelity on the wire: what the gateway submits reads back as exactly the text it was given.

Real loopback TCP, our ``OperatorLink`` against our ``SimulatedSMSC``; the octets each connection
delivers to the SMSC are captured as they arrive (``RecordingSMSC`` wraps the connection's
``dataReceived``), cut into PDUs by their command_length, parsed by **smpplib** (an independent
SMPP implementation), and every part is read by ``tests/independent_sms.py`` (its own GSM 03.38
tables, UDH parser, unpacker and UCS-2/Latin-1 readers): the gateway's own decoder never checks
its own encoder here.

For each message the checks are: the parts reassemble to the original text; each part decodes on
its own (no part ends inside an escape sequence or a surrogate pair: the independent reader is
strict); one 8-bit reference, total = number of parts, sequence numbers 1..total; esm_class 0x40
exactly when there are several parts; at most 140 octets of user data over the air; and the split
is greedy: a part of a multipart message is full (153 septets, 67 UCS-2 units, 134 octets) unless
the next part starts with the character that would not fit (an extension character, an emoji),
which fixes the number of parts without asking ``connectors.smpp.text``.

"Over the air" for GSM sent one septet per octet (``packed_gsm = false``, SPEC §7) is the size
once packed: such a short_message is up to 160 octets (159 with a UDH), within SMPP's 254.

Nothing sleeps: every wait is a Deferred (a bind, a submit's keys, the SMSC's n-th submit, the
n-th stored receipt) with a timeout, so a bug fails instead of hanging.
"""

from __future__ import annotations

import json
import random

import pytest
import pytest_twisted
import smpplib.pdu
import smpplib.smpp
import treq
from twisted.internet import reactor
from twisted.internet.defer import Deferred, succeed

import smscore.app
from connectors.api import SubmitRequest
from connectors.smpp.client import LinkSettings, OperatorLink
from connectors.smsc_sim import SimSettings, SimulatedSMSC
from smscore.config import parse_config
from tests.independent_sms import (
    GSM_BASIC,
    GSM_EXTENSION,
    NotAnSms,
    UserData,
    read_user_data,
    reassemble,
    split_udh,
    unpack_septets,
)

WAIT = 10.0
UDHI = 0x40
GSM, LATIN1, UCS2 = 0, 3, 8
#: user data units in one SMS alone / in one part of several (8-bit reference UDH)
SINGLE = {GSM: 160, LATIN1: 140, UCS2: 70}
MULTI = {GSM: 153, LATIN1: 134, UCS2: 67}
EXT_CHARS = "€[]{}~\\^|"


# --- the texts ----------------------------------------------------------------------------------
def _cycle(pattern: str, length: int) -> str:
    return (pattern * (length // len(pattern) + 1))[:length]


GSM_400 = _cycle("Hej! Räksmörgås för 5 £, 3 ¥ @ Åre; ΔΦΓΛΩΠΨΣΘΞ § ¡¿ ñÑ üÜ éÉ ùìòÇ Øø Ææß 42% ",
                 400)
LATIN1_300 = _cycle("Þórður sá ð og þ á ÿtri bænum; « Ça va, garçon ? » dit la mère à "
                    "l'hôtel Noël, où l'on boit du thé glacé ½ ° ", 300)


def gsm_ext_straddling(ext_count: int = 200) -> str:
    """ASCII and ``ext_count`` extension characters, with an ESC at septet 152, 304, 456 ...:
    each 153-septet window ends on an ESC, so every part boundary falls inside an escape pair
    unless the split moves it back one septet."""
    chars, pos, n, turn = [], 0, 0, 0
    while n < ext_count:
        if pos and pos % 152 == 0:
            ext = True
        elif (pos + 1) % 152 == 0:
            ext = False  # an extension character here would shift the next ESC off the boundary
        else:
            ext = turn % 3 != 2
            turn += 1
        if ext:
            chars.append(EXT_CHARS[n % len(EXT_CHARS)])
            n += 1
            pos += 2
        else:
            chars.append("abc 123."[pos % 8])
            pos += 1
    return "".join(chars) + "."


def ucs2_emoji_straddling(units: int = 250) -> str:
    """Cyrillic, Greek, CJK and emoji, with an emoji's high surrogate at unit 66, 132, 198 ...:
    each 67-unit window ends inside a surrogate pair unless the split moves it back one unit."""
    emoji = "😀👍🎉🚀🇸🌍🤖💬"
    bmp = "Привет мир Γειά σου 你好世界 "
    chars, pos, i = [], 0, 0
    while pos < units:
        if pos and pos % 66 == 0:
            chars.append(emoji[(pos // 66) % len(emoji)])
            pos += 2
        elif (pos + 1) % 66 != 0 and i % 7 == 3:
            chars.append(emoji[i % len(emoji)])  # more emoji, off the boundaries
            pos += 2
        else:
            chars.append(bmp[i % len(bmp)])
            pos += 1
        i += 1
    return "".join(chars)


GSM_EXT_TEXT = gsm_ext_straddling()
UCS2_TEXT = ucs2_emoji_straddling()


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


# --- the SMSC that keeps the raw octets -----------------------------------------------------------
class RecordingSMSC(SimulatedSMSC):
    """The simulated SMSC, also keeping every octet each connection brought it, in arrival order,
    and firing ``submitted(n)`` once it has accepted n submits."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.wire: list[bytearray] = []
        self._waiting: list[tuple[int, Deferred]] = []

    def build_protocol(self, addr=None):
        proto = super().build_protocol(addr)
        received = bytearray()
        self.wire.append(received)
        inner = proto.dataReceived

        def data_received(data: bytes) -> None:
            received.extend(data)
            inner(data)

        proto.dataReceived = data_received
        return proto

    def request_received(self, proto, pdu) -> None:
        super().request_received(proto, pdu)
        still = []
        for n, d in self._waiting:
            if len(self.submits) >= n:
                d.callback(None)
            else:
                still.append((n, d))
        self._waiting = still

    def submitted(self, n: int) -> Deferred:
        if len(self.submits) >= n:
            return succeed(None)
        d: Deferred = Deferred()
        self._waiting.append((n, d))
        return d.addTimeout(WAIT, reactor)


class _SmpplibClient:
    """smpplib parses a request only with a client that has a sequence counter."""

    sequence = 0

    def next_sequence(self) -> int:
        self.sequence += 1
        return self.sequence


def submits_on_the_wire(sim: RecordingSMSC) -> list:
    """Every submit_sm the SMSC received, as smpplib parses it from the raw octets."""
    out = []
    for stream in sim.wire:
        pos = 0
        while pos + 16 <= len(stream):
            length = int.from_bytes(stream[pos:pos + 4], "big")
            raw = bytes(stream[pos:pos + length])
            assert len(raw) == length, "a PDU cut short"
            if smpplib.pdu.extract_command(raw) == "submit_sm":
                out.append(smpplib.smpp.parse_pdu(raw, client=_SmpplibClient()))
            pos += length
        assert pos == len(stream), "octets after the last whole PDU"
    return out


# --- the checks -----------------------------------------------------------------------------------
def air_octets(part: UserData, data_coding: int) -> int:
    """User data octets once on the air (GSM packed: header, fill bits, 7 bits a septet)."""
    if data_coding == GSM:
        return -(-(part.udh_octets * 8 + (-part.udh_octets * 8) % 7 + 7 * part.units) // 8)
    return part.udh_octets + len(part.text.encode("utf-16-be" if data_coding == UCS2 else "latin-1"))


def check_message(pdus: list, text: str, *, parts: int, data_coding: int,
                  packed: bool = False) -> list[UserData]:
    """Everything the module docstring lists, for the submit_sm PDUs of one message."""
    assert len(pdus) == parts
    read = []
    for p in pdus:
        sm = p.short_message
        assert p.sm_length == len(sm) <= 254
        assert p.data_coding == data_coding
        assert p.esm_class == (UDHI if parts > 1 else 0)
        part = read_user_data(sm, p.data_coding, bool(p.esm_class & UDHI), packed)
        if packed:
            assert len(sm) <= 140
        assert air_octets(part, data_coding) <= 140
        if parts > 1:
            assert part.udh_octets == 6 and part.concat.ref_bits == 8
            assert part.concat.total == parts
        read.append(part)
    assert reassemble(read) == text
    in_order = sorted(read, key=lambda r: r.concat.seq) if parts > 1 else read
    if parts == 1:
        assert in_order[0].units <= SINGLE[data_coding]
    else:
        # more than one SMS holds, or exactly one SMS of GSM ending in CR (it would need a 141st octet)
        assert sum(r.units for r in read) > SINGLE[data_coding] or (
            data_coding == GSM and sum(r.units for r in read) == SINGLE[GSM] and text.endswith("\r"))
        full = MULTI[data_coding]
        for this, after in zip(in_order, in_order[1:]):
            if this.units != full:
                assert this.units == full - 1, (this.units, full)
                first = after.text[0]
                if data_coding == GSM:
                    # an escape pair, or a CR, is never the last septet of a full part
                    assert first in GSM_EXTENSION.values() or first == "\r"
                else:
                    assert data_coding == UCS2 and ord(first) > 0xFFFF
        assert in_order[-1].units <= full
    return in_order


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

    def pdu(self, operator: str, command: str, direction: str) -> None:
        pass


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
        wire = {"gsm7": GSM, "latin1": LATIN1 if settings.get("latin1") else UCS2, "ucs2": UCS2}
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


# --- through the HTTP API -----------------------------------------------------------------------
API_CONFIG = """
[gateway]
node = "fidelity"
max_parts_cap = 6
[store]
url = "sqlite:///gw.db"
[http]
listen = "127.0.0.1:0"
[metrics]
listen = "127.0.0.1:0"
[operators.sim]
type = "simulated"
receipt_delay = "10ms"
{operator}
[profiles.standard]
operators = ["sim"]
[accounts.acme]
api_keys = ["acme-key"]
senders = ["ACME"]
max_parts = 4
"""


@pytest.fixture
def gateway(request, tmp_path, monkeypatch):
    """A whole gateway (SQLite store, pipeline, HTTP API) whose one operator is a RecordingSMSC
    in-process; ``gateway.receipts_stored(n)`` fires once n receipts are stored. Indirect
    parametrization adds lines to the operator's section."""
    monkeypatch.setattr(smscore.app, "SimulatedSMSC", RecordingSMSC)
    operator = getattr(request, "param", "")
    config = parse_config(API_CONFIG.format(operator=operator), path=tmp_path / "gw.toml")
    gw = smscore.app.Gateway(config, reactor)
    stored = []
    waiting: list[tuple[int, Deferred]] = []
    receipt_received = gw.pipeline.receipt_received

    def counting(receipt):
        d = receipt_received(receipt)

        def done(result):
            stored.append(receipt)
            for n, w in list(waiting):
                if len(stored) >= n:
                    waiting.remove((n, w))
                    w.callback(None)
            return result
        return d.addCallback(done)

    def receipts_stored(n: int) -> Deferred:
        d: Deferred = Deferred()
        waiting.append((n, d))
        if len(stored) >= n:
            waiting.remove((n, d))
            d.callback(None)
        return d.addTimeout(WAIT, reactor)

    gw.pipeline.receipt_received = counting  # the links call it through the pipeline object
    gw.receipts_stored = receipts_stored
    pytest_twisted.blockon(gw.start())
    gw.url = f"http://127.0.0.1:{gw.http_port.getHost().port}"
    yield gw
    pytest_twisted.blockon(gw.stop())


async def post(gw, body) -> tuple[int, dict]:
    resp = await treq.post(gw.url + "/v1/messages", data=json.dumps(body).encode(),
                           headers={"Authorization": ["Bearer acme-key"],
                                    "Content-Type": ["application/json"]})
    return resp.code, json.loads(await resp.content())


async def get(gw, message_id) -> dict:
    resp = await treq.get(f"{gw.url}/v1/messages/{message_id}",
                          headers={"Authorization": ["Bearer acme-key"]})
    assert resp.code == 200
    return json.loads(await resp.content())


@pytest_twisted.ensureDeferred
async def test_api_counts_parts_as_the_wire_carries_them(gateway):
    emoji = UCS2_TEXT  # 4 UCS-2 parts, emoji across every boundary
    ext = gsm_ext_straddling(150)  # extension characters count two septets
    code, body = await post(gateway, {"to": "46700000001", "text": emoji})
    assert code == 202 and body["messages"][0]["parts"] == 4
    emoji_id = body["messages"][0]["id"]
    code, body = await post(gateway, {"to": "46700000002", "text": ext})
    assert code == 202
    ext_parts = body["messages"][0]["parts"]
    assert ext_parts == 3 and len(ext) <= 2 * 153  # counted by characters, it would be 2
    ext_id = body["messages"][0]["id"]

    # over the account's max_parts (4), never truncated
    for text in (UCS2_TEXT + "Ж" * 67, "€" * 310):
        code, body = await post(gateway, {"to": "46700000003", "text": text})
        assert (code, body["error"]["code"], body["error"]["field"]) == (
            422, "text_too_long", "text")
    code, body = await post(gateway, {"to": "46700000003", "text": emoji, "max_parts": 3})
    assert (code, body["error"]["code"]) == (422, "text_too_long")

    sim = gateway.sims["sim"]
    await sim.submitted(4 + ext_parts)
    by_to: dict[str, list] = {}
    for p in submits_on_the_wire(sim):
        by_to.setdefault(p.destination_addr.decode(), []).append(p)
    assert set(by_to) == {"46700000001", "46700000002"}
    check_message(by_to["46700000001"], emoji, parts=4, data_coding=UCS2)
    check_message(by_to["46700000002"], ext, parts=ext_parts, data_coding=GSM)

    await gateway.receipts_stored(4 + ext_parts)
    for message_id, text, parts in ((emoji_id, emoji, 4), (ext_id, ext, ext_parts)):
        got = await get(gateway, message_id)
        assert (got["text"], got["parts"], got["status"]) == (text, parts, "delivered")


@pytest.mark.parametrize("gateway", ["latin1 = true"], indirect=True)
@pytest_twisted.ensureDeferred
async def test_a_message_sent_in_fewer_parts_than_counted_is_delivered(gateway):
    text = _cycle("Þórður sá ð og þ á ÿtri bænum. ", 100)  # auto: UCS-2, 2 parts; 1 as Latin-1
    code, body = await post(gateway, {"to": "46700000001", "text": text})
    assert code == 202 and body["messages"][0]["parts"] == 2
    sim = gateway.sims["sim"]
    await sim.submitted(1)
    check_message(submits_on_the_wire(sim), text, parts=1, data_coding=LATIN1)
    await gateway.receipts_stored(1)
    got = await get(gateway, body["messages"][0]["id"])
    assert got["status"] == "delivered"
