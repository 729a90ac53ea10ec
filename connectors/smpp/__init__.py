"""SMPP 3.4, sans I/O: the codec and the session state machine the Twisted adapters wrap.

Why a façade: the rest of the gateway imports SMPP names from here only, so the modules behind it
(``defs`` tables, ``codec``, ``session``) can change shape without touching their users. Status
codes and tables stay in ``connectors.smpp.defs``.
"""

from .codec import (
    NEED_DATA,
    PDU,
    Decoder,
    EncodeError,
    FatalDecodeError,
    LocalProtocolError,
    RecoverableDecodeError,
    RemoteProtocolError,
    SMPPError,
    decode,
    encode,
)
from .defs import status_name
from .session import (
    ESME,
    SMSC,
    EnquireLinkAnswered,
    GenericNackSent,
    MustClose,
    PeerUnbound,
    RequestReceived,
    RequestRejected,
    ResponseReceived,
    Session,
    State,
    UnexpectedResponse,
    Window,
    WindowEntry,
    WindowFull,
)

__all__ = [
    "ESME",
    "NEED_DATA",
    "PDU",
    "SMSC",
    "Decoder",
    "EncodeError",
    "EnquireLinkAnswered",
    "FatalDecodeError",
    "GenericNackSent",
    "LocalProtocolError",
    "MustClose",
    "PeerUnbound",
    "RecoverableDecodeError",
    "RemoteProtocolError",
    "RequestReceived",
    "RequestRejected",
    "ResponseReceived",
    "SMPPError",
    "Session",
    "State",
    "UnexpectedResponse",
    "Window",
    "WindowEntry",
    "WindowFull",
    "decode",
    "encode",
    "status_name",
]
