"""policies.number_lookup: when a look-up is worth its price, and what its answer means."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies import blocks
from policies.number_lookup import PRIOR, chances, lookup_choice, reaching, saving, worth_asking
from policies.routing import OperatorOption

CHEAP, MID, DEAR = (OperatorOption("cheap", Decimal("0.10")), OperatorOption("mid", Decimal("0.20")),
                    OperatorOption("dear", Decimal("0.40")))
OPTIONS = [CHEAP, MID, DEAR]


def test_a_number_whose_own_operator_is_the_cheapest_has_nothing_to_save():
    assert saving(OPTIONS, {"cheap": 0.5, "mid": 0.5, "dear": 0.5}, preferred="cheap") == 0.0


def test_with_its_own_dear_operator_the_saving_is_what_cheaper_ones_would_save_if_they_reach():
    assert saving(OPTIONS, {"cheap": 0.0, "mid": 0.0, "dear": 1.0}, preferred="dear") == pytest.approx(0.0)
    assert saving(OPTIONS, {"cheap": 1.0, "mid": 0.0, "dear": 1.0}, preferred="dear") == pytest.approx(0.30)
    # cheap reaches half the time, else mid half the time: 0.5 * 0.3 + 0.25 * 0.2
    assert saving(OPTIONS, {"cheap": 0.5, "mid": 0.5, "dear": 1.0}, preferred="dear") == pytest.approx(0.20)


def test_without_its_own_operator_the_saving_is_the_failed_attempts_a_look_up_avoids():
    # known for sure: nothing to learn
    assert saving([CHEAP, DEAR], {"cheap": 0.0, "dear": 1.0}) == pytest.approx(0.0)
    # cheap first (0.1/0.5 < 0.4/1): 0.1 + 0.5 * 0.4 = 0.30 without; 0.5 * 0.1 + 0.5 * 0.4 = 0.25 with
    assert saving([CHEAP, DEAR], {"cheap": 0.5, "dear": 1.0}) == pytest.approx(0.05)
    # a single operator: the look-up cannot change anything
    assert saving([DEAR], {"dear": 0.7}) == pytest.approx(0.0)


def test_operators_tried_for_the_message_are_out_of_the_reckoning():
    # its own operator failed for this message (tried): the rest as for a new number
    assert saving(OPTIONS, {"cheap": 0.5, "mid": 0.5, "dear": 1.0}, preferred="dear", tried=["dear"]) == \
        pytest.approx(saving([CHEAP, MID], {"cheap": 0.5, "mid": 0.5}))
    assert saving(OPTIONS, {"cheap": 0.5, "mid": 0.5, "dear": 0.5}, tried=["cheap", "mid", "dear"]) == 0.0


def test_a_look_up_is_asked_only_when_it_saves_more_than_it_costs():
    assert worth_asking(0.05, Decimal("0.002"))
    assert not worth_asking(0.05, Decimal("0.05"))
    assert not worth_asking(0.0, Decimal("0"))


_chance = st.floats(0.0, 1.0)
_price = st.decimals("0.01", "1.00", places=2)


@given(st.lists(st.tuples(_price, _chance), min_size=1, max_size=5), st.data())
def test_a_look_up_never_costs_more_than_the_best_order_it_replaces(ops, data):
    options = [OperatorOption(f"op{i}", price) for i, (price, _) in enumerate(ops)]
    chance = {f"op{i}": p for i, (_, p) in enumerate(ops)}
    preferred = data.draw(st.sampled_from([None] + [o.name for o in options]))
    if preferred is not None:
        chance[preferred] = 1.0  # its own operator delivered to it
    tried = data.draw(st.lists(st.sampled_from([o.name for o in options]), unique=True))
    assert saving(options, chance, preferred, tried) >= -1e-9


def test_chances_come_from_the_block_when_it_has_enough_evidence_else_a_coin_toss():
    number = "46760112345"
    assert chances([], number, ["cheap", "dear"], 0.0) == {"cheap": PRIOR, "dear": PRIOR}
    rows = [blocks.Tally("467601", "cheap", delivered=2, failed=28, at=0.0),
            blocks.Tally("467601", "dear", delivered=28, failed=0, at=0.0)]
    got = chances(rows, number, ["cheap", "dear"], 0.0)
    assert got["cheap"] == pytest.approx(3 / 32) and got["dear"] == pytest.approx(29 / 30)


def test_the_answer_names_the_operators_that_reach_the_network():
    networks = {"cheap": ("24001",), "mid": ("24001", "24002"), "dear": ("*",)}
    assert reaching(networks, "24001") == {"cheap", "mid", "dear"}
    assert reaching(networks, "24002") == {"mid", "dear"}
    assert reaching(networks, "99999") == {"dear"}
    assert reaching(networks, None) == frozenset()


def test_the_cheapest_untried_operator_that_reaches_goes_first():
    assert lookup_choice(OPTIONS, frozenset({"mid", "dear"})) == "mid"
    assert lookup_choice(OPTIONS, frozenset({"mid", "dear"}), tried=["mid"]) == "dear"
    assert lookup_choice(OPTIONS, frozenset()) is None
    tie = [OperatorOption("b", Decimal("0.1")), OperatorOption("a", Decimal("0.1"))]
    assert lookup_choice(tie, frozenset({"a", "b"})) == "b"  # profile order on equal prices
