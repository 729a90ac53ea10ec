"""Addresses and text as an operator's SMSC gets them, and MO text as it comes: pure helpers of
the operator links (``client.py``) and of the SMPP server's deliver_sm (``deliver_fields.py``).

Encoding per operator (``wire_encoding``). SPEC §7 allows Latin-1 only for operators with
``latin1 = true``, but a message's encoding is chosen at acceptance, before its operator is, so
the link adapts it. A ``latin1`` message (asked for by a request, or data_coding 1 or 3 from an
ESME) to an operator without Latin-1 goes as ``auto`` would: GSM when every character fits, else
UCS-2. A ``ucs2`` message whose every character is Latin-1 goes to an operator with Latin-1 as
Latin-1 (never more parts). GSM stays GSM. Either fallback may need more parts than Latin-1 (UCS-2
67 characters a part instead of 134; GSM's extension characters count two), so acceptance counts
the most any operator of the message's profile needs (``wire_encodings``): that is the count
held to ``max_parts``, charged and stored, and no link sends more.

Addresses: destination TON 1 / NPI 1 (a leading ``+`` is dropped). Source: letters → alphanumeric
(TON 5 / NPI 0); up to 6 digits → a short code (TON 3 network specific / NPI 0); more digits →
international (TON 1 / NPI 1); empty → TON 0 / NPI 0 (the SMSC's default sender). An operator
that wants other values says so (``source_ton``/``source_npi``, ``dest_ton``/``dest_npi``, SPEC
§15): each one it sets replaces the automatic choice for every message it gets, the others stay.

MO: the text by data_coding (0 and 0xF0–0xF3 GSM, 8 UCS-2, 1 and 3 Latin-1, anything else read as
Latin-1), after a UDH when esm_class says there is one; a concatenated MO's reference, total and
sequence from its UDH or its SAR TLVs. A UCS-2 text keeps a half of a surrogate pair at its edges
for the part beside it (``halves``); the caller makes a text that is not a part ``halves.whole``.
"""

from __future__ import annotations

from collections.abc import Iterable

from connectors.smpp.halves import decode_ucs2_part
from connectors.smpp.text import (
    ConcatInfo,
    Encoding,
    InvalidUDH,
    decode,
    fits_gsm,
    gsm_fill_bits,
    gsm_unpack,
    parse_udh,
)

__all__ = ["DATA_CODING", "decode_mo_text", "destination_address", "mo_concat", "mo_encoding",
           "source_address", "wire_encoding", "wire_encodings"]

#: The data_coding an operator gets for each encoding.
DATA_CODING = {Encoding.GSM7: 0, Encoding.LATIN1: 3, Encoding.UCS2: 8}


def source_address(sender: str, ton: int | None = None, npi: int | None = None) -> tuple[int, int, str]:
    """(TON, NPI, address) for a sender ID; ``ton``/``npi``: an operator's own values, which
    replace the automatic choice (see the module docstring)."""
    if sender.startswith("+") and sender[1:].isdigit():
        sender = sender[1:]
    if not sender:
        chosen_ton, chosen_npi = 0, 0
    elif sender.isascii() and sender.isdigit():
        chosen_ton, chosen_npi = (3, 0) if len(sender) <= 6 else (1, 1)
    else:
        chosen_ton, chosen_npi = 5, 0
    return (chosen_ton if ton is None else ton), (chosen_npi if npi is None else npi), sender


def destination_address(to: str, ton: int | None = None, npi: int | None = None) -> tuple[int, int, str]:
    """(TON, NPI, address) for a recipient: international (1/1) without its ``+`` unless the
    operator set its own ``ton``/``npi``."""
    return (1 if ton is None else ton), (1 if npi is None else npi), to.removeprefix("+")


def wire_encoding(encoding: Encoding, text: str, latin1: bool) -> Encoding:
    """The encoding a message goes in to an operator with (``latin1``) or without Latin-1;
    see the module docstring."""
    if encoding is Encoding.LATIN1 and not latin1:
        return Encoding.GSM7 if fits_gsm(text) else Encoding.UCS2
    if encoding is Encoding.UCS2 and latin1 and (text.isascii() or max(text) <= "\xff"):
        return Encoding.LATIN1
    return encoding


def wire_encodings(encoding: Encoding, text: str, latin1: Iterable[bool]) -> set[Encoding]:
    """Every encoding the message may go in to operators with these ``latin1`` settings (those of
    its profile); just ``encoding`` for none."""
    return {wire_encoding(encoding, text, each) for each in set(latin1)} or {encoding}


def mo_encoding(data_coding: int) -> Encoding | None:
    if data_coding == 0 or data_coding & 0xFC == 0xF0:
        return Encoding.GSM7
    if data_coding == 8:
        return Encoding.UCS2
    if data_coding in (1, 3):
        return Encoding.LATIN1
    return None


def decode_mo_text(short_message: bytes, data_coding: int, udhi: bool = False,
                   packed_gsm: bool = False) -> tuple[str, ConcatInfo | None]:
    """The text of an MO and its concatenation info (from the UDH when ``udhi``).

    Never raises: a UDH whose own length runs past the data is read as text; one that fits but
    whose elements do not (an element longer than the header says) is skipped whole, without
    concatenation info, so that its octets do not become text (an audit saw them routed as an
    unknown keyword and answered); unknown data codings are read as Latin-1.
    """
    concat = None
    body = short_message
    if udhi:
        try:
            concat, body = parse_udh(short_message)
        except InvalidUDH:
            if short_message and 1 + short_message[0] <= len(short_message):
                body = short_message[1 + short_message[0]:]
            else:
                udhi = False
    encoding = mo_encoding(data_coding) or Encoding.LATIN1
    if encoding is Encoding.GSM7 and packed_gsm:
        udh_octets = len(short_message) - len(body)
        body = gsm_unpack(body, fill_bits=gsm_fill_bits(udh_octets) if udhi else 0)
    if encoding is Encoding.UCS2:
        return decode_ucs2_part(body), concat
    return decode(body, encoding), concat


def mo_concat(udh_concat, tlvs) -> tuple[int, int, int] | None:
    """(reference, total, sequence) of a part of a concatenated MO, from its UDH or its SAR TLVs;
    None for a whole SMS (or nonsense such as a total of 1 or a sequence past the total)."""
    if udh_concat is not None:
        ref, total, seq = udh_concat.ref, udh_concat.total, udh_concat.seq
    elif all(isinstance(tlvs.get(k), int) for k in ("sar_msg_ref_num", "sar_total_segments", "sar_segment_seqnum")):
        ref, total, seq = tlvs["sar_msg_ref_num"], tlvs["sar_total_segments"], tlvs["sar_segment_seqnum"]
    else:
        return None
    if total < 2 or not 1 <= seq <= total:
        return None
    return ref, total, seq
