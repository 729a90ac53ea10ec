"""Delivery receipts as a simulated SMSC writes them: the outcome, the text, the deliver_sm fields.

Why a module of its own, with no reactor: what a receipt says (the de-facto standard text of SMPP
3.4 Appendix B plus the ``receipted_message_id`` and ``message_state`` TLVs) is what the gateway's
receipt parsing is tested against, so it is kept pure and checked field by field. A scenario that
misbehaves (ids in another format, a missing TLV, a different text) builds on these pieces.
"""

from __future__ import annotations

import time
from typing import NamedTuple

from connectors.smpp.defs import ESM_CLASS_RECEIPT, ESM_CLASS_UDHI
from connectors.smpp.text import InvalidUDH, decode, parse_udh

__all__ = [
    "DELIVERED",
    "Outcome",
    "UNDELIVERABLE",
    "message_text",
    "receipt_fields",
    "receipt_text",
    "smpp_date",
    "wants_receipt",
]

PREVIEW_CHARS = 20


class Outcome(NamedTuple):
    """The final state a receipt reports: its ``stat:`` word, ``err:`` code, ``message_state``
    TLV value (SMPP 3.4 §5.2.28) and whether the message counts as delivered (``dlvrd:``)."""

    stat: str
    err: int
    message_state: int
    delivered: bool


DELIVERED = Outcome("DELIVRD", 0, 2, True)
UNDELIVERABLE = Outcome("UNDELIV", 1, 5, False)


def wants_receipt(registered_delivery: int, outcome: Outcome) -> bool:
    """Whether ``registered_delivery`` (its bits 0-1, SMPP 3.4 §5.2.17) asks for this receipt:
    1 always, 2 on failure only, 3 on success only (3 is reserved in 3.4; SMPP 5.0's meaning)."""
    asked = registered_delivery & 0x03
    if asked == 1:
        return True
    if asked == 2:
        return not outcome.delivered
    if asked == 3:
        return outcome.delivered
    return False


def smpp_date(seconds: float) -> str:
    """``YYMMDDhhmm`` in UTC, as receipt texts carry dates."""
    return time.strftime("%y%m%d%H%M", time.gmtime(seconds))


_DATA_CODING = {0: "gsm7", 3: "latin1", 8: "ucs2"}


def message_text(payload: bytes, data_coding: int, esm_class: int) -> str:
    """The text of a submitted message or part, UDH removed, decoded as its data_coding says
    (GSM one septet per octet, Latin-1, UCS-2; anything else read as Latin-1). Never raises."""
    if esm_class & ESM_CLASS_UDHI and payload:
        try:
            _, payload = parse_udh(payload)
        except InvalidUDH:
            pass
    return decode(payload, _DATA_CODING.get(data_coding, "latin1"))


def _ascii(text: str) -> str:
    return "".join(c if " " <= c <= "~" else "?" for c in text)


def receipt_text(message_id: str, outcome: Outcome, submitted_at: float, done_at: float,
                 text: str) -> str:
    """``id:… sub:001 dlvrd:001 submit date:… done date:… stat:… err:… text:…``: the first 20
    characters of the message, anything outside printable ASCII shown as ``?``."""
    return (f"id:{message_id} sub:001 dlvrd:{'001' if outcome.delivered else '000'}"
            f" submit date:{smpp_date(submitted_at)} done date:{smpp_date(done_at)}"
            f" stat:{outcome.stat} err:{outcome.err:03d} text:{_ascii(text[:PREVIEW_CHARS])}")


def receipt_fields(submit: dict, message_id: str, outcome: Outcome, submitted_at: float,
                   done_at: float, text: str) -> tuple[dict, dict]:
    """The deliver_sm ``(params, tlvs)`` of the receipt for a submit with mandatory ``submit``
    params: addresses swapped (from the handset back to the ESME), esm_class 0x04, ASCII text."""
    params = {
        "source_addr_ton": submit.get("dest_addr_ton", 0),
        "source_addr_npi": submit.get("dest_addr_npi", 0),
        "source_addr": submit.get("destination_addr", ""),
        "dest_addr_ton": submit.get("source_addr_ton", 0),
        "dest_addr_npi": submit.get("source_addr_npi", 0),
        "destination_addr": submit.get("source_addr", ""),
        "esm_class": ESM_CLASS_RECEIPT,
        "data_coding": 0,
        "short_message": receipt_text(message_id, outcome, submitted_at, done_at,
                                      text).encode("ascii"),
    }
    tlvs = {"receipted_message_id": message_id, "message_state": outcome.message_state}
    return params, tlvs
