"""What the gateway tells a customer's ESME, as SMPP fields: receipts and MO (deliver_sm), and the
answer to query_sm.

Why this module exists: SPEC §13 fixes what a customer's ESME reads (the receipt text, its TLVs,
the status → ``stat`` / ``message_state`` table, the addresses swapped back), and the core must
not write SMPP fields itself. So the core passes plain values (a message id, a SPEC §5 status,
times as epoch seconds) and gets back a ``DeliverSm`` to hand to the server, or the
query_sm_resp fields. Pure, no I/O; each builder encodes its PDU once so a value that cannot go on
the wire (an address over 20 characters, say) fails here, where the caller still knows what it
was building.

Theory of operation
-------------------
* ``final_state(status, cancelled)`` is the table of SPEC §13 (``stopped`` by a cancel is
  DELETED / 4, stopped otherwise REJECTD / 8); ``message_state`` answers ENROUTE (1) for a status
  that is not final, as query_sm does.
* ``receipt(...)``: esm_class 0x04, source = the message's destination, destination = its sender
  (TON/NPI chosen by ``addressing.source_address``, as for operators), ``short_message`` = ``id:<id>
  sub:001 dlvrd:<001|000> submit date:YYMMDDhhmm done date:YYMMDDhhmm stat:<stat> err:<3 digits>
  text:<first 20 characters>`` (UTC), TLVs ``receipted_message_id`` and ``message_state``. The
  text goes with data_coding 0 using only characters that have the same code in ASCII and in
  GSM 03.38 (letters, digits, space and most punctuation); others show as ``?``, so an ESME
  reading the receipt as either gets the same text.
* ``mo(...)``: source = the phone (TON 1 / NPI 1), destination = the shortcode, the whole text in
  GSM 03.38 when it fits (data_coding 0, one septet per octet), else UCS-2 (8); in
  ``short_message`` up to 254 octets, beyond that in ``message_payload``.
* ``query_sm_resp_params(message_id, answer)``: ``message_state`` by the table, ``final_date`` in
  the absolute time format once final (empty before), ``error_code`` the operator's error when it
  is a number of one octet, else 0.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import lru_cache

from .addressing import source_address
from .codec import PDU, EncodeError, encode
from .defs import BODIES, ESM_CLASS_RECEIPT, TLVS_BY_NAME
from .text import GSM_BASIC, Encoding, choose_encoding, gsm_encode
from .times import format_absolute

__all__ = [
    "DeliverSm",
    "ENROUTE",
    "FINAL_STATES",
    "QueryAnswer",
    "final_state",
    "message_state",
    "mo",
    "query_sm_resp_params",
    "receipt",
    "receipt_text",
]

ENROUTE = 1
PREVIEW_CHARS = 20
_SIZES = {f.name: f.size for f in BODIES["deliver_sm"]}
_MAX_SHORT_MESSAGE = _SIZES["short_message"]

#: Final status (SPEC §5) → (stat word, message_state TLV value), SPEC §13.
FINAL_STATES: dict[str, tuple[str, int]] = {
    "delivered": ("DELIVRD", 2),
    "failed": ("UNDELIV", 5),
    "expired": ("EXPIRED", 3),
    "stopped": ("REJECTD", 8),
    "rejected": ("REJECTD", 8),
    "unknown": ("UNKNOWN", 7),
}
_CANCELLED = ("DELETED", 4)

#: Characters printed as themselves in a receipt text: the same octet in ASCII and GSM 03.38.
_SAME_IN_ASCII_AND_GSM = frozenset(c for i, c in enumerate(GSM_BASIC) if " " <= c <= "~"
                                   and ord(c) == i)


def final_state(status: str, cancelled: bool = False) -> tuple[str, int]:
    """(stat, message_state) of a final status; ValueError for a status that is not final."""
    if status == "stopped" and cancelled:
        return _CANCELLED
    try:
        return FINAL_STATES[status]
    except KeyError:
        raise ValueError(f"{status!r} is not a final status") from None


def message_state(status: str, cancelled: bool = False) -> int:
    """The message_state of any status: the table for a final one, else ENROUTE."""
    if status in FINAL_STATES:
        return final_state(status, cancelled)[1]
    return ENROUTE


@dataclass(slots=True)
class DeliverSm:
    """A deliver_sm to send to an account's ESME: its fields, and for the logs what it is
    (``kind`` "receipt" or "mo") and about what (``ref``: the message's id, or the MO's)."""

    params: dict
    tlvs: dict = field(default_factory=dict)
    kind: str = "receipt"
    ref: str = ""


@lru_cache(maxsize=1024)
def _smpp_minute(minute: int) -> str:
    """YYMMDDhhmm (UTC) of the minute ``minute`` (minutes since the epoch). Remembered: a receipt
    shows two times, mostly of the same few minutes as the receipts before it, and formatting a
    time was most of the text's cost. Called as ``_smpp_minute(int(epoch // 60))``: the minute
    ``time.gmtime(epoch)`` falls in (it drops the fraction downwards, as ``//`` does)."""
    return time.strftime("%y%m%d%H%M", time.gmtime(minute * 60))


def _err_digits(err: str | int) -> str:
    """The operator's error code as the receipt's three digits: 000 when it has none or it is not
    decimal, 999 when it needs more than three (a wider field breaks parsers that read it fixed)."""
    if err == "":  # the common case: no error code
        return "000"
    text = str(err).strip()
    if not (text.isascii() and text.isdigit()):
        return "000"
    return f"{min(int(text), 999):03d}"


def _printable(text: str) -> str:
    if _SAME_IN_ASCII_AND_GSM.issuperset(text):  # the common case, checked in one C call
        return text
    return "".join(c if c in _SAME_IN_ASCII_AND_GSM else "?" for c in text)


def receipt_text(message_id: str, stat: str, *, delivered: bool, submitted_at: float,
                 done_at: float, err: str | int, text: str) -> str:
    """The SPEC §13 receipt text (see the module docstring). ``err``: digits, else ``000``."""
    return (f"id:{message_id} sub:001 dlvrd:{'001' if delivered else '000'}"
            f" submit date:{_smpp_minute(int(submitted_at // 60))} done date:{_smpp_minute(int(done_at // 60))}"
            f" stat:{stat} err:{_err_digits(err)} text:{_printable(text[:PREVIEW_CHARS])}")


def _checked(item: DeliverSm) -> DeliverSm:
    encode(PDU("deliver_sm", 1, params=item.params, tlvs=item.tlvs))  # raises EncodeError
    return item


#: the C-strings of a receipt that come from outside (the message's numbers, its id), with their
#: sizes on the wire (the NUL included)
_RECEIPT_CSTRINGS = {"source_addr": _SIZES["source_addr"], "destination_addr": _SIZES["destination_addr"],
                     "receipted_message_id": TLVS_BY_NAME["receipted_message_id"].size}


def _receipt_checked(item: DeliverSm) -> DeliverSm:
    """``_checked`` for a receipt, without encoding it a first time: everything else in it is
    built here and fits (an ASCII text well under ``short_message``'s 254 octets)."""
    for name, size in _RECEIPT_CSTRINGS.items():
        value = item.tlvs[name] if name == "receipted_message_id" else item.params[name]
        try:
            raw = value.encode("latin-1")
        except UnicodeEncodeError:
            raise EncodeError(f"deliver_sm.{name}: {value!r} is not Latin-1") from None
        if len(raw) >= size or 0 in raw:
            raise EncodeError(f"deliver_sm.{name}: {value!r} holds a NUL or does not fit a C-string "
                              f"of {size} octets with its NUL")
    return item


#: ``source_address`` of a receipt's destination, the message's sender: one of its account's few
#: senders, receipt after receipt, so remembered
_sender_address = lru_cache(maxsize=256)(source_address)


def receipt(message_id: str, status: str, *, to: str, sender: str, submitted_at: float,
            done_at: float, text: str, err: str | int = "", cancelled: bool = False) -> DeliverSm:
    """The receipt deliver_sm for a message from ``sender`` to ``to`` that ended in ``status``.

    Raises ValueError for a status that is not final, ``EncodeError`` (a ValueError too) for a
    value that does not fit its field.
    """
    stat, state = final_state(status, cancelled)
    source_ton, source_npi, source = source_address(to)
    dest_ton, dest_npi, destination = _sender_address(sender)
    body = receipt_text(message_id, stat, delivered=status == "delivered",
                        submitted_at=submitted_at, done_at=done_at, err=err, text=text)
    params = {
        "source_addr_ton": source_ton, "source_addr_npi": source_npi, "source_addr": source,
        "dest_addr_ton": dest_ton, "dest_addr_npi": dest_npi, "destination_addr": destination,
        "esm_class": ESM_CLASS_RECEIPT, "data_coding": 0, "short_message": body.encode("ascii"),
    }
    tlvs = {"receipted_message_id": message_id, "message_state": state}
    return _receipt_checked(DeliverSm(params, tlvs, "receipt", message_id))


def mo(sender: str, to: str, text: str, mo_id: str = "") -> DeliverSm:
    """The deliver_sm of an MO (``mo_id``, for the logs) from the phone ``sender`` to the shortcode
    ``to``, whole.

    Raises ``UnencodableText`` for a text no encoding carries, ``EncodeError`` for an address that
    does not fit.
    """
    encoding = choose_encoding(text)
    if encoding is Encoding.GSM7:
        data_coding, user_data = 0, gsm_encode(text)
    else:
        data_coding, user_data = 8, text.encode("utf-16-be")
    params = {
        "source_addr_ton": 1, "source_addr_npi": 1, "source_addr": sender.removeprefix("+"),
        "dest_addr_ton": 0, "dest_addr_npi": 1, "destination_addr": to,
        "esm_class": 0, "data_coding": data_coding,
    }
    tlvs = {}
    if len(user_data) <= _MAX_SHORT_MESSAGE:
        params["short_message"] = user_data
    else:
        tlvs["message_payload"] = user_data
    return _checked(DeliverSm(params, tlvs, "mo", mo_id))


@dataclass(frozen=True, slots=True)
class QueryAnswer:
    """What the core knows of a message a query_sm asks about: its SPEC §5 ``status`` (whether a
    ``stopped`` one was cancelled), when it became final (epoch seconds, None while not) and the
    operator's error code, if any."""

    status: str
    final_at: float | None = None
    err: str | int = ""
    cancelled: bool = False


def query_sm_resp_params(message_id: str, answer: QueryAnswer) -> dict:
    """The query_sm_resp fields answering ``answer`` about ``message_id``."""
    final = answer.status in FINAL_STATES and answer.final_at is not None
    err = _err_digits(answer.err)
    return {
        "message_id": message_id,
        "final_date": format_absolute(answer.final_at) if final else "",
        "message_state": message_state(answer.status, answer.cancelled),
        "error_code": int(err) if int(err) <= 0xFF else 0,
    }
