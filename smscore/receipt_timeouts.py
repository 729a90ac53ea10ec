"""Messages with no final receipt within ``receipt_timeout`` become ``unknown`` (SPEC §3, §5).

Why a class of its own: the sweep is a loop with its own clock and interval, and a reload changes
its timeout (and with it how often it runs) while the pipeline goes on; the rule itself is
``smscore.transitions.on_receipt_timeout``, applied by the store's ``expire_unanswered``.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall


def sweep_interval(timeout: float) -> float:
    """How often to look: a tenth of the timeout, 1 to 60 s (72 h: each minute; 5 s: each second)."""
    return min(60.0, max(1.0, timeout / 10))


class ReceiptTimeouts:
    """The sweep: ``store.expire_unanswered`` every ``sweep_interval(timeout)``, its transitions to
    ``after`` (the pipeline's bookkeeping), a failure to ``log_failure(failure, what)``."""

    def __init__(self, *, store, clock, timeout: float, after: Callable[[list], object],
                 log_failure: Callable[..., object]) -> None:
        self.store = store
        self.clock = clock
        self.timeout = timeout
        self._after = after
        self._log_failure = log_failure
        self._loop = LoopingCall(self.sweep)
        self._loop.clock = clock

    def start(self) -> None:
        self._loop.start(sweep_interval(self.timeout), now=True)

    def stop(self) -> None:
        if self._loop.running:
            self._loop.stop()

    def set_timeout(self, seconds: float) -> None:
        """A reload's ``receipt_timeout``: the next sweep uses it, at the interval it needs."""
        if seconds == self.timeout:
            return
        self.timeout = seconds
        if self._loop.running:
            self._loop.stop()
            self._loop.start(sweep_interval(seconds), now=True)

    def sweep(self) -> Deferred:
        now = self.clock.seconds()
        d = self.store.expire_unanswered(now - self.timeout, now, self.timeout)
        d.addCallbacks(self._after, self._log_failure, errbackArgs=("receipt timeout sweep failed",))
        return d
