"""Deliveries to customers' ESMEs: which session gets each deliver_sm, what waits, how each ends.

Why a module of its own: the SMPP server (``server.py``) is about letting ESMEs in and answering
them; sending receipts and MO back is another job with its own rules (SPEC §13: one session per
item, round robin, in order, a window per session, sent again by the application when not
acknowledged). Kept apart, each reads in one sitting, and the outbox's only view of the
connections is a function: the account's receiving protocols, live ones only.

Theory of operation
-------------------
``Outbox.deliver(account, DeliverSm, then, arg)`` calls ``then(DeliveryResult, arg)`` exactly once,
when the delivery ends: at once when it cannot go (no receiver, the outbox closed, a deliver_sm
that cannot be encoded), else when the ESME answers, the answer times out or the connection goes.
A callback and its argument rather than a Deferred: a receipt is one delivery, and a Deferred made,
fired and run for each was most of the outbox's own cost. What ``then`` raises is logged ("outbox
error"), never raised into the outbox or into the connection that carried the answer.

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
from typing import Any

from .codec import PDU, EncodeError, LocalProtocolError
from .defs import ESME_RX_P_APPN
from .deliver_fields import DeliverSm
from .protocol import RequestFailed, SMPPProtocol

__all__ = ["DeliveryResult", "NO_RECEIVER", "Outbox", "Then"]

NO_RECEIVER = "no receiver bound"


@dataclass(slots=True)
class DeliveryResult:
    """How a delivery ended: ``done`` True when the ESME answered for good (ESME_ROK or
    ESME_RX_P_APPN), False when it should be sent again later; ``reason`` says which."""

    done: bool
    reason: str


#: what ``deliver`` calls once the delivery ended: ``then(result, arg)``
Then = Callable[[DeliveryResult, Any], object]

#: the ESME answered ESME_ROK
ACKNOWLEDGED = DeliveryResult(True, "acknowledged")


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
        self._queues: dict[str, deque[_Delivery]] = {}
        self._turn: dict[str, int] = {}
        self._closed = ""  # why every delivery now ends at once, not done (``close``)

    def queued(self, account: str) -> int:
        """Deliveries of ``account`` waiting for a free window slot."""
        return len(self._queues.get(account, ()))

    def capacity(self, account: str) -> int:
        """How many more deliveries of ``account`` would be sent at once."""
        free = sum(p.can_send() for p in self._receivers(account))
        return max(0, free - self.queued(account))

    def deliver(self, account: str, item: DeliverSm, then: Then, arg: Any = None) -> None:
        """Queue ``item`` for ``account`` and send what can go; ``then(DeliveryResult, arg)`` is
        called once it ended (see the module docstring)."""
        out = _Delivery(self, account, item, then, arg)
        receivers = self._receivers(account) if not self._closed else None
        if not receivers:
            out.settle(DeliveryResult(False, self._closed or NO_RECEIVER))
            return
        queue = self._queues.get(account)
        if queue is None:
            queue = self._queues[account] = deque()
        queue.append(out)
        self._flush(account, queue, receivers)

    def receivers_gone(self, account: str) -> None:
        """The account has no receiving session left: what waits is not done."""
        self._turn.pop(account, None)
        self.fail(account, NO_RECEIVER)

    def fail(self, account: str, reason: str) -> None:
        """End everything waiting for ``account``, not done, for ``reason``."""
        for out in self._queues.pop(account, None) or ():
            out.settle(DeliveryResult(False, reason))

    def close(self, reason: str) -> None:
        """End everything waiting, and every delivery from now on, not done, for ``reason`` (the
        server is stopping)."""
        self._closed = reason
        for account in list(self._queues):
            self.fail(account, reason)

    def flush(self, account: str) -> None:
        """Send from the head of the account's queue while a window has room."""
        queue = self._queues.get(account)
        if queue:
            self._flush(account, queue, self._receivers(account))

    def _flush(self, account: str, queue: deque[_Delivery], receivers: list[SMPPProtocol]) -> None:
        """``flush`` with the account's receivers as they are now: a session that closes while this
        runs says so through ``can_send``, and a delivery that ended at once (its ``then`` may have
        done anything) makes them read again."""
        while queue:
            proto = self._next_receiver(account, receivers)
            if proto is None:
                break
            if not self._send(proto, queue.popleft()):
                receivers = self._receivers(account)
        # A result's callback may have delivered (or failed) more meanwhile: drop only our deque.
        if not queue and self._queues.get(account) is queue:
            del self._queues[account]

    def _next_receiver(self, account: str, receivers: list[SMPPProtocol]) -> SMPPProtocol | None:
        count = len(receivers)
        start = self._turn.get(account, 0)
        for i in range(count):
            index = (start + i) % count
            if receivers[index].can_send():
                self._turn[account] = index + 1
                return receivers[index]
        return None

    def _send(self, proto: SMPPProtocol, out: _Delivery) -> bool:
        """Send ``out`` on ``proto``: True when it went, False when it ended at once."""
        item = out.item
        out.proto = proto
        try:
            proto.request_to(out, "deliver_sm", item.params, item.tlvs)
        except EncodeError as exc:
            self.log.error("deliver_sm cannot be encoded", kind=item.kind, **_about(item), error=str(exc))
            out.settle(DeliveryResult(False, f"cannot encode: {exc}"))
            return False
        except LocalProtocolError as exc:  # not expected: can_send() said yes
            out.settle(DeliveryResult(False, f"not sent: {exc}"))
            return False
        return True

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


class _Delivery:
    """One delivery: what it carries, whom to tell how it ended, and, once sent, where the
    deliver_sm_resp goes (``SMPPProtocol.request_to``: to the outbox, without a Deferred per PDU).
    What telling or flushing raises is logged, never raised into the connection that carried the
    answer."""

    __slots__ = ("outbox", "account", "item", "then", "arg", "proto")

    def __init__(self, outbox: Outbox, account: str, item: DeliverSm, then: Then, arg: Any) -> None:
        self.outbox, self.account, self.item, self.then, self.arg = outbox, account, item, then, arg
        self.proto: SMPPProtocol | None = None

    def callback(self, _resp: PDU) -> None:
        """Acknowledged: the common case, told here without a further call, and flushed only when
        something of the account waits for the slot it frees."""
        outbox = self.outbox
        try:
            self.then(ACKNOWLEDGED, self.arg)
        except Exception:  # noqa: BLE001 - a bug: logged, the connection goes on
            outbox.log.exception("outbox error")
        if self.account in outbox._queues:
            try:
                outbox.flush(self.account)
            except Exception:  # noqa: BLE001 - a bug: logged, the connection goes on
                outbox.log.exception("outbox error")

    def errback(self, failed: Exception) -> None:
        outbox = self.outbox
        try:
            outcome = outbox._outcome(failed, self.proto, self.item)
        except Exception:  # noqa: BLE001 - a bug: logged, the delivery is not done
            outbox.log.exception("outbox error")
            outcome = DeliveryResult(False, "error")
        self.settle(outcome)
        try:
            outbox.flush(self.account)
        except Exception:  # noqa: BLE001 - a bug: logged, the connection goes on
            outbox.log.exception("outbox error")

    def settle(self, outcome: DeliveryResult) -> None:
        """Tell ``then`` how the delivery ended; what it raises is logged."""
        try:
            self.then(outcome, self.arg)
        except Exception:  # noqa: BLE001 - a bug: logged, the outbox goes on
            self.outbox.log.exception("outbox error")
