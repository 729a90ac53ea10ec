"""UCS-2 parts of one SMS that split a character between them: the halves kept until the parts meet.

Why a module of its own: a character beyond U+FFFF (an emoji) is two UTF-16 code units, a
surrogate pair, and some phones split a long message into parts between the two. Decoded part by
part, each half alone is broken text (U+FFFD), and the message that reaches the customer has
"��" where the sender wrote one character. A part is stored as text before the others arrive
(durably, before the SMSC is answered), and a lone surrogate cannot be stored as text (it is not
UTF-8), so a half at a part's edge is kept as a *placeholder*: the code point U+10F800 plus the
half's offset in the surrogate range (Supplementary Private Use Area-B, which no SMSC sends at a
part's very edge in practice). ``join_parts`` puts the halves of adjacent parts back together;
a half whose other half never came (a part missing, or a sender that sent only one) is U+FFFD,
as ``text.decode`` makes any broken unit.

- ``decode_ucs2_part(payload)``: a part's text, a lone high surrogate at its end and a lone low one
  at its start kept as placeholders; every other broken unit U+FFFD.
- ``join_parts(texts)``: the whole text from the parts in order ("" where one is missing).
- ``whole(text)``: the text of an SMS that turned out not to be a part: placeholders are U+FFFD.
- ``encode_ucs2_part(text)``: the other way, for a part that goes on as it came (an ESME's own
  concatenated MT, SPEC §13): UTF-16-BE with the placeholder at either edge sent as the half it
  stands for, so the operator gets the very code units the ESME sent.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["decode_ucs2_part", "encode_ucs2_part", "join_parts", "whole"]

_BASE = 0x10F800  # placeholder of the surrogate code unit 0xD800; 0xDFFF's is U+10FFFF
_HIGH = range(0xD800, 0xDC00)
_LOW = range(0xDC00, 0xE000)


def _placeholder(unit: int) -> str:
    return chr(_BASE + unit - 0xD800)


def _unit(char: str) -> int | None:
    """The surrogate code unit a placeholder stands for, else None."""
    code = ord(char) - _BASE
    return code + 0xD800 if 0 <= code < 0x800 else None


def decode_ucs2_part(payload: bytes) -> str:
    even = len(payload) - len(payload) % 2
    chars = list(payload[:even].decode("utf-16-be", "surrogatepass"))  # pairs decode whole
    last = len(chars) - 1
    for i, char in enumerate(chars):
        unit = ord(char)
        if 0xD800 <= unit < 0xE000:  # a lone half
            edge = (i == 0 and unit in _LOW) or (i == last and unit in _HIGH and even == len(payload))
            chars[i] = _placeholder(unit) if edge else "\ufffd"
    if even != len(payload):
        chars.append("\ufffd")  # an odd octet: half a unit
    return "".join(chars)


def join_parts(texts: Sequence[str]) -> str:
    parts = list(texts)
    for i in range(1, len(parts)):
        before, after = parts[i - 1], parts[i]
        if not before or not after:
            continue
        high, low = _unit(before[-1]), _unit(after[0])
        if high in _HIGH and low in _LOW:
            parts[i - 1] = before[:-1] + chr(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
            parts[i] = after[1:]
    return "".join(whole(text) for text in parts)


def whole(text: str) -> str:
    if not text:
        return text
    if _unit(text[0]) is not None:
        text = "\ufffd" + text[1:]
    if _unit(text[-1]) is not None:
        text = text[:-1] + "\ufffd"
    return text


def encode_ucs2_part(text: str) -> bytes:
    """``text`` as UTF-16-BE, a placeholder at its start (low half) or end (high half) as the code
    unit it stands for: the inverse of ``decode_ucs2_part``. Raises UnicodeEncodeError as
    ``str.encode`` does for a lone surrogate anywhere else (no stored text holds one)."""
    if not text:
        return b""
    head = tail = b""
    first, last = _unit(text[0]), _unit(text[-1])
    if first in _LOW:
        head, text = first.to_bytes(2, "big"), text[1:]
    if text and last in _HIGH:
        tail, text = last.to_bytes(2, "big"), text[:-1]
    return head + text.encode("utf-16-be") + tail
