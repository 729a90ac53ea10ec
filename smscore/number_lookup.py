"""HLR/MNP look-ups for operator choice (SPEC §7, issue 14): when one is worth its price, the
answers kept for a while, and one question at a time per number.

The decision is ``policies.number_lookup``'s; asking is the connector's
(``connectors.number_lookup.HttpNumberLookup``). This module keeps what a node knows between the
two: the answers of the last ``cache`` seconds (an LRU of at most ``cache_size`` numbers, in the
main worker's memory: the process that chooses operators), and the questions in flight, so two
messages to one number wait for one answer.

An answer goes stale when an operator it said reaches the number fails for a message (the number
moved): the cached answer is dropped and the look-up is considered again, at its price. A failed
look-up (timeout, an error from the service) costs nothing more: the message goes on as without a
look-up, and the failure is counted (``smsgw_number_lookups_total{outcome="failed"}``).

The cache is memory only: after a restart a number may be looked up once more. Settings are read
from ``settings()`` at each decision, so a reload's ``cost``, ``cache`` and ``networks`` apply at once.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence

from twisted.internet.defer import Deferred

from policies.number_lookup import chances, reaching, saving, worth_asking
from policies.routing import OperatorOption
from smscore.logs import get_logger
from smscore.model import Message


class LookupSettings:
    """What a decision reads: the look-up's price, how long an answer is kept, how many numbers at
    most, and which networks each operator reaches."""

    __slots__ = ("cost", "cache_seconds", "cache_size", "networks")

    def __init__(self, cost, cache_seconds: float, cache_size: int, networks) -> None:
        self.cost = cost
        self.cache_seconds = cache_seconds
        self.cache_size = cache_size
        self.networks = networks

    @classmethod
    def of(cls, config) -> LookupSettings | None:
        """From a parsed config (None: no ``[lookup]``)."""
        lookup = config.lookup
        if lookup is None:
            return None
        return cls(lookup.cost, lookup.cache, lookup.cache_size,
                   {name: op.networks for name, op in config.operators.items()})


class NumberLookup:
    """The node's look-ups: ``reach(message, options)`` → the operators that reach the message's
    destination (a frozenset, from the cache), a Deferred of it (asking now), or None (not worth a
    look-up: choose as without one)."""

    def __init__(self, client, clock, settings: Callable[[], LookupSettings | None], metrics) -> None:
        self.client = client
        self.clock = clock
        self.settings = settings
        self.metrics = metrics
        self._answers: OrderedDict[str, tuple[frozenset[str], float]] = OrderedDict()
        self._asking: dict[str, list[Deferred]] = {}
        self.log = get_logger(component="number_lookup")

    def kept(self, number: str) -> tuple[frozenset[str], float] | None:
        """The answer kept for ``number`` (the operators that reach it, when it came), if any."""
        return self._answers.get(number)

    def reach(self, message: Message, options: Sequence[OperatorOption]):
        s = self.settings()
        if s is None or len(options) < 2:
            return None
        now = self.clock.seconds()
        number = message.to
        kept = self._answers.get(number)
        if kept is not None:
            reach, at = kept
            if now - at <= s.cache_seconds and not reach.intersection(message.tried):
                self._answers.move_to_end(number)
                self.metrics.number_lookups.inc(("cached",))
                return reach
            del self._answers[number]  # expired, or an operator it named failed: the number moved
        names = [o.name for o in options]
        chance = chances(message.block, number, names, now)
        if not worth_asking(saving(options, chance, message.preferred, message.tried), s.cost):
            return None
        waiting: Deferred = Deferred()
        if number in self._asking:
            self._asking[number].append(waiting)
            return waiting
        self._asking[number] = [waiting]
        d = self.client.look_up(number)
        d.addCallbacks(self._answered, self._failed, callbackArgs=(number,), errbackArgs=(number,))
        return waiting

    def _answered(self, network: str | None, number: str) -> None:
        s = self.settings()
        reach = reaching(s.networks, network) if s is not None else frozenset()
        self.metrics.number_lookups.inc(("answered" if network is not None else "unknown",))
        self._keep(number, reach, s)
        self._tell(number, reach)

    def _failed(self, failure, number: str) -> None:
        self.metrics.number_lookups.inc(("failed",))
        self.log.warning("number look-up failed: choosing without it", error=failure.getErrorMessage())
        self._tell(number, frozenset())

    def _keep(self, number: str, reach: frozenset[str], s: LookupSettings | None) -> None:
        if s is None or s.cache_seconds <= 0:
            return
        self._answers[number] = (reach, self.clock.seconds())
        self._answers.move_to_end(number)
        while len(self._answers) > s.cache_size:
            self._answers.popitem(last=False)

    def _tell(self, number: str, reach: frozenset[str]) -> None:
        for d in self._asking.pop(number, []):
            d.callback(reach)
