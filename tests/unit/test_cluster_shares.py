"""How the cluster's limits split over its live nodes (policies.cluster)."""

import math

from hypothesis import given
from hypothesis import strategies as st

from policies.cluster import account_tps_share, bind_share, hold_limit, shares, tps_share

names = st.lists(st.text("abcdefgh0123456789-", min_size=1, max_size=6), min_size=1, max_size=7, unique=True)


def test_one_node_holds_everything():
    mine = shares(["gw1"], "gw1", {"telia": (3, 90), "tele2": (1, 0)})
    assert mine.operators["telia"].binds == 3 and mine.operators["telia"].tps == 90
    assert mine.operators["tele2"].binds == 1 and mine.operators["tele2"].tps == 0
    assert mine.held_elsewhere == frozenset()
    assert mine.account_tps(50) == 50


def test_a_node_counts_itself_before_its_heartbeat_shows():
    assert shares([], "gw1", {"telia": (2, 10)}).operators["telia"].binds == 2
    assert shares(["gw2"], "gw1", {"telia": (2, 10)}).nodes == ("gw1", "gw2")


def test_three_binds_on_two_nodes_are_two_and_one_with_tps_to_match():
    a = shares(["gw1", "gw2"], "gw1", {"telia": (3, 90)}).operators["telia"]
    b = shares(["gw1", "gw2"], "gw2", {"telia": (3, 90)}).operators["telia"]
    assert sorted([a.binds, b.binds]) == [1, 2]
    assert a.tps + b.tps == 90 and a.tps == 30 * a.binds


def test_the_node_without_a_bind_leaves_the_operator_to_the_other():
    one = shares(["gw1", "gw2"], "gw1", {"telia": (1, 10)})
    two = shares(["gw1", "gw2"], "gw2", {"telia": (1, 10)})
    assert {one.operators["telia"].binds, two.operators["telia"].binds} == {0, 1}
    assert (one.held_elsewhere | two.held_elsewhere) == {"telia"}
    assert not (one.held_elsewhere & two.held_elsewhere)


def test_what_is_held_elsewhere_is_each_shares_own_and_no_part_of_their_equality():
    alone = shares(["gw1"], "gw1", {"telia": (1, 10), "tele2": (2, 0)})
    joining = alone.nothing()
    assert alone.held_elsewhere == frozenset() and joining.held_elsewhere == {"telia", "tele2"}
    assert alone.lesser(joining).held_elsewhere == {"telia", "tele2"}
    two = shares(["gw1", "gw2"], "gw1", {"telia": (1, 10), "tele2": (2, 0)})
    assert alone.lesser(two).held_elsewhere == {name for name, share in two.operators.items() if share.binds == 0}
    assert two == shares(["gw2", "gw1"], "gw1", {"telia": (1, 10), "tele2": (2, 0)})


def test_one_bind_operators_spread_over_the_nodes():
    operators = {f"op{i}": (1, 0) for i in range(12)}
    on_first = shares(["gw1", "gw2"], "gw1", operators)
    held = sum(share.binds for share in on_first.operators.values())
    assert 0 < held < 12


def test_an_account_tps_is_split_equally():
    assert account_tps_share(50, 2) == 25
    assert account_tps_share(0, 3) == 0  # no limit stays no limit
    assert account_tps_share(10, 0) == 10


def test_no_limit_stays_no_limit():
    assert tps_share(0, 1, 2) == 0


@given(nodes=names, binds=st.integers(1, 40), tps=st.integers(0, 5000), operator=st.text(min_size=1, max_size=8))
def test_every_bind_and_every_tps_is_taken_once(nodes, binds, tps, operator):
    parts = [shares(nodes, me, {operator: (binds, tps)}).operators[operator] for me in nodes]
    assert sum(p.binds for p in parts) == binds
    assert max(p.binds for p in parts) - min(p.binds for p in parts) <= 1
    if tps:
        assert math.isclose(sum(p.tps for p in parts), tps)
        assert all(p.tps == 0 for p in parts if p.binds == 0)
    assert all(bind_share(binds, list(reversed(nodes)), me, operator) == p.binds for me, p in zip(nodes, parts))


# -- what a node holds of a backlog (hold_limit) ------------------------------------------------
def test_a_node_alone_holds_as_much_as_it_may():
    assert hold_limit(shares(["gw1"], "gw1", {"telia": (2, 20)}), {"telia": 10}) is None


def test_a_node_of_several_holds_seconds_of_its_share_and_its_windows_twice_over():
    mine = shares(["gw1", "gw2"], "gw1", {"telia": (2, 20), "tele2": (4, 100)})
    # telia: 1 bind, 10 tps; tele2: 2 binds, 50 tps
    assert hold_limit(mine, {"telia": 10, "tele2": 5}, seconds=5) == (10 * 5 + 2 * 1 * 10) + (50 * 5 + 2 * 2 * 5)


def test_an_operator_without_a_tps_limit_leaves_the_node_no_limit_of_its_own():
    assert hold_limit(shares(["gw1", "gw2"], "gw1", {"telia": (2, 20), "tele2": (2, 0)}), {}) is None


def test_a_node_holding_no_bind_holds_nothing():
    joining = shares(["gw1", "gw2"], "gw2", {"telia": (2, 20)}).nothing()
    assert hold_limit(joining, {"telia": 10}) == 0
    # one bind on two nodes: the node without it holds nothing of that operator's messages
    mine = shares(["gw1", "gw2"], "gw1", {"telia": (1, 20)})
    other = shares(["gw1", "gw2"], "gw2", {"telia": (1, 20)})
    assert sorted([hold_limit(mine, {"telia": 10}), hold_limit(other, {"telia": 10})]) == [0, 20 * 5 + 2 * 10]


@given(nodes=names, binds=st.integers(1, 12), tps=st.integers(1, 5000))
def test_together_the_nodes_hold_seconds_of_the_whole_tps_and_every_window(nodes, binds, tps):
    windows = {"telia": 10}
    held = [hold_limit(shares(nodes, me, {"telia": (binds, tps)}), windows, seconds=5) for me in nodes]
    if len(nodes) == 1:
        assert held == [None]
    else:
        assert tps * 5 + 2 * binds * 10 <= sum(held) <= tps * 5 + 2 * binds * 10 + len(nodes)
