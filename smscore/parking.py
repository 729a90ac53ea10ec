"""Messages a node leaves in the store for the nodes that hold an operator's binds (SPEC §10,
"Limits are the carrier's and the customer's"; ``smscore.cluster`` says who holds what).

A node that would send a message through an operator whose binds only other nodes hold parks it:
the store marks it for that operator (``messages.via``) and gives up this node's claim, and the
holder claims it. Parking is batched: every message parked in one reactor turn goes in one store
call. A batch the store refuses is kept (this node's lease on its messages is renewed meanwhile)
and tried again with the next claim.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.defer import Deferred, succeed


class Parking:
    """The messages waiting to be parked, and the one store call that parks them."""

    def __init__(self, store, clock, node: str, log_failure: Callable[..., object]) -> None:
        self.store = store
        self.clock = clock
        self.node = node
        self.log_failure = log_failure
        self._waiting: list[tuple[str, str]] = []  # (message id, operator)
        self._call = None

    def add(self, message_id: str, operator: str) -> None:
        """Park ``message_id`` for ``operator``'s holders (in this reactor turn's batch)."""
        self._waiting.append((message_id, operator))
        if self._call is None:
            self._call = self.clock.callLater(0, self.flush)

    def retry(self) -> None:
        """Try again what the store refused before (called with each claim)."""
        if self._waiting and self._call is None:
            self.flush()

    def flush(self) -> Deferred:
        self._call = None
        batch, self._waiting = self._waiting, []
        if not batch:
            return succeed(None)
        d = self.store.park(self.node, batch)

        def failed(failure):
            self._waiting[:0] = batch
            self.log_failure(failure, "parking messages for another node failed", messages=len(batch))

        d.addErrback(failed)
        return d

    def drop(self) -> list[str]:
        """Stop: the ids not parked yet (the caller releases them), and no batch pending."""
        ids = [mid for mid, _ in self._waiting]
        self._waiting = []
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        return ids
