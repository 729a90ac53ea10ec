"""Mobile-originated messages as a simulated SMSC sends them: deliver_sm fields for a text.

Why a module of its own, with no reactor: the encoding and the cut into UDH-concatenated parts
are what the gateway's MO decoding and reassembly are tested against, so they are kept pure; the
encoding rules themselves are ``connectors.smpp.text``'s, not repeated here.
"""

from __future__ import annotations

from connectors.smpp.defs import ESM_CLASS_UDHI
from connectors.smpp.text import Encoding, UnencodableText, choose_encoding, concat_udh, split

__all__ = ["InvalidMO", "MAX_ADDRESS", "mo_parts"]

MAX_ADDRESS = 20  # deliver_sm source_addr / destination_addr: 21 octets with the NUL
_DATA_CODING = {Encoding.GSM7: 0, Encoding.UCS2: 8}


class InvalidMO(ValueError):
    """An MO the SMSC cannot send; ``field`` names the culprit ("from", "to" or "text")."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _check_address(field: str, value: str) -> None:
    if not value or len(value) > MAX_ADDRESS or not value.isascii() or "\0" in value:
        raise InvalidMO(field, f"{field!r} must be an address of 1 to {MAX_ADDRESS} ASCII"
                               f" characters, not {value!r}")


def mo_parts(sender: str, to: str, text: str, ref: int) -> list[dict]:
    """The deliver_sm params of each part of an MO from ``sender`` (international, TON 1 NPI 1)
    to ``to`` (a shortcode or number, TON 0 NPI 1).

    GSM 03.38 (data_coding 0, one septet per octet) when every character fits, else UCS-2 (8,
    UTF-16-BE); a text too long for one SMS becomes parts with an 8-bit-reference UDH (``ref``
    modulo 256) and esm_class 0x40. Raises ``InvalidMO`` for a bad address, a text no encoding
    carries (a lone surrogate) or one over the 255 parts a UDH can number.
    """
    _check_address("from", sender)
    _check_address("to", to)
    try:
        encoding = choose_encoding(text)
    except UnencodableText as exc:
        raise InvalidMO("text", f"'text' {exc}") from None
    parts = split(text, encoding)
    if len(parts) > 255:
        raise InvalidMO("text", f"'text' needs {len(parts)} parts, more than the 255 a UDH"
                                " can number")
    base = {
        "source_addr_ton": 1, "source_addr_npi": 1, "source_addr": sender,
        "dest_addr_ton": 0, "dest_addr_npi": 1, "destination_addr": to,
        "data_coding": _DATA_CODING[encoding],
    }
    if len(parts) == 1:
        return [dict(base, esm_class=0, short_message=parts[0].payload)]
    total = len(parts)
    return [dict(base, esm_class=ESM_CLASS_UDHI,
                 short_message=concat_udh(ref % 256, total, seq) + part.payload)
            for seq, part in enumerate(parts, 1)]
