"""The ported-numbers world (scripts/ported_world.py) with a small population, against the issue's
bars: every number some operator reaches is delivered, and the second message to a number (also
after a gateway restart) goes straight through the cheapest operator that reaches it: at most 1.05
attempts per message on average, cost per delivered message within 2 % of the oracle's."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest_twisted
from twisted.internet import reactor

_PATH = Path(__file__).resolve().parents[2] / "scripts" / "ported_world.py"
_spec = importlib.util.spec_from_file_location("ported_world", _PATH)
world = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(world)
_plan_spec = importlib.util.spec_from_file_location("ported_world_plan", _PATH.with_name("ported_world_plan.py"))
plan_world = importlib.util.module_from_spec(_plan_spec)
_plan_spec.loader.exec_module(plan_world)


def test_the_population_covers_every_kind_of_number_and_the_oracle_follows_the_prefix_rules():
    numbers = world.population(200)
    assert len(set(numbers)) == 200 and numbers == world.population(200)
    table = world.unreachable_prefixes()
    assert table["op_cheap"] == ["467011", "467012", "467015", "467017"]
    kinds = {frozenset(op for op in world.OPERATORS if world.reaches(op, n, table)) for n in numbers}
    assert len(kinds) == 8  # each subset of the three operators, including nobody
    assert world.oracle("46701200001") == "op_dear"
    assert world.oracle("46701500001") == "op_mid"
    assert world.oracle("46701400001") == "op_cheap"
    assert world.oracle("46701700001") is None


@pytest_twisted.ensureDeferred
async def test_ported_numbers_world_delivers_everything_and_learns_the_cheapest_operator(tmp_path):
    figures = await world.run_world(reactor, tmp_path, numbers=200, restart=True, timeout=20, log=None)
    first, second, restarted = figures["rounds"]
    shown = "\n" + world.table(figures)
    # the world itself: every message ends, numbers nobody reaches fail after every operator was tried,
    # and cheapest-first failover ends on the oracle's operator
    for r in (first, second, restarted):
        assert r["messages"] == 200 and r["not_final"] == 0, shown
        assert r["unreachable_failed"] == r["unreachable_numbers"] > 0, shown
        assert r["unreachable_mean_attempts"] == 3, shown
    assert first["via_oracle_operator"] == 1.0, shown

    missed = []

    def bar(ok: bool, what: str) -> None:
        if not ok:
            missed.append(what)

    bar(first["delivered_ratio"] == 1.0, f"first message: delivered ratio {first['delivered_ratio']:.2%}")
    for r in (second, restarted):
        bar(r["delivered_ratio"] == 1.0, f"{r['round']}: delivered ratio {r['delivered_ratio']:.2%}")
        bar(r["mean_attempts"] <= 1.05, f"{r['round']}: mean attempts {r['mean_attempts']:.3f} > 1.05")
        bar(r["cost_over_oracle"] <= 0.02,
            f"{r['round']}: cost per delivered {r['cost_per_delivered']:.4f} ({r['cost_source']}) is "
            f"{r['cost_over_oracle']:+.2%} against the oracle's {r['oracle_cost_per_message']:.4f} (bar +2%)")
    assert not missed, "bars missed:\n  " + "\n  ".join(missed) + shown


@pytest_twisted.ensureDeferred
async def test_number_plan_world_through_the_gateway_decides_as_the_pure_model(tmp_path):
    """Issue 14: the number-plan world (tests/number_plan.py) through a real gateway
    (scripts/ported_world_plan.py), one message at
    a time, makes the decisions of the pure model with block evidence (policies.blocks), round by
    round, and new numbers in known blocks cost fewer attempts than cheapest first."""
    from tests import number_plan as plan

    figures = await plan_world.run_plan(reactor, tmp_path, seed=14, first=120, new=60, timeout=20, log=None)
    gateway = figures["rounds"]
    model = plan.run(plan.plan_world, True, 14, 120, 60)
    cheapest_first = plan.run(plan.plan_world, False, 14, 120, 60)
    shown = "\n" + plan.table(model, gateway)
    assert [r["round"] for r in gateway] == ["first numbers", "new numbers, known blocks", "second messages",
                                             "re-ported"]
    for g, m in zip(gateway, model):
        assert g["delivered"] == 1.0 and g["dead_failed"] == g["dead"], shown
        assert abs(g["attempts"] - m["attempts"]) <= 0.02, shown
        assert abs(g["cost_per_delivered"] - m["cost_per_delivered"]) <= 0.005, shown
    assert gateway[1]["attempts"] < cheapest_first[1]["attempts"] - 0.2, shown


@pytest_twisted.ensureDeferred
async def test_number_plan_world_with_look_ups_decides_as_the_pure_model(tmp_path):
    """Issue 14 item 3: the same world with [lookup] (a simulated HLR/MNP service on loopback,
    tests/lookup_service.py): the gateway asks and follows the answers as the pure model does
    (policies.number_lookup), round by round with the look-ups paid, and meets the bars the blocks
    alone cannot: second messages at the oracle's cost, moved numbers found again in two attempts."""
    from decimal import Decimal

    from tests import number_plan as plan

    cost = Decimal("0.002")
    figures = await plan_world.run_plan(reactor, tmp_path, seed=14, first=120, new=60, timeout=20, log=None,
                                        lookup_cost=cost)
    gateway = figures["rounds"]
    model = plan.run(plan.plan_world, True, 14, 120, 60, lookup_cost=cost, forget_lookups_at_move=True)
    shown = "\n" + plan.table(model, gateway)
    for g, m in zip(gateway, model):
        assert g["delivered"] == 1.0 and g["dead_failed"] == g["dead"], shown
        assert abs(g["attempts"] - m["attempts"]) <= 0.02, shown
        assert abs(g["cost_per_delivered"] - m["cost_per_delivered"]) <= 0.005, shown
        assert abs(g["lookups"] - m["lookups"]) <= 0.03, shown
    assert gateway[0]["lookups"] > 0.9, shown  # asked for new numbers
    assert gateway[2]["lookups"] == 0 and gateway[2]["over_oracle"] <= 0.02, shown  # answers kept
    assert gateway[3]["lost"] > 0 and gateway[3]["lost_attempts"] <= 2.0, shown
