"""When to try a failed push again, and when to stop (SPEC §3 ``[push]``, §4 "Push"): pure decisions.

A push to a customer backend that fails (no answer, a refused connection, a non-2xx status) is
tried again with exponential backoff: 5 s after the first failure, then 10 s, 20 s, 40 s ... doubling
up to 10 minutes between attempts, for ``[push] retry_for`` (24 h by default) counted from the first
attempt. The core keeps the durable queue and the clock; this module only answers two questions.

Jitter. The caller draws ``jitter`` uniformly from [0, 1) (``random.random()``) and passes it in, so
these functions stay deterministic and testable. The delay is *stretched* by up to 20 %::

    delay = min(cap, first * 2 ** (attempt - 1) * (1 + 0.2 * jitter))

Why stretch and then cap, rather than shrink or add after capping: both SPEC numbers hold literally,
no retry comes sooner than 5 s and no gap is longer than 10 min. Pushes that failed together (a
backend outage fails them all in the same second) drift apart because the jitter of every step adds
up: by the time the delays reach the cap they are spread over up to ~2 minutes, and the constant
10-minute gap keeps them spread.
"""

from __future__ import annotations

__all__ = ["FIRST_DELAY", "MAX_DELAY", "JITTER_SPREAD", "REFUSALS_BEFORE_FAILOVER", "STORE_RETRY_FIRST",
           "STORE_RETRY_MAX", "next_delay", "give_up", "next_attempt_at", "next_store_retry", "refused_too_often"]

FIRST_DELAY = 5.0
"""Seconds before the first retry (the delay after the first failed attempt)."""

MAX_DELAY = 600.0
"""No two attempts are further apart than this (10 minutes)."""

JITTER_SPREAD = 0.2
"""The largest stretch of a delay by jitter, as a fraction of it."""

_MAX_DOUBLINGS = 64  # 5 s * 2**64 is far above any cap; stops float overflow for absurd attempt numbers


def next_delay(attempt: int, *, first: float = FIRST_DELAY, cap: float = MAX_DELAY,
               jitter: float = 0.0) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1 = the first attempt failed).

    ``jitter`` in [0, 1) is the caller's random draw; 0 gives the bare schedule 5, 10, 20, ... 600.
    """
    if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
        raise ValueError(f"attempt must be an integer >= 1, not {attempt!r}")
    if not 0.0 <= jitter < 1.0:
        raise ValueError(f"jitter must be in [0, 1), not {jitter!r}")
    if first <= 0 or cap < first:
        raise ValueError(f"need 0 < first <= cap, not first={first!r} cap={cap!r}")
    base = first * 2.0 ** min(attempt - 1, _MAX_DOUBLINGS)
    return min(cap, base * (1.0 + JITTER_SPREAD * jitter))


def give_up(first_attempt_at: float, now: float, retry_for: float) -> bool:
    """True when a push first tried at ``first_attempt_at`` has failed long enough to stop.

    Asked after each failed attempt, with times in seconds on one clock. The push is abandoned once
    ``retry_for`` seconds have passed since its first attempt, exactly ``retry_for`` included.
    """
    return now - first_attempt_at >= retry_for


def next_attempt_at(now: float, delay: float, deadlines) -> float:
    """When to try again after a failure at ``now``: ``delay`` later (``next_delay``), but never
    after the earliest of ``deadlines`` (each push's first attempt + ``retry_for``): the last try
    falls at the end of the window, so no attempt comes after ``retry_for`` and none of the window
    is lost. Asked only for pushes ``give_up`` keeps, whose deadlines are still ahead."""
    return min(now + delay, min(deadlines, default=now + delay))


STORE_RETRY_FIRST, STORE_RETRY_MAX = 0.5, 30.0


def next_store_retry(delay: float) -> float:
    """The wait before the next try of a write the store failed (down, restarting) after one of
    ``delay``: twice as long, at most ``STORE_RETRY_MAX`` (a submit's outcome, what came of a push)."""
    return min(2 * delay, STORE_RETRY_MAX)


REFUSALS_BEFORE_FAILOVER = 5
"""Temporary refusals of one message in a row by one operator's SMSC that make it a failed attempt."""


def refused_too_often(refusals: int) -> bool:
    """A message the SMSC refused ``refusals`` times in a row with a temporary error (ESME_RSYSERR,
    a generic_nack: not throttling, which only slows the bind) has failed on that operator: the
    next operator is tried (SPEC §7), instead of sending it to one that keeps refusing forever. The
    link backs off between the refusals, so the five take at least 1 + 2 + 4 + 8 s."""
    return refusals >= REFUSALS_BEFORE_FAILOVER
