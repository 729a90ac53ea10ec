"""An SMS user-data reader written apart from ``connectors/smpp/text.py``, for tests only.

Why it exists: a test that decodes what our encoder produced with our own decoder proves only that
the two agree, not that a handset would read the right text. This module is the second opinion:
its GSM 03.38 tables are typed from 3GPP TS 23.038 §6.2.1 (laid out as the standard prints them,
row by row across its eight columns, not copied from the project's table), and its UDH parser,
7-bit unpacker and UCS-2/Latin-1 readers follow TS 23.040 §9.2.3.24 without importing anything
from the project.

It is strict where the gateway's decoder is lenient: an octet that is no septet, an ESC at the end
of a part, an undefined extension code, a lone UTF-16 surrogate or a malformed UDH raise
``NotAnSms``, because each of those in an MT part is a bug to report, not something to smooth over.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "Concat",
    "GSM_BASIC",
    "GSM_EXTENSION",
    "NotAnSms",
    "UserData",
    "decode_gsm_septets",
    "read_user_data",
    "reassemble",
    "split_udh",
    "unpack_septets",
]


class NotAnSms(ValueError):
    """User data no handset could read as the text it was meant to carry."""


# --- GSM 03.38 (TS 23.038 §6.2.1), typed as printed: row r holds codes r, 0x10+r, ... 0x70+r ---
_ESC = object()
_ROWS = (
    # col 0   1      2     3    4    5    6    7
    ("@",  "Δ",  " ",  "0", "¡", "P", "¿", "p"),  # row 0
    ("£",  "_",  "!",  "1", "A", "Q", "a", "q"),  # row 1
    ("$",  "Φ",  '"',  "2", "B", "R", "b", "r"),  # row 2
    ("¥",  "Γ",  "#",  "3", "C", "S", "c", "s"),  # row 3
    ("è",  "Λ",  "¤",  "4", "D", "T", "d", "t"),  # row 4
    ("é",  "Ω",  "%",  "5", "E", "U", "e", "u"),  # row 5
    ("ù",  "Π",  "&",  "6", "F", "V", "f", "v"),  # row 6
    ("ì",  "Ψ",  "'",  "7", "G", "W", "g", "w"),  # row 7
    ("ò",  "Σ",  "(",  "8", "H", "X", "h", "x"),  # row 8
    ("Ç",  "Θ",  ")",  "9", "I", "Y", "i", "y"),  # row 9
    ("\n", "Ξ",  "*",  ":", "J", "Z", "j", "z"),  # row A (LF)
    ("Ø",  _ESC, "+",  ";", "K", "Ä", "k", "ä"),  # row B (1B: escape to extension)
    ("ø",  "Æ",  ",",  "<", "L", "Ö", "l", "ö"),  # row C
    ("\r", "æ",  "-",  "=", "M", "Ñ", "m", "ñ"),  # row D (CR)
    ("Å",  "ß",  ".",  ">", "N", "Ü", "n", "ü"),  # row E
    ("å",  "É",  "/",  "?", "O", "§", "o", "à"),  # row F
)

#: septet -> character; 0x1B (the escape) is absent.
GSM_BASIC: dict[int, str] = {
    col * 16 + row: char
    for row, line in enumerate(_ROWS)
    for col, char in enumerate(line)
    if char is not _ESC
}

#: TS 23.038 §6.2.1.1, the default extension table: code after ESC -> character.
GSM_EXTENSION: dict[int, str] = {
    0x0A: "\f",  # page break
    0x14: "^",
    0x28: "{",
    0x29: "}",
    0x2F: "\\",
    0x3C: "[",
    0x3D: "~",
    0x3E: "]",
    0x40: "|",
    0x65: "€",
}

assert len(GSM_BASIC) == 127 and len(set(GSM_BASIC.values())) == 127


def decode_gsm_septets(septets: bytes) -> str:
    """Unpacked septets (one per octet) to text, strictly."""
    out = []
    escaped = False
    for position, septet in enumerate(septets):
        if septet > 0x7F:
            raise NotAnSms(f"octet 0x{septet:02X} at {position} is not a septet")
        if escaped:
            if septet not in GSM_EXTENSION:
                raise NotAnSms(f"ESC 0x{septet:02X} at {position}: not in the extension table")
            out.append(GSM_EXTENSION[septet])
            escaped = False
        elif septet == 0x1B:
            escaped = True
        else:
            out.append(GSM_BASIC[septet])
    if escaped:
        raise NotAnSms("the user data ends with an ESC: an extension character was split")
    return "".join(out)


def unpack_septets(data: bytes, skip_bits: int = 0) -> bytes:
    """7-bit packed GSM (TS 23.038 §6.1.2.1.1: septets fill each octet from its least significant
    bit) to one septet per octet, after ``skip_bits`` fill bits.

    Done bit by bit, on purpose unlike the project's integer trick. When exactly 7 bits are left
    at the end and they hold CR, they are padding (§6.1.2.3.1) and dropped.
    """
    bits = []
    for octet in data:
        bits.extend((octet >> i) & 1 for i in range(8))
    bits = bits[skip_bits:]
    septets = [sum(bit << i for i, bit in enumerate(bits[start:start + 7]))
               for start in range(0, len(bits) - 6, 7)]
    if septets and len(bits) % 7 == 0 and septets[-1] == 0x0D:
        septets.pop()
    return bytes(septets)


# --- User Data Header (TS 23.040 §9.2.3.24) ------------------------------------------------------
@dataclass(frozen=True)
class Concat:
    """The concatenated-message information element: 8-bit (IEI 0x00) or 16-bit (IEI 0x08)."""

    ref: int
    total: int
    seq: int
    ref_bits: int


def split_udh(user_data: bytes) -> tuple[dict[int, bytes], bytes]:
    """(information elements by IEI, the octets after the header), strictly."""
    if not user_data:
        raise NotAnSms("UDHI set but the user data is empty")
    udhl = user_data[0]
    header, rest = user_data[1:1 + udhl], user_data[1 + udhl:]
    if len(header) != udhl:
        raise NotAnSms(f"UDHL {udhl} but only {len(header)} octets follow")
    elements: dict[int, bytes] = {}
    i = 0
    while i < udhl:
        if i + 2 > udhl:
            raise NotAnSms(f"information element at {i} has no length octet")
        iei, length = header[i], header[i + 1]
        value = header[i + 2:i + 2 + length]
        if len(value) != length:
            raise NotAnSms(f"IE 0x{iei:02X} of length {length} runs past the header")
        if iei in elements:
            raise NotAnSms(f"IE 0x{iei:02X} twice")
        elements[iei] = value
        i += 2 + length
    return elements, rest


def _concat(elements: dict[int, bytes]) -> Concat | None:
    found = []
    if 0x00 in elements:
        v = elements[0x00]
        if len(v) != 3:
            raise NotAnSms(f"8-bit concatenation IE of length {len(v)}")
        found.append(Concat(v[0], v[1], v[2], 8))
    if 0x08 in elements:
        v = elements[0x08]
        if len(v) != 4:
            raise NotAnSms(f"16-bit concatenation IE of length {len(v)}")
        found.append(Concat(v[0] * 256 + v[1], v[2], v[3], 16))
    if len(found) > 1:
        raise NotAnSms("both an 8-bit and a 16-bit concatenation IE")
    if found and not 1 <= found[0].seq <= found[0].total:
        raise NotAnSms(f"part {found[0].seq} of {found[0].total}")
    return found[0] if found else None


# --- one part's user data ----------------------------------------------------------------------
@dataclass(frozen=True)
class UserData:
    """One SMS part as a handset reads it."""

    text: str
    concat: Concat | None
    udh_octets: int  # the header with its length octet; 0 without UDHI
    units: int  # septets (GSM, escapes counted), UTF-16 code units (UCS-2) or octets (Latin-1)


def read_user_data(short_message: bytes, data_coding: int, udhi: bool,
                   packed: bool = False) -> UserData:
    """Read one part: data_coding 0 GSM 03.38 (7-bit packed when ``packed``, else one septet per
    octet), 3 Latin-1 (ISO 8859-1), 8 UCS-2 read as UTF-16-BE. Strict: see the module docstring."""
    concat, body, udh_octets = None, short_message, 0
    if udhi:
        elements, body = split_udh(short_message)
        concat = _concat(elements)
        udh_octets = len(short_message) - len(body)
    if data_coding == 0:
        if packed:
            fill = (7 - (udh_octets * 8) % 7) % 7
            septets = unpack_septets(body, fill)
        else:
            septets = body
        return UserData(decode_gsm_septets(septets), concat, udh_octets, len(septets))
    if data_coding == 8:
        if len(body) % 2:
            raise NotAnSms(f"UCS-2 body of {len(body)} octets")
        units = [body[i] << 8 | body[i + 1] for i in range(0, len(body), 2)]
        chars = []
        i = 0
        while i < len(units):
            u = units[i]
            if 0xD800 <= u <= 0xDBFF:
                if i + 1 >= len(units) or not 0xDC00 <= units[i + 1] <= 0xDFFF:
                    raise NotAnSms(f"high surrogate U+{u:04X} at unit {i} without its low half")
                chars.append(chr(0x10000 + ((u - 0xD800) << 10) + (units[i + 1] - 0xDC00)))
                i += 2
                continue
            if 0xDC00 <= u <= 0xDFFF:
                raise NotAnSms(f"low surrogate U+{u:04X} at unit {i} without its high half")
            chars.append(chr(u))
            i += 1
        return UserData("".join(chars), concat, udh_octets, len(units))
    if data_coding == 3:
        return UserData("".join(map(chr, body)), concat, udh_octets, len(body))
    raise NotAnSms(f"data_coding {data_coding} is not one an MT text goes in")


def reassemble(parts: list[UserData]) -> str:
    """The whole text of the parts of one message, in sequence order, after checking that they
    are one message: a single part without concatenation, or every part 1..total exactly once
    with one reference and one total."""
    if len(parts) == 1 and parts[0].concat is None:
        return parts[0].text
    concats = [p.concat for p in parts]
    if any(c is None for c in concats):
        raise NotAnSms("a part of a multipart message has no concatenation IE")
    if len({(c.ref, c.ref_bits) for c in concats}) != 1:
        raise NotAnSms(f"parts of several messages: references {sorted({c.ref for c in concats})}")
    if {c.total for c in concats} != {len(parts)}:
        raise NotAnSms(f"totals {sorted({c.total for c in concats})} for {len(parts)} parts")
    if sorted(c.seq for c in concats) != list(range(1, len(parts) + 1)):
        raise NotAnSms(f"sequence numbers {sorted(c.seq for c in concats)}")
    return "".join(p.text for p in sorted(parts, key=lambda p: p.concat.seq))
