"""Whether to ask an HLR/MNP look-up service who serves a number, and what its answer means for the
choice of operator (SPEC §7; issue 14): pure decisions.

Why ask at all. Operator choice learns who reaches a number from what happened (``learning``: the
number's own history; ``blocks``: its number block's). Two things learning cannot know: a number
whose first message went by its block's order to a dearer operator that reaches it keeps that
operator (a cheaper one might reach it too, and nobody tries it), and a number that moved costs a
failed attempt before the next operator is guessed. A look-up answers both for a price: it names the
network that serves the number now, and the config says which operators reach each network
(``[operators.NAME] networks``). So a look-up is worth its price when the money it is expected to
save is larger.

Theory of operation
-------------------
*Chances.* Each operator's chance to reach the number: from its block's evidence where a prefix has
enough (``blocks.delivery_chances``), else ``PRIOR`` (a coin toss: nothing is known).

*Without a look-up.* The number's own operator (``preferred``), when it has one that is still
untried for the message, costs its price. Otherwise the operators are tried in the block's order of
least expected cost until one delivers (``blocks.expected_cost`` over ``c/p`` order).

*With a look-up.* The cheapest operator that reaches the number is sent to at once: the expected
price is the sum over operators by price of price × the chance it is the cheapest that reaches
(``p_i`` times the chance that every cheaper one does not). If none reaches (a dead number), every
operator is tried as before. With its own operator, only operators cheaper than it can save money,
and it reaches for sure.

*The saving* is the difference, and a look-up is asked when it exceeds the look-up's ``cost``
(``worth_asking``). Failures are taken as independent, as in ``blocks``.

*The answer* (``reaching``): the operators whose ``networks`` name the network, or ``"*"``. An
unknown network (the service does not know the number, or no operator names its network) reaches
nobody: the message is then tried in the usual order, and a dead number still ends ``failed``.
``lookup_choice`` is the cheapest untried operator the answer says reaches it: it goes first,
before the number's own history (the answer is newer), and the usual order follows if it fails.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal

from policies import blocks
from policies.routing import OperatorOption

#: An operator's chance to reach a number when nothing is known of its block.
PRIOR = 0.5
#: The ``networks`` entry of an operator that reaches every network (an aggregator).
EVERY_NETWORK = "*"


def chances(rows: Iterable[blocks.Tally], number: str, operators: Sequence[str], now: float) -> dict[str, float]:
    """Each operator's chance to reach ``number``: its block's (``blocks``), else ``PRIOR``."""
    evidence = blocks.index(rows)
    prefix = blocks.basis(evidence, number, now)
    if prefix is None:
        return {op: PRIOR for op in operators}
    return blocks.delivery_chances(evidence, prefix, operators, now)


def _cheapest_reaching(candidates: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """``(expected price of the cheapest that reaches, chance that none does)`` over ``(price,
    chance)`` pairs sorted by price."""
    expected, none = 0.0, 1.0
    for price, p in candidates:
        expected += none * p * price
        none *= 1.0 - p
    return expected, none


def saving(options: Sequence[OperatorOption], chance: Mapping[str, float], preferred: str | None = None,
           tried: Sequence[str] = ()) -> float:
    """What a look-up is expected to save on this message (≥ 0 up to rounding)."""
    untried = [o for o in options if o.name not in tried]
    own = next((o for o in untried if o.name == preferred), None)
    if own is not None:
        price = float(own.cost)
        cheaper = sorted((float(o.cost), chance[o.name]) for o in untried if float(o.cost) < price)
        expected, none = _cheapest_reaching(cheaper)
        return price - (expected + none * price)
    if not untried:
        return 0.0
    order = sorted(untried, key=lambda o: (float(o.cost) / max(chance[o.name], 1e-9), -chance[o.name]))
    without = blocks.expected_cost([(float(o.cost), chance[o.name]) for o in order])
    by_price = sorted((float(o.cost), chance[o.name]) for o in untried)
    expected, none = _cheapest_reaching(by_price)
    return without - (expected + none * sum(price for price, _ in by_price))


def worth_asking(expected_saving: float, cost: Decimal) -> bool:
    """Ask when the look-up is expected to save more than it costs."""
    return expected_saving > float(cost)


def reaching(networks: Mapping[str, Sequence[str]], network: str | None) -> frozenset[str]:
    """The operators that reach ``network`` (None: unknown, so none)."""
    if network is None:
        return frozenset()
    return frozenset(op for op, names in networks.items() if network in names or EVERY_NETWORK in names)


def lookup_choice(options: Sequence[OperatorOption], reach: frozenset[str], tried: Sequence[str] = ()) -> str | None:
    """The cheapest untried operator the look-up says reaches the number (profile order on ties)."""
    best = [(o.cost, i, o.name) for i, o in enumerate(options) if o.name in reach and o.name not in tried]
    return min(best)[2] if best else None
