"""smscore.routing: what the pipeline offers ``policies.routing`` for a message, read from the
config's profiles and cost tables, and the choice it gets back (SPEC §7). Routing answers each
message a few times, so it answers from tables kept per config (and a profile of one operator
without building options); these tests hold it to the plain
definitions it replaced: the offered operators are those with a cost, the untried ones those of
them not tried, and the choice is ``choose_operator``'s over the options."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from policies.blocks import Tally, block_order, index
from policies.number_lookup import lookup_choice
from policies.routing import OperatorOption, choose_operator
from smscore.config import PrefixTable, parse_config
from smscore.model import Message
from smscore.routing import Routing
from tests.fakes import FakeLink

OPERATORS = ("a", "b", "c")
NUMBER = "46761212345"


def message(profile="standard", to=NUMBER, **learned) -> Message:
    return Message(id="m1", account="acme", to=to, sender="ACME", text="hi", encoding="gsm7", parts=1,
                   profile=profile, **learned)


def reference_choice(m: Message, options, now: float) -> str | None:
    """The choice as Routing made it before it had a way of its own for one option."""
    order = block_order(options, index(m.block), m.to, now) if m.block else ()
    first = lookup_choice(options, m.reach, m.tried) if m.reach else None
    return choose_operator(options, m.tried, first or m.preferred, m.recent_failures, order)


names = st.sampled_from(OPERATORS)
options_st = st.lists(st.builds(OperatorOption, names, st.sampled_from([Decimal("0.1"), Decimal("0.2")]),
                                st.booleans()), min_size=1, max_size=3, unique_by=lambda o: o.name)
tallies = st.lists(st.builds(Tally, st.sampled_from(["4676", "467612"]), names, st.integers(0, 30).map(float),
                             st.integers(0, 30).map(float), st.just(0.0)), max_size=4)


@given(options_st, st.lists(names, unique=True).map(tuple), st.none() | names, st.lists(names, unique=True).map(tuple),
       st.none() | st.frozensets(names), tallies)
def test_the_choice_is_choose_operators_over_the_options(options, tried, preferred, failures, reach, block):
    """One option or several, tried or not, up or down, with a history, a look-up's answer or a
    block's evidence: the operator Routing chooses is the one the policy chooses."""
    m = message(tried=tried, preferred=preferred, recent_failures=failures, reach=reach, block=tuple(block))
    routing = Routing({"standard": [o.name for o in options]}, {})
    assert routing.choose(m, options, 100.0) == reference_choice(m, options, 100.0)


def test_one_option_is_chosen_even_down_and_never_once_tried():
    down = [OperatorOption("a", Decimal("0.1"), available=False)]
    routing = Routing({"standard": ("a",)}, {})
    assert routing.choose(message(preferred="b"), down, 0.0) == "a"  # waits for it rather than failing
    assert routing.choose(message(tried=("a",)), down, 0.0) is None


@given(st.lists(names, unique=True, max_size=3), st.sets(names),
       st.dictionaries(names, st.none() | st.just(Decimal("0.1"))), st.sets(names), st.frozensets(names),
       st.lists(names, unique=True).map(tuple), st.none() | names)
def test_the_route_is_the_choice_over_the_options(profile, linked, costs, down, elsewhere, tried, preferred):
    """``route``, whatever the profile's size (one operator: no options built), routes as ``choose``
    over ``options`` did: links missing, up or down or held elsewhere, costs missing, tried."""
    links = {name: FakeLink(name, up=name not in down) for name in linked}
    tables = {op: PrefixTable((), cost) for op, cost in costs.items()}
    routing = Routing({"standard": profile}, tables)
    m = message(tried=tried, preferred=preferred)
    assert routing.route(m, links, elsewhere, 0.0) == reference_choice(m, routing.options(m, links, elsewhere), 0.0)


class Counted:
    """A cost table that counts its look-ups."""

    def __init__(self, cost: Decimal | None) -> None:
        self.cost, self.asked = cost, 0

    def lookup(self, number: str) -> Decimal | None:
        self.asked += 1
        return self.cost


@given(st.lists(names, unique=True), st.dictionaries(names, st.none() | st.just(Decimal("0.1"))),
       st.lists(names, unique=True).map(tuple))
def test_untried_are_the_offered_operators_not_tried_in_profile_order(profile, costs, tried):
    """``offered``: the profile's operators with a table that has a cost for the number; ``untried``:
    those not tried yet, and a tried one's cost is not even looked up."""
    tables = {op: Counted(cost) for op, cost in costs.items()}
    routing = Routing({"standard": profile}, tables)
    m = message(tried=tried)
    offered = routing.offered(m)
    assert offered == [op for op in profile if op in costs and costs[op] is not None]
    for table in tables.values():
        table.asked = 0
    assert routing.untried(m) == [op for op in offered if op not in tried]
    assert all(tables[op].asked == 0 for op in tried if op in tables)


def test_options_are_the_offered_operators_with_a_link_and_their_cost_for_the_number():
    tables = {"a": PrefixTable((("4676", Decimal("0.20")),), Decimal("0.30")),
              "b": PrefixTable((("47", Decimal("0.1")),)), "c": PrefixTable.flat(Decimal("0.05"))}
    links = {"a": FakeLink("a"), "b": FakeLink("b")}
    links["a"].up = False
    routing = Routing({"standard": ("c", "b", "a")}, tables)
    assert routing.options(message(), links) == [OperatorOption("a", Decimal("0.20"), False)]  # c: no link; b: no cost
    assert routing.options(message(), links, elsewhere=frozenset({"a"})) == [OperatorOption("a", Decimal("0.20"), True)]
    assert routing.options(message(profile="other"), links) == []


CONFIG = """
[operators.a]
type = "simulated"
cost = {cost}
[operators.b]
type = "simulated"
cost = 0.20
[profiles.standard]
operators = [{operators}]
[accounts.acme]
api_keys = ["acme-key"]
senders = ["ACME"]
"""


def test_a_reload_routes_by_the_new_profiles_and_costs_at_once():
    """What the store and the pipeline hold is the Routing object (the store its ``untried``): a
    reload changes what they see, costs included, without a new object."""
    routing = Routing.of(parse_config(CONFIG.format(cost="0.10", operators='"a", "b"'), path="/nonexistent/gw.toml"))
    untried = routing.untried
    links = {"a": FakeLink("a"), "b": FakeLink("b")}
    assert routing.choose(message(), routing.options(message(), links), 0.0) == "a"
    routing.reload(parse_config(CONFIG.format(cost='{ "4676" = 0.30, "default" = 0.10 }', operators='"a", "b"'),
                                path="/nonexistent/gw.toml"))
    assert routing.choose(message(), routing.options(message(), links), 0.0) == "b"  # a dearer for 4676...
    assert routing.cost("a", NUMBER) == Decimal("0.30") and routing.cost("x", NUMBER) is None  # what a submit costs
    assert routing.choose(message(to="4712345678"), routing.options(message(to="4712345678"), links), 0.0) == "a"
    routing.reload(parse_config(CONFIG.format(cost="0.10", operators='"b"'), path="/nonexistent/gw.toml"))
    assert untried(message()) == ["b"]
