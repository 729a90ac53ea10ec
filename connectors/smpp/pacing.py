"""An operator's pace: its tps as a token bucket, shared by all its sessions (``tps`` tokens a
second, holding at most ``TPS_BURST_SECONDS`` worth: a short burst, then an even pace), the
back-off after the SMSC refused for now (``BackOff``: throttling, a temporary error), the rate the
link adapts to after throttling (``AdaptivePace``), and the pace it really went at (``RecentCount``:
submits over the last seconds, for ``GET /v1/admin/binds``). ``LinkPace`` holds one link's lot.
All are pure: the caller passes the time in (its reactor's clock) and keeps the timers.

Why an adaptive cap on top of the back-off: an SMSC that takes 1 submit a second, met by a link with
a window of 10, accepted one submit of each window and refused the nine others; the back-off (1 s)
ended, the next window went out whole, and its one accepted submit reset the back-off to 1 s again:
about six submits a second for as long as the backlog lasted, most of them refused (Kannel's fixed
throttling sleep does the same). Real SMSCs count persistent over-rate submits against the account,
and some unbind it. So throttling that persists caps the link near the rate the SMSC was seen to
accept, and the cap grows again until the next refusal or until it no longer holds the link back:

* capped: when ESME_RTHROTTLED or ESME_RMSGQFUL starts a new back-off (``BackOff.refused`` gave a
  delay; refusals of parts sent before it began are the same signal and change nothing), the link
  measures ``PACE_SHARE`` (0.9) of the submits the SMSC accepted over the last ``PACE_WINDOW`` (1 s),
  if that window was a whole one of sending (not the silence of an earlier back-off) and the SMSC
  accepted something in it. The first such refusal only measures: one passing queue-full is a
  back-off, not a pace (an audit: one ESME_RMSGQFUL while a link sent 6 a second capped it at 2.7
  a second for a minute). A throttling refusal again within ``PERSISTS_WITHIN`` (10 s) of the end of
  the last throttling back-off caps the link at the lowest measure of the two; with a cap in force,
  a lower measure lowers it, a higher one never raises it. So the lowest cap is 0.9 a second (one
  accepted submit).
* holding, then growing: the cap stays as taken for ``PACE_HOLD`` (5 s) after the back-off ends,
  then doubles every second (``grown``): a probe above the SMSC's limit costs a refusal or two and a
  1 s back-off, so the hold spaces them out (against a 2 submits/s SMSC, one every 6-7 s), and an
  SMSC that stops throttling without dropping the bind has the link back at full speed some seconds
  after the hold, not minutes (an audit: 18 s for 240 messages at +1/+10 % a second).
* dropped: once it reaches the operator's ``tps`` (the bucket holds the link there anyway), or once it
  held no submit back for ``PACE_WINDOW`` (or two of its own intervals, if longer) after the back-off:
  the window, the traffic or the tps holds the link back now, not the cap.

The tps bucket stays the hard ceiling: the cap only ever lowers it. Temporary errors (ESME_RSYSERR,
a generic_nack) back off but do not cap: they say the SMSC is in trouble for a moment, not what rate
it takes, and a cap taken from them would slow a healthy link for nothing.
"""

from __future__ import annotations

from collections import deque

__all__ = ["BACKOFF_MAX", "BACKOFF_MIN", "DROP_INTERVALS", "EPS", "GROW_FACTOR", "PACE_HOLD", "PACE_SHARE",
           "PACE_WINDOW", "PERSISTS_WITHIN", "RATE_WINDOW", "TPS_BURST_SECONDS", "AdaptivePace", "BackOff",
           "LinkPace", "RecentCount", "TokenBucket", "bucket_size", "grown"]

#: The bucket holds this many seconds' worth of tokens.
TPS_BURST_SECONDS = 0.1
#: Float slack when counting whole tokens.
EPS = 1e-9


def bucket_size(tps: float) -> float:
    return max(1.0, tps * TPS_BURST_SECONDS)


class TokenBucket:
    """The tps budget of one operator, shared by all its sessions: ``tps`` tokens a second (also
    the adaptive cap's, whose rate changes: ``set_rate``)."""

    def __init__(self, tps: float, now: float) -> None:
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

    def set_rate(self, rate: float, now: float) -> None:
        """From ``now`` on, ``rate`` tokens a second (what came until now came at the old rate)."""
        self.available(now)
        self.rate = rate
        self.size = bucket_size(rate)
        self.tokens = min(self.tokens, self.size)


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


#: The span (seconds) of the accepted count the adaptive cap is taken from; and the cap is dropped
#: after this long without holding a submit back (or ``DROP_INTERVALS`` of its own, if longer).
PACE_WINDOW = 1.0
DROP_INTERVALS = 2.0
#: The cap is this share of the submits the SMSC accepted over the last ``PACE_WINDOW``: a little
#: below its limit rather than on it, where the jitter of timers and network meets it half the time.
PACE_SHARE = 0.9
#: Seconds after the back-off that the cap stays as it was taken, before it grows.
PACE_HOLD = 5.0
#: Then it grows this many times over a second, compounded.
GROW_FACTOR = 2.0
#: A throttling refusal this long or less after the end of the last throttling back-off: the SMSC
#: still limits the link, which caps itself.
PERSISTS_WITHIN = 10.0


def grown(cap: float, seconds: float) -> float:
    """The cap after ``seconds`` of growth: x ``GROW_FACTOR`` a second, compounded."""
    return cap * GROW_FACTOR ** seconds


class AdaptivePace:
    """The rate a link caps itself at after throttling (the rule is in the module docstring):
    ``rate(now)`` is the cap, or None while nothing caps the link but its tps. ``ceiling`` is the
    operator's tps (None: none). Told of every submit the SMSC accepts (``accepted``), of every time
    the cap keeps back a submit the link wanted to send (``held_back``), and of each refusal that
    starts a new back-off (``backed_off``)."""

    def __init__(self, ceiling: float | None = None) -> None:
        self.ceiling = ceiling
        self.cap: float | None = None
        self._resumed_at = float("-inf")  # the end of the last back-off
        self._throttled_until = float("-inf")  # the end of the last back-off a throttling refusal began
        self._measured: float | None = None  # PACE_SHARE x accepted, at the last throttling refusal that measured
        self._grown_at = 0.0  # the cap grew up to this time (or will start growing then)
        self.grows_from = float("inf")  # when the cap taken last starts to grow (its hold ends)
        self._held_at = float("-inf")  # the cap last kept a submit back
        self._accepted = RecentCount(PACE_WINDOW, resolution=0.01)

    def accepted(self, now: float) -> None:
        self._accepted.add(now)

    def held_back(self, now: float) -> None:
        self._held_at = now

    def backed_off(self, now: float, resume_at: float, throttling: bool) -> float | None:
        """A refusal at ``now`` began a back-off until ``resume_at`` (``throttling``: ESME_RTHROTTLED
        or ESME_RMSGQFUL, else a temporary error). Returns the cap from then on (None: none; the
        throttling does not persist yet, nothing measured it, or the operator's tps is as low)."""
        measured = now - self._resumed_at >= PACE_WINDOW  # the link sent a whole window since
        self.rate(now)  # the cap as grown until now
        self._resumed_at = resume_at
        self._held_at = float("-inf")
        if not throttling:  # not about the rate: the cap (if any) just waits out the back-off
            self._grown_at = max(self._grown_at, resume_at)
            return self.cap
        accepted = self._accepted.count(now) / PACE_WINDOW
        # not measured: refused again soon after a back-off, the silence of which the count would
        # include (the back-off, doubling, answers that one), or nothing accepted to measure
        seen = PACE_SHARE * accepted if measured and accepted > 0 else None
        persists = now - self._throttled_until <= PERSISTS_WITHIN
        self._throttled_until = resume_at
        if self.cap is not None:
            if seen is not None:
                self.cap = min(self.cap, seen)
        elif persists:
            found = [m for m in (self._measured, seen) if m is not None]
            self.cap = min(found) if found else None
        if seen is not None:
            self._measured = seen
        if self.cap is not None and self.ceiling is not None and self.cap >= self.ceiling:
            self.cap = None
        self._grown_at = self.grows_from = resume_at + PACE_HOLD
        return self.cap

    def rate(self, now: float) -> float | None:
        """The cap at ``now`` (submits a second), grown since it was taken; None once dropped."""
        cap = self.cap
        if cap is None:
            return None
        if now > self._grown_at:
            cap = self.cap = grown(cap, now - self._grown_at)
            self._grown_at = now
        # a cap short of a token is asked for one after each submit: at a submit a second or less,
        # the asks come further apart than PACE_WINDOW while it still holds the link back
        if ((self.ceiling is not None and cap >= self.ceiling)
                or now >= max(self._resumed_at, self._held_at) + max(PACE_WINDOW, DROP_INTERVALS / cap)):
            self.cap = None
        return self.cap


class LinkPace:
    """Everything that paces one operator link, in one place: its tps bucket (None for tps 0), the
    back-off after a refusal for now, the adaptive cap and the bucket that holds the link to it,
    and the submits of the last ``RATE_WINDOW`` seconds. The link asks ``backing_off``, ``tokens``
    and ``take`` before sending, tells ``sent``, ``accepted`` and ``refused``, and keeps the timers
    (``wait`` says when a token comes)."""

    def __init__(self, tps: int, now: float) -> None:
        self.tps = TokenBucket(tps, now) if tps > 0 else None
        self.backoff = BackOff()
        self.adaptive = AdaptivePace(float(tps) if tps > 0 else None)
        self.capped: TokenBucket | None = None  # the adaptive cap as a bucket, while there is one
        self.recent = RecentCount()

    def backing_off(self, now: float) -> bool:
        return self.backoff.until > now

    def tokens(self, now: float) -> float | None:
        """The submits the buckets allow now (the fewer of the tps bucket's and the cap's, not
        counting a back-off); None while neither limits the link. Asked when the link has
        something to send: a cap short of a token has held it back (``AdaptivePace.held_back``)."""
        capped = self._capped(now)
        tps = self.tps
        if capped is None:
            return None if tps is None else tps.available(now)
        available = capped.available(now)
        if available < 1 - EPS:
            self.adaptive.held_back(now)
        return available if tps is None else min(tps.available(now), available)

    def take(self, now: float) -> bool:
        """One submit's token of each bucket, or False (nothing taken) when one is short."""
        tokens = self.tokens(now)
        if tokens is None:
            return True
        if tokens < 1 - EPS:
            return False
        for bucket in (self.tps, self.capped):
            if bucket is not None:
                bucket.take(now)
        return True

    def wait(self, now: float) -> float:
        """Seconds until both buckets hold a whole token (0: they do, or there is none)."""
        capped = self._capped(now)
        tps = self.tps
        if capped is None:
            return 0.0 if tps is None else tps.wait(now)
        return capped.wait(now) if tps is None else max(tps.wait(now), capped.wait(now))

    def sent(self, now: float) -> None:
        self.recent.add(now)

    def accepted(self, sent_at: float, now: float) -> None:
        backoff = self.backoff  # BackOff.accepted, inline: once a submit at load
        if sent_at > backoff.started:
            backoff.repeats = 0
        self.adaptive.accepted(now)

    def refused(self, sent_at: float, now: float, throttled: bool) -> float | None:
        """A part sent at ``sent_at`` was refused for now at ``now`` (``throttled``: ESME_RTHROTTLED
        or ESME_RMSGQFUL, else a temporary error): the seconds of a new back-off, or None when it
        belongs to the running one. Only a throttling refusal that starts a back-off caps the link."""
        delay = self.backoff.refused(sent_at, now)
        if delay is not None:
            self.adaptive.backed_off(now, now + delay, throttled)
        return delay

    def describe(self, now: float) -> dict:
        """The pace as ``GET /v1/admin/binds`` shows it."""
        cap = self.adaptive.rate(now)
        return {"throttled_for": round(self.backoff.remaining(now), 3),
                "paced_at": None if cap is None else round(cap, 3),
                "submits_per_second": round(self.recent.rate(now), 3)}

    def _capped(self, now: float) -> TokenBucket | None:
        """The cap's bucket at ``now``, following the cap as it grows (None once it is dropped)."""
        rate = self.adaptive.rate(now)
        if rate is None:
            self.capped = None
        elif self.capped is None:
            self.capped = TokenBucket(rate, now)
        else:
            self.capped.set_rate(rate, now)
        return self.capped
