"""A message the core hands an operator link, as the submit_sm of each of its parts.

Why a module of its own: what goes into a submit_sm (the operator's encoding and addresses, the
concatenation UDH, the validity) is decided once per message and does not depend on sessions,
windows or throttling, which are ``OperatorLink``'s (``client.py``). Here are the message in
flight (its parts' keys, where its outcome goes), its parts (each where its answer goes) and the
builder of its parts.

Theory of operation
-------------------
The text is split (``connectors.smpp.text.split``) in the encoding the operator takes
(``addressing.wire_encoding``); each part is one submit_sm, with an 8-bit reference UDH and
esm_class 0x40 (UDHI) when there are several (a rolling reference per link), GSM 03.38 packed when
the operator wants ``packed_gsm``, the operator's ``service_type``, the TON/NPI of each address
(``addressing``), registered_delivery 1, and a ``validity_period`` that is the message's own expiry
or the operator's ``validity``, whichever ends first (``times.validity_period``). A part its sender
concatenated (it carries its own UDH: an ESME's) stays one SMS with that UDH. Text that cannot be
encoded, an unknown encoding, or more than 255 parts: ``SubmitError`` PERMANENT.
"""

from __future__ import annotations

from connectors.api import SubmitError, SubmitRequest
from connectors.smpp.addressing import DATA_CODING, destination_address, source_address, wire_encoding
from connectors.smpp.codec import PDU
from connectors.smpp.defs import ESM_CLASS_UDHI
from connectors.smpp.link_settings import PERMANENT, LinkSettings
from connectors.smpp.text import (
    ENCODING_BY_NAME,
    Encoding,
    UnencodableText,
    concat_udh,
    gsm_fill_bits,
    gsm_pack,
    one_part_with_udh,
    split,
)
from connectors.smpp.times import validity_period

__all__ = ["OutgoingMessage", "OutgoingPart", "PartBuilder"]


class OutgoingMessage:
    """One SubmitRequest being sent: the keys of its parts and where its outcome goes (``answer``:
    ``(callback, errback, args)`` of ``OperatorLink.submit_to``): ``callback(keys, *args)`` with every
    part's key once all were accepted, or ``errback(SubmitError, *args)`` (failing is the link's);
    once, ``done`` after."""

    __slots__ = ("request", "answer", "keys", "waiting", "done")

    def __init__(self, request: SubmitRequest, parts: int, answer: tuple) -> None:
        self.request = request
        self.answer = answer
        self.keys: list[str] = [""] * parts
        self.waiting = parts
        self.done = False

    def part_ok(self, index: int, key: str) -> None:
        if self.done:
            return
        self.keys[index] = key
        self.waiting -= 1
        if self.waiting == 0:
            self.done = True
            callback, _, args = self.answer
            callback(list(self.keys), *args)


class OutgoingPart:
    """One submit_sm of a message: its place in the message and its PDU parameters; once sent
    (``OperatorLink._send``), also the waiter its submit_sm_resp goes to (``SMPPProtocol.request_to``),
    which hands it straight to the link that sent it, with the connection that carried it: no
    Deferred or other object per part. What the link's bookkeeping raises is logged, never raised
    into that connection."""

    __slots__ = ("message", "index", "params", "sent_at", "link", "proto")

    def __init__(self, message: OutgoingMessage, index: int, params: dict) -> None:
        self.message = message
        self.index = index
        self.params = params
        self.sent_at = 0.0
        self.link = self.proto = None  # the OperatorLink and SMPPProtocol that sent it

    def callback(self, resp: PDU) -> None:
        try:
            self.link._part_accepted(resp, self, self.proto)
        except Exception:  # noqa: BLE001 - a bug: logged, the connection goes on
            self.link.log.exception("submit bookkeeping failed", message_id=self.message.request.message_id)

    def errback(self, failed: Exception) -> None:
        try:
            self.link._part_refused(failed, self, self.proto)
        except Exception:  # noqa: BLE001 - a bug: logged, the connection goes on
            self.link.log.exception("submit bookkeeping failed", message_id=self.message.request.message_id)


class PartBuilder:
    """The parts of each message for one operator (``settings``), with the link's rolling
    concatenation reference."""

    def __init__(self, settings: LinkSettings) -> None:
        self.settings = settings
        self._ref = 0

    def build(self, request: SubmitRequest, now: float, answer: tuple) -> tuple[OutgoingMessage, list[OutgoingPart]]:
        """The message in flight (its outcome going to ``answer``) and its parts, in order; raises
        ``SubmitError``."""
        s = self.settings
        try:
            encoding = ENCODING_BY_NAME[request.encoding]
        except (KeyError, TypeError):  # TypeError: unhashable
            raise SubmitError(PERMANENT, f"unknown encoding {request.encoding!r}") from None
        encoding = wire_encoding(encoding, request.text, s.latin1)
        try:
            if request.udh:  # a part its sender concatenated: it stays one SMS with its UDH
                pieces = [one_part_with_udh(request.text, encoding, request.udh)]
            else:
                pieces = split(request.text, encoding)
        except (UnencodableText, ValueError) as e:
            raise SubmitError(PERMANENT, str(e)) from None
        total = len(pieces)
        if total > 255:
            raise SubmitError(PERMANENT, f"{total} parts: a concatenated SMS has at most 255")
        if total > 1:
            self._ref = (self._ref + 1) & 0xFF
        ton, npi, source = source_address(request.sender, s.source_ton, s.source_npi)
        dest_ton, dest_npi, destination = destination_address(request.to, s.dest_ton, s.dest_npi)
        message = OutgoingMessage(request, total, answer)
        validity = validity_period(request.expires_at, s.validity, now)
        parts = []
        for i, piece in enumerate(pieces):
            udh = request.udh or (concat_udh(self._ref, total, i + 1) if total > 1 else b"")
            if encoding is Encoding.GSM7 and s.packed_gsm:
                body = gsm_pack(piece.payload, gsm_fill_bits(len(udh)) if udh else 0)
            else:
                body = piece.payload
            parts.append(OutgoingPart(message, i, {
                "service_type": s.service_type,
                "source_addr_ton": ton, "source_addr_npi": npi, "source_addr": source,
                "dest_addr_ton": dest_ton, "dest_addr_npi": dest_npi, "destination_addr": destination,
                "esm_class": ESM_CLASS_UDHI if udh else 0, "registered_delivery": 1, "validity_period": validity,
                "data_coding": DATA_CODING[encoding], "short_message": udh + body,
            }))
        return message, parts
