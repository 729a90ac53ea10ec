"""Helpers of the SMPP session's tests: sessions bound as either side, the events some bytes make."""

from __future__ import annotations

from connectors.smpp.codec import NEED_DATA, PDU, encode
from connectors.smpp.defs import ESME_ROK
from connectors.smpp.session import ESME, SMSC, Session

SUBMIT = {"source_addr": "Acme", "destination_addr": "46701234567", "short_message": b"hi"}


def events(session: Session, data: bytes, now: float = 0.0) -> list:
    session.receive_data(data, now)
    out = []
    while (event := session.next_event()) is not NEED_DATA:
        out.append(event)
    return out


def one_event(session: Session, data: bytes, now: float = 0.0):
    got = events(session, data, now)
    assert len(got) == 1, got
    return got[0]


def bound_esme(bind: str = "bind_transceiver", **kwargs) -> Session:
    session = Session(ESME, now=0.0, **kwargs)
    sequence, _ = session.send_request(bind, {"system_id": "user", "password": "pw"}, now=0.0)
    one_event(session, encode(PDU(bind + "_resp", sequence, params={"system_id": "SMSC"})))
    assert session.is_bound
    return session


def bound_smsc(bind: str = "bind_transceiver", **kwargs) -> Session:
    session = Session(SMSC, now=0.0, **kwargs)
    request = one_event(session, encode(PDU(bind, 1, params={"system_id": "user"}))).pdu
    session.send_response(request, ESME_ROK, {"system_id": "SMSC"})
    assert session.is_bound
    return session
