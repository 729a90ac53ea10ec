"""Issue 14's bars with HLR/MNP look-ups (policies.number_lookup) in the simulated worlds of
tests/number_plan.py, pure: the look-up is paid in every figure it helps."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests import number_plan

FIRST, NEW, SECOND, REPORTED = range(4)
WORLDS = {"plan": number_plan.plan_world, "interleaved": number_plan.interleaved_world}


@pytest.fixture(scope="module")
def looked():
    """Averaged over number_plan.SEEDS, with block learning, without and with look-ups."""
    out = {}
    for world, world_of in WORLDS.items():
        out[world, "blocks"] = number_plan.averaged(world_of, True)
        out[world, "lookups"] = number_plan.averaged(world_of, True, lookup_cost=number_plan.LOOKUP_PRICE)
        print(f"\n{world} world, blocks -> blocks and look-ups at {number_plan.LOOKUP_PRICE}\n"
              + number_plan.table(out[world, "blocks"], out[world, "lookups"]))
    return out


@pytest.mark.parametrize("world", WORLDS)
def test_every_reachable_number_is_delivered_and_every_dead_one_failed(looked, world):
    for r in looked[world, "lookups"]:
        assert r["delivered"] == 1.0, r["round"]
        assert r["dead"] > 0 and r["dead_failed"] == r["dead"], r["round"]


def test_new_numbers_in_known_blocks(looked):
    r = looked["plan", "lookups"][NEW]
    assert r["attempts"] <= 1.15 and r["over_oracle"] <= 0.20
    assert r["lookups"] > 0.5  # the look-ups did it, and are paid in over_oracle


@pytest.mark.parametrize("world", WORLDS)
def test_second_messages_go_straight_through_within_two_percent(looked, world):
    r = looked[world, "lookups"][SECOND]
    assert r["attempts"] <= 1.05 and r["over_oracle"] <= 0.02


@pytest.mark.parametrize("world", WORLDS)
def test_reported_numbers_are_found_again_within_two_attempts_while_the_others_cost_one(looked, world):
    r = looked[world, "lookups"][REPORTED]
    assert r["lost"] > 0 and r["lost_attempts"] <= 2.0 and r["stayed_attempts"] == 1.0


@pytest.mark.parametrize("world", WORLDS)
def test_look_ups_never_make_a_round_dearer(looked, world):
    for with_, without in zip(looked[world, "lookups"], looked[world, "blocks"]):
        assert with_["over_oracle"] <= without["over_oracle"] + 0.005, with_["round"]


def test_a_look_up_dearer_than_any_saving_is_never_asked():
    rounds = number_plan.run(number_plan.plan_world, True, 14, 240, 120, lookup_cost=Decimal("1.00"))
    plain = number_plan.run(number_plan.plan_world, True, 14, 240, 120)
    assert [r["lookups"] for r in rounds] == [0, 0, 0, 0]
    assert repr(rounds) == repr(plain)  # repr: nan != nan
