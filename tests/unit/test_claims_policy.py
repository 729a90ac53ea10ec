"""policies.claims: the sweep a node's claims make through the backlog."""

from policies.claims import Sweep, after_claim, next_claim


def test_full_claims_go_on_from_their_last_id_and_a_short_one_starts_over_once():
    s = next_claim(Sweep(), 10.0, 30.0)
    assert s == Sweep("", 10.0)
    s, again = after_claim(s, ["a", "b"], 2)
    assert (s, again) == (Sweep("b", 10.0), True)
    s = next_claim(s, 11.0, 30.0)
    assert s.after == "b"
    s, again = after_claim(s, ["c"], 2)  # the end: once more from the first id
    assert (s, again) == (Sweep("", 10.0), True)
    s = next_claim(s, 11.5, 30.0)
    assert s == Sweep("", 11.5)
    assert after_claim(s, [], 2) == (Sweep("", 11.5), False)  # from the start and short: done


def test_a_sweep_a_lease_old_starts_over_even_while_claims_are_full():
    s = Sweep("z", 10.0)
    assert next_claim(s, 39.9, 30.0) is s
    assert next_claim(s, 40.0, 30.0) == Sweep("", 40.0)


def test_a_claim_with_no_room_is_never_full():
    assert after_claim(Sweep("", 1.0), [], 0) == (Sweep("", 1.0), False)
