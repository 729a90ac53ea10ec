"""SMPP 3.4 as data: command ids, command statuses, body fields and TLV tags.

Why this module exists: the protocol is mostly tables (SMPP 3.4 §5.1.2 command ids, §5.1.3 command
status, §4 PDU bodies, §5.3.2 TLVs). Writing them once as data, as node-smpp's ``lib/defs.js`` does,
lets one generic codec (``codec.py``) serve every command, and lets a reader check each line against
the specification. Nothing here runs at decode time except dictionary look-ups: the codec compiles
these tables into ``struct.Struct`` plans once, at import.

Conventions
-----------
* A body is a tuple of ``Field(name, kind, size)`` in wire order. ``kind`` is one of
  ``CSTRING`` (C-Octet string; ``size`` is the SMPP maximum *including* the NUL),
  ``INT`` (big-endian unsigned; ``size`` is 1, 2 or 4 octets) or
  ``SM`` (an octet string preceded by its one-octet length, i.e. ``sm_length`` + ``short_message``;
  ``size`` is the maximum number of octets). ``sm_length`` is therefore not a field of its own: it
  is always derived from ``short_message``.
* A TLV is ``Tlv(tag, name, kind, size)``: ``kind`` is ``INT`` (``size`` = octets), ``CSTRING``
  (``size`` = maximum including the NUL), ``OCTETS`` (``size`` = maximum octets, 0 = up to 65535) or
  ``FLAG`` (present with length 0, e.g. alert_on_message_delivery).
* Commands listed in ``COMMAND_IDS`` but absent from ``BODIES`` (submit_multi and its response) are
  known by name only: the codec refuses to encode them and answers them with ESME_RINVCMDID.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = [
    "BODIES",
    "COMMAND_IDS",
    "COMMAND_NAMES",
    "CSTRING",
    "FLAG",
    "Field",
    "INT",
    "OCTETS",
    "RESPONSE_OF",
    "RESPONSES",
    "SM",
    "STATUS_NAMES",
    "TLVS",
    "TLVS_BY_NAME",
    "TLVS_BY_TAG",
    "Tlv",
    "response_to",
    "status_name",
]
# ESME_* constants are exported too (added to __all__ below, after the table).

# --- field kinds ---------------------------------------------------------------------------------
CSTRING = "cstring"
INT = "int"
SM = "sm"
OCTETS = "octets"
FLAG = "flag"


class Field(NamedTuple):
    """One mandatory body field, in wire order."""

    name: str
    kind: str
    size: int


class Tlv(NamedTuple):
    """One optional parameter (TLV) known by name."""

    tag: int
    name: str
    kind: str
    size: int


# --- command ids (SMPP 3.4 §5.1.2.1) --------------------------------------------------------------
COMMAND_IDS: dict[str, int] = {
    "generic_nack": 0x80000000,
    "bind_receiver": 0x00000001,
    "bind_receiver_resp": 0x80000001,
    "bind_transmitter": 0x00000002,
    "bind_transmitter_resp": 0x80000002,
    "query_sm": 0x00000003,
    "query_sm_resp": 0x80000003,
    "submit_sm": 0x00000004,
    "submit_sm_resp": 0x80000004,
    "deliver_sm": 0x00000005,
    "deliver_sm_resp": 0x80000005,
    "unbind": 0x00000006,
    "unbind_resp": 0x80000006,
    "replace_sm": 0x00000007,
    "replace_sm_resp": 0x80000007,
    "cancel_sm": 0x00000008,
    "cancel_sm_resp": 0x80000008,
    "bind_transceiver": 0x00000009,
    "bind_transceiver_resp": 0x80000009,
    "outbind": 0x0000000B,
    "enquire_link": 0x00000015,
    "enquire_link_resp": 0x80000015,
    "submit_multi": 0x00000021,
    "submit_multi_resp": 0x80000021,
    "alert_notification": 0x00000102,
    "data_sm": 0x00000103,
    "data_sm_resp": 0x80000103,
}
COMMAND_NAMES: dict[int, str] = {v: k for k, v in COMMAND_IDS.items()}

#: Every response command (the high bit of the id is set); generic_nack is one.
RESPONSES: frozenset[str] = frozenset(k for k, v in COMMAND_IDS.items() if v & 0x80000000)

#: request → its response. outbind and alert_notification have none (absent here).
RESPONSE_OF: dict[str, str] = {
    k: k + "_resp" for k in COMMAND_IDS if k not in RESPONSES and k + "_resp" in COMMAND_IDS
}


def response_to(command: str) -> str:
    """The command a ``command`` request is answered with: its response, or generic_nack for a
    request that has none (outbind, alert_notification) when it must be answered all the same."""
    return RESPONSE_OF.get(command, "generic_nack")


# --- esm_class (SMPP 3.4 §5.2.12) ----------------------------------------------------------------
#: The user data starts with a User Data Header (a concatenated part, mostly).
ESM_CLASS_UDHI = 0x40
#: The message type of an SMSC delivery receipt, as a deliver_sm that carries one sets it.
ESM_CLASS_RECEIPT = 0x04
#: The message type bits (2–5), and their values that carry a delivery receipt (an SMSC delivery
#: receipt, an intermediate notification).
ESM_CLASS_MESSAGE_TYPE = 0x3C
ESM_CLASS_RECEIPT_TYPES: frozenset[int] = frozenset({0x04, 0x20})

# --- command_status (SMPP 3.4 §5.1.3) -------------------------------------------------------------
ESME_ROK = 0x00000000  # No error
ESME_RINVMSGLEN = 0x00000001  # Message length is invalid
ESME_RINVCMDLEN = 0x00000002  # Command length is invalid
ESME_RINVCMDID = 0x00000003  # Invalid command id
ESME_RINVBNDSTS = 0x00000004  # Incorrect bind status for given command
ESME_RALYBND = 0x00000005  # ESME already in bound state
ESME_RINVPRTFLG = 0x00000006  # Invalid priority flag
ESME_RINVREGDLVFLG = 0x00000007  # Invalid registered delivery flag
ESME_RSYSERR = 0x00000008  # System error
ESME_RINVSRCADR = 0x0000000A  # Invalid source address
ESME_RINVDSTADR = 0x0000000B  # Invalid destination address
ESME_RINVMSGID = 0x0000000C  # Message id is invalid
ESME_RBINDFAIL = 0x0000000D  # Bind failed
ESME_RINVPASWD = 0x0000000E  # Invalid password
ESME_RINVSYSID = 0x0000000F  # Invalid system id
ESME_RCANCELFAIL = 0x00000011  # cancel_sm failed
ESME_RREPLACEFAIL = 0x00000013  # replace_sm failed
ESME_RMSGQFUL = 0x00000014  # Message queue full
ESME_RINVSERTYP = 0x00000015  # Invalid service type
ESME_RINVNUMDESTS = 0x00000033  # Invalid number of destinations
ESME_RINVDLNAME = 0x00000034  # Invalid distribution list name
ESME_RINVDESTFLAG = 0x00000040  # Destination flag is invalid (submit_multi)
ESME_RINVSUBREP = 0x00000042  # Invalid 'submit with replace' request
ESME_RINVESMCLASS = 0x00000043  # Invalid esm_class field data
ESME_RCNTSUBDL = 0x00000044  # Cannot submit to distribution list
ESME_RSUBMITFAIL = 0x00000045  # submit_sm or submit_multi failed
ESME_RINVSRCTON = 0x00000048  # Invalid source address TON
ESME_RINVSRCNPI = 0x00000049  # Invalid source address NPI
ESME_RINVDSTTON = 0x00000050  # Invalid destination address TON
ESME_RINVDSTNPI = 0x00000051  # Invalid destination address NPI
ESME_RINVSYSTYP = 0x00000053  # Invalid system_type field
ESME_RINVREPFLAG = 0x00000054  # Invalid replace_if_present flag
ESME_RINVNUMMSGS = 0x00000055  # Invalid number of messages
ESME_RTHROTTLED = 0x00000058  # Throttling error (ESME exceeded allowed message limits)
ESME_RINVSCHED = 0x00000061  # Invalid scheduled delivery time
ESME_RINVEXPIRY = 0x00000062  # Invalid message validity period (expiry time)
ESME_RINVDFTMSGID = 0x00000063  # Predefined message invalid or not found
ESME_RX_T_APPN = 0x00000064  # ESME receiver temporary app error code
ESME_RX_P_APPN = 0x00000065  # ESME receiver permanent app error code
ESME_RX_R_APPN = 0x00000066  # ESME receiver reject message error code
ESME_RQUERYFAIL = 0x00000067  # query_sm request failed
ESME_RINVOPTPARSTREAM = 0x000000C0  # Error in the optional part of the PDU body
ESME_ROPTPARNOTALLWD = 0x000000C1  # Optional parameter not allowed
ESME_RINVPARLEN = 0x000000C2  # Invalid parameter length
ESME_RMISSINGOPTPARAM = 0x000000C3  # Expected optional parameter missing
ESME_RINVOPTPARAMVAL = 0x000000C4  # Invalid optional parameter value
ESME_RDELIVERYFAILURE = 0x000000FE  # Delivery failure (data_sm_resp)
ESME_RUNKNOWNERR = 0x000000FF  # Unknown error

#: code → name, for logs and metrics ("ESME_RTHROTTLED").
STATUS_NAMES: dict[int, str] = {
    value: name for name, value in globals().items() if name.startswith("ESME_")
}
__all__ += sorted(STATUS_NAMES.values())


def status_name(status: int) -> str:
    """``ESME_…`` name of a command_status, or its hex form for vendor / reserved codes."""
    return STATUS_NAMES.get(status) or f"0x{status:08X}"


# --- bodies (SMPP 3.4 §4) -------------------------------------------------------------------------
def _c(name: str, size: int) -> Field:
    return Field(name, CSTRING, size)


def _i(name: str, size: int = 1) -> Field:
    return Field(name, INT, size)


_BIND = (
    _c("system_id", 16), _c("password", 9), _c("system_type", 13), _i("interface_version"),
    _i("addr_ton"), _i("addr_npi"), _c("address_range", 41),
)
_SM = (  # submit_sm §4.4.1 and deliver_sm §4.6.1 share one layout
    _c("service_type", 6), _i("source_addr_ton"), _i("source_addr_npi"), _c("source_addr", 21),
    _i("dest_addr_ton"), _i("dest_addr_npi"), _c("destination_addr", 21), _i("esm_class"),
    _i("protocol_id"), _i("priority_flag"), _c("schedule_delivery_time", 17),
    _c("validity_period", 17), _i("registered_delivery"), _i("replace_if_present_flag"),
    _i("data_coding"), _i("sm_default_msg_id"), Field("short_message", SM, 254),
)
_MESSAGE_ID = (_c("message_id", 65),)

BODIES: dict[str, tuple[Field, ...]] = {
    "generic_nack": (),
    "bind_transmitter": _BIND,
    "bind_receiver": _BIND,
    "bind_transceiver": _BIND,
    "bind_transmitter_resp": (_c("system_id", 16),),
    "bind_receiver_resp": (_c("system_id", 16),),
    "bind_transceiver_resp": (_c("system_id", 16),),
    "outbind": (_c("system_id", 16), _c("password", 9)),
    "unbind": (),
    "unbind_resp": (),
    "enquire_link": (),
    "enquire_link_resp": (),
    "submit_sm": _SM,
    "submit_sm_resp": _MESSAGE_ID,
    "deliver_sm": _SM,
    "deliver_sm_resp": _MESSAGE_ID,
    "data_sm": (
        _c("service_type", 6), _i("source_addr_ton"), _i("source_addr_npi"),
        _c("source_addr", 65), _i("dest_addr_ton"), _i("dest_addr_npi"),
        _c("destination_addr", 65), _i("esm_class"), _i("registered_delivery"), _i("data_coding"),
    ),
    "data_sm_resp": _MESSAGE_ID,
    "query_sm": (_c("message_id", 65), _i("source_addr_ton"), _i("source_addr_npi"),
                 _c("source_addr", 21)),
    "query_sm_resp": (_c("message_id", 65), _c("final_date", 17), _i("message_state"),
                      _i("error_code")),
    "cancel_sm": (
        _c("service_type", 6), _c("message_id", 65), _i("source_addr_ton"), _i("source_addr_npi"),
        _c("source_addr", 21), _i("dest_addr_ton"), _i("dest_addr_npi"),
        _c("destination_addr", 21),
    ),
    "cancel_sm_resp": (),
    "replace_sm": (
        _c("message_id", 65), _i("source_addr_ton"), _i("source_addr_npi"), _c("source_addr", 21),
        _c("schedule_delivery_time", 17), _c("validity_period", 17), _i("registered_delivery"),
        _i("sm_default_msg_id"), Field("short_message", SM, 254),
    ),
    "replace_sm_resp": (),
    "alert_notification": (
        _i("source_addr_ton"), _i("source_addr_npi"), _c("source_addr", 65),
        _i("esme_addr_ton"), _i("esme_addr_npi"), _c("esme_addr", 65),
    ),
    # submit_multi / submit_multi_resp: named only (variable destination lists, not used here).
}

# --- TLVs (SMPP 3.4 §5.3.2) -----------------------------------------------------------------------
TLVS: tuple[Tlv, ...] = (
    Tlv(0x0005, "dest_addr_subunit", INT, 1),
    Tlv(0x0006, "dest_network_type", INT, 1),
    Tlv(0x0007, "dest_bearer_type", INT, 1),
    Tlv(0x0008, "dest_telematics_id", INT, 2),
    Tlv(0x000D, "source_addr_subunit", INT, 1),
    Tlv(0x000E, "source_network_type", INT, 1),
    Tlv(0x000F, "source_bearer_type", INT, 1),
    Tlv(0x0010, "source_telematics_id", INT, 2),
    Tlv(0x0017, "qos_time_to_live", INT, 4),
    Tlv(0x0019, "payload_type", INT, 1),
    Tlv(0x001D, "additional_status_info_text", CSTRING, 256),
    Tlv(0x001E, "receipted_message_id", CSTRING, 65),
    Tlv(0x0030, "ms_msg_wait_facilities", INT, 1),
    Tlv(0x0201, "privacy_indicator", INT, 1),
    Tlv(0x0202, "source_subaddress", OCTETS, 23),
    Tlv(0x0203, "dest_subaddress", OCTETS, 23),
    Tlv(0x0204, "user_message_reference", INT, 2),
    Tlv(0x0205, "user_response_code", INT, 1),
    Tlv(0x020A, "source_port", INT, 2),
    Tlv(0x020B, "destination_port", INT, 2),
    Tlv(0x020C, "sar_msg_ref_num", INT, 2),
    Tlv(0x020D, "language_indicator", INT, 1),
    Tlv(0x020E, "sar_total_segments", INT, 1),
    Tlv(0x020F, "sar_segment_seqnum", INT, 1),
    Tlv(0x0210, "sc_interface_version", INT, 1),
    Tlv(0x0302, "callback_num_pres_ind", INT, 1),
    Tlv(0x0303, "callback_num_atag", OCTETS, 65),
    Tlv(0x0304, "number_of_messages", INT, 1),
    Tlv(0x0381, "callback_num", OCTETS, 19),
    Tlv(0x0420, "dpf_result", INT, 1),
    Tlv(0x0421, "set_dpf", INT, 1),
    Tlv(0x0422, "ms_availability_status", INT, 1),
    Tlv(0x0423, "network_error_code", OCTETS, 3),  # network type (1) + error code (2)
    Tlv(0x0424, "message_payload", OCTETS, 0),
    Tlv(0x0425, "delivery_failure_reason", INT, 1),
    Tlv(0x0426, "more_messages_to_send", INT, 1),
    Tlv(0x0427, "message_state", INT, 1),
    Tlv(0x0501, "ussd_service_op", INT, 1),  # a 1-octet "octet string" in 3.4: same bytes
    Tlv(0x1201, "display_time", INT, 1),
    Tlv(0x1203, "sms_signal", INT, 2),
    Tlv(0x1204, "ms_validity", INT, 1),
    Tlv(0x130C, "alert_on_message_delivery", FLAG, 0),
    Tlv(0x1380, "its_reply_type", INT, 1),
    Tlv(0x1383, "its_session_info", INT, 2),  # session number + sequence, as smpplib/jSMPP do
)
TLVS_BY_TAG: dict[int, Tlv] = {t.tag: t for t in TLVS}
TLVS_BY_NAME: dict[str, Tlv] = {t.name: t for t in TLVS}
