"""Operator choice from the number plan (policies.blocks), and issue 14's bars in the pure worlds of
tests/number_plan.py."""

from decimal import Decimal
from itertools import permutations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies import blocks
from policies.blocks import ENOUGH, HALF_LIFE, Tally, basis, block_order, expected_cost, index, lesson, observe
from policies.routing import OperatorOption, rank
from tests import number_plan

OPTIONS = [OperatorOption("dear", Decimal("0.40")), OperatorOption("cheap", Decimal("0.10")),
           OperatorOption("mid", Decimal("0.20"))]
NUMBER = "46761212345"
BLOCK = "467612"


def tallies(prefix, at=0.0, **counts):
    """Evidence at one prefix: ``cheap=(delivered, failed), ...``."""
    return index(Tally(prefix, op, d, f, at) for op, (d, f) in counts.items())


# -- evidence ------------------------------------------------------------------------------------


def test_prefixes_run_from_the_country_to_blocks_of_a_hundred():
    assert blocks.prefixes(NUMBER) == ("4676", "46761", "467612", "4676121", "46761212", "467612123")


def test_an_outcome_counts_at_every_prefix_on_top_of_the_aged_counts():
    rows = observe(tallies(BLOCK, cheap=(4, 2)), NUMBER, "cheap", True, HALF_LIFE)
    by_prefix = {t.prefix: t for t in rows}
    assert set(by_prefix) == set(blocks.prefixes(NUMBER))
    assert by_prefix[BLOCK] == Tally(BLOCK, "cheap", 3.0, 1.0, HALF_LIFE)  # 4/2 halved, +1 delivered
    assert by_prefix["4676"] == Tally("4676", "cheap", 1.0, 0.0, HALF_LIFE)


def test_a_delivered_message_teaches_its_failures_and_its_delivery():
    rows = index(lesson({}, NUMBER, "mid", ["cheap"], 5.0))
    assert rows[(BLOCK, "cheap")] == Tally(BLOCK, "cheap", 0.0, 1.0, 5.0)
    assert rows[(BLOCK, "mid")] == Tally(BLOCK, "mid", 1.0, 0.0, 5.0)
    assert (BLOCK, "dear") not in rows


def test_a_message_nobody_delivered_teaches_nothing():
    assert lesson({}, NUMBER, None, ["cheap", "mid", "dear"], 5.0) == []


def test_evidence_ages_so_a_reallocated_block_is_learned_again():
    old = tallies(BLOCK, at=0.0, cheap=(40, 2), mid=(2, 1))
    assert block_order(OPTIONS, old, NUMBER, 0.0)[0] == "cheap"
    # two years later the old counts are noise, and a few numbers show the block is dear's now
    later = 8 * HALF_LIFE
    assert basis(old, NUMBER, later) is None
    now = {**old, **tallies(BLOCK, at=later, dear=(15, 0), cheap=(0, 5), mid=(0, 5))}
    assert block_order(OPTIONS, now, NUMBER, later)[0] == "dear"
    assert Tally(BLOCK, "cheap", 8.0, 4.0, 0.0).aged(2 * HALF_LIFE) == Tally(BLOCK, "cheap", 2.0, 1.0, 2 * HALF_LIFE)
    assert Tally(BLOCK, "cheap", 8.0, 4.0, 10.0).aged(5.0).delivered == 8.0  # a clock behind never grows counts


# -- the order -----------------------------------------------------------------------------------


def test_no_evidence_is_cheapest_first_as_today():
    assert block_order(OPTIONS, {}, NUMBER, 0.0) == ["cheap", "mid", "dear"]
    thin = tallies(BLOCK, dear=(ENOUGH - 1, 0))  # not enough anywhere
    assert block_order(OPTIONS, thin, NUMBER, 0.0) == ["cheap", "mid", "dear"]


def test_equal_costs_keep_the_profile_order_without_evidence():
    options = [OperatorOption("b", Decimal("0.1")), OperatorOption("a", Decimal("0.1"))]
    assert block_order(options, {}, NUMBER, 0.0) == ["b", "a"]


def test_a_block_of_the_dear_operator_goes_to_it_first():
    evidence = tallies(BLOCK, cheap=(1, 12), mid=(1, 11), dear=(11, 0))
    assert block_order(OPTIONS, evidence, NUMBER, 0.0) == ["dear", "cheap", "mid"]


def test_the_longest_prefix_with_enough_evidence_wins():
    evidence = {**tallies("4676", cheap=(300, 100), mid=(50, 50), dear=(100, 0)),  # the country: cheap
                **tallies(BLOCK, cheap=(0, 15), mid=(14, 1)),                     # the block: mid
                **tallies("4676121", dear=(5, 0), mid=(0, 4))}                  # too little to count
    assert basis(evidence, NUMBER, 0.0) == BLOCK
    assert block_order(OPTIONS, evidence, NUMBER, 0.0)[0] == "mid"
    assert block_order(OPTIONS, evidence, "46769912345", 0.0)[0] == "cheap"  # another block: the country


def test_one_observation_does_not_flip_a_block():
    evidence = tallies(BLOCK, cheap=(17, 3), mid=(2, 1), dear=(1, 0))
    after = {**evidence, **index(lesson(evidence, NUMBER, "dear", ["cheap", "mid"], 0.0))}
    assert block_order(OPTIONS, evidence, NUMBER, 0.0)[0] == block_order(OPTIONS, after, NUMBER, 0.0)[0] == "cheap"


costs = st.sampled_from([Decimal("0.05"), Decimal("0.10"), Decimal("0.15"), Decimal("0.20"), Decimal("0.40")])
counts = st.tuples(st.integers(0, 40), st.integers(0, 40))


@given(st.lists(st.tuples(costs, counts), min_size=1, max_size=5))
def test_the_order_is_the_cheapest_of_every_permutation(ops):
    options = [OperatorOption(f"op{i}", c) for i, (c, _) in enumerate(ops)]
    evidence = {**tallies(BLOCK, **{f"op{i}": n for i, (_, n) in enumerate(ops)}),
                **tallies(BLOCK, zz=(ENOUGH, 0))}  # enough at the block whatever the counts
    chance = blocks.delivery_chances(evidence, BLOCK, [o.name for o in options], 0.0)
    cost = {o.name: o.cost for o in options}

    def cost_of(order):
        return expected_cost([(cost[n], chance[n]) for n in order])

    best = min(cost_of(p) for p in permutations(cost))
    assert cost_of(block_order(options, evidence, NUMBER, 0.0)) == pytest.approx(best, rel=1e-9, abs=1e-12)


# -- with the number's own history (the hook for routing.rank) ------------------------------------

DEAR_BLOCK = tallies(BLOCK, cheap=(1, 12), mid=(1, 11), dear=(11, 0))


def names(options):
    return [o.name for o in options]


def test_the_numbers_own_operator_wins_over_its_block():
    order = block_order(OPTIONS, DEAR_BLOCK, NUMBER, 0.0)
    assert names(rank(OPTIONS, preferred="cheap", order=order)) == ["cheap", "dear", "mid"]


def test_a_learned_operator_that_fails_is_dropped_and_the_block_decides_the_rest():
    order = block_order(OPTIONS, DEAR_BLOCK, NUMBER, 0.0)
    # cheap delivered before, failed now: dropped for this message, and failed lately for the number
    assert names(rank(OPTIONS, tried=["cheap"], preferred=None, failed_lately=["cheap"], order=order)) == [
        "dear", "mid"]
    # an operator that failed for the number lately goes last, even where its block likes it
    assert order == ["dear", "cheap", "mid"]
    assert names(rank(OPTIONS, failed_lately=["cheap"], order=order)) == ["dear", "mid", "cheap"]


names_ = st.sampled_from(["dear", "cheap", "mid"])


@given(st.lists(names_, unique=True), st.one_of(st.none(), names_), st.lists(names_, unique=True))
def test_without_block_evidence_the_ranking_is_routing_ranks(tried, preferred, failed_lately):
    order = block_order(OPTIONS, {}, NUMBER, 0.0)
    assert order == ["cheap", "mid", "dear"]  # no evidence: by price (the profile's order on ties)
    assert rank(OPTIONS, tried, preferred, failed_lately, order) == rank(OPTIONS, tried, preferred, failed_lately)


# -- issue 14's bars in the simulated worlds --------------------------------------------------------


@pytest.fixture(scope="module")
def worlds():
    """Averaged over number_plan.SEEDS: {(world, "old"|"new"): [round figures...]}."""
    out = {}
    for world, world_of in [("plan", number_plan.plan_world), ("interleaved", number_plan.interleaved_world)]:
        for policy in ("old", "new"):
            out[world, policy] = number_plan.averaged(world_of, policy == "new")
    for world in ("plan", "interleaved"):  # shown with -s; the same as `python tests/number_plan.py`
        print(f"\n{world} world, old -> new\n" + number_plan.table(out[world, "old"], out[world, "new"]))
    return out


FIRST, NEW, SECOND, REPORTED = range(4)


def test_the_worlds_are_deterministic():
    once, again = (repr(number_plan.run(number_plan.plan_world, True, 3)) for _ in range(2))  # repr: nan != nan
    assert once == again


@pytest.mark.parametrize("world", ["plan", "interleaved"])
@pytest.mark.parametrize("policy", ["old", "new"])
def test_every_reachable_number_is_delivered_and_every_dead_one_failed(worlds, world, policy):
    for r in worlds[world, policy]:
        assert r["delivered"] == 1.0, r["round"]
        assert r["dead"] > 0 and r["dead_failed"] == r["dead"], r["round"]


def test_new_numbers_in_known_blocks_cost_little_more_than_the_oracle(worlds):
    new, old = worlds["plan", "new"][NEW], worlds["plan", "old"][NEW]
    assert new["attempts"] <= 1.15 and new["over_oracle"] <= 0.20
    assert old["attempts"] >= 1.5 and old["over_oracle"] >= 0.40  # today's choice, in the same world


@pytest.mark.parametrize("world", ["plan", "interleaved"])
def test_second_messages_go_straight_through(worlds, world):
    assert worlds[world, "new"][SECOND]["attempts"] <= 1.05


def test_second_messages_cost_in_the_interleaved_world_stays_within_two_percent(worlds):
    assert worlds["interleaved", "new"][SECOND]["over_oracle"] <= 0.02


@pytest.mark.xfail(strict=True, reason="without look-ups, issue 14's bars conflict: a first message sent by the "
                   "block's order to a dearer operator that reaches the number teaches the number that operator, and "
                   "its own history wins on the second message (about +11 %: ported-in numbers of dear and mid "
                   "blocks); with look-ups the bar is met (tests/unit/test_lookup_worlds.py)")
def test_second_messages_in_the_number_plan_world_within_two_percent(worlds):
    assert worlds["plan", "new"][SECOND]["over_oracle"] <= 0.02


def test_reported_numbers_are_found_again_no_slower_while_the_others_cost_one_attempt(worlds):
    new, old = worlds["plan", "new"][REPORTED], worlds["plan", "old"][REPORTED]
    assert new["lost"] > 0 and new["stayed_attempts"] == 1.0
    assert new["lost_attempts"] <= old["lost_attempts"]


@pytest.mark.xfail(strict=True, reason="without look-ups, a number that leaves the cheap operator in a cheap "
                   "block goes to mid or dear with equal odds here: mid then dear and dear alone both cost 0.50, so "
                   "an order by expected cost cannot prefer the 2 attempts of the aggregator to the 2.5 of mid "
                   "first; with look-ups the bar is met (tests/unit/test_lookup_worlds.py)")
def test_reported_numbers_found_again_within_two_attempts(worlds):
    assert worlds["plan", "new"][REPORTED]["lost_attempts"] <= 2.0


def test_block_learning_barely_moves_the_world_without_blocks(worlds):
    for new, old in zip(worlds["interleaved", "new"], worlds["interleaved", "old"]):
        assert new["attempts"] <= old["attempts"] + 0.01, new["round"]
        assert new["over_oracle"] <= old["over_oracle"] + 0.03, new["round"]
