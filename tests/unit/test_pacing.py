"""The pace counters of connectors.smpp.pacing, on a twisted Clock: the token bucket's budget and
the measured submit rate ``GET /v1/admin/binds`` shows, and the back-off after a refusal."""

from __future__ import annotations

import pytest
from twisted.internet.task import Clock

from connectors.smpp.pacing import RATE_WINDOW, RecentCount, TokenBucket


def test_recent_count_is_the_events_of_the_last_ten_seconds_per_second():
    clock = Clock()
    clock.advance(1000)
    counter = RecentCount()
    assert counter.window == RATE_WINDOW == 10.0
    assert counter.count(clock.seconds()) == 0 and counter.rate(clock.seconds()) == 0.0
    for _ in range(20):
        counter.add(clock.seconds())
    clock.advance(4.0)
    counter.add(clock.seconds(), 5)
    assert counter.count(clock.seconds()) == 25 and counter.rate(clock.seconds()) == 2.5
    clock.advance(5.9)  # 9.9 s after the first twenty: still inside
    assert counter.count(clock.seconds()) == 25
    clock.advance(0.25)  # 10.15 s: the first twenty are out
    assert counter.count(clock.seconds()) == 5 and counter.rate(clock.seconds()) == 0.5
    clock.advance(10.0)
    assert counter.count(clock.seconds()) == 0


def test_recent_count_keeps_one_slot_per_tenth_of_a_second_whatever_the_rate():
    clock = Clock()
    counter = RecentCount()
    for _ in range(300):  # 30 s at 1,000 events a second
        for _ in range(100):
            counter.add(clock.seconds())
        clock.advance(0.1)
    assert len(counter._slots) <= 101
    assert 9_900 <= counter.count(clock.seconds()) <= 10_100  # 10 s worth, to a slot


def test_token_bucket_bursts_then_paces():
    clock = Clock()
    bucket = TokenBucket(20, clock.seconds())  # 20 tps: a burst of 2
    assert bucket.take(clock.seconds()) and bucket.take(clock.seconds())
    assert not bucket.take(clock.seconds())
    assert abs(bucket.wait(clock.seconds()) - 0.05) < 1e-9
    clock.advance(0.05)
    assert bucket.take(clock.seconds())


def test_back_off_doubles_while_refusals_go_on_and_a_window_is_one_signal():
    from connectors.smpp.pacing import BackOff

    b = BackOff()
    assert b.remaining(0.0) == 0
    assert b.refused(sent_at=0.0, now=0.1) == 1.0 and b.remaining(0.6) == pytest.approx(0.5)
    assert b.refused(sent_at=0.05, now=0.2) is None  # sent before it began: the same signal
    assert b.refused(sent_at=1.2, now=1.3) == 2.0  # sent after: longer
    assert b.refused(sent_at=3.4, now=3.5) == 4.0
    b.accepted(sent_at=7.6)
    assert b.refused(sent_at=7.7, now=7.8) == 1.0  # an accepted part: from the minimum again
    for i in range(10):
        last = b.refused(sent_at=10.0 + 100 * i, now=10.1 + 100 * i)
    assert last == 30.0  # capped
