"""Text encodings for SMS and the splitting of a text into parts (SPEC §7).

Why this module exists: whether a text goes as GSM 03.38, Latin-1 or UCS-2, and into how many parts,
decides what the customer pays and what the phone shows. The rules are exact and easy to get subtly
wrong (smpplib's helpers are, on ``§``, the backtick and escapes split across parts), so they live
here, written from 3GPP TS 23.038 (ex GSM 03.38) and TS 23.040, with no I/O. Its one project import
is ``halves``: how a part keeps half of a character split with the part beside it.

Theory of operation
-------------------
* GSM text is handled *unpacked*: one septet per octet, an extension character as ``0x1B`` + code
  (two septets). ``gsm_pack``/``gsm_unpack`` convert to and from packed 7-bit GSM when an operator
  wants it (``packed_gsm = true``); ``gsm_fill_bits`` gives the fill bits after a UDH.
* Every encoding is measured in *payload octets*: GSM unpacked 1 per septet, UCS-2 (sent as
  UTF-16-BE, so an emoji is a surrogate pair of 2 code units) 2 per unit, Latin-1 1 per character.
  A single part holds 160 / 140 / 140 octets of payload, a part of a concatenated message
  153 / 134 / 134 (a 6-octet UDH with an 8-bit reference takes the rest).
* ``split`` encodes once, then cuts the payload greedily, moving a cut back by one octet when it
  would separate ``ESC`` from its character, or by two when it would separate a surrogate pair.
  Each ``Part`` holds the exact slice of the original text and its payload, so joining the texts
  gives the original back and ``decode(part.payload) == part.text``.
* Encoding to GSM is one ``str.translate`` over a table built at import: every GSM character maps
  to its septet(s) (all below 0x80), every ASCII character that is *not* GSM (backtick, most
  control characters) maps to a marker at 0x80, and anything else is left alone, so the text fits
  GSM exactly when the translation is ASCII. That keeps a short ASCII text at about a microsecond.
  A non-ASCII text is first checked with a regular expression, which stops at the first non-GSM
  character.
"""

from __future__ import annotations

import codecs
import operator
import re
from dataclasses import dataclass
from enum import Enum
from typing import NamedTuple

from .halves import encode_ucs2_part

__all__ = [
    "ConcatInfo", "ENCODING_BY_NAME", "Encoding", "InvalidUDH", "Part", "UnencodableText", "choose_encoding",
    "concat_udh", "count_parts", "decode", "encoded_length", "encoding_and_parts", "fits_gsm", "gsm_decode",
    "gsm_encode", "gsm_fill_bits", "gsm_pack", "gsm_unpack", "one_part_with_udh", "parse_udh", "split",
    "udh_room",
]


class Encoding(str, Enum):
    """How a text travels; the values are the API's ``encoding`` names."""

    GSM7 = "gsm7"
    LATIN1 = "latin1"
    UCS2 = "ucs2"

    #: The API's name, read without ``Enum``'s own ``value`` (a property written in Python, two calls
    #: a read), as ``smscore.model.Status`` does: every request and submit_sm reads it.
    value = property(operator.attrgetter("_value_"))


class UnencodableText(ValueError):
    """The text holds a character the chosen encoding cannot carry (the first one is named)."""

    def __init__(self, char: str, position: int, encoding: Encoding) -> None:
        self.char = char
        self.position = position
        self.encoding = encoding
        super().__init__(
            f"character {char!r} (U+{ord(char):04X}) at position {position} "
            f"cannot be encoded in {_ENCODING_NAMES[encoding]}"
        )


class InvalidUDH(ValueError):
    """A User Data Header whose lengths run past the data it is in."""


_ENCODING_NAMES = {
    Encoding.GSM7: "the GSM 03.38 alphabet",
    Encoding.LATIN1: "Latin-1",
    Encoding.UCS2: "UCS-2",
}

# --- GSM 03.38 tables -----------------------------------------------------------------------------

ESC = 0x1B

#: The basic table, indexed by septet. 0x1B is the escape to the extension table, not a character.
GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
assert len(GSM_BASIC) == 128

#: The extension table (reached by ESC): septet code -> character. Each counts two septets.
GSM_EXTENSION = {
    0x0A: "\f",
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

_NOT_GSM = "\x80"  # translation marker for an ASCII character that is not in GSM 03.38

_GSM_ENCODE: dict[int, str] = {cp: _NOT_GSM for cp in range(128)}
for _code, _char in enumerate(GSM_BASIC):
    if _code != ESC:
        _GSM_ENCODE[ord(_char)] = chr(_code)
for _code, _char in GSM_EXTENSION.items():
    _GSM_ENCODE[ord(_char)] = chr(ESC) + chr(_code)

_GSM_CHARS = "".join(sorted(chr(cp) for cp, v in _GSM_ENCODE.items() if v != _NOT_GSM))
# Finds the first character outside GSM. Faster than translating a text that is not GSM (a Cyrillic
# text stops at its first letter), slower than translating an ASCII one.
_NON_GSM = re.compile("[^" + re.escape(_GSM_CHARS) + "]")

# Decoding: the basic table for every octet (0x80 and above are not septets: U+FFFD), then the
# extension table where 03.38 defines one. An undefined extension code shows as its basic character
# (23.038 §6.2.1.1 note); ESC ESC (reserved for a further table) shows as a space.
_GSM_DECODE_TABLE = GSM_BASIC.replace("\x1b", " ") + "\ufffd" * 128
_GSM_EXT_DECODE = tuple(GSM_EXTENSION.get(code, _GSM_DECODE_TABLE[code]) for code in range(256))


def gsm_encode(text: str) -> bytes:
    """Encode to GSM 03.38, one septet per octet, extension characters as ``0x1B`` + code."""
    encoded = text.translate(_GSM_ENCODE)
    if not encoded.isascii():
        raise _first_non_gsm(text)
    return encoded.encode("ascii")


def gsm_decode(data: bytes) -> str:
    """Decode unpacked GSM 03.38 septets (one per octet), leniently.

    Never raises: an octet of 0x80 or above becomes U+FFFD, an undefined extension code the basic
    character of the same code, ESC ESC a space, and an ESC at the very end is dropped.
    """
    if ESC not in data:
        return codecs.charmap_decode(data, "strict", _GSM_DECODE_TABLE)[0]
    out = []
    i, n = 0, len(data)
    while i < n:
        j = data.find(ESC, i)
        if j < 0:
            j = n
        out.append(codecs.charmap_decode(data[i:j], "strict", _GSM_DECODE_TABLE)[0])
        if j + 1 < n:
            out.append(_GSM_EXT_DECODE[data[j + 1]])
        i = j + 2
    return "".join(out)


def fits_gsm(text: str) -> bool:
    """True when every character is in the GSM 03.38 basic or extension table."""
    if text.isascii():
        return text.translate(_GSM_ENCODE).isascii()
    return _NON_GSM.search(text) is None


# --- 7-bit packing --------------------------------------------------------------------------------

_CR = 0x0D


def gsm_fill_bits(udh_octets: int) -> int:
    """Fill bits after a UDH of ``udh_octets`` octets (length octet included): 0..6, so that the
    packed text after it starts on a septet boundary."""
    return -(udh_octets * 8) % 7


def gsm_pack(septets: bytes, fill_bits: int = 0) -> bytes:
    """Pack septets (one per octet) into 7-bit GSM, after ``fill_bits`` zero bits (0..6).

    Padding follows 23.038 §6.1.2.3.1: when the last octet would have 7 spare bits they hold CR,
    and a text whose own final CR ends exactly on an octet boundary gets one more CR, so that a
    reader who only knows the octet count (``gsm_unpack`` without ``count``) can tell padding from
    text.
    """
    _check_fill(fill_bits)
    if septets and max(septets) > 0x7F:
        raise ValueError("a septet is 0..0x7F; got an octet with the high bit set")
    bits = fill_bits + 7 * len(septets)
    if septets and septets[-1] == _CR and bits % 8 == 0:
        septets = bytes(septets) + b"\r"
        bits += 7
    acc = 0
    for i, septet in enumerate(septets):
        acc |= septet << (7 * i)
    acc <<= fill_bits
    size = -(-bits // 8)
    if size * 8 - bits == 7:
        acc |= _CR << bits
    return acc.to_bytes(size, "little")


def gsm_unpack(data: bytes, count: int | None = None, fill_bits: int = 0) -> bytes:
    """Unpack 7-bit GSM into septets (one per octet), skipping ``fill_bits`` leading bits.

    With ``count`` exactly that many septets are returned (ValueError if the data is too short).
    Without it, every whole septet is returned except a final CR that fills exactly the last 7 bits,
    which is padding by 23.038 §6.1.2.3.1 (a CR the sender meant arrives doubled, see ``gsm_pack``).
    """
    _check_fill(fill_bits)
    bits = len(data) * 8 - fill_bits
    available = max(bits, 0) // 7
    acc = int.from_bytes(data, "little") >> fill_bits
    if count is None:
        count = available
        if count and available * 7 == bits and (acc >> (7 * (count - 1))) & 0x7F == _CR:
            count -= 1
    elif not 0 <= count <= available:
        raise ValueError(f"{len(data)} octets hold {available} septets, not {count}")
    return bytes((acc >> (7 * i)) & 0x7F for i in range(count))


def _check_fill(fill_bits: int) -> None:
    if not 0 <= fill_bits <= 6:
        raise ValueError(f"fill_bits must be 0..6, got {fill_bits}")


# --- choosing an encoding -------------------------------------------------------------------------

#: An encoding by its API name (or itself): ``Encoding(name)`` without the Enum call's two calls
#: (asked for every message accepted and sent).
ENCODING_BY_NAME = {e.value: e for e in Encoding} | {e: e for e in Encoding}


def _encoding(value: Encoding | str) -> Encoding:
    try:
        return ENCODING_BY_NAME[value]
    except KeyError:
        raise ValueError(
            f"unknown encoding {value!r}: expected one of gsm7, latin1, ucs2"
        ) from None


def choose_encoding(text: str, requested: str = "auto", latin1_ok: bool = False) -> Encoding:
    """The encoding a text goes in (SPEC §7).

    ``auto``: GSM when every character fits, else Latin-1 if the operator takes it
    (``latin1_ok``) and every character fits, else UCS-2. An explicit ``gsm7``/``latin1``/``ucs2``
    is honoured whatever ``latin1_ok`` says (the caller decides whether the operator may be asked
    for Latin-1).
    Raises UnencodableText when the text cannot go in the requested encoding, and in ``auto`` for a
    text no encoding carries (a lone surrogate, which only a broken client can send); ValueError for
    an unknown ``requested``.
    """
    if requested == "auto":
        if fits_gsm(text):
            return Encoding.GSM7
        if latin1_ok:
            try:
                text.encode("latin-1")
            except UnicodeEncodeError:
                pass
            else:
                return Encoding.LATIN1
        _encode(text, Encoding.UCS2)
        return Encoding.UCS2
    encoding = _encoding(requested)
    _encode(text, encoding)
    return encoding


def encoding_and_parts(text: str, requested: str = "auto", latin1_ok: bool = False) -> tuple[Encoding, int]:
    """``choose_encoding`` and ``count_parts`` of the text in that encoding, the text encoded once
    (a request asks both: each alone encodes it): the same answers, the same errors."""
    if requested == "auto":
        if text.isascii():
            septets = text.translate(_GSM_ENCODE)
            if septets.isascii():  # GSM, as fits_gsm finds it: most texts
                return Encoding.GSM7, _count(text, septets.encode("ascii"), Encoding.GSM7)
        encoding = choose_encoding(text, "auto", latin1_ok)
        return encoding, count_parts(text, encoding)
    encoding = _encoding(requested)
    return encoding, _count(text, _encode(text, encoding), encoding)


def _encode(text: str, encoding: Encoding) -> bytes:
    if encoding is Encoding.GSM7:
        return gsm_encode(text)
    try:
        return text.encode("utf-16-be" if encoding is Encoding.UCS2 else "latin-1")
    except UnicodeEncodeError as e:
        raise UnencodableText(text[e.start], e.start, encoding) from None


def _first_non_gsm(text: str) -> UnencodableText:
    match = _NON_GSM.search(text)
    assert match is not None
    return UnencodableText(match.group(), match.start(), Encoding.GSM7)


# --- parts ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Part:
    """One SMS of a text: its slice of the original text and that slice's encoded payload (no UDH).

    The payload is GSM as unpacked septets one per octet, UCS-2 as UTF-16-BE, Latin-1 as Latin-1.
    """

    text: str
    payload: bytes


#: Payload octets in a single SMS and in one part of a concatenated SMS (8-bit reference UDH).
SINGLE_PART_OCTETS = {Encoding.GSM7: 160, Encoding.UCS2: 140, Encoding.LATIN1: 140}
MULTI_PART_OCTETS = {Encoding.GSM7: 153, Encoding.UCS2: 134, Encoding.LATIN1: 134}


def udh_room(payload: bytes, encoding: Encoding | str, udh: bytes) -> tuple[int, int, str]:
    """(used, room, unit) of one SMS carrying ``payload`` after ``udh``: GSM counts septets (the
    UDH padded to a septet boundary) out of 160, other encodings octets out of 140."""
    if _encoding(encoding) is Encoding.GSM7:
        return len(payload) + -(-len(udh) * 8 // 7), 160, "septets"
    return len(payload) + len(udh), 140, "octets"


def one_part_with_udh(text: str, encoding: Encoding | str, udh: bytes) -> Part:
    """``text`` as the one SMS it must stay (a part its sender concatenated itself, with ``udh``).
    Raises UnencodableText, or ValueError when it does not fit one SMS with the UDH."""
    encoding = _encoding(encoding)
    # UCS-2: a character split with the part beside it goes as its half (connectors.smpp.halves)
    payload = encode_ucs2_part(text) if encoding is Encoding.UCS2 else _encode(text, encoding)
    used, room, unit = udh_room(payload, encoding, udh)
    if used > room:
        raise ValueError(f"the part needs {used} {unit} with its UDH, over {room}, as {encoding.value}")
    return Part(text, payload)


def split(text: str, encoding: Encoding | str) -> list[Part]:
    """Split a text into the parts it is sent as; empty text is one empty part.

    Never separates a GSM escape from its character nor a UTF-16 surrogate pair. Raises
    UnencodableText if the text does not fit ``encoding``.
    """
    encoding = _encoding(encoding)
    payload = _encode(text, encoding)
    if _fits_one(payload, encoding):
        return [Part(text, payload)]
    parts = []
    start = 0  # in the text
    for chunk in _chunks(payload, encoding):
        if encoding is Encoding.GSM7:
            length = len(chunk) - chunk.count(ESC)
        elif encoding is Encoding.UCS2:
            length = len(chunk.decode("utf-16-be"))
        else:
            length = len(chunk)
        parts.append(Part(text[start : start + length], chunk))
        start += length
    return parts


def _fits_one(payload: bytes, encoding: Encoding) -> bool:
    """Whether the payload goes as a single SMS. A GSM text of exactly 160 septets ending in CR
    does not: packed, 23.038 §6.1.2.3.1 makes it end with a second CR (a 141st octet), and
    without that CR the phone would take the real one for padding."""
    size = SINGLE_PART_OCTETS[encoding]
    if len(payload) < size:
        return True
    return len(payload) == size and not (encoding is Encoding.GSM7 and payload[-1] == _CR)


def _chunks(payload: bytes, encoding: Encoding):
    size = MULTI_PART_OCTETS[encoding]
    start, end = 0, len(payload)
    while start < end:
        cut = start + size
        if cut <= end:
            # A full GSM part never ends in an escape (it belongs with its character) nor in CR
            # (see _fits_one); a UCS-2 part never ends in a high surrogate.
            if encoding is Encoding.GSM7 and payload[cut - 1] in (ESC, _CR):
                cut -= 1
            elif encoding is Encoding.UCS2 and cut < end and 0xD8 <= payload[cut - 2] <= 0xDB:
                cut -= 2
        yield payload[start:cut]
        start = cut


def count_parts(text: str, encoding: Encoding | str) -> int:
    """``len(split(text, encoding))``, without building the parts."""
    encoding = _encoding(encoding)
    return _count(text, _encode(text, encoding), encoding)


def _count(text: str, payload: bytes, encoding: Encoding) -> int:
    """``count_parts`` of ``text``, whose ``payload`` in ``encoding`` is known."""
    if _fits_one(payload, encoding):
        return 1
    if encoding is Encoding.LATIN1 or (
        encoding is Encoding.GSM7 and ESC not in payload and _CR not in payload
    ) or (encoding is Encoding.UCS2 and len(payload) == 2 * len(text)):
        return -(-len(payload) // MULTI_PART_OCTETS[encoding])
    return sum(1 for _ in _chunks(payload, encoding))


def encoded_length(text: str, encoding: Encoding | str) -> int:
    """Length of the encoded text: septets for GSM (an extension character counts two), octets
    for UCS-2 and Latin-1."""
    return len(_encode(text, _encoding(encoding)))


def decode(payload: bytes, encoding: Encoding | str) -> str:
    """Decode a payload (no UDH) in ``encoding``; never raises on bad data (U+FFFD instead)."""
    encoding = _encoding(encoding)
    if encoding is Encoding.GSM7:
        return gsm_decode(payload)
    if encoding is Encoding.UCS2:
        return payload.decode("utf-16-be", "replace")
    return payload.decode("latin-1")


# --- User Data Header (23.040 §9.2.3.24) ----------------------------------------------------------


class ConcatInfo(NamedTuple):
    """The concatenation element of a UDH: reference, total parts, this part (1-based)."""

    ref: int
    total: int
    seq: int


_IEI_CONCAT_8 = 0x00
_IEI_CONCAT_16 = 0x08


def concat_udh(ref: int, total: int, seq: int, ref16: bool = False) -> bytes:
    """The UDH, length octet included, of part ``seq`` of ``total`` of concatenated message ``ref``.

    ``05 00 03 ref total seq`` with an 8-bit reference; ``06 08 04 refhi reflo total seq`` with a
    16-bit one (which leaves one septet/octet less for text than ``split`` assumes).
    """
    if not 1 <= total <= 255 or not 1 <= seq <= total:
        raise ValueError(f"need 1 <= seq <= total <= 255, got seq={seq} total={total}")
    if ref16:
        if not 0 <= ref <= 0xFFFF:
            raise ValueError(f"a 16-bit reference is 0..65535, got {ref}")
        return bytes((6, _IEI_CONCAT_16, 4, ref >> 8, ref & 0xFF, total, seq))
    if not 0 <= ref <= 0xFF:
        raise ValueError(f"an 8-bit reference is 0..255, got {ref}")
    return bytes((5, _IEI_CONCAT_8, 3, ref, total, seq))


def parse_udh(data: bytes) -> tuple[ConcatInfo | None, bytes]:
    """Split user data that starts with a UDH into (concatenation info or None, the body after it).

    Other information elements are skipped. A concatenation element with a sequence of 0 or past
    the total is ignored, as 23.040 says. Raises InvalidUDH when a length runs past the end.
    """
    if not data:
        raise InvalidUDH("no UDH: the user data is empty")
    end = 1 + data[0]
    if end > len(data):
        raise InvalidUDH(f"UDH length {data[0]} runs past the end of {len(data) - 1} octets")
    info = None
    i = 1
    while i < end:
        if i + 2 > end:
            raise InvalidUDH(f"information element at octet {i} has no length")
        iei, length = data[i], data[i + 1]
        value = i + 2
        if value + length > end:
            raise InvalidUDH(
                f"information element 0x{iei:02X} of length {length} runs past the UDH"
            )
        if iei == _IEI_CONCAT_8 and length == 3:
            candidate = ConcatInfo(data[value], data[value + 1], data[value + 2])
        elif iei == _IEI_CONCAT_16 and length == 4:
            candidate = ConcatInfo(
                data[value] << 8 | data[value + 1], data[value + 2], data[value + 3]
            )
        else:
            candidate = None
        if candidate is not None and 1 <= candidate.seq <= candidate.total:
            info = candidate
        i = value + length
    return info, data[end:]
