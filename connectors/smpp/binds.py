"""One session of an operator link (``connectors.smpp.client.OperatorLink``): its ClientService,
its current connection, whether it is bound, since when, and the last thing that went wrong.

A session is the ``SMPPProtocol`` handler of each connection its service makes (role ESME) and the
service's retry policy: it counts the attempts that did not end bound itself (see the link's module
docstring for why). It tells its link when it is bound or lost and hands it every request the SMSC
sends; everything about messages stays with the link.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING

from twisted.internet.defer import CancelledError
from twisted.internet.error import ConnectingCancelledError
from twisted.internet.protocol import Factory

from connectors.smpp.codec import PDU, SMPPError
from connectors.smpp.protocol import SMPPProtocol
from connectors.smpp.session import ESME

if TYPE_CHECKING:
    from twisted.application.internet import ClientService

    from connectors.smpp.client import OperatorLink

__all__ = ["BindSession", "SessionFactory", "TIMEOUTS_BEFORE_REBIND", "rfc3339"]


class BindSession:
    """One session of a link: its ClientService, its current connection and whether it is bound.

    It is the ``SMPPProtocol`` handler of each connection the service makes, and the service's
    retry policy (``connectors.smpp.client``'s docstring says why it counts failures itself). For
    ops (``describe``) it keeps when its bound state last changed (``since``) and the last thing that went wrong
    (``last_error``: a connect that failed, a bind refused or unanswered, a bound connection lost),
    as (reactor time, reason); what the gateway does itself while stopping is not an error.
    """

    def __init__(self, link: OperatorLink, label: str, command: str, transmits: bool) -> None:
        self.link = link
        self.label = label
        self.command = command
        self.transmits = transmits
        self.proto: SMPPProtocol | None = None
        self.bound = False
        self.since: float | None = None
        self.last_error: tuple[float, str] | None = None
        self.failures = 0
        self.service: ClientService | None = None
        self.log = link.log.bind(session=label)

    # -- state --
    def can_submit(self) -> bool:
        p = self.proto
        return self.transmits and self.bound and p is not None and not p.closed and not p.close_reason

    def free(self) -> int:
        return self.proto.can_send() if self.can_submit() else 0

    def retry_delay(self, attempt: int) -> float:
        self.failures += 1
        return self.link._backoff(self.failures - 1)

    def _went_wrong(self, reason: str) -> None:
        if not self.link._stopped:
            self.last_error = (self.link.reactor.seconds(), reason)

    def connect_failed(self, failure) -> None:
        """The service's connect failed (it retries, keeping the reason to itself)."""
        if not failure.check(CancelledError, ConnectingCancelledError):  # stopped while connecting
            self._went_wrong(f"connect failed: {failure.getErrorMessage()}")

    # -- SMPPProtocol handler --
    def connection_made(self, proto: SMPPProtocol) -> None:
        self.proto = proto
        s = self.link.settings
        params = {"system_id": s.system_id, "password": s.password, "system_type": s.system_type,
                  "interface_version": 0x34, "addr_ton": 0, "addr_npi": 0,
                  "address_range": s.address_range}
        try:
            d = proto.request(self.command, params)
        except SMPPError as e:
            self.log.error("bind not sent", error=str(e))
            self._went_wrong(f"bind not sent: {e}")
            proto.close(f"bind not sent: {e}")
            return
        d.addCallbacks(self._bound, self._bind_failed, callbackArgs=(proto,), errbackArgs=(proto,))

    def _bound(self, resp: PDU, proto: SMPPProtocol) -> None:
        if proto is not self.proto or proto.closed:
            return
        self.bound = True
        self.since = self.link.reactor.seconds()
        self.failures = 0
        self.log.info("bound", smsc=resp.params.get("system_id", ""))
        self.link._session_up(self)

    def _bind_failed(self, failure, proto: SMPPProtocol) -> None:
        reason = str(failure.value) or repr(failure.value)  # "status ESME_RBINDFAIL", "timeout"
        self.log.warning("bind refused", reason=reason)
        self._went_wrong(f"bind refused: {reason}")
        proto.close(f"bind refused: {reason}")

    def connection_closed(self, proto: SMPPProtocol, reason: str) -> None:
        if proto is not self.proto:
            return
        was_bound, self.bound, self.proto = self.bound, False, None
        if was_bound:
            self.since = self.link.reactor.seconds()
            self._went_wrong(f"connection lost: {reason}")
            self.log.info("unbound", reason=reason)
            self.link._session_down(self)
        else:
            self.log.debug("connection closed before bind", reason=reason)

    def request_received(self, proto: SMPPProtocol, pdu: PDU) -> None:
        self.link._request_received(proto, pdu)

    def pdu_seen(self, proto: SMPPProtocol, command: str, direction: str) -> None:
        self.link.listener.pdu(self.link.name, command, direction)

    def peer_unbound(self, proto: SMPPProtocol) -> None:
        self.log.info("the SMSC unbound")

    def protocol_error(self, proto: SMPPProtocol, event) -> None:
        self.log.warning("SMPP protocol error from the SMSC", kind=type(event).__name__,
                         detail=getattr(event, "reason", "") or getattr(event, "pdu", ""))


#: Consecutive submit response timeouts on one session before it is closed and bound again.
TIMEOUTS_BEFORE_REBIND = 3


class SessionFactory(Factory):
    noisy = False

    def __init__(self, session: BindSession) -> None:
        self.session = session

    def buildProtocol(self, addr):
        s = self.session.link.settings
        p = SMPPProtocol(ESME, self.session, self.session.link.reactor, window=s.window,
                         response_timeout=s.response_timeout, enquire_link=s.enquire_link,
                         label=self.session.label)
        p.factory = self
        return p


def rfc3339(ts: float | None) -> str | None:
    """Epoch seconds as the API writes times (RFC 3339 UTC, milliseconds; connectors do not import
    smscore, whose ``model.rfc3339`` this matches)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
