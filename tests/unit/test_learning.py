"""What deliveries and failures teach about a number (policies.learning)."""

from hypothesis import given
from hypothesis import strategies as st

from policies.learning import DECAY, Learned, failed_lately, learn


def test_a_first_delivery_teaches_the_operator():
    assert learn(None, "cheap", []) == Learned("cheap", {})


def test_the_same_operator_delivering_again_teaches_nothing():
    assert learn(Learned("cheap", {}), "cheap", []) is None


def test_a_delivery_clears_that_operators_failure():
    assert learn(Learned(None, {"cheap": 10.0, "mid": 20.0}), "cheap", []) == Learned("cheap", {"mid": 20.0})


def test_the_numbers_operator_failing_means_it_was_ported_away():
    assert learn(Learned("cheap", {}), None, [("cheap", 50.0)]) == Learned(None, {"cheap": 50.0})


def test_a_failover_teaches_both_in_one_lesson():
    assert learn(None, "dear", [("cheap", 50.0)]) == Learned("dear", {"cheap": 50.0})


def test_failures_count_for_the_decay_only():
    known = Learned(None, {"cheap": 1000.0, "mid": 5000.0})
    assert failed_lately(known, 1000.0 + DECAY - 1) == ("cheap", "mid")
    assert failed_lately(known, 1000.0 + DECAY) == ("mid",)


names = st.sampled_from(["cheap", "mid", "dear"])


@given(st.lists(st.tuples(st.one_of(st.none(), names), st.lists(st.tuples(names, st.floats(0, 1e9)), max_size=2)),
                max_size=8))
def test_the_last_delivery_is_the_operator_and_never_counts_as_failed(lessons):
    known = None
    for delivered_by, failed in lessons:
        after = learn(known, delivered_by, failed)
        if after is None:
            assert delivered_by is not None and not failed and known.operator == delivered_by
            continue
        if delivered_by is not None:
            assert after.operator == delivered_by and delivered_by not in after.failures
        for name, when in dict(failed).items():  # the latest failure of each operator
            if name != delivered_by:
                assert after.failures[name] == when and after.operator != name
        known = after
