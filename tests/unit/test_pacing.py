"""The pace counters of connectors.smpp.pacing, on a twisted Clock: the token bucket's budget and
the measured submit rate ``GET /v1/admin/binds`` shows, and the back-off after a refusal; then the
adaptive cap after throttling (``AdaptivePace``, and ``LinkPace`` that holds a link's lot), on plain
times: no reactor, no sockets."""

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


# --- the adaptive cap after throttling (AdaptivePace, LinkPace): times are plain seconds ----------------
def accepted_in(pace, start: float, n: int, span: float = 1.0) -> float:
    """``n`` submits accepted evenly over ``span`` seconds from ``start`` (none on its edges: a count
    over the last second may or may not hold one there, to a float); returns the time after."""
    for i in range(n):
        pace.accepted(start + (i + 0.5) * span / n)
    return start + span


def capped(pace, start: float, n: int) -> tuple[float | None, float]:
    """``n`` submits accepted over the second from ``start``, then throttling that persists: a
    refusal (it measures), a back-off of 1 s, and a refusal again just after it (it caps). Returns
    the cap and when the second back-off ends."""
    now = accepted_in(pace, start, n)
    assert pace.backed_off(now, now + 1.0, throttling=True) is None  # the first one only measures
    return pace.backed_off(now + 1.05, now + 2.05, throttling=True), now + 2.05


def test_grown_doubles_every_second_compounded():
    from connectors.smpp.pacing import GROW_FACTOR, grown

    assert GROW_FACTOR == 2.0
    assert grown(1.8, 0.0) == 1.8
    assert grown(1.8, 1.0) == pytest.approx(3.6)
    assert grown(4.5, 7.0) == pytest.approx(576.0)  # an SMSC that stopped throttling: seconds, not minutes
    assert grown(100.0, 0.5) == pytest.approx(100 * 2 ** 0.5)


def test_throttling_that_persists_caps_the_link_at_nine_tenths_of_what_the_smsc_accepted_in_a_second():
    from connectors.smpp.pacing import AdaptivePace

    pace = AdaptivePace()
    assert pace.rate(0.0) is None
    accepted_in(pace, 10.0, 50)  # 50 a second, 2 s before the refusal: out of the count
    cap, resume = capped(pace, 12.0, 20)  # 20 in the last second
    assert cap == pytest.approx(18.0)
    assert pace.rate(resume - 0.5) == pytest.approx(18.0)  # backing off: no growth, not dropped


def test_one_passing_queue_full_is_a_back_off_not_a_cap():
    """An audit: one ESME_RMSGQFUL while the link sent 6 a second capped it at 2.7 a second, and a
    batch of 300 after it took 21.7 s instead of 0.41 s."""
    from connectors.smpp.pacing import PERSISTS_WITHIN, AdaptivePace

    pace = AdaptivePace()
    now = accepted_in(pace, 0.0, 3)
    assert pace.backed_off(now, now + 1.0, throttling=True) is None
    later = accepted_in(pace, now + 1.0, 6)
    assert pace.rate(later) is None
    # another one long after: it measures again, and caps nothing
    assert PERSISTS_WITHIN == 10.0
    later = accepted_in(pace, now + 1.0 + PERSISTS_WITHIN + 0.5, 6)
    assert pace.backed_off(later, later + 1.0, throttling=True) is None
    # and one within PERSISTS_WITHIN after that back-off: the SMSC still limits, the lower measure
    again = accepted_in(pace, later + 5.0, 10)
    assert pace.backed_off(again, again + 1.0, throttling=True) == pytest.approx(5.4)


def test_a_temporary_error_or_nothing_accepted_caps_nothing():
    from connectors.smpp.pacing import AdaptivePace

    pace = AdaptivePace()
    now = accepted_in(pace, 0.0, 20)
    assert pace.backed_off(now, now + 1.0, throttling=False) is None  # ESME_RSYSERR: not about rate
    assert pace.backed_off(now + 1.05, now + 2.05, throttling=False) is None
    fresh = AdaptivePace()
    assert fresh.backed_off(5.0, 6.0, throttling=True) is None  # nothing accepted: nothing to measure
    assert fresh.backed_off(6.05, 7.05, throttling=True) is None


def test_the_cap_holds_five_seconds_after_the_back_off_then_doubles_while_it_holds_the_link_back():
    from connectors.smpp.pacing import PACE_HOLD, AdaptivePace, grown

    pace = AdaptivePace()
    cap, resume = capped(pace, 0.0, 2)  # an SMSC at 2 a second
    assert cap == pytest.approx(1.8)
    assert PACE_HOLD == 5.0
    t = resume
    while t < resume + PACE_HOLD + 3.0:  # a backlog: the cap is short of a token every half second
        pace.held_back(t)
        assert pace.rate(t) == pytest.approx(grown(1.8, max(0.0, t - resume - PACE_HOLD)))
        t += 0.5
    assert pace.rate(resume + PACE_HOLD + 3.0) == pytest.approx(14.4)


def test_the_cap_is_dropped_once_it_held_nothing_back_for_a_second():
    from connectors.smpp.pacing import AdaptivePace

    pace = AdaptivePace()
    cap, resume = capped(pace, 0.0, 2000)
    assert cap == pytest.approx(1800.0)
    assert pace.rate(resume + 0.99) == pytest.approx(1800.0)  # a whole second after the back-off
    assert pace.rate(resume + 1.0) is None  # nothing held back: the window or the traffic rules now
    # capped again (within PERSISTS_WITHIN: at once); held back half a second after the back-off:
    # dropped a second after that
    now = accepted_in(pace, resume + 5.0, 2000)
    assert pace.backed_off(now, now + 1.0, throttling=True) == pytest.approx(1800.0)
    pace.held_back(now + 1.5)
    assert pace.rate(now + 2.4) is not None
    assert pace.rate(now + 2.5) is None


def test_a_low_cap_is_dropped_after_two_of_its_own_intervals_not_one_second():
    from connectors.smpp.pacing import AdaptivePace

    pace = AdaptivePace()
    pace.accepted(0.5)  # one a second
    assert pace.backed_off(1.0, 2.0, throttling=True) is None
    assert pace.backed_off(2.05, 3.05, throttling=True) == pytest.approx(0.9)
    pace.held_back(3.05)
    assert pace.rate(4.25) == pytest.approx(0.9)  # asked again 1.2 s later: still holding the link
    assert pace.rate(3.05 + 2 / 0.9 + 0.01) is None


def test_refusals_soon_after_a_back_off_keep_the_cap_and_a_cap_never_rises_on_a_refusal():
    from connectors.smpp.pacing import AdaptivePace

    pace = AdaptivePace()
    cap, resume = capped(pace, 0.0, 100)
    assert cap == pytest.approx(90.0)
    # refused again 0.2 s after the back-off ended: the last second was mostly silence, no measure
    pace.accepted(resume + 0.1)
    assert pace.backed_off(resume + 0.2, resume + 2.2, throttling=True) == pytest.approx(90.0)
    # a whole second of sending later, faster than the cap (the count's slop): the lower one stays
    later = accepted_in(pace, resume + 2.2, 120)
    pace.held_back(later - 0.1)
    assert pace.backed_off(later, later + 1.0, throttling=True) == pytest.approx(90.0)
    later = accepted_in(pace, later + 1.0, 50)
    pace.held_back(later - 0.1)
    assert pace.backed_off(later, later + 1.0, throttling=True) == pytest.approx(45.0)


def test_the_operators_tps_is_the_ceiling_the_cap_only_lowers_it():
    from connectors.smpp.pacing import PACE_HOLD, AdaptivePace

    pace = AdaptivePace(ceiling=20.0)
    cap, _ = capped(pace, 0.0, 25)  # 22.5 is no lower than the tps: no cap
    assert cap is None
    cap, resume = capped(pace, 30.0, 20)
    assert cap == pytest.approx(18.0)
    t = resume
    while pace.rate(t) is not None:  # held back all along: grows until it meets the tps, then goes
        pace.held_back(t)
        t += 0.05
    assert t - (resume + PACE_HOLD) == pytest.approx(0.2, abs=0.051)  # 18 x 2^0.152 = 20


def test_link_pace_refusals_of_one_window_are_one_cap_and_the_cap_is_a_bucket_under_the_tps():
    from connectors.smpp.pacing import LinkPace

    pace = LinkPace(tps=10, now=0.0)
    assert pace.tokens(0.0) == 1.0  # the tps bucket: 1 token (0.1 s worth)
    for i in range(5):
        pace.sent(10.1 + i * 0.2)
        pace.accepted(10.1 + i * 0.2, 10.1 + i * 0.2 + 0.01)
    for i in range(5):  # a window of five sent at 11.0, refused one after the other
        pace.sent(11.0)
    assert pace.refused(sent_at=11.0, now=11.01, throttled=True) == 1.0
    assert pace.adaptive.cap is None  # measured, not capped: one refusal may be a passing one
    for _ in range(4):
        assert pace.refused(sent_at=11.0, now=11.02, throttled=True) is None  # the same signal
    assert pace.backing_off(11.5) and not pace.backing_off(12.01)
    # the next window, sent as the back-off ends, refused too: the SMSC still limits (and the
    # back-off doubles: nothing was accepted since)
    for _ in range(5):
        pace.sent(12.01)
    assert pace.refused(sent_at=12.01, now=12.02, throttled=True) == 2.0
    assert pace.adaptive.cap == pytest.approx(4.5)
    for _ in range(4):
        assert pace.refused(sent_at=12.01, now=12.03, throttled=True) is None
    assert pace.adaptive.cap == pytest.approx(4.5)
    assert pace.backing_off(13.5) and not pace.backing_off(14.02)
    assert pace.tokens(14.02) == pytest.approx(1.0)  # the cap's bucket: 1 token (0.45 worth)
    assert pace.take(14.02) and not pace.take(14.03)
    assert pace.wait(14.03) == pytest.approx((1 - 0.01 * 4.5) / 4.5)  # the cap's pace, not the tps's
    assert pace.describe(14.03) == {"throttled_for": 0.0, "paced_at": 4.5, "submits_per_second": 1.5}


def test_link_pace_without_tps_or_cap_limits_nothing_and_a_temporary_error_backs_off_uncapped():
    from connectors.smpp.pacing import LinkPace

    pace = LinkPace(tps=0, now=0.0)
    assert pace.tokens(0.0) is None and pace.take(0.0) and pace.wait(0.0) == 0.0
    pace.accepted(0.5, 0.6)
    assert pace.refused(sent_at=0.7, now=0.8, throttled=False) == 1.0
    assert pace.backing_off(1.0) and pace.adaptive.cap is None
    assert pace.describe(1.0) == {"throttled_for": 0.8, "paced_at": None, "submits_per_second": 0.0}
