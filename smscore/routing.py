"""What the pipeline knows of the config to route a message: the profiles and the operators'
costs, read as the config is now (a reload changes them at once). The choice itself is
``policies.routing``'s."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal

from policies.routing import untried_operators
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
