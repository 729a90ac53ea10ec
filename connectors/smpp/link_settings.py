"""What an operator link is told (``LinkSettings``, from ``[operators.<name>]``) and what each
submit_sm_resp status means to the core (``SUBMIT_STATUS_KINDS``): the link's data, kept apart from
the link (``connectors.smpp.client``) so both can be read in one sitting.

The error table is data: THROTTLED statuses make the link back off; TRANSIENT ones are retried
(the same message, later); every status not in the table is PERMANENT, vendor codes included, so
the core tries the next operator instead of retrying one that keeps refusing forever.
"""

from __future__ import annotations

from dataclasses import dataclass
from os import PathLike

from connectors.api import SubmitError
from connectors.smpp import defs

__all__ = ["DEFAULT_STATUS_KIND", "ESME_RINVDCS", "LinkSettings", "PERMANENT", "SUBMIT_STATUS_KINDS", "THROTTLED",
           "TRANSIENT"]

THROTTLED = SubmitError.THROTTLED
TRANSIENT = SubmitError.TRANSIENT
PERMANENT = SubmitError.PERMANENT

#: "Invalid data coding scheme": an SMPP 5.0 code that 3.4 SMSCs send too (not in 3.4's table).
ESME_RINVDCS = 0x00000104

#: submit_sm_resp command_status → what the core should do. Absent codes are PERMANENT.
SUBMIT_STATUS_KINDS: dict[int, str] = {
    defs.ESME_RTHROTTLED: THROTTLED,
    defs.ESME_RMSGQFUL: THROTTLED,
    defs.ESME_RSYSERR: TRANSIENT,
    defs.ESME_RX_T_APPN: TRANSIENT,
    defs.ESME_RINVBNDSTS: TRANSIENT,
    defs.ESME_RINVMSGLEN: PERMANENT,
    defs.ESME_RINVCMDLEN: PERMANENT,
    defs.ESME_RINVCMDID: PERMANENT,
    defs.ESME_RINVPRTFLG: PERMANENT,
    defs.ESME_RINVREGDLVFLG: PERMANENT,
    defs.ESME_RINVSRCADR: PERMANENT,
    defs.ESME_RINVDSTADR: PERMANENT,
    defs.ESME_RINVSERTYP: PERMANENT,
    defs.ESME_RINVESMCLASS: PERMANENT,
    defs.ESME_RSUBMITFAIL: PERMANENT,
    defs.ESME_RINVSRCTON: PERMANENT,
    defs.ESME_RINVSRCNPI: PERMANENT,
    defs.ESME_RINVDSTTON: PERMANENT,
    defs.ESME_RINVDSTNPI: PERMANENT,
    defs.ESME_RINVSCHED: PERMANENT,
    defs.ESME_RINVEXPIRY: PERMANENT,
    defs.ESME_RINVDFTMSGID: PERMANENT,
    defs.ESME_RX_P_APPN: PERMANENT,
    defs.ESME_RX_R_APPN: PERMANENT,
    defs.ESME_RINVOPTPARSTREAM: PERMANENT,
    defs.ESME_ROPTPARNOTALLWD: PERMANENT,
    defs.ESME_RINVPARLEN: PERMANENT,
    defs.ESME_RMISSINGOPTPARAM: PERMANENT,
    defs.ESME_RINVOPTPARAMVAL: PERMANENT,
    defs.ESME_RDELIVERYFAILURE: PERMANENT,
    defs.ESME_RUNKNOWNERR: PERMANENT,
    ESME_RINVDCS: PERMANENT,
}
DEFAULT_STATUS_KIND = PERMANENT


@dataclass(frozen=True)
class LinkSettings:
    """How to reach and use one operator's SMSC (from ``[operators.<name>]``)."""

    host: str
    port: int
    tls: bool = False
    system_id: str = ""
    password: str = ""
    system_type: str = ""
    bind: str = "transceiver"  # or "transmitter+receiver"
    binds: int = 1
    window: int = 10
    tps: int = 0  # 0 = unlimited
    enquire_link: float = 30.0
    response_timeout: float = 30.0
    receipt_id_format: str = "auto"  # auto | hex | dec | as-is
    latin1: bool = False
    packed_gsm: bool = False
    reconnect_min: float = 1.0
    reconnect_max: float = 60.0
    #: more (host, port) of the same SMSC, tried after host:port, in turn, one per (re)connect
    alternates: tuple[tuple[str, int], ...] = ()
    #: PEM paths: the CAs the SMSC's certificate must chain to (None: the platform's), and the
    #: client certificate and its key (both or neither); only with tls
    tls_ca: str | PathLike[str] | None = None
    tls_cert: str | PathLike[str] | None = None
    tls_key: str | PathLike[str] | None = None
    address_range: str = ""  # bind's address_range
    service_type: str = ""  # every submit_sm's service_type
    #: TON/NPI of every submit_sm's addresses; None: chosen per message (connectors.smpp.addressing)
    source_ton: int | None = None
    source_npi: int | None = None
    dest_ton: int | None = None
    dest_npi: int | None = None
    validity: float | None = None  # seconds; None: a message's own expiry only

    def addresses(self) -> tuple[tuple[str, int], ...]:
        """Every address of the SMSC, in the order they are tried."""
        return ((self.host, self.port), *self.alternates)
