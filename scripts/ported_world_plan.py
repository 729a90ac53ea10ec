"""The number-plan world through a real gateway (issue 14): ``scripts/ported_world.py --plan``.

Why: tests/number_plan.py checks the operator choice of SPEC §7 as pure decisions; this runs the same
world and rounds (24 blocks, 15 % ported, 2 % dead; new numbers in known blocks; second messages;
re-ported numbers) through an in-process ``smscore.app.Gateway`` with its SQLite store and simulated
operators, so the store's block evidence, the claim and the pipeline's choice are the ones measured.
The simulated operators reach what the world says: each gets every number it does not reach as an
``unreachable_prefixes`` entry. Messages go one at a time, each final before the next, as in the
model, so the figures can be compared with it round by round.

With ``--lookup-cost`` the gateway also has ``[lookup]``: a simulated HLR/MNP service
(tests/lookup_service.py) answers each number's network from the world (the operator whose subscriber
it is now, or null for a dead number), and the operators' ``networks`` say who reaches which: the
cheap one its own subscribers, the middle one its own and the cheap one's, the aggregator every
network. The look-ups the gateway asked are paid in the figures.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

HERE = Path(__file__).resolve().parent
for path in (HERE, HERE.parent):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from ported_world import API_KEY, FINAL, _Client, _sleep, _start_gateway, attempts_of  # noqa: E402


#: who reaches which network with look-ups: tests/number_plan.py's REACHED_BY, by operator
NETWORKS = {"cheap": ["cheap"], "mid": ["cheap", "mid"], "dear": ["*"]}


def network_of(reached: frozenset[str]) -> str | None:
    """The look-up's answer for a number ``reached`` by these operators: whose subscriber it is."""
    from tests import number_plan as plan

    return next((home for home, r in plan.REACHED_BY.items() if r == reached), None)


def plan_config_text(db: Path, reach: dict[str, frozenset[str]], prices: dict[str, Decimal],
                     receipt_delay: str = "0ms", lookup: tuple[str, Decimal] | None = None) -> str:
    """The gateway's config for the number-plan world: one simulated operator per price, each unable
    to deliver the numbers of ``reach`` it does not reach (whole numbers as its unreachable prefixes).
    ``lookup``: ``(url, cost)`` of a look-up service, and each operator's ``networks``."""
    lines = [
        "[gateway]", 'node = "plan"', 'reply_profile = "standard"',
        "[store]", f'url = "sqlite:///{db.name}"',
        "[http]", 'listen = "127.0.0.1:0"',
        "[metrics]", 'listen = "127.0.0.1:0"',
    ]
    for op, cost in prices.items():
        unreached = sorted(n for n, able in reach.items() if op not in able)
        lines += [f"[operators.{op}]", 'type = "simulated"', f"cost = {cost}",
                  f"unreachable_prefixes = {json.dumps(unreached)}", f'receipt_delay = "{receipt_delay}"']
        if lookup is not None:
            lines.append(f"networks = {json.dumps(NETWORKS[op])}")
    if lookup is not None:
        lines += ["[lookup]", f"url = {json.dumps(lookup[0])}", f'cost = "{lookup[1]}"']
    lines += ["[profiles.standard]", f"operators = {json.dumps(list(prices))}",
              "[accounts.world]", f'api_keys = ["{API_KEY}"]', 'senders = ["WORLD"]', 'default_sender = "WORLD"',
              'profile = "standard"', 'billing = "postpaid"']
    return "\n".join(lines) + "\n"


async def _send_each(reactor, client: _Client, numbers: list[str], text: str, timeout: float) -> list[tuple]:
    """One message to each number, one after the other (each final before the next: what one number
    teaches its block is there for the next, as in tests/number_plan.py); ``(number, operators tried)``."""
    out = []
    for number in numbers:
        answer = await client.call("POST", "/v1/messages", {"to": number, "text": text})
        mid = answer["messages"][0]["id"]
        deadline = time.monotonic() + timeout
        while True:
            m = await client.call("GET", f"/v1/messages/{mid}")
            if m["status"] in FINAL:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"number-plan world: {number} not final after {timeout:.0f} s ({m['status']})")
            await _sleep(reactor, 0.002)
        out.append((number, attempts_of(m["events"])))
    return out


async def run_plan(reactor, workdir: Path, seed: int = 14, first: int = 720, new: int = 360,
                   timeout: float = 30.0, log=print, lookup_cost: Decimal | None = None) -> dict:
    """tests/number_plan.py's number-plan world (24 blocks, 15 % ported, 2 % dead) through a real
    gateway: ``first`` numbers (learning), ``new`` numbers in the same blocks, a second message to
    every known number, then 10 % of them move to another operator (the gateway restarts with the
    simulated operators' new reach; what it learned stays in the store) and every known number gets
    one more. Returns ``{"seed", "first", "new", "rounds": [tests.number_plan.figures...]}``;
    ``tests.number_plan.run`` gives the same rounds of the same world through the pure decisions
    (with ``forget_lookups_at_move``: the gateway's look-up answers are memory only, and it restarts).
    ``lookup_cost``: with ``[lookup]`` at that price, a simulated service answering from the world."""
    from smscore.config import parse_config
    from tests import number_plan as plan
    from tests.lookup_service import LookupService

    workdir = Path(workdir)
    world = plan.plan_world(seed)
    first_numbers, new_numbers = world.new_numbers(first), world.new_numbers(new)
    known = first_numbers + new_numbers
    prices = dict(world.prices)

    service = LookupService(lambda number: network_of(world.reach.get(number, frozenset()))) \
        if lookup_cost is not None else None
    lookup = (service.url, lookup_cost) if service is not None else None

    async def start(reach):
        text = plan_config_text(workdir / "plan.db", reach, prices, lookup=lookup)
        (workdir / "plan.toml").write_text(text)
        gw = await _start_gateway(reactor, parse_config(text, path=workdir / "plan.toml"))
        return gw, _Client(reactor, gw.http_port.getHost().port)

    rounds = []
    gw, client = await start(world.reach)
    try:
        last: dict[str, str] = {}  # number -> the operator that delivered its last message
        for name, numbers in (("first numbers", first_numbers), ("new numbers, known blocks", new_numbers),
                              ("second messages", known)):
            t0 = time.monotonic()
            asked = service.count if service is not None else 0
            sent = await _send_each(reactor, client, numbers, name, timeout)
            last.update((n, t[-1]) for n, t in sent if t and t[-1] in world.reach[n])
            rounds.append(plan.figures(world, name, sent, lookups=(service.count - asked) if service else 0,
                                       lookup_cost=lookup_cost or Decimal(0)))
            if log:
                log(f"number-plan world: {name}: {rounds[-1]['attempts']:.3f} attempts, "
                    f"{rounds[-1]['over_oracle']:+.1%} over the oracle, {time.monotonic() - t0:.1f} s")
        moved = frozenset(world.rng.sample(known, round(plan.MOVED * len(known))))
        for number in sorted(moved):
            world.reach[number] = world.move(world.rng, number, world.reach[number])
        lost = frozenset(n for n in moved if world.reach[n] and n in last and last[n] not in world.reach[n])
        await client.close()
        await gw.stop()
        gw = None
        gw, client = await start(world.reach)  # the operators' new reach; the store keeps what was learned
        t0 = time.monotonic()
        asked = service.count if service is not None else 0
        sent = await _send_each(reactor, client, known, "re-ported", timeout)
        rounds.append(plan.figures(world, "re-ported", sent, moved, lost,
                                   (service.count - asked) if service else 0, lookup_cost or Decimal(0)))
        if log:
            log(f"number-plan world: re-ported: {rounds[-1]['attempts']:.3f} attempts, "
                f"{time.monotonic() - t0:.1f} s")
    finally:
        await client.close()
        if gw is not None:
            await gw.stop()
        if service is not None:
            service.close()
    return {"seed": seed, "first": first, "new": new, "lookup_cost": None if lookup_cost is None else str(lookup_cost),
            "rounds": rounds}


def plan_main(args) -> int:
    """``--plan``: the number-plan world through a gateway, printed beside today's cheapest-first
    decision in the same world (tests/number_plan.py's model, ``old -> gateway`` per cell)."""
    from twisted.internet import task
    from twisted.internet.defer import Deferred

    from smscore.logs import configure
    from tests import number_plan as plan

    configure(args.log_level, stream=sys.stderr)
    lookup_cost = Decimal(args.lookup_cost) if args.lookup_cost is not None else None
    seed = 14 if args.seed == 20261122 else args.seed
    workdir = Path(tempfile.mkdtemp(prefix="smsgw-number-plan-"))
    result: dict = {}

    async def go(reactor):
        result.update(await run_plan(reactor, workdir, seed, args.first, args.new, timeout=args.timeout,
                                     log=lambda line: print(line, file=sys.stderr), lookup_cost=lookup_cost))

    try:
        task.react(lambda reactor: Deferred.fromCoroutine(go(reactor)))
    except SystemExit as exc:  # react() always exits; go on unless the world failed
        if exc.code:
            print(f"number-plan world: failed to run (exit {exc.code}); work folder {workdir}", file=sys.stderr)
            raise
    old = plan.run(plan.plan_world, False, seed, args.first, args.new)
    with_ = "" if lookup_cost is None else f", look-ups at {lookup_cost}"
    print(f"\n== number-plan world (seed {seed}; {args.first} + {args.new} numbers; cheap 0.10, mid 0.20, "
          f"dear 0.40): cheapest first (the pure model) -> the gateway{with_}\n" + plan.table(old, result["rounds"]))
    if args.json:
        print(json.dumps(result, indent=2))
    if not args.keep:
        import shutil

        shutil.rmtree(workdir, True)
    return 0
