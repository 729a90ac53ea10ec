"""An account's request rate: the bucket rule (policies.rates) and where buckets live
(smscore.ratelimit), including one bucket shared by the processes of a node."""

import os

from hypothesis import given
from hypothesis import strategies as st

from policies.rates import spend
from smscore.ratelimit import LocalBuckets, NodeBuckets


def test_a_new_bucket_holds_one_seconds_worth():
    tokens, allowed = None, []
    for _ in range(5):
        spent = spend(tokens, 100.0, 100.0, 3)
        tokens = spent.tokens
        allowed.append(spent.allowed)
    assert allowed == [True, True, True, False, False]


def test_a_refusal_says_when_to_try_again():
    spent = spend(0.0, 100.0, 100.0, 0.5)
    assert not spent.allowed and spent.retry_after == 2
    assert spend(0.0, 100.0, 102.0, 0.5).allowed


def test_no_share_lets_nothing_through():
    """A node joining the cluster holds no part of an account's tps until the others made room
    (policies.cluster.hold); then its bucket fills from empty."""
    assert spend(None, 0.0, 0.0, 0.0) == (False, 0.0, 1)
    assert spend(5.0, 0.0, 1.0, 0.0) == (False, 0.0, 1)
    buckets = LocalBuckets()
    buckets.set_share(0.0)
    assert not buckets.take("acme", 10.0, 20 * buckets.share()).allowed
    buckets.set_share(0.5)
    assert not buckets.take("acme", 10.0, 20 * buckets.share()).allowed
    assert buckets.take("acme", 10.2, 20 * buckets.share()).allowed


def test_a_share_below_one_a_second_still_lets_one_through():
    # 1 tps over two nodes: half a token a second, but the bucket holds one
    assert spend(None, 0.0, 0.0, 0.5).allowed


@given(rate=st.floats(0.1, 500), gaps=st.lists(st.floats(0, 2), min_size=1, max_size=200))
def test_never_more_than_the_rate_allows(rate, gaps):
    now, tokens, allowed = 0.0, None, 0
    last = 0.0
    for gap in gaps:
        now += gap
        spent = spend(tokens, last, now, rate)
        tokens, last = spent.tokens, now
        allowed += spent.allowed
    assert allowed <= max(1.0, rate) + rate * now + 1e-9


def test_local_buckets_are_per_account():
    b = LocalBuckets()
    assert [b.take("acme", 0.0, 1).allowed for _ in range(2)] == [True, False]
    assert b.take("other", 0.0, 1).allowed


def test_node_buckets_are_one_bucket_for_every_process_that_maps_them():
    fd = NodeBuckets.create()
    try:
        first, second = NodeBuckets(fd), NodeBuckets(os.dup(fd))  # two workers' views of one file
        assert first.share() == 0.0  # nothing before the main worker's first heartbeat sets it
        second.set_share(1.0)
        assert first.share() == 1.0
        taken = [first.take("acme", 50.0, 4).allowed, second.take("acme", 50.0, 4).allowed,
                 first.take("acme", 50.0, 4).allowed, second.take("acme", 50.0, 4).allowed,
                 first.take("acme", 50.0, 4).allowed]
        assert taken == [True, True, True, True, False]
        assert second.take("globex", 50.0, 4).allowed
        first.set_share(0.5)
        assert second.share() == 0.5
    finally:
        os.close(fd)
