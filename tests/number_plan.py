"""Issue 14's number-plan world, pure: does operator choice learn the number plan, and does it still
hold where there is no plan to learn? No gateway, no store, no time but a float: each message is
tried operator after operator, as the pipeline would, through a decision function, and the world
says at once whether the operator reached the number.

The number-plan world (``plan_world``): 24 blocks ``4676BB`` + 5 digits, 10 allocated to the cheap
operator, 8 to the middle one, 6 to the dear aggregator (the incumbent holds most). Of the numbers,
2 % are dead and 15 % ported away from their block's operator, to one of the other two at random.
Prices: cheap 0.10, mid 0.20, dear 0.40. Reach is nested, as with real MVNOs and aggregators: cheap
reaches only its own subscribers, mid its own and cheap's, dear every live number.

The interleaved world (``interleaved_world``): no blocks. Numbers are drawn at random over the same
range and each one's reach is drawn from ``scripts/ported_world.py``'s groups and shares (some
numbers only cheap reaches, some only mid, some cheap and dear, ...), prices as there (0.10, 0.15,
0.25): a number's prefix says nothing about it.

Rounds (``run``): 720 first numbers (learning); 360 new numbers (the same blocks); a second message to
the 1,080 known numbers; then 10 % of them move to another operator and every known number gets one
more message ("re-ported").

Decisions (``Gateway``): ``old`` is today's: ``routing.rank`` with what ``learning`` knows of the
number; ``new`` adds ``policies.blocks``: ``routing.rank`` with ``block_order`` over the evidence
``blocks.lesson`` gathered, taught when a message gave the number a new operator (its first, or
another after its own failed). Block evidence is loaded only when the number has no operator of its
own, or its own failed.

Figures per round (``figures``): mean attempts over the numbers some operator reaches; cost per
delivered message (every attempt paid) against the oracle's (the cheapest operator that reaches each
number, one attempt); delivered share of the reachable; dead numbers that ended failed; in the
re-ported round, the attempts of the moved numbers whose operator lost them, and of the others.

    .venv/bin/python tests/number_plan.py          # both worlds, old -> new, seeds 14-18
    .venv/bin/python tests/number_plan.py 7 8 9    # other seeds
"""

from __future__ import annotations

import importlib.util
import random
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from policies import blocks, number_lookup  # noqa: E402
from policies.learning import Learned, failed_lately, learn  # noqa: E402
from policies.routing import OperatorOption, rank  # noqa: E402

PLAN_PRICES: dict[str, Decimal] = {"cheap": Decimal("0.10"), "mid": Decimal("0.20"), "dear": Decimal("0.40")}
#: who reaches a subscriber of each operator (nested: an MVNO's host and an aggregator reach it too)
REACHED_BY: dict[str, frozenset[str]] = {"cheap": frozenset({"cheap", "mid", "dear"}),
                                         "mid": frozenset({"mid", "dear"}), "dear": frozenset({"dear"})}
BLOCKS = {"cheap": 10, "mid": 8, "dear": 6}
COUNTRY = "4676"
PORTED, DEAD, MOVED = 0.15, 0.02, 0.10
DAY = 24 * 3600.0


def _ported_world():
    spec = importlib.util.spec_from_file_location("ported_world", ROOT / "scripts" / "ported_world.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class World:
    """Who reaches each number, and how new numbers and moves are drawn."""

    prices: Mapping[str, Decimal]
    draw: Callable[[random.Random], tuple[str, frozenset[str]]]  # a new number and who reaches it
    move: Callable[[random.Random, str, frozenset[str]], frozenset[str]]  # who reaches it after a move
    rng: random.Random
    reach: dict[str, frozenset[str]] = field(default_factory=dict)

    def new_numbers(self, n: int) -> list[str]:
        out = []
        while len(out) < n:
            number, reached = self.draw(self.rng)
            if number not in self.reach:
                self.reach[number] = reached
                out.append(number)
        return out

    def oracle(self, number: str) -> Decimal | None:
        return min((self.prices[op] for op in self.reach[number]), default=None)


def plan_world(seed: int = 14) -> World:
    """24 blocks over three operators; 15 % ported, 2 % dead (see the module's docstring)."""
    rng = random.Random(seed)
    owners = [op for op, n in BLOCKS.items() for _ in range(n)]
    rng.shuffle(owners)
    block_of = dict(zip(sorted(rng.sample(range(100), len(owners))), owners))

    def subscriber_of(rng, owner):
        if rng.random() < PORTED:
            return rng.choice([op for op in BLOCKS if op != owner])
        return owner

    def draw(rng):
        bb, owner = rng.choice(list(block_of.items()))
        number = f"{COUNTRY}{bb:02d}{rng.randrange(100_000):05d}"
        return number, frozenset() if rng.random() < DEAD else REACHED_BY[subscriber_of(rng, owner)]

    def move(rng, number, reached):
        if not reached:
            return reached
        home = next(op for op, r in REACHED_BY.items() if r == reached)
        return REACHED_BY[rng.choice([op for op in BLOCKS if op != home])]

    return World(PLAN_PRICES, draw, move, rng)


def interleaved_world(seed: int = 14) -> World:
    """``scripts/ported_world.py``'s reach groups and shares, drawn per number: no blocks."""
    pw = _ported_world()
    rng = random.Random(seed)
    groups = [reached for _, reached, _ in pw.GROUPS]
    weights = [share for _, _, share in pw.GROUPS]
    live = [g for g in groups if g]

    def draw(rng):
        return f"{COUNTRY}{rng.randrange(10_000_000):07d}", rng.choices(groups, weights)[0]

    def move(rng, number, reached):
        return rng.choice([g for g in live if g != reached]) if reached else reached

    return World(dict(pw.OPERATORS), draw, move, rng)


#: How long the gateway keeps a look-up's answer in the model (``[lookup] cache``; the rounds are a
#: day apart, so every answer of the run is kept unless an operator it named fails).
LOOKUP_CACHE = 30 * DAY


@dataclass
class Gateway:
    """One decision (``use_blocks`` False: today's) with what it has learned, sending as the pipeline
    does: the next operator from the ranking, until one delivers or all were tried. With a
    ``lookup_cost``, HLR/MNP look-ups as ``smscore.number_lookup`` asks them (the answer: who
    reaches the number now, as ``number_lookup.reaching`` turns a network into operators)."""

    prices: Mapping[str, Decimal]
    use_blocks: bool
    lookup_cost: Decimal | None = None
    learned: dict[str, Learned] = field(default_factory=dict)
    evidence: dict[tuple[str, str], blocks.Tally] = field(default_factory=dict)
    answers: dict[str, tuple[frozenset[str], float]] = field(default_factory=dict)
    lookups: int = 0

    def send(self, number: str, reached: frozenset[str], now: float) -> list[str]:
        """The operators tried for one message, in order (the last delivered if any reached)."""
        options = [OperatorOption(op, cost) for op, cost in self.prices.items()]
        known = self.learned.get(number)
        preferred = known.operator if known else None
        lately = failed_lately(known, now) if known else ()
        loaded: dict | None = None  # block evidence, loaded only when the number's own operator is not enough
        order: list[str] = []
        tried: list[str] = []
        reach: frozenset[str] | None = None
        while True:
            if self.use_blocks and loaded is None and (preferred is None or preferred in tried):
                loaded = self.load(number)
                order = blocks.block_order(options, loaded, number, now)
            if self.lookup_cost is not None and (reach is None or reach & set(tried)):
                reach = self.look_up(number, reached, options, loaded, preferred, tried, now)
            first = number_lookup.lookup_choice(options, reach, tried) if reach else None
            ranking = rank(options, tried, first or preferred, lately, order)
            if not ranking:
                break
            tried.append(ranking[0].name)
            if tried[-1] in reached:
                break
        delivered_by = tried[-1] if tried and tried[-1] in reached else None
        failed = [op for op in tried if op != delivered_by]
        after = learn(known, delivered_by, [(op, now) for op in failed])
        if after is not None:
            self.learned[number] = after
            if self.use_blocks and after.operator is not None and after.operator != preferred:
                rows = blocks.lesson(self.load(number) if loaded is None else loaded, number, delivered_by, failed, now)
                self.evidence.update(blocks.index(rows))
        return tried

    def look_up(self, number, reached, options, loaded, preferred, tried, now) -> frozenset[str] | None:
        """``NumberLookup.reach``: a kept answer, a new one when worth its price, else None."""
        kept = self.answers.get(number)
        if kept is not None:
            if now - kept[1] <= LOOKUP_CACHE and not kept[0] & set(tried):
                return kept[0]
            del self.answers[number]
        if len(options) < 2:
            return None
        rows = (loaded or {}).values()
        chance = number_lookup.chances(rows, number, [o.name for o in options], now)
        if not number_lookup.worth_asking(number_lookup.saving(options, chance, preferred, tried), self.lookup_cost):
            return None
        self.lookups += 1
        self.answers[number] = (reached, now)
        return reached

    def load(self, number: str) -> dict[tuple[str, str], blocks.Tally]:
        """What the store would load for the number: the tallies of its prefixes."""
        return {k: t for k in ((p, op) for p in blocks.prefixes(number) for op in self.prices)
                if (t := self.evidence.get(k)) is not None}


def figures(world: World, name: str, sent: Sequence[tuple[str, list[str]]],
            moved: frozenset[str] = frozenset(), lost: frozenset[str] = frozenset(), lookups: int = 0,
            lookup_cost: Decimal = Decimal(0)) -> dict:
    """One round's figures from ``(number, operators tried)``; ``lookups`` look-ups at ``lookup_cost``
    were paid too."""
    reachable = [(n, t) for n, t in sent if world.reach[n]]
    dead = [(n, t) for n, t in sent if not world.reach[n]]
    delivered = [(n, t) for n, t in reachable if t and t[-1] in world.reach[n]]
    paid = sum((world.prices[op] for _, t in reachable for op in t), Decimal(0)) + lookups * lookup_cost
    oracle = sum((world.oracle(n) for n, _ in reachable), Decimal(0))

    def mean_attempts(rows):
        return sum(len(t) for _, t in rows) / len(rows) if rows else float("nan")

    return {
        "round": name, "messages": len(sent), "reachable": len(reachable),
        "attempts": mean_attempts(reachable),
        "cost_per_delivered": float(paid) / len(delivered),
        "oracle_per_message": float(oracle) / len(reachable),
        "over_oracle": float(paid / len(delivered)) / float(oracle / len(reachable)) - 1,
        "delivered": len(delivered) / len(reachable),
        "dead": len(dead), "dead_failed": sum(1 for n, t in dead if len(t) == len(world.prices)),
        "moved": len(moved), "lost": len(lost),
        "lost_attempts": mean_attempts([(n, t) for n, t in sent if n in lost]),
        "stayed_attempts": mean_attempts([(n, t) for n, t in reachable if n not in moved]),
        "lookups": lookups / len(sent),
    }


def run(world_of: Callable[[int], World], use_blocks: bool, seed: int = 14, first: int = 720,
        new: int = 360, lookup_cost: Decimal | None = None, forget_lookups_at_move: bool = False) -> list[dict]:
    """The four rounds in one world with one decision; the figures of each (``scripts/ported_world.py
    --plan`` runs the same rounds through a real gateway). ``lookup_cost``: with look-ups at that price;
    ``forget_lookups_at_move``: the look-up answers are lost when the numbers move (the script restarts
    its gateway there, and a gateway keeps them in memory only)."""
    world = world_of(seed)
    gw = Gateway(world.prices, use_blocks, lookup_cost)
    clock = [0.0]

    def send_round(numbers):
        clock[0] += DAY
        out = []
        for number in numbers:
            clock[0] += 1.0
            out.append((number, gw.send(number, world.reach[number], clock[0])))
        return out

    def round_figures(name, numbers, moved=frozenset(), lost=frozenset()):
        before = gw.lookups
        sent = send_round(numbers)
        return figures(world, name, sent, moved, lost, gw.lookups - before, lookup_cost or Decimal(0))

    first = world.new_numbers(first)
    rounds = [round_figures("first numbers", first)]
    second = world.new_numbers(new)
    rounds.append(round_figures("new numbers, known blocks", second))
    known = first + second
    rounds.append(round_figures("second messages", known))
    moved = frozenset(world.rng.sample(known, round(MOVED * len(known))))
    lost = set()
    if forget_lookups_at_move:
        gw.answers.clear()
    for number in sorted(moved):
        world.reach[number] = world.move(world.rng, number, world.reach[number])
        operator = gw.learned[number].operator if number in gw.learned else None
        if operator is not None and operator not in world.reach[number] and world.reach[number]:
            lost.add(number)
    rounds.append(round_figures("re-ported", known, moved, frozenset(lost)))
    return rounds


#: The seeds the tests and the docs average over: one seed is one draw of 24 blocks of ~45 numbers.
SEEDS = range(14, 19)
_COUNTS = frozenset({"messages", "reachable", "dead", "dead_failed", "moved", "lost"})


def averaged(world_of: Callable[[int], World], use_blocks: bool, seeds: Sequence[int] = SEEDS,
             lookup_cost: Decimal | None = None) -> list[dict]:
    """``run`` over several seeds: counts summed, ratios and means averaged (every seed weighs the
    same: the rounds have the same sizes)."""
    runs = [run(world_of, use_blocks, seed, lookup_cost=lookup_cost) for seed in seeds]
    out = []
    for rounds in zip(*runs):
        out.append({k: rounds[0][k] if k == "round" else
                    sum(r[k] for r in rounds) / (1 if k in _COUNTS else len(rounds)) for k in rounds[0]})
    return out


ROWS = [
    ("messages (reachable + dead)", lambda r: f"{r['reachable']:.0f} + {r['dead']:.0f}"),
    ("delivered / reachable", lambda r: f"{r['delivered']:.1%}"),
    ("dead that ended failed", lambda r: f"{r['dead_failed']:.0f}/{r['dead']:.0f}"),
    ("attempts per message", lambda r: f"{r['attempts']:.3f}"),
    ("cost per delivered", lambda r: f"{r['cost_per_delivered']:.4f}"),
    ("oracle per message", lambda r: f"{r['oracle_per_message']:.4f}"),
    ("cost over oracle", lambda r: f"{r['over_oracle']:+.1%}"),
    ("moved: lost their operator", lambda r: f"{r['lost']:.0f}/{r['moved']:.0f}" if r["moved"] else "-"),
    ("  attempts to find them again", lambda r: f"{r['lost_attempts']:.3f}" if r["lost"] else "-"),
    ("  attempts, numbers that stayed", lambda r: f"{r['stayed_attempts']:.3f}" if r["moved"] else "-"),
    ("look-ups per message (paid above)", lambda r: f"{r['lookups']:.2f}"),
]

#: A look-up's price in the reports: HLR/MNP look-ups cost a fraction of a cent, about 1-2 % of the
#: cheapest SMS here (the decision asks only where it expects to save more; see docs/routing.md).
LOOKUP_PRICE = Decimal("0.002")


def table(old: list[dict], new: list[dict]) -> str:
    """Rounds as columns, each ``old -> new``."""
    width = max(len(label) for label, _ in ROWS)
    cols = [max(len(r["round"]), 21) for r in new]
    out = [" " * width + " | " + " | ".join(r["round"].center(c) for r, c in zip(new, cols))]
    out.append("-" * len(out[0]))
    for label, fmt in ROWS:
        cells = [f"{fmt(o)} -> {fmt(n)}" if fmt(o) != fmt(n) else fmt(n) for o, n in zip(old, new)]
        out.append(label.ljust(width) + " | " + " | ".join(c.center(w) for c, w in zip(cells, cols)))
    return "\n".join(out)


def report(seeds: Sequence[int] = SEEDS, lookup_cost: Decimal = LOOKUP_PRICE) -> str:
    """Both worlds' tables, summed and averaged over ``seeds``: per number only -> with blocks, then
    with blocks -> with blocks and look-ups at ``lookup_cost``."""
    parts = []
    for title, world_of in [("number-plan world (24 blocks; cheap 0.10, mid 0.20, dear 0.40)", plan_world),
                            ("interleaved world, no blocks (ported_world's groups; 0.10, 0.15, 0.25)",
                             interleaved_world)]:
        old, blocked = averaged(world_of, False, seeds), averaged(world_of, True, seeds)
        looked = averaged(world_of, True, seeds, lookup_cost)
        parts.append(f"{title}; seeds {seeds[0]}-{seeds[-1]}: counts summed, figures averaged; "
                     "each cell per number only -> with blocks where they differ\n" + table(old, blocked))
        parts.append(f"the same, with blocks -> with blocks and look-ups at {lookup_cost}\n" + table(blocked, looked))
    return "\n\n".join(parts)


if __name__ == "__main__":
    args = sys.argv[1:]
    price = LOOKUP_PRICE
    if "--lookup-cost" in args:
        i = args.index("--lookup-cost")
        price = Decimal(args[i + 1])
        del args[i:i + 2]
    print(report([int(a) for a in args] or SEEDS, price))
