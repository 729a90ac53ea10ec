"""A customer's submit_sm or data_sm read into plain values, or refused with its SMPP status.

Why this module exists: SPEC §13 makes a submit from a customer's ESME "a message of that account
exactly as ``POST /v1/messages`` would". The gateway's core must therefore get the same plain
values the HTTP API gives it (who, to whom, what text, when, until when, which receipts) and never
an SMPP field. Everything SMPP-specific about reading a submit (data_coding, esm_class, UDH, SAR
TLVs, the §7.1.1 time format, registered_delivery bits) happens here, pure, with ``now`` passed
in, and each way a PDU can be wrong is a status code the server answers at once.

Theory of operation
-------------------
``read_submit(pdu, now)`` returns a ``CustomerSubmit`` or raises ``SubmitRefused(status, reason)``:

* User data is ``short_message``, or the ``message_payload`` TLV when ``short_message`` is empty
  (both non-empty: ``ESME_RSUBMITFAIL``; neither: ``ESME_RINVMSGLEN``, as the HTTP API refuses an
  empty text).
* With esm_class bit 0x40 (UDHI) the user data starts with a UDH (``text.parse_udh``); the UDH is
  kept whole, to be passed on with the part (it may hold more than the concatenation element). A
  UDH that runs past the data: ``ESME_RINVESMCLASS``. Without UDHI, the three SAR TLVs
  (``sar_msg_ref_num``, ``sar_total_segments``, ``sar_segment_seqnum``) become a UDH
  (``text.concat_udh``: an 8-bit reference when it fits, else 16-bit); only some of them:
  ``ESME_RMISSINGOPTPARAM``; out of range: ``ESME_RINVOPTPARAMVAL``. With UDHI, SAR TLVs are
  ignored: the UDH is what the handset gets.
* A part the ESME concatenated itself must stay one SMS with its UDH: GSM text plus the UDH's
  septets within 160, other text plus the UDH's octets within 140; else ``ESME_RINVMSGLEN``. SPEC
  §13 says so for SAR parts; UDH parts get the same rule, since a part split again would break
  the ESME's own numbering.
* The text after the UDH is decoded by data_coding: 0 GSM 03.38 one septet per octet, 1 IA5
  (ASCII), 3 Latin-1, 8 UCS-2 (UTF-16-BE), through ``connectors.smpp.text``. Any other data_coding,
  an octet over 0x7F in GSM or IA5 text, or UCS-2 of an odd length: ``ESME_RSUBMITFAIL``. (A lone
  surrogate in UCS-2 is kept as U+FFFD, as ``text.decode`` does, except at the edge of a part the
  ESME concatenated: half of a character split with the next or previous part, kept as its
  placeholder (``connectors.smpp.halves``) and sent on as the same half. The raw ``payload`` is kept too.)
* ``schedule_delivery_time`` and ``validity_period`` (submit_sm only) through ``times.parse_time``:
  ``ESME_RINVSCHED`` and ``ESME_RINVEXPIRY`` when invalid.
* ``registered_delivery`` bits 1-0: 0 no receipt, 1 every final outcome, 2 failures only, 3
  (reserved in SMPP 3.4) ``ESME_RINVREGDLVFLG``. The other bits (SME acknowledgements,
  intermediate notification) are ignored.
* ``source_addr`` and ``destination_addr`` are passed on as given: the core validates numbers and
  senders exactly as for the HTTP API, and its refusals map to SMPP statuses in the server.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from .codec import PDU
from .defs import (
    ESM_CLASS_UDHI,
    ESME_RINVESMCLASS,
    ESME_RINVEXPIRY,
    ESME_RINVMSGLEN,
    ESME_RINVOPTPARAMVAL,
    ESME_RINVREGDLVFLG,
    ESME_RINVSCHED,
    ESME_RMISSINGOPTPARAM,
    ESME_RSUBMITFAIL,
    status_name,
)
from .halves import decode_ucs2_part
from .text import ConcatInfo, Encoding, InvalidUDH, concat_udh, decode, parse_udh, udh_room
from .times import InvalidTime, parse_time

__all__ = [
    "CustomerSubmit",
    "ESM_CLASS_UDHI",
    "ReceiptRequest",
    "SAR_TLVS",
    "SubmitRefused",
    "decode_text",
    "read_concat",
    "read_receipt_request",
    "read_submit",
    "read_user_data",
]

SAR_TLVS = ("sar_msg_ref_num", "sar_total_segments", "sar_segment_seqnum")

#: data_coding → how its octets are read. IA5 is ASCII, a subset of Latin-1 octet for octet.
_CODINGS: dict[int, Encoding] = {0: Encoding.GSM7, 1: Encoding.LATIN1, 3: Encoding.LATIN1,
                                 8: Encoding.UCS2}
_SEVEN_BIT = frozenset({0, 1})  # data codings whose octets must be below 0x80


class SubmitRefused(Exception):
    """The submit cannot be taken: answer it with ``status``; ``reason`` is for the logs."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status_name(status)}: {reason}")
        self.status = status
        self.reason = reason


class ReceiptRequest(str, enum.Enum):
    """Which receipts the ESME asked for with ``registered_delivery``."""

    NONE = "none"
    ALL = "all"  # every final outcome
    FAILURES = "failures"  # every final outcome but delivered

    def wants(self, status: str) -> bool:
        """Whether a message that ended in ``status`` (final, SPEC §5) gets a receipt."""
        if self is ReceiptRequest.ALL:
            return True
        return self is ReceiptRequest.FAILURES and status != "delivered"


#: registered_delivery bits 1-0 (0, 1, 2) → which receipts
_RECEIPT_REQUESTS = (ReceiptRequest.NONE, ReceiptRequest.ALL, ReceiptRequest.FAILURES)


@dataclass(slots=True)
class CustomerSubmit:
    """One submit_sm or data_sm as the core takes it: no SMPP field left.

    ``text`` is the decoded text of this SMS (without its UDH), ``payload`` the same as received
    and ``encoding`` how it was encoded (IA5 shows as Latin-1). ``udh`` is empty, or the UDH (its
    length octet included) to send this part with; ``concat`` its concatenation element, if any.
    ``send_at`` / ``expires_at`` are UTC epoch seconds or None.
    """

    source: str
    destination: str
    text: str
    encoding: Encoding
    payload: bytes
    udh: bytes
    concat: ConcatInfo | None
    send_at: float | None
    expires_at: float | None
    receipts: ReceiptRequest


def read_submit(pdu: PDU, now: float) -> CustomerSubmit:
    """Read a submit_sm or data_sm (see the module docstring); raises ``SubmitRefused``."""
    params, tlvs = pdu.params, pdu.tlvs
    receipts = read_receipt_request(int(params.get("registered_delivery", 0)))
    # Both are mostly empty (None: at once, and no expiry of the ESME's own): then nothing to parse.
    schedule, validity = params.get("schedule_delivery_time", ""), params.get("validity_period", "")
    send_at = _time(schedule, now, ESME_RINVSCHED) if schedule else None
    expires_at = _time(validity, now, ESME_RINVEXPIRY) if validity else None
    user_data = read_user_data(params.get("short_message", b""), tlvs.get("message_payload"))
    udhi = bool(int(params.get("esm_class", 0)) & ESM_CLASS_UDHI)
    udh, concat, payload = read_concat(user_data, udhi, tlvs)
    data_coding = int(params.get("data_coding", 0))
    text, encoding = decode_text(payload, data_coding, part=bool(udh))
    if udh:
        _check_one_sms(payload, encoding, udh)
    return CustomerSubmit(
        source=str(params.get("source_addr", "")),
        destination=str(params.get("destination_addr", "")),
        text=text, encoding=encoding, payload=bytes(payload), udh=udh, concat=concat,
        send_at=send_at, expires_at=expires_at, receipts=receipts)


def read_receipt_request(registered_delivery: int) -> ReceiptRequest:
    """``registered_delivery`` bits 1-0 → which receipts; 3 (reserved) is refused."""
    asked = registered_delivery & 0x03
    if asked == 3:
        raise SubmitRefused(ESME_RINVREGDLVFLG, "registered_delivery 3 is reserved in SMPP 3.4")
    return _RECEIPT_REQUESTS[asked]


def _time(value: str, now: float, status: int) -> float | None:
    try:
        return parse_time(value, now)
    except InvalidTime as exc:
        raise SubmitRefused(status, str(exc)) from None


def read_user_data(short_message: bytes, message_payload: bytes | None) -> bytes:
    """The user data: ``short_message``, or ``message_payload`` when that is empty."""
    if short_message and message_payload:
        raise SubmitRefused(ESME_RSUBMITFAIL, "both short_message and message_payload are set")
    data = bytes(short_message or message_payload or b"")
    if not data:
        raise SubmitRefused(ESME_RINVMSGLEN, "no text: short_message and message_payload empty")
    return data


def read_concat(user_data: bytes, udhi: bool,
                tlvs: Mapping) -> tuple[bytes, ConcatInfo | None, bytes]:
    """(UDH to pass on or b"", its concatenation element or None, the data after the UDH)."""
    if udhi:
        try:
            concat, payload = parse_udh(user_data)
        except InvalidUDH as exc:
            raise SubmitRefused(ESME_RINVESMCLASS, f"esm_class says UDH: {exc}") from None
        return user_data[:len(user_data) - len(payload)], concat, payload
    sar = _sar(tlvs) if tlvs else None  # most submits have no TLV at all
    if sar is None:
        return b"", None, user_data
    return concat_udh(sar.ref, sar.total, sar.seq, ref16=sar.ref > 0xFF), sar, user_data


def _sar(tlvs: Mapping) -> ConcatInfo | None:
    present = [name for name in SAR_TLVS if name in tlvs]
    if not present:
        return None
    if len(present) < len(SAR_TLVS):
        missing = sorted(set(SAR_TLVS) - set(present))
        raise SubmitRefused(ESME_RMISSINGOPTPARAM, f"SAR TLVs without {', '.join(missing)}")
    ref, total, seq = (tlvs[name] for name in SAR_TLVS)
    if not all(isinstance(v, int) for v in (ref, total, seq)) or not (
            0 <= ref <= 0xFFFF and 1 <= seq <= total <= 0xFF):
        raise SubmitRefused(ESME_RINVOPTPARAMVAL,
                            f"SAR reference {ref!r}, segment {seq!r} of {total!r}")
    return ConcatInfo(ref, total, seq)


def decode_text(payload: bytes, data_coding: int, part: bool = False) -> tuple[str, Encoding]:
    """The text of ``payload`` (no UDH) in ``data_coding`` 0, 1, 3 or 8, and its encoding; ``part``:
    one SMS of several the ESME concatenated, whose UCS-2 edges may hold half a character."""
    encoding = _CODINGS.get(data_coding)
    if encoding is None:
        raise SubmitRefused(ESME_RSUBMITFAIL, f"data_coding {data_coding} is not 0, 1, 3 or 8")
    if data_coding in _SEVEN_BIT and not payload.isascii():
        raise SubmitRefused(ESME_RSUBMITFAIL,
                            f"data_coding {data_coding} text holds an octet over 0x7F")
    if encoding is Encoding.UCS2 and len(payload) % 2:
        raise SubmitRefused(ESME_RSUBMITFAIL, f"UCS-2 text of an odd length ({len(payload)})")
    if part and encoding is Encoding.UCS2:
        return decode_ucs2_part(payload), encoding
    return decode(payload, encoding), encoding


def _check_one_sms(payload: bytes, encoding: Encoding, udh: bytes) -> None:
    used, room, unit = udh_room(payload, encoding, udh)
    if used > room:
        raise SubmitRefused(ESME_RINVMSGLEN,
                            f"a concatenated part with its UDH needs {used} {unit}, over {room}")
