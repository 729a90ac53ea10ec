"""The push retry schedule: 5 s doubling to a 10-minute cap, jitter stretching by up to 20 %, and
the end of retrying at exactly ``retry_for``."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies.retry import give_up, next_attempt_at, next_delay

SCHEDULE = [  # attempt that failed → seconds before the next one, no jitter
    (1, 5.0), (2, 10.0), (3, 20.0), (4, 40.0), (5, 80.0), (6, 160.0), (7, 320.0),
    (8, 600.0), (9, 600.0), (20, 600.0), (10_000, 600.0),
]


@pytest.mark.parametrize("attempt, delay", SCHEDULE)
def test_schedule_doubles_from_five_seconds_up_to_ten_minutes(attempt, delay):
    assert next_delay(attempt) == delay


@pytest.mark.parametrize("attempt, jitter, delay", [
    (1, 0.5, 5.5),          # 5 * 1.1
    (1, 0.999, 5.999),      # 5 * 1.1998
    (3, 0.25, 21.0),        # 20 * 1.05
    (7, 0.5, 352.0),        # 320 * 1.1
    (7, 0.99, 383.36),      # 320 * 1.198
])
def test_jitter_stretches_by_up_to_a_fifth(attempt, jitter, delay):
    assert next_delay(attempt, jitter=jitter) == pytest.approx(delay)


def test_jitter_never_passes_the_cap():
    assert next_delay(8, jitter=0.999) == 600.0
    assert next_delay(7, first=5.0, cap=350.0, jitter=0.5) == 350.0  # 352 capped


def test_first_and_cap_are_parameters():
    assert [next_delay(n, first=1.0, cap=3.0) for n in (1, 2, 3)] == [1.0, 2.0, 3.0]


@given(attempt=st.integers(min_value=1, max_value=5000),
       jitter=st.floats(min_value=0.0, max_value=1.0, exclude_max=True))
def test_every_delay_is_between_five_seconds_and_ten_minutes(attempt, jitter):
    delay = next_delay(attempt, jitter=jitter)
    assert 5.0 <= delay <= 600.0
    assert delay >= next_delay(attempt)  # jitter only stretches


@pytest.mark.parametrize("kwargs", [
    {"attempt": 0}, {"attempt": -1}, {"attempt": 1.0}, {"attempt": True},
    {"attempt": 1, "jitter": 1.0}, {"attempt": 1, "jitter": -0.1},
    {"attempt": 1, "first": 0.0}, {"attempt": 1, "first": 10.0, "cap": 5.0},
])
def test_nonsense_is_refused(kwargs):
    attempt = kwargs.pop("attempt")
    with pytest.raises(ValueError):
        next_delay(attempt, **kwargs)


DAY = 86400.0


@pytest.mark.parametrize("first, now, retry_for, stop", [
    (1000.0, 1000.0, DAY, False),
    (1000.0, 1000.0 + DAY - 0.001, DAY, False),
    (1000.0, 1000.0 + DAY, DAY, True),          # exactly retry_for: give up
    (1000.0, 1000.0 + DAY + 5, DAY, True),
    (1000.0, 1000.0, 0.0, True),                # retry_for 0: the first failure is the last
])
def test_give_up_once_retry_for_has_passed_since_the_first_attempt(first, now, retry_for, stop):
    assert give_up(first, now, retry_for) is stop


def test_a_day_of_retries_as_the_core_runs_them():
    """Each attempt fails; after it the core asks give_up, else waits next_delay, never past the
    end of the window. The cap is reached at 635 s, then one attempt per 10 minutes; the last
    attempt is at 24 h exactly, none after it."""
    now, attempt, times = 0.0, 1, [0.0]
    while not give_up(0.0, now, DAY):
        now = next_attempt_at(now, next_delay(attempt), [DAY])
        attempt += 1
        times.append(now)
    assert (attempt, now) == (151, DAY) and times[-2] == 635 + 142 * 600.0
    assert max(times) == DAY


@pytest.mark.parametrize("now, delay, deadlines, at", [
    (46.5, 22.0, [60.0], 60.0),             # the backoff would pass the window: its end instead
    (16.6, 22.0, [60.0], 38.6),
    (10.0, 5.0, [60.0, 12.0], 12.0),        # a batch: the earliest window of its pushes
    (10.0, 5.0, [], 15.0),
])
def test_the_next_attempt_never_comes_after_retry_for(now, delay, deadlines, at):
    assert next_attempt_at(now, delay, deadlines) == pytest.approx(at)


def test_a_write_the_store_failed_is_tried_again_twice_as_late_each_time_up_to_30_s():
    from policies.retry import STORE_RETRY_FIRST, next_store_retry

    delays = [STORE_RETRY_FIRST]
    for _ in range(8):
        delays.append(next_store_retry(delays[-1]))
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
