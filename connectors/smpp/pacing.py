"""An operator's pace: its tps as a token bucket, shared by all its sessions (``tps`` tokens a
second, holding at most ``TPS_BURST_SECONDS`` worth: a short burst, then an even pace), the
back-off after the SMSC refused for now (``BackOff``: throttling, a temporary error), and the pace
it really went at (``RecentCount``: submits over the last seconds, for ``GET /v1/admin/binds``).
All are pure: the caller passes the time in (its reactor's clock)."""

from __future__ import annotations

from collections import deque

__all__ = ["BACKOFF_MAX", "BACKOFF_MIN", "EPS", "RATE_WINDOW", "TPS_BURST_SECONDS", "BackOff", "RecentCount",
           "TokenBucket", "bucket_size"]

#: The bucket holds this many seconds' worth of tokens.
TPS_BURST_SECONDS = 0.1
#: Float slack when counting whole tokens.
EPS = 1e-9


def bucket_size(tps: int) -> float:
    return max(1.0, tps * TPS_BURST_SECONDS)


class TokenBucket:
    """The tps budget of one operator, shared by all its sessions: ``tps`` tokens a second."""

    def __init__(self, tps: int, now: float) -> None:
        self.rate = float(tps)
        self.size = bucket_size(tps)
        self.tokens = self.size
        self.stamp = now

    def available(self, now: float) -> float:
        if now > self.stamp:
            self.tokens = min(self.size, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
        return self.tokens

    def take(self, now: float) -> bool:
        if self.available(now) >= 1 - EPS:
            self.tokens = max(0.0, self.tokens - 1)
            return True
        return False

    def wait(self, now: float) -> float:
        """Seconds until one whole token is there."""
        return max(0.0, (1 - self.available(now)) / self.rate)


#: The first back-off after the SMSC refused for now, and the longest (doubling in between).
BACKOFF_MIN = 1.0
BACKOFF_MAX = 30.0


class BackOff:
    """When the link may send again after the SMSC refused a submit for now (ESME_RTHROTTLED,
    ESME_RSYSERR ...): nothing for ``BACKOFF_MIN``, doubling up to ``BACKOFF_MAX`` each time a part
    sent after the previous back-off began is refused again, back to the minimum after an accepted
    one. Refusals of parts sent before a back-off began do not extend it (ten refusals of one
    window are one signal, not ten)."""

    def __init__(self) -> None:
        self.until = 0.0
        self.started = float("-inf")
        self.repeats = 0

    def refused(self, sent_at: float, now: float) -> float | None:
        """A part sent at ``sent_at`` was refused at ``now``: the seconds of a new back-off, or
        None when it belongs to the running (or last) one."""
        if sent_at <= self.started:
            return None
        delay = min(BACKOFF_MAX, BACKOFF_MIN * 2 ** min(self.repeats, 30))
        self.repeats += 1
        self.started = now
        self.until = now + delay
        return delay

    def accepted(self, sent_at: float) -> None:
        """A part sent at ``sent_at`` was accepted: the next back-off starts from the minimum."""
        if sent_at > self.started:
            self.repeats = 0

    def remaining(self, now: float) -> float:
        return max(0.0, self.until - now)


#: The span (seconds) a link's measured submit rate is taken over.
RATE_WINDOW = 10.0


class RecentCount:
    """How many events happened in the last ``window`` seconds, to ``resolution`` seconds.

    Why slots rather than one timestamp per event: a link sending thousands of submits a second
    would keep tens of thousands of floats for a figure ops read now and then; counting per slot
    keeps at most ``window / resolution`` pairs whatever the rate. An event counts while its slot
    overlaps the window (so up to one slot longer than ``window``); ``rate`` is that count over
    ``window``.
    """

    def __init__(self, window: float = RATE_WINDOW, resolution: float = 0.1) -> None:
        self.window = window
        self.resolution = resolution
        self._slots: deque[list] = deque()  # [slot number, events in it], oldest first

    def add(self, now: float, n: int = 1) -> None:
        slot = int(now // self.resolution)
        if self._slots and self._slots[-1][0] == slot:
            self._slots[-1][1] += n
        else:  # old slots go as a new one starts (``count`` drops any left), not at every event
            self._slots.append([slot, n])
            self._expire(now)

    def count(self, now: float) -> int:
        self._expire(now)
        return sum(n for _, n in self._slots)

    def rate(self, now: float) -> float:
        """Events per second over the last ``window`` seconds."""
        return self.count(now) / self.window

    def _expire(self, now: float) -> None:
        # slot s covers [s * resolution, (s + 1) * resolution): gone once that ends before the window
        oldest = (now - self.window) / self.resolution - 1
        while self._slots and self._slots[0][0] <= oldest:
            self._slots.popleft()
