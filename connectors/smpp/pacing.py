"""An operator's tps as a token bucket, shared by all its sessions: ``tps`` tokens a second,
holding at most ``TPS_BURST_SECONDS`` worth (a short burst, then an even pace)."""

from __future__ import annotations

__all__ = ["EPS", "TPS_BURST_SECONDS", "TokenBucket", "bucket_size"]

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
