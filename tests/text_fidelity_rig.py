"""What the text-fidelity tests share: the texts that straddle part boundaries, an SMSC that keeps
the raw octets it was sent, and the checks of one message's submit_sm PDUs.

The octets each connection delivers to the SMSC are captured as they arrive (``RecordingSMSC``
wraps the connection's ``dataReceived``), cut into PDUs by their command_length, parsed by
**smpplib** (an independent SMPP implementation), and every part is read by
``tests/independent_sms.py`` (its own GSM 03.38 tables, UDH parser, unpacker and UCS-2/Latin-1
readers): the gateway's own decoder never checks its own encoder.

``check_message`` checks, for each message: the parts reassemble to the original text; each part
decodes on its own (no part ends inside an escape sequence or a surrogate pair: the independent
reader is strict); one 8-bit reference, total = number of parts, sequence numbers 1..total;
esm_class 0x40 exactly when there are several parts; at most 140 octets of user data over the air;
and the split is greedy: a part of a multipart message is full (153 septets, 67 UCS-2 units, 134
octets) unless the next part starts with the character that would not fit (an extension character,
an emoji), which fixes the number of parts without asking ``connectors.smpp.text``.

"Over the air" for GSM sent one septet per octet (``packed_gsm = false``, SPEC §7) is the size
once packed: such a short_message is up to 160 octets (159 with a UDH), within SMPP's 254.
"""

from __future__ import annotations

import smpplib.pdu
import smpplib.smpp
from twisted.internet import reactor
from twisted.internet.defer import Deferred, succeed

from connectors.smsc_sim import SimulatedSMSC
from tests.independent_sms import GSM_EXTENSION, UserData, read_user_data, reassemble

WAIT = 10.0
UDHI = 0x40
GSM, LATIN1, UCS2 = 0, 3, 8
#: user data units in one SMS alone / in one part of several (8-bit reference UDH)
SINGLE = {GSM: 160, LATIN1: 140, UCS2: 70}
MULTI = {GSM: 153, LATIN1: 134, UCS2: 67}
EXT_CHARS = "€[]{}~\\^|"


# --- the texts ----------------------------------------------------------------------------------
def cycle(pattern: str, length: int) -> str:
    """``pattern`` repeated and cut to ``length`` characters."""
    return (pattern * (length // len(pattern) + 1))[:length]


GSM_400 = cycle("Hej! Räksmörgås för 5 £, 3 ¥ @ Åre; ΔΦΓΛΩΠΨΣΘΞ § ¡¿ ñÑ üÜ éÉ ùìòÇ Øø Ææß 42% ",
                 400)
LATIN1_300 = cycle("Þórður sá ð og þ á ÿtri bænum; « Ça va, garçon ? » dit la mère à "
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

