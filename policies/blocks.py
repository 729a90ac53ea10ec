"""Operator choice from the number plan (SPEC §7, "SmartConfirm"): what the numbers around a number
teach about who reaches it, as pure decisions.

Theory of operation
-------------------
National plans allocate numbers to operators in blocks; most numbers stay with their block's operator
and a minority are ported. So for a number the gateway has never sent to, the numbers around it are
the best guess of which operator reaches it. Nothing here is configured per country: the block sizes
are learned by keeping evidence at several prefix lengths and using the longest one that has enough.

*Evidence.* For each prefix of a number (``prefixes``: from ``MIN_LENGTH`` digits to all but the last
``FINEST_REST`` digits) and each operator, a ``Tally``: deliveries and failures, which halve every
``HALF_LIFE`` seconds. The decay is applied on read from the tally's ``at``, so the store keeps plain
rows ``(prefix, operator, delivered, failed, updated_at)`` and never sweeps; a block that is
re-allocated fades and is learned again.

*What teaches* (``lesson``). A message that ended delivered: its operator +1 delivered and each
operator tried before it +1 failed, at every tracked prefix of the number. The caller teaches the
block only when the message gave the number a new operator (its first, or another after its own
failed): the block counts numbers, not messages, so one busy number cannot outvote its block, and
messages that went straight to the number's own operator add nothing biased. A message nobody
delivered teaches nothing: every operator of the profile was tried once for it, so it costs the same
whatever the order and cannot tell one order from another.

*Which prefix* (``basis``). The longest prefix whose decayed outcomes, over all operators, reach
``ENOUGH`` (20). Longer prefixes inside a block see the same mix of operators with more noise;
prefixes shorter than the block mix blocks. The noise is what sets ``ENOUGH``: a number whose first
message went to a dearer operator keeps it (its own history wins), so a prefix whose order is noise
costs on every later message. In the interleaved world of ``tests/number_plan.py`` (no blocks at all),
prefixes used from 10 outcomes (6-7 numbers) put second messages 6 % over the oracle; from 20, 1.3 %;
while a block of the number-plan world qualifies after about 13 numbers.

*The order* (``block_order``). Each operator delivers with ``p = (delivered + 1) / (outcomes + 2)``
(a Beta(1, 1) prior: one observation cannot flip an order, an operator never tried there counts as a
coin toss, so it is not written off). Trying operators in order until one delivers, with failures
taken as independent, costs ``c1 + (1-p1)·c2 + (1-p1)(1-p2)·c3 + …``. Swapping two neighbours shows
``i`` goes before ``j`` exactly when ``c_i/p_i <= c_j/p_j``, so sorting by ``c/p`` is the optimal
order (``expected_cost`` and the tests check it against every permutation). Equal ``c/p``: the
likelier operator first (same cost, fewer attempts), then the profile's order. With no prefix that
has enough evidence, cheapest first, profile order on ties: exactly ``routing.rank``.

*Combined with the number's own history* (``routing.rank`` with the block's ``order``): the
operator that last delivered to the number first (its own history always wins), operators that
failed for it lately last, the rest in the block's order. So a learned operator that fails is tried no more for the
message (``tried``) and the next try follows the block. The block's evidence is needed only when the
number has no operator of its own, or its own failed.

*Limits, measured* (docs/routing.md). A number whose first message went by its block's order to a
dearer operator that reaches it keeps that operator (a ported-in number of a dear block costs dear
ever after); and where a number that left its block's operator is as likely to be with the middle
operator as with the aggregator, both orders cost the same and the decision does not prefer the one
with fewer attempts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from itertools import accumulate

from policies.routing import OperatorOption

#: Evidence halves in 90 days: a quiet block keeps its knowledge for a season, a re-allocated one is
#: relearned within months (porting moves a few percent of numbers a year, allocation changes rarer).
HALF_LIFE = 90 * 24 * 3600.0
#: The shortest prefix kept: a country code and its first national digit(s).
MIN_LENGTH = 4
#: The longest prefix kept leaves this many digits: 100 numbers, finer than any plan allocates.
FINEST_REST = 2
#: Decayed outcomes a prefix needs before its order is used.
ENOUGH = 20.0


@dataclass(frozen=True, slots=True)
class Tally:
    """What one operator did for the numbers under one prefix: the store's row
    ``(prefix, operator, delivered, failed, updated_at)``. Counts are as of ``at``."""

    prefix: str
    operator: str
    delivered: float = 0.0
    failed: float = 0.0
    at: float = 0.0

    def aged(self, now: float) -> Tally:
        """The tally as of ``now``: counts halved per ``HALF_LIFE`` since ``at`` (never grown: a
        clock behind ``at`` leaves them as they are)."""
        if now <= self.at:
            return self
        f = _decay(self.at, now)
        return Tally(self.prefix, self.operator, self.delivered * f, self.failed * f, now)

    @property
    def outcomes(self) -> float:
        return self.delivered + self.failed


def _decay(at: float, now: float) -> float:
    return 0.5 ** ((now - at) / HALF_LIFE) if now > at else 1.0


#: The tallies loaded for a number, by (prefix, operator).
Evidence = Mapping[tuple[str, str], Tally]


def index(rows: Iterable[Tally]) -> dict[tuple[str, str], Tally]:
    """Rows keyed as ``Evidence``."""
    return {(t.prefix, t.operator): t for t in rows}


def prefixes(number: str) -> tuple[str, ...]:
    """The prefixes of ``number`` that carry evidence, shortest first (what the store loads)."""
    return tuple(number[:n] for n in range(MIN_LENGTH, len(number) - FINEST_REST + 1))


def observe(evidence: Evidence, number: str, operator: str, delivered: bool, now: float) -> list[Tally]:
    """The rows to upsert after ``operator`` delivered (or failed) to ``number``: +1 at every
    tracked prefix, on top of the aged counts."""
    out = []
    for p in prefixes(number):
        t = evidence.get((p, operator), Tally(p, operator, at=now)).aged(now)
        out.append(Tally(p, operator, t.delivered + delivered, t.failed + (not delivered), now))
    return out


def lesson(evidence: Evidence, number: str, delivered_by: str | None, failed: Iterable[str],
           now: float) -> list[Tally]:
    """The rows to upsert when a message to ``number`` ended: delivered by ``delivered_by`` after
    the operators in ``failed`` failed. Nothing when nobody delivered (see the module's docstring)."""
    if delivered_by is None:
        return []
    work = dict(evidence)
    for op, ok in [(op, False) for op in failed if op != delivered_by] + [(delivered_by, True)]:
        work.update(index(observe(work, number, op, ok, now)))
    return [t for key, t in work.items() if evidence.get(key) is not t]


def basis(evidence: Evidence, number: str, now: float) -> str | None:
    """The longest prefix of ``number`` with ``ENOUGH`` decayed outcomes (None: no block knowledge)."""
    totals: dict[str, float] = {}
    for (p, _), t in evidence.items():
        totals[p] = totals.get(p, 0.0) + t.outcomes * _decay(t.at, now)
    for p in reversed(prefixes(number)):
        if totals.get(p, 0.0) >= ENOUGH:
            return p
    return None


def delivery_chances(evidence: Evidence, prefix: str, operators: Iterable[str], now: float) -> dict[str, float]:
    """Each operator's chance to deliver under ``prefix``: Beta(1, 1) over its aged counts there."""
    out = {}
    for op in operators:
        t = evidence.get((prefix, op), Tally(prefix, op)).aged(now)
        out[op] = (t.delivered + 1.0) / (t.outcomes + 2.0)
    return out


def expected_cost(order: Sequence[tuple[Decimal | float, float]]) -> float:
    """What trying ``(cost, chance)`` in order until one delivers costs on average, failures taken
    as independent: each cost weighs by the chance that every one before it failed."""
    reach = list(accumulate((1.0 - p for _, p in order[:-1]), lambda a, b: a * b, initial=1.0))
    return sum(float(c) * r for (c, _), r in zip(order, reach))


def block_order(options: Sequence[OperatorOption], evidence: Evidence, number: str, now: float) -> list[str]:
    """The profile's operators (``options`` in profile order) in the order of least expected cost
    for a number with no history of its own (see the module's docstring)."""
    prefix = basis(evidence, number, now)
    if prefix is None:
        keyed = [((o.cost, i), o.name) for i, o in enumerate(options)]
    else:
        p = delivery_chances(evidence, prefix, (o.name for o in options), now)
        keyed = [((float(o.cost) / p[o.name], -p[o.name], i), o.name) for i, o in enumerate(options)]
    return [name for _, name in sorted(keyed)]
