"""Deliveries to customers' ESMEs: which session gets each deliver_sm, what waits, how each ends.

Why a module of its own: the SMPP server (``server.py``) is about letting ESMEs in and answering
them; sending receipts and MO back is another job with its own rules (SPEC §13: one session per
item, round robin, in order, a window per session, sent again by the application when not
acknowledged). Kept apart, each reads in one sitting, and the outbox's only view of the
connections is a function: the account's receiving protocols, live ones only.

Theory of operation
-------------------
``Outbox.deliver(account, DeliverSm)`` → Deferred of ``DeliveryResult``, which never fails:

* The item joins the account's in-memory queue (oldest first) and ``flush`` sends from its head
  while a receiving session has a free window slot. The session is chosen round robin over the
  account's receivers, in the order ``receivers(account)`` lists them, skipping full windows.
* ``done`` is True when the ESME answered ESME_ROK, or ESME_RX_P_APPN (it will never take it,
  so sending it again is useless); False for any other status, a generic_nack, no answer within
  the protocol's response timeout, the connection lost, or the account's last receiver gone while
  the item waited (``receivers_gone``). Every answer or timeout frees a slot: ``flush`` again.
* Nothing here is durable and nothing is resent: the application keeps the item until ``done``
  and hands it over again later (SPEC: after 30 s or a rebind). ``capacity(account)`` tells how
  many more would go out at once, so it need not hand over more than that.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from twisted.internet.defer import Deferred

from .codec import PDU, EncodeError, LocalProtocolError
from .defs import ESME_RX_P_APPN
from .deliver_fields import DeliverSm
from .protocol import RequestFailed, SMPPProtocol

__all__ = ["DeliveryResult", "NO_RECEIVER", "Outbox"]

NO_RECEIVER = "no receiver bound"


@dataclass(slots=True)
class DeliveryResult:
    """How a delivery ended: ``done`` True when the ESME answered for good (ESME_ROK or
    ESME_RX_P_APPN), False when it should be sent again later; ``reason`` says which."""

    done: bool
    reason: str


#: the ESME answered ESME_ROK
ACKNOWLEDGED = DeliveryResult(True, "acknowledged")


@dataclass(slots=True)
class _Outgoing:
    item: DeliverSm
    result: Deferred


def _about(item: DeliverSm) -> dict[str, str]:
    """What a log line about ``item`` names it by: a receipt by its ``message_id`` (SPEC §9: on
    every line about a message), an MO by its ``mo_id``."""
    return {"message_id": item.ref} if item.kind == "receipt" else {"mo_id": item.ref}


class Outbox:
    """The deliveries waiting for, or travelling to, every account's ESMEs.

    ``receivers(account)`` returns the account's live receiving protocols; ``log`` is a
    structlog logger.
    """

    def __init__(self, receivers: Callable[[str], list[SMPPProtocol]], log) -> None:
        self._receivers = receivers
        self.log = log
        self._queues: dict[str, deque[_Outgoing]] = {}
        self._turn: dict[str, int] = {}

    def queued(self, account: str) -> int:
        """Deliveries of ``account`` waiting for a free window slot."""
        return len(self._queues.get(account, ()))

    def capacity(self, account: str) -> int:
        """How many more deliveries of ``account`` would be sent at once."""
        free = sum(p.can_send() for p in self._receivers(account))
        return max(0, free - self.queued(account))

    def deliver(self, account: str, item: DeliverSm) -> Deferred:
        """Queue ``item`` for ``account`` and send what can go; fires with a DeliveryResult."""
        result: Deferred = Deferred()
        if not self._receivers(account):
            result.callback(DeliveryResult(False, NO_RECEIVER))
            return result
        self._queues.setdefault(account, deque()).append(_Outgoing(item, result))
        self.flush(account)
        return result

    def receivers_gone(self, account: str) -> None:
        """The account has no receiving session left: what waits is not done."""
        self._turn.pop(account, None)
        self.fail(account, NO_RECEIVER)

    def fail(self, account: str, reason: str) -> None:
        """End everything waiting for ``account``, not done, for ``reason``."""
        for out in self._queues.pop(account, None) or ():
            out.result.callback(DeliveryResult(False, reason))

    def fail_all(self, reason: str) -> None:
        for account in list(self._queues):
            self.fail(account, reason)

    def flush(self, account: str) -> None:
        """Send from the head of the account's queue while a window has room."""
        queue = self._queues.get(account)
        while queue:
            proto = self._next_receiver(account)
            if proto is None:
                break
            self._send(account, proto, queue.popleft())
        # A result's callback may have delivered (or failed) more meanwhile: drop only our deque.
        if queue is not None and not queue and self._queues.get(account) is queue:
            del self._queues[account]

    def _next_receiver(self, account: str) -> SMPPProtocol | None:
        receivers = self._receivers(account)
        start = self._turn.get(account, 0)
        for i in range(len(receivers)):
            index = (start + i) % len(receivers)
            if receivers[index].can_send():
                self._turn[account] = index + 1
                return receivers[index]
        return None

    def _send(self, account: str, proto: SMPPProtocol, out: _Outgoing) -> None:
        item = out.item
        try:
            proto.request_to(_Answer(self, proto, out, account), "deliver_sm", item.params, item.tlvs)
        except EncodeError as exc:
            self.log.error("deliver_sm cannot be encoded", kind=item.kind, **_about(item), error=str(exc))
            out.result.callback(DeliveryResult(False, f"cannot encode: {exc}"))
            return
        except LocalProtocolError as exc:  # not expected: can_send() said yes
            out.result.callback(DeliveryResult(False, f"not sent: {exc}"))
            return

    def _outcome(self, exc: Exception, proto: SMPPProtocol, item: DeliverSm) -> DeliveryResult:
        if not isinstance(exc, RequestFailed):
            self.log.error("deliver_sm failed oddly", session=proto.label, kind=item.kind, **_about(item),
                           error=repr(exc))
            return DeliveryResult(False, f"error: {exc!r}")
        if exc.reason == "status" and exc.status == ESME_RX_P_APPN:
            return DeliveryResult(True, "refused for good: ESME_RX_P_APPN")
        self.log.info("deliver_sm not acknowledged", session=proto.label, kind=item.kind, **_about(item),
                      error=str(exc))
        return DeliveryResult(False, str(exc))

    def _settle(self, outcome: DeliveryResult, result: Deferred, account: str) -> None:
        result.callback(outcome)
        self.flush(account)


class _Answer:
    """Where the deliver_sm_resp of one delivery goes (``SMPPProtocol.request_to``): to the outbox,
    without a Deferred per PDU. What settling raises (a result's callback) is logged, never raised
    into the connection that carried the answer."""

    __slots__ = ("outbox", "proto", "out", "account")

    def __init__(self, outbox: Outbox, proto: SMPPProtocol, out: _Outgoing, account: str) -> None:
        self.outbox, self.proto, self.out, self.account = outbox, proto, out, account

    def callback(self, _resp: PDU) -> None:
        self._settle(ACKNOWLEDGED)

    def errback(self, failed: Exception) -> None:
        try:
            outcome = self.outbox._outcome(failed, self.proto, self.out.item)
        except Exception:  # noqa: BLE001 - a bug: logged, the delivery is not done
            self.outbox.log.exception("outbox error")
            outcome = DeliveryResult(False, "error")
        self._settle(outcome)

    def _settle(self, outcome: DeliveryResult) -> None:
        try:
            self.outbox._settle(outcome, self.out.result, self.account)
        except Exception:  # noqa: BLE001 - a bug: logged, the connection goes on
            self.outbox.log.exception("outbox error")
