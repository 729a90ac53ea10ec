"""What an operator's SMSC sends the gateway on a bound session: delivery receipts and MO.

Why a module of its own: ``OperatorLink`` (``client.py``) sends; this side only reads what
arrives, turns it into the core's facts (``connectors.api``) and answers each PDU once the core
has stored it. The two share the link's name, settings and listener, nothing else.

Theory of operation
-------------------
A deliver_sm or data_sm whose esm_class message type (bits 2–5) is 0x04 (SMSC delivery receipt)
or 0x20 (intermediate notification) is a receipt (``receipts.receipt_facts``); it is answered
ESME_ROK only when ``listener.receipt_received``'s Deferred fires, ESME_RX_T_APPN when it fails
(the SMSC delivers it again). A receipt without any id can never be matched: it is answered
ESME_ROK and logged as a warning with its text. Other message types (SME acknowledgements) are
answered ESME_ROK and ignored. Without those bits it is an MO: data_coding 0 (and 0xF0–0xF3) GSM
03.38 unpacked (packed when ``packed_gsm``), decoded leniently; 3 and 1 Latin-1; 8 UCS-2; any other
value Latin-1 (logged). Answered like a receipt, through ``listener.mo_received``. A part of a
concatenated MO (UDH, 8- or 16-bit reference, or SAR TLVs) is passed on with its place
(reference, total, sequence) in ``MoFacts.concat``; the core stores the parts and reassembles them.
Any other request the SMSC sends (a submit_sm, say) is answered ESME_RINVCMDID.
"""

from __future__ import annotations

from twisted.internet.defer import maybeDeferred
from twisted.python.failure import Failure

from connectors.api import MoFacts
from connectors.smpp import defs
from connectors.smpp import halves
from connectors.smpp.addressing import decode_mo_text, mo_concat, mo_encoding
from connectors.smpp.codec import PDU
from connectors.smpp.defs import (
    ESM_CLASS_MESSAGE_TYPE,
    ESM_CLASS_RECEIPT_TYPES,
    ESM_CLASS_UDHI,
    ESME_ROK,
    ESME_RX_T_APPN,
)
from connectors.smpp.link_settings import LinkSettings
from connectors.smpp.protocol import SMPPProtocol
from connectors.smpp.receipts import receipt_facts, understood

__all__ = ["InboundRequests", "user_data"]


def user_data(pdu: PDU) -> bytes:
    """The message's octets: ``short_message``, else the ``message_payload`` TLV."""
    data = pdu.params.get("short_message") or b""
    if not data:
        payload = pdu.tlvs.get("message_payload")
        if isinstance(payload, (bytes, bytearray)):
            data = bytes(payload)
    return data


class InboundRequests:
    """The requests one operator's SMSC sends (see the module docstring), for the link ``name``."""

    def __init__(self, name: str, settings: LinkSettings, listener, log) -> None:
        self.name = name
        self.settings = settings
        self.listener = listener
        self.log = log

    def received(self, proto: SMPPProtocol, pdu: PDU) -> None:
        if pdu.command in ("deliver_sm", "data_sm"):
            message_type = int(pdu.params.get("esm_class") or 0) & ESM_CLASS_MESSAGE_TYPE
            if message_type in ESM_CLASS_RECEIPT_TYPES:
                self._receipt(proto, pdu)
            elif message_type:
                self.log.info("SME acknowledgement ignored", esm_class=pdu.params.get("esm_class"))
                proto.respond(pdu, ESME_ROK)
            else:
                self._mo(proto, pdu)
        elif pdu.command in defs.RESPONSE_OF:
            proto.respond(pdu, defs.ESME_RINVCMDID)

    def _receipt(self, proto: SMPPProtocol, pdu: PDU) -> None:
        data = user_data(pdu)
        if pdu.params.get("data_coding") == 8:
            text = data.decode("utf-16-be", "replace")
        else:
            text = data.decode("latin-1")
        facts = receipt_facts(self.name, text, pdu.tlvs, self.settings.receipt_id_format,
                              str(pdu.params.get("source_addr", "")))
        if facts is None:
            self.log.warning("receipt without an id: acknowledged and dropped", text=text,
                             tlvs={str(k): repr(v) for k, v in pdu.tlvs.items()})
            proto.respond(pdu, ESME_ROK)
            return
        state = pdu.tlvs.get("message_state")
        if not understood(facts.stat, state if isinstance(state, int) else None):
            self.log.warning("receipt status not understood: it changes nothing, the message waits",
                             smsc_message_id=facts.raw_id, stat=facts.stat, message_state=state)
        self._answer_when_stored(proto, pdu, self.listener.receipt_received, facts, "receipt")

    def _mo(self, proto: SMPPProtocol, pdu: PDU) -> None:
        params = pdu.params
        data_coding = int(params.get("data_coding") or 0)
        esm_class = int(params.get("esm_class") or 0)
        if mo_encoding(data_coding) is None:
            self.log.info("MO data_coding not known: decoded as Latin-1", data_coding=data_coding)
        text, concat = decode_mo_text(user_data(pdu), data_coding, bool(esm_class & ESM_CLASS_UDHI),
                                      self.settings.packed_gsm)
        concat = mo_concat(concat, pdu.tlvs)
        mo = MoFacts(operator=self.name, sender=str(params.get("source_addr", "")),
                     to=str(params.get("destination_addr", "")), text=text if concat else halves.whole(text),
                     concat=concat)
        self._answer_when_stored(proto, pdu, self.listener.mo_received, mo, "MO")

    def _answer_when_stored(self, proto: SMPPProtocol, pdu: PDU, store, facts, what: str) -> None:
        """Answer ``pdu`` once ``store(facts)`` fires. Each side logs what answering raises itself:
        an errback after them was one more callback for every receipt."""
        def stored(_):
            try:
                proto.respond(pdu, ESME_ROK)
            except Exception:  # noqa: BLE001 - logged here: no errback follows
                self.log.error(f"{what} answer failed", error=Failure().getTraceback())

        def not_stored(failure):
            try:
                self.log.warning(f"{what} not stored: answered ESME_RX_T_APPN",
                                 error=failure.getErrorMessage())
                proto.respond(pdu, ESME_RX_T_APPN)
            except Exception:  # noqa: BLE001 - logged here: no errback follows
                self.log.error(f"{what} answer failed", error=Failure().getTraceback())

        d = maybeDeferred(store, facts)
        d.addCallbacks(stored, not_stored)
