"""One session of an operator link (``connectors.smpp.client.OperatorLink``): its ClientService,
its current connection, whether it is bound, since when, and the last thing that went wrong.

A session is the ``SMPPProtocol`` handler of each connection its service makes (role ESME) and the
service's retry policy: it counts the attempts that did not end bound itself (see the link's module
docstring for why). It tells its link when it is bound or lost and hands it every request the SMSC
sends; everything about messages stays with the link. Its connections count their PDUs straight
into the operator's counts, which the link's listener hands out (``pdu_counts``).

Why an attempt failed is logged once per attempt, when the retry policy is asked for the next
delay, so that the line has everything ops need at once: operator and session (bound context),
the address tried, what went wrong and when the next attempt is (``retry_in``). The events:
``connect failed`` (TCP: host down, refused, DNS), ``TLS handshake failed`` (certificate not
trusted, or not for that host; the SMSC refused ours), ``bind refused`` (the SMSC's status),
``no answer to the bind``, ``connection lost before the bind answer``, ``bind not sent`` (error).
``ClientService``'s own "Scheduling retry N to connect <object at 0x…>" line, which names neither
and restarts its N whenever TCP connects, is silenced (``QuietClientService``).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING

from twisted.application.internet import ClientService
from twisted.internet.defer import CancelledError
from twisted.internet.error import ConnectingCancelledError
from twisted.internet.protocol import Factory
from twisted.logger import Logger

from connectors.smpp.codec import PDU, SMPPError
from connectors.smpp.defs import status_name
from connectors.smpp.endpoints import tls_failure
from connectors.smpp.protocol import RequestFailed, SMPPProtocol
from connectors.smpp.session import ESME

if TYPE_CHECKING:
    from connectors.smpp.client import OperatorLink

__all__ = ["BindSession", "QuietClientService", "SessionFactory", "TIMEOUTS_BEFORE_REBIND", "rfc3339"]


class QuietClientService(ClientService):
    """A ``ClientService`` that writes nothing to Twisted's log. Its one routine line, "Scheduling
    retry N to connect <NotingFailures object at 0x…> in D seconds.", names neither the host nor
    the error, and its N counts from 1 again whenever TCP connects (so a refused bind or a failed
    TLS handshake is "retry 1" forever while the delays grow); ``BindSession.retry_delay`` logs
    each failed attempt instead. ``ClientService`` passes its class's ``_log`` to its state
    machine when built: an observer that drops every event silences both."""

    _log = Logger(observer=lambda event: None)


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
        #: attempts in a row that did not end bound, this one included (the log's ``failures``)
        self.failures = 0
        #: delays asked since the session was last bound: the back-off's step. Not ``failures``: a
        #: bound session that was lost waits before its first attempt, which is no failed attempt
        self._retries = 0
        self.service: ClientService | None = None
        #: the service's endpoint (``connectors.smpp.endpoints.Alternates``): the SMSC's addresses
        #: in turn, ``tried`` the last one (set by the link when it starts)
        self.addresses = None
        #: why the attempt under way failed, for its log line: (level, event, error), first wins
        self._failed: tuple[str, str, str] | None = None
        self.log = link.log.bind(session=label)

    # -- state --
    def can_submit(self) -> bool:
        p = self.proto
        return self.transmits and self.bound and p is not None and not p.closed and not p.close_reason

    def free(self) -> int:
        """Free window slots when it can submit (``can_submit``'s test, inline: the link asks twice
        for every part it sends)."""
        p = self.proto
        if self.transmits and self.bound and p is not None and not p.closed and not p.close_reason:
            return p.can_send()
        return 0

    def retry_delay(self, attempt: int) -> float:
        """The service's retry policy: the delay before the next attempt, growing with each delay
        asked since the session was last bound (``attempt``, the service's count, restarts at each
        TCP connect). Logs why the attempt that just ended failed, with that delay; the loss of a
        bound session is no failed attempt ("unbound" said why), so ``failures`` does not count it."""
        delay = self.link._backoff(self._retries)
        self._retries += 1
        failed, self._failed = self._failed, None
        if failed is not None:
            self.failures += 1
            level, event, error = failed
            getattr(self.log, level)(event, address=self.address(), error=error, failures=self.failures,
                                     retry_in=round(delay, 3))
        else:  # a bound session that was lost: "unbound" said why
            self.log.debug("reconnecting", address=self.address(), retry_in=round(delay, 3))
        return delay

    def address(self) -> str | None:
        """The address (host:port) of the attempt under way or last made."""
        return None if self.addresses is None else self.addresses.tried

    def _went_wrong(self, reason: str) -> None:
        if not self.link._stopped:
            self.last_error = (self.link.reactor.seconds(), reason)

    def _attempt_failed(self, event: str, error: str, last_error: str, level: str = "warning") -> None:
        """The attempt under way failed: ``last_error`` for ops (``describe``) at once, the log
        line once the next delay is known (``retry_delay``). What comes after the first cause (the
        connection closing after a refused bind) adds nothing."""
        if self._failed is None:
            self._went_wrong(last_error)
            self._failed = (level, event, error)

    def connect_failed(self, failure) -> None:
        """The service's connect failed (it retries, keeping the reason to itself)."""
        if not failure.check(CancelledError, ConnectingCancelledError):  # stopped while connecting
            error = failure.getErrorMessage()
            self._attempt_failed("connect failed", error, f"connect failed: {error}")

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
            # the codec's message quotes the value it refused: never the password's (SPEC §15)
            error = f"{self.command}.password does not fit" if ".password" in str(e) else str(e)
            self._attempt_failed("bind not sent", error, f"bind not sent: {error}", level="error")
            proto.close(f"bind not sent: {error}")
            return
        d.addCallbacks(self._bound, self._bind_failed, callbackArgs=(proto,), errbackArgs=(proto,))

    def _bound(self, resp: PDU, proto: SMPPProtocol) -> None:
        if proto is not self.proto or proto.closed:
            return
        self.bound = True
        self.since = self.link.reactor.seconds()
        self.failures = self._retries = 0
        self._failed = None
        self.log.info("bound", smsc=resp.params.get("system_id", ""))
        self.link._session_up(self)

    def _bind_failed(self, failure, proto: SMPPProtocol) -> None:
        if failure.check(RequestFailed) and failure.value.reason == "connection lost":
            return  # connection_closed follows at once, with the why (a TLS handshake's error)
        reason = str(failure.value) or repr(failure.value)  # "status ESME_RBINDFAIL", "timeout"
        if failure.check(RequestFailed) and failure.value.reason == "timeout":
            self._attempt_failed("no answer to the bind", f"none in {self.link.settings.response_timeout:g} s",
                                 f"bind refused: {reason}")
        else:
            self._attempt_failed("bind refused", reason, f"bind refused: {reason}")
        proto.close(f"bind refused: {reason}")

    def connection_closed(self, proto: SMPPProtocol, reason: str) -> None:
        if proto is not self.proto:
            return
        was_bound, self.bound, self.proto = self.bound, False, None
        if was_bound:
            self.since = self.link.reactor.seconds()
            self._went_wrong(f"connection lost: {reason}")
            # the link stopping (a shutdown, a reload) is routine; anything else ended a working
            # session (the SMSC unbound or closed, framing lost, no answers): log alerting sees it
            (self.log.info if self.link._stopped else self.log.warning)("unbound", reason=reason)
            self.link._session_down(self)
            return
        tls = tls_failure(proto.lost) if proto.lost is not None else None
        if tls is not None:
            self._attempt_failed("TLS handshake failed", tls, f"connect failed: TLS handshake failed: {tls}")
        else:
            self._attempt_failed("connection lost before the bind answer", reason,
                                 f"bind refused: connection lost: {reason}")

    def request_received(self, proto: SMPPProtocol, pdu: PDU) -> None:
        self.link._inbound.received(proto, pdu)  # receipts and MO (connectors.smpp.inbound)

    def peer_unbound(self, proto: SMPPProtocol) -> None:
        self.log.info("the SMSC unbound")

    def protocol_error(self, proto: SMPPProtocol, event) -> None:
        # Never the PDU itself: an outbind or bind the SMSC sends carries a password, a submit_sm
        # or deliver_sm a phone number and its text (SPEC §9: no secrets in any line).
        pdu = getattr(event, "pdu", None)
        self.log.warning("SMPP protocol error from the SMSC", session=proto.label, kind=type(event).__name__,
                         command=pdu.command if pdu is not None else "",
                         sequence=pdu.sequence if pdu is not None else None,
                         status=status_name(getattr(event, "status", None) or 0),
                         reason=getattr(event, "reason", ""))


#: Consecutive submit response timeouts on one session before it is closed and bound again.
TIMEOUTS_BEFORE_REBIND = 3


class SessionFactory(Factory):
    noisy = False

    def __init__(self, session: BindSession) -> None:
        self.session = session

    def buildProtocol(self, addr):
        link = self.session.link
        s = link.settings
        p = SMPPProtocol(ESME, self.session, link.reactor, window=s.window,
                         response_timeout=s.response_timeout, enquire_link=s.enquire_link,
                         label=self.session.label, pdus=link.listener.pdu_counts(link.name))
        p.factory = self
        return p


def rfc3339(ts: float | None) -> str | None:
    """Epoch seconds as the API writes times (RFC 3339 UTC, milliseconds; connectors do not import
    smscore, whose ``model.rfc3339`` this matches)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
