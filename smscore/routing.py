"""What the pipeline knows of the config to route a message: the profiles and the operators'
costs, read as the config is now (a reload changes them at once), and the facts it gives the
decision: which operators are up, the number's own history, its block's evidence, a look-up's
answer. The choice itself is ``policies.routing``'s (with ``policies.blocks`` and
``policies.number_lookup``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal

from policies.blocks import basis, block_order, index
from policies.number_lookup import lookup_choice
from policies.routing import OperatorOption, choose_operator, rank, untried_operators
from smscore.model import Message


class Routing:
    """What the pipeline needs to know of the config to route: profiles and costs (reloadable).

    ``cost(operator, number)`` is None when the operator's cost table has no entry for the number:
    that operator is not offered for it.
    """

    def __init__(self, profiles: dict[str, Sequence[str]],
                 cost: Callable[[str, str], Decimal | None]) -> None:
        self.profiles = {name: tuple(ops) for name, ops in profiles.items()}
        self.cost = cost

    def offered(self, message: Message) -> list[str]:
        return [op for op in self.profiles.get(message.profile, ()) if self.cost(op, message.to) is not None]

    def untried(self, message: Message) -> list[str]:
        return untried_operators(self.offered(message), message.tried)

    def unroutable(self, message: Message) -> str | None:
        """Why no operator can ever take ``message`` under this config, or None (it may wait for one,
        or every operator was tried)."""
        if message.profile not in self.profiles:
            return f"profile {message.profile} is not configured"
        if not self.offered(message):
            return f"no operator of profile {message.profile} has a cost for {message.to}"
        return None

    def options(self, message: Message, links: Mapping[str, object],
                elsewhere: frozenset[str] = frozenset()) -> list[OperatorOption]:
        """The operators offered for ``message`` in profile order, with their cost for its
        destination; one whose bind another node holds (``elsewhere``) counts as up."""
        out = []
        for name in self.profiles.get(message.profile, ()):
            link = links.get(name)
            cost = self.cost(name, message.to)
            if link is None or cost is None:
                continue
            out.append(OperatorOption(name, cost, link.is_up() or name in elsewhere))
        return out

    def choose(self, message: Message, options: Sequence[OperatorOption], now: float) -> str | None:
        """The operator for ``message``: the cheapest a look-up says reaches it (``Message.reach``),
        else its own history, its block's order (``Message.block``), price."""
        order = block_order(options, index(message.block), message.to, now) if message.block else ()
        first = lookup_choice(options, message.reach, message.tried) if message.reach else None
        return choose_operator(options, message.tried, first or message.preferred, message.recent_failures, order)

    def explain(self, message: Message, options: Sequence[OperatorOption], now: float) -> dict:
        """Why a message like ``message`` would go where it goes (ops' "why this operator"): the
        order the operators would be tried in, and what decided the first: ``lookup`` (a look-up's
        answer), ``number`` (its own history), ``block`` (its number block, with the prefix) or
        ``price``."""
        evidence = index(message.block)
        prefix = basis(evidence, message.to, now) if message.block else None
        order = block_order(options, evidence, message.to, now) if prefix is not None else ()
        first = lookup_choice(options, message.reach, ()) if message.reach else None
        ranked = [o.name for o in rank(options, (), first or message.preferred, message.recent_failures, order)]
        if first is not None:
            because = "lookup"
        elif message.preferred in ranked:
            because = "number"
        else:
            because = "block" if prefix is not None else "price"
        return {"order": ranked, "because": because, "prefix": prefix}
