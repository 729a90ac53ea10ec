"""Test doubles shipped with the tests: an operator link that records submits and lets the test
answer them, in the spirit of treq's StubTreq."""

from __future__ import annotations

from twisted.internet.defer import Deferred

from connectors.api import ReceiptFacts, ReceiptOutcome, SubmitError


class FakeLink:
    """An operator link whose SMSC is the test: ``submits`` holds (request, deferred) pairs."""

    def __init__(self, name: str, window: int = 10, up: bool = True) -> None:
        self.name = name
        self.window = window
        self.up = up
        self.submits: list = []
        self.outstanding = 0
        self.listener = None
        self._next_id = 0

    def is_up(self) -> bool:
        return self.up

    def max_in_flight(self) -> int:
        return self.window

    def capacity(self) -> int:
        return max(0, self.window - self.outstanding) if self.up else 0

    def submit(self, request) -> Deferred:
        self.outstanding += 1
        d: Deferred = Deferred()
        self.submits.append((request, d))
        return d

    def submit_to(self, request, callback, errback, *args) -> None:
        """``submit`` with its outcome going to ``callback(keys, *args)`` or ``errback(error, *args)``."""
        self.submit(request).addCallbacks(callback, lambda failure: errback(failure.value, *args),
                                          callbackArgs=args)

    def _finish(self) -> None:
        self.outstanding -= 1

    def accept(self, index: int = 0) -> str:
        """Answer the index-th pending submit with a new SMSC id; returns the id."""
        request, d = self.submits.pop(index)
        self._next_id += 1
        key = f"{self.name}-{self._next_id}"
        self._finish()
        d.callback([key])
        return key

    def refuse(self, kind: str, detail: str, index: int = 0, answered: bool = False) -> None:
        request, d = self.submits.pop(index)
        self._finish()
        d.errback(SubmitError(kind, detail, answered=answered))

    def receipt(self, key: str, outcome=ReceiptOutcome.DELIVERED, stat="DELIVRD") -> ReceiptFacts:
        return ReceiptFacts(operator=self.name, keys=(key,), outcome=outcome, stat=stat, err="000", raw_id=key)
