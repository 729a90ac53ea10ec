"""What the pipeline knows of the config to route a message: the profiles and the operators'
cost tables, as the config is now (``reload`` swaps them: a reload changes them at once), and the
facts it gives the decision: which operators are up, the number's own history, its block's
evidence, a look-up's answer. The choice itself is ``policies.routing``'s (with
``policies.blocks`` and ``policies.number_lookup``).

Every message routed asks these a few times (its claim, its choice, its failover, its receipt's
lesson), so they read plain dicts kept per config, not the config objects."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal

from policies.blocks import basis, block_order, index
from policies.number_lookup import lookup_choice
from policies.routing import OperatorOption, choose_operator, rank
from smscore.config.values import Config, PrefixTable
from smscore.model import Message


class Routing:
    """What the pipeline needs to know of the config to route: each profile's operators and each
    operator's cost table (reloadable).

    An operator is offered for a number when its table has a cost for it (``lookup`` is not None):
    one without a table, or whose table has no entry for the number, is not.
    """

    def __init__(self, profiles: Mapping[str, Sequence[str]], costs: Mapping[str, PrefixTable]) -> None:
        self.profiles = {name: tuple(ops) for name, ops in profiles.items()}
        self.costs = dict(costs)

    @classmethod
    def of(cls, config: Config) -> Routing:
        """Routing by ``config``'s profiles and its operators' costs."""
        return cls({name: p.operators for name, p in config.profiles.items()},
                   {name: op.cost for name, op in config.operators.items()})

    def reload(self, config: Config) -> None:
        """Route by ``config`` from now on (what the store and the pipeline hold is this object)."""
        fresh = Routing.of(config)
        self.profiles, self.costs = fresh.profiles, fresh.costs

    def cost(self, operator: str, number: str) -> Decimal | None:
        """What one part to ``number`` costs through ``operator``; None: no cost (not offered)."""
        costs = self.costs
        return costs[operator].lookup(number) if operator in costs else None

    def offered(self, message: Message) -> list[str]:
        costs, to = self.costs, message.to
        return [op for op in self.profiles.get(message.profile, ()) if op in costs and costs[op].lookup(to) is not None]

    def untried(self, message: Message) -> list[str]:
        """The offered operators not tried yet for ``message``, in profile order (a tried one's
        cost is not looked up)."""
        costs, to, tried = self.costs, message.to, message.tried
        ops = self.profiles.get(message.profile, ())
        if len(ops) == 1:  # the usual profile, asked after every claim and delivery: no comprehension's call
            op = ops[0]
            return [op] if op not in tried and op in costs and costs[op].lookup(to) is not None else []
        return [op for op in ops if op not in tried and op in costs and costs[op].lookup(to) is not None]

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
        costs, to = self.costs, message.to
        out = []
        for name in self.profiles.get(message.profile, ()):
            link = links.get(name)
            if link is None or name not in costs:
                continue
            cost = costs[name].lookup(to)
            if cost is not None:
                out.append(OperatorOption(name, cost, link.is_up() or name in elsewhere))
        return out

    def route(self, message: Message, links: Mapping[str, object], elsewhere: frozenset[str], now: float) -> str | None:
        """``choose`` over ``options``: the operator for ``message`` now. A profile of one operator
        needs neither its link's state nor a ranking: it, when it has a link and a cost for the
        number and was not tried yet, up or down (as ``choose`` answers for its one option)."""
        ops = self.profiles.get(message.profile, ())
        if len(ops) != 1:
            return self.choose(message, self.options(message, links, elsewhere), now)
        name, costs = ops[0], self.costs
        if name in links and name not in message.tried and name in costs and costs[name].lookup(message.to) is not None:
            return name
        return None

    def choose(self, message: Message, options: Sequence[OperatorOption], now: float) -> str | None:
        """The operator for ``message``: the cheapest a look-up says reaches it (``Message.reach``),
        else its own history, its block's order (``Message.block``), price. With one option there is
        nothing to rank: it, unless it was tried (what ``choose_operator`` answers for one)."""
        if len(options) == 1:
            only = options[0].name
            return None if only in message.tried else only
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
