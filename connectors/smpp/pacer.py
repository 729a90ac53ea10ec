"""One operator link's pace on its reactor: ``pacing.LinkPace`` (pure: the tps bucket, the back-off
after a refusal for now, the adaptive cap after throttling) and the two timers that tell the link
its capacity may have grown again: the end of a back-off, and a bucket refilled after it ran dry (a
timer only then, not one per submit).

Why apart from ``connectors.smpp.client``: the link decides where a part goes and what an answer
means; how fast it may go is this one thing, with its own state and timers (the rule itself is in
``connectors.smpp.pacing``, tested without a reactor)."""

from __future__ import annotations

from collections.abc import Callable

from connectors.smpp.pacing import EPS, LinkPace

__all__ = ["LinkPacer"]

#: The shortest refill timer (seconds): a bucket a hair short of a token is looked at again soon.
MIN_REFILL_DELAY = 0.001


class LinkPacer:
    """The pace of one link: ``room`` and ``take`` before sending, ``sent``, ``accepted`` and
    ``refused`` after; ``ready()`` (the link's "capacity may have grown") is called when a back-off
    ends, and when a token is back after ``room`` or ``take`` found the buckets short of one."""

    def __init__(self, tps: int, reactor, log, ready: Callable[[], None]) -> None:
        self.reactor = reactor
        self.pace = LinkPace(tps, reactor.seconds())
        self.log = log
        self._ready = ready
        self._refill_call = None
        self._throttle_call = None
        self._said_growth = float("inf")  # the hold's end (AdaptivePace.grows_from) last logged

    def room(self, room: int, now: float) -> int:
        """``room`` submits at most, as many as the pace allows at ``now``: none while backing off
        (the back-off's end calls ``ready``), else the whole tokens of the buckets, if any.
        Asked several times a message at load: with no cap, the tps bucket alone, without calls."""
        pace = self.pace
        if pace.backoff.until > now:
            return 0
        if pace.adaptive.cap is None:
            bucket = pace.tps
            if bucket is None:
                return room
            available = bucket.available(now)
        else:
            available = pace.tokens(now)
            self._cap_changed(now)
            if available is None:
                return room
        tokens = int(available + EPS)
        if tokens < 1:
            # Whoever asked will wait for ready(): make sure one comes when a token does (a refill
            # timer can fire a hair early and find 0.99999 tokens).
            self._schedule_refill(now)
        return min(room, tokens)

    def take(self, now: float) -> bool:
        """One submit's token, or False (not now: backing off, or a bucket is short)."""
        pace = self.pace
        if pace.backoff.until > now:
            return False
        if pace.adaptive.cap is None:  # the tps bucket alone, as ``room``
            bucket = pace.tps
            if bucket is None:
                return True
            ok = bucket.take(now)
            if bucket.available(now) < 1 - EPS:
                self._schedule_refill(now)
            return ok
        ok = pace.take(now)
        self._cap_changed(now)
        if pace.wait(now) > 0:
            self._schedule_refill(now)
        return ok

    def sent(self, now: float) -> None:
        self.pace.recent.add(now)

    def accepted(self, sent_at: float) -> None:
        self.pace.accepted(sent_at, self.reactor.seconds())

    def refused(self, sent_at: float, why: str, throttling: bool) -> None:
        """The SMSC refused a part sent at ``sent_at`` for now (``throttling``: ESME_RTHROTTLED or
        ESME_RMSGQFUL, which also cap the link; else a temporary error): back off, unless the part
        was sent before the running (or last) back-off began (the same signal again)."""
        delay = self.pace.refused(sent_at, self.reactor.seconds(), throttling)
        if delay is None:
            return
        if self._throttle_call is not None and self._throttle_call.active():
            self._throttle_call.cancel()
        self._throttle_call = self.reactor.callLater(delay, self._throttle_over)
        cap = self.pace.adaptive.cap if throttling else None
        self.log.warning("the SMSC refuses for now: backing off", seconds=delay, status=why,
                         **({"paced_at": round(cap, 3)} if cap is not None else {}))

    def describe(self, now: float) -> dict:
        return self.pace.describe(now)

    def stop(self) -> None:
        for call in (self._throttle_call, self._refill_call):
            if call is not None and call.active():
                call.cancel()
        self._throttle_call = self._refill_call = None

    def _cap_changed(self, now: float) -> None:
        """Said once each, as the cap's start is (the back-off's line with ``paced_at``): the cap
        went (it held nothing back, or reached the tps), or its hold ended and it grows back."""
        adaptive = self.pace.adaptive
        if adaptive.cap is None:
            self.log.info("the link's pace is no longer capped", sent_per_second=round(self.pace.recent.rate(now), 3))
        elif now >= adaptive.grows_from != self._said_growth:
            self._said_growth = adaptive.grows_from
            self.log.info("the link's pace grows back", paced_at=round(adaptive.cap, 3))

    def _schedule_refill(self, now: float) -> None:
        if self._refill_call is None:
            delay = max(self.pace.wait(now), MIN_REFILL_DELAY)
            self._refill_call = self.reactor.callLater(delay, self._refilled)

    def _throttle_over(self) -> None:
        self._throttle_call = None
        self._ready()

    def _refilled(self) -> None:
        self._refill_call = None
        self._ready()
