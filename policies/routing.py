"""Operator choice for an MT message (SPEC §7, "SmartConfirm"): a pure decision.

Given the operators of the message's profile in profile order, what each costs for the destination,
which are up now, which were already tried for this message, and which one last delivered to this
number, return the operator to send through next:

1. never one already tried for this message;
2. the operator that last delivered to this number, if it is in the profile and untried;
3. otherwise the cheapest, operators that failed for this number lately last; equal costs keep
   the profile's order (how long a failure counts is the caller's decay). With an ``order`` from
   the number's block (``policies.blocks.block_order``), that order in place of price;
4. operators that are down (or saturated) are skipped without losing the order: if every untried
   operator is down, the cheapest untried one is still returned, so the message waits for it
   instead of failing.

Returns None only when every operator of the profile has been tried.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal


@dataclass(slots=True)
class OperatorOption:
    """One operator of a profile, as seen for one destination at one moment."""

    name: str
    cost: Decimal
    available: bool = True


def rank(options: Sequence[OperatorOption], tried: Sequence[str] = (), preferred: str | None = None,
         failed_lately: Sequence[str] = (), order: Sequence[str] = ()) -> list[OperatorOption]:
    """The untried options in the order they should be tried: the number's own operator first,
    those that failed for it lately last, the rest in ``order`` (names it lacks after it), then
    cheapest first, then the profile's order."""
    position = {name: i for i, name in enumerate(order)}
    untried = [(i, o) for i, o in enumerate(options) if o.name not in tried]
    untried.sort(key=lambda io: (io[1].name != preferred, io[1].name in failed_lately,
                                 position.get(io[1].name, len(position)), io[1].cost, io[0]))
    return [o for _, o in untried]


def choose_operator(options: Sequence[OperatorOption], tried: Sequence[str] = (), preferred: str | None = None,
                    failed_lately: Sequence[str] = (), order: Sequence[str] = ()) -> str | None:
    """The operator to try next, or None when every one was tried."""
    ranked = rank(options, tried, preferred, failed_lately, order)
    if not ranked:
        return None
    for option in ranked:
        if option.available:
            return option.name
    return ranked[0].name


def blocked_profiles(profiles: Mapping[str, Sequence[str]], here: Collection[str],
                     up: Collection[str]) -> frozenset[str]:
    """The profiles none of whose operators can take a message now: each of its operators that
    this node has a link for (``here``) is out of ``up`` (those with room in their queue here, or
    held by another node), and it has one at least. A node's claims leave their queued messages in
    the store until one has room again (policies.claims, "an operator that cannot keep up")."""
    return frozenset(name for name, ops in profiles.items()
                     if any(op in here for op in ops) and not any(op in up for op in ops if op in here))
