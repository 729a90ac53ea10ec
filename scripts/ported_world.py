"""The ported-numbers world: does operator choice ("SmartConfirm", SPEC §7) deliver everything it
can, and learn to send each number's next message straight through the cheapest operator that
reaches it?

Three simulated operators with different costs, each unable to deliver some prefixes (numbers ported
away: the SMSC accepts the submit, then sends an UNDELIV receipt):

    prefix   reached by               oracle (cheapest that reaches)
    467010   cheap, mid, dear         op_cheap  0.10
    467011   mid, dear                op_mid    0.15
    467012   dear                     op_dear   0.25
    467013   cheap                    op_cheap  0.10
    467014   cheap, dear              op_cheap  0.10
    467015   mid                      op_mid    0.15
    467016   cheap, mid               op_cheap  0.10
    467017   nobody                   -        (must end `failed`, kept out of the bars)

A seeded population of N numbers (fixed shares per prefix, see GROUPS) gets one message each through
the HTTP API of a real in-process `smscore.app.Gateway` (SQLite in a temporary folder, simulated
operators on loopback SMPP, profile `standard` = all three), in requests of 100 recipients; the
world waits (pulling `GET /v1/messages` by cursor) until every message is final, then reads every
message's history (`GET /v1/messages/{id}`). Then a second message to every number, and (optional) a
third after restarting the gateway on the same store: what was learned must survive a restart.

Per round: delivered ratio over the numbers some operator reaches (must be 100 %); mean attempts per
message (an attempt is a `submitted` event that starts one: after `queued`, not the repeats of
intermediate receipts); cost per delivered message against the oracle's (the cheapest operator that
reaches the number, by the same prefix rules, × parts). Cost is the message's `cost` field when the
gateway fills it, else computed from the attempts (operator cost × parts per attempt); the table says
which. Numbers nobody reaches are reported on their own line: every operator is tried for them
each time, so they would only blur the figures about learning.

Done when (the issue's bars): 100 % delivered in every round; for second messages (and after the
restart) mean attempts ≤ 1.05 and cost per delivered message within 2 % of the oracle's.

    .venv/bin/python scripts/ported_world.py --numbers 2000          # exit 1 when a bar is missed
    .venv/bin/python scripts/ported_world.py --numbers 200 --no-restart --json

Importable: ``await run_world(reactor, workdir, numbers=200)`` returns the figures as a dict
(tests/integration/test_ported_world.py).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

OPERATORS: dict[str, Decimal] = {"op_cheap": Decimal("0.10"), "op_mid": Decimal("0.15"),
                                 "op_dear": Decimal("0.25")}

#: (6-digit prefix, operators that reach it, share of the population in percent)
GROUPS: list[tuple[str, frozenset[str], int]] = [
    ("467010", frozenset({"op_cheap", "op_mid", "op_dear"}), 30),
    ("467011", frozenset({"op_mid", "op_dear"}), 14),
    ("467012", frozenset({"op_dear"}), 10),
    ("467013", frozenset({"op_cheap"}), 10),
    ("467014", frozenset({"op_cheap", "op_dear"}), 10),
    ("467015", frozenset({"op_mid"}), 12),
    ("467016", frozenset({"op_cheap", "op_mid"}), 12),
    ("467017", frozenset(), 2),
]

FINAL = frozenset({"delivered", "failed", "expired", "unknown", "stopped", "rejected"})
API_KEY = "world-key"
BATCH = 100

#: the issue's bars
MAX_ATTEMPTS = 1.05
MAX_COST_OVER_ORACLE = 0.02


def unreachable_prefixes() -> dict[str, list[str]]:
    """Each operator's `unreachable_prefixes`: every prefix of a group it does not reach."""
    return {op: [p for p, reached, _ in GROUPS if op not in reached] for op in OPERATORS}


def config_text(db: Path, receipt_delay: str = "0ms") -> str:
    lines = [
        "[gateway]", 'node = "world"', 'reply_profile = "standard"',
        "[store]", f'url = "sqlite:///{db.name}"',  # relative to the config file, written next to it
        "[http]", 'listen = "127.0.0.1:0"',
        "[metrics]", 'listen = "127.0.0.1:0"',
    ]
    for op, prefixes in unreachable_prefixes().items():
        lines += [f"[operators.{op}]", 'type = "simulated"', f"cost = {OPERATORS[op]}",
                  f"unreachable_prefixes = {json.dumps(prefixes)}", f'receipt_delay = "{receipt_delay}"']
    lines += ["[profiles.standard]", f"operators = {json.dumps(list(OPERATORS))}",
              "[accounts.world]", f'api_keys = ["{API_KEY}"]', 'senders = ["WORLD"]', 'default_sender = "WORLD"',
              'profile = "standard"', 'billing = "postpaid"']
    return "\n".join(lines) + "\n"


def population(n: int, seed: int = 20261122) -> list[str]:
    """N distinct numbers, each group's share rounded (the remainder goes to the first group),
    in a seeded random order."""
    rng = random.Random(seed)
    total = sum(w for _, _, w in GROUPS)
    counts = [n * w // total for _, _, w in GROUPS]
    counts[0] += n - sum(counts)
    numbers: list[str] = []
    for (prefix, _, _), count in zip(GROUPS, counts):
        if count > 100_000:
            raise ValueError(f"at most 100000 numbers per prefix, {prefix} would get {count}")
        numbers += [f"{prefix}{s:05d}" for s in rng.sample(range(100_000), count)]
    rng.shuffle(numbers)
    return numbers


def reaches(operator: str, number: str, table: dict[str, list[str]] | None = None) -> bool:
    """The simulated SMSC's rule: it cannot deliver a number starting with one of its prefixes."""
    table = table or unreachable_prefixes()
    return not number.startswith(tuple(table[operator]))


def oracle(number: str, table: dict[str, list[str]] | None = None) -> str | None:
    """The cheapest operator that reaches ``number`` (None when none does)."""
    table = table or unreachable_prefixes()
    able = [op for op in OPERATORS if reaches(op, number, table)]
    return min(able, key=lambda op: OPERATORS[op]) if able else None


def attempts_of(events: list[dict]) -> list[str]:
    """The operator of each attempt: a `submitted` event that follows one that is neither
    `submitted` nor `buffered` (a receipt for one part of several repeats the status)."""
    out, before = [], None
    for e in events:
        if e["status"] == "submitted" and before not in ("submitted", "buffered"):
            out.append(e["operator"])
        before = e["status"]
    return out


def round_figures(name: str, messages: list[dict], seconds: float) -> dict:
    """The figures of one round from the messages' final states and histories."""
    table = unreachable_prefixes()
    reachable = [m for m in messages if oracle(m["to"], table) is not None]
    dead = [m for m in messages if oracle(m["to"], table) is None]
    delivered = [m for m in reachable if m["status"] == "delivered"]
    attempts = {m["id"]: attempts_of(m["events"]) for m in messages}

    def computed_cost(m) -> Decimal:
        return sum((OPERATORS[op] * m["parts"] for op in attempts[m["id"]] if op in OPERATORS), Decimal(0))

    field_filled = bool(delivered) and all(Decimal(str(m["cost"])) > 0 for m in delivered)
    cost_field = sum((Decimal(str(m["cost"])) for m in delivered), Decimal(0))
    cost_computed = sum((computed_cost(m) for m in delivered), Decimal(0))
    cost = cost_field if field_filled else cost_computed
    oracle_cost = sum((OPERATORS[oracle(m["to"], table)] * m["parts"] for m in reachable), Decimal(0))
    n_del = len(delivered)
    per_delivered = float(cost / n_del) if n_del else float("nan")
    per_oracle = float(oracle_cost / len(reachable)) if reachable else float("nan")
    return {
        "round": name,
        "messages": len(messages),
        "reachable": len(reachable),
        "delivered": n_del,
        "delivered_ratio": n_del / len(reachable) if reachable else 1.0,
        "mean_attempts": (sum(len(attempts[m["id"]]) for m in reachable) / len(reachable)
                          if reachable else float("nan")),
        "mean_attempts_all": (sum(len(a) for a in attempts.values()) / len(messages)
                              if messages else float("nan")),
        "max_attempts": max((len(attempts[m["id"]]) for m in reachable), default=0),
        "cost_per_delivered": per_delivered,
        "oracle_cost_per_message": per_oracle,
        "cost_over_oracle": per_delivered / per_oracle - 1 if n_del and reachable else float("nan"),
        "cost_source": "field" if field_filled else "attempts",
        "cost_per_delivered_field": float(cost_field / n_del) if n_del else float("nan"),
        "cost_per_delivered_attempts": float(cost_computed / n_del) if n_del else float("nan"),
        "via_oracle_operator": (sum(1 for m in delivered if m["operator"] == oracle(m["to"], table)) / n_del
                                if n_del else float("nan")),
        "unreachable_numbers": len(dead),
        "unreachable_failed": sum(1 for m in dead if m["status"] == "failed"),
        "unreachable_mean_attempts": (sum(len(attempts[m["id"]]) for m in dead) / len(dead)
                                      if dead else float("nan")),
        "not_final": sum(1 for m in messages if m["status"] not in FINAL),
        "statuses": _count(m["status"] for m in messages),
        "seconds": round(seconds, 2),
    }


def _count(values) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out


def misses(figures: dict) -> list[str]:
    """The done-when bars this run missed, one sentence each (empty: all met)."""
    out = []
    for r in figures["rounds"]:
        if r["delivered_ratio"] < 1.0 or r["not_final"]:
            out.append(f"{r['round']}: delivered {r['delivered']}/{r['reachable']} reachable "
                       f"({r['delivered_ratio']:.2%}), {r['not_final']} not final")
        if r["unreachable_failed"] != r["unreachable_numbers"]:
            out.append(f"{r['round']}: {r['unreachable_numbers'] - r['unreachable_failed']} numbers nobody "
                       "reaches did not end failed")
    for r in figures["rounds"][1:]:
        if not r["mean_attempts"] <= MAX_ATTEMPTS:
            out.append(f"{r['round']}: mean attempts {r['mean_attempts']:.3f} > {MAX_ATTEMPTS}")
        if not r["cost_over_oracle"] <= MAX_COST_OVER_ORACLE:
            out.append(f"{r['round']}: cost per delivered {r['cost_per_delivered']:.4f} is "
                       f"{r['cost_over_oracle']:+.2%} over the oracle's {r['oracle_cost_per_message']:.4f} "
                       f"(bar {MAX_COST_OVER_ORACLE:.0%})")
    return out


def table(figures: dict) -> str:
    rounds = figures["rounds"]
    rows = [
        ("messages (reachable + nobody reaches)",
         lambda r: f"{r['reachable']} + {r['unreachable_numbers']}"),
        ("delivered / reachable", lambda r: f"{r['delivered_ratio']:.2%}"),
        ("mean attempts (reachable)", lambda r: f"{r['mean_attempts']:.3f}"),
        ("max attempts (reachable)", lambda r: str(r["max_attempts"])),
        ("cost per delivered", lambda r: f"{r['cost_per_delivered']:.4f}"),
        ("oracle cost per message", lambda r: f"{r['oracle_cost_per_message']:.4f}"),
        ("cost over oracle", lambda r: f"{r['cost_over_oracle']:+.2%}"),
        ("cost source", lambda r: r["cost_source"]),
        ("  cost field / from attempts", lambda r: f"{r['cost_per_delivered_field']:.4f} / "
                                                   f"{r['cost_per_delivered_attempts']:.4f}"),
        ("delivered via oracle's operator", lambda r: f"{r['via_oracle_operator']:.2%}"),
        ("nobody reaches: failed, attempts", lambda r: f"{r['unreachable_failed']}/{r['unreachable_numbers']}, "
                                                       f"{r['unreachable_mean_attempts']:.2f}"),
        ("seconds", lambda r: f"{r['seconds']:.1f}"),
    ]
    width = max(len(label) for label, _ in rows)
    cols = [max(18, len(r["round"])) for r in rounds]
    out = [" " * width + "  " + "  ".join(r["round"].rjust(c) for r, c in zip(rounds, cols))]
    for label, fmt in rows:
        out.append(label.ljust(width) + "  " + "  ".join(fmt(r).rjust(c) for r, c in zip(rounds, cols)))
    return "\n".join(out)


# -- driving a gateway --------------------------------------------------------------------------


class _Client:
    """HTTP API calls to one running gateway, through a persistent connection pool."""

    def __init__(self, reactor, port: int, concurrency: int = 16) -> None:
        import treq
        from twisted.internet.defer import DeferredSemaphore
        from twisted.web.client import HTTPConnectionPool

        self.treq = treq
        self.pool = HTTPConnectionPool(reactor, persistent=True)
        self.pool.maxPersistentPerHost = concurrency
        self.url = f"http://127.0.0.1:{port}"
        self.sem = DeferredSemaphore(concurrency)

    async def call(self, method: str, path: str, body=None) -> dict:
        async def once():
            resp = await self.treq.request(
                method, self.url + path, data=json.dumps(body).encode() if body is not None else None,
                headers={"Authorization": [f"Bearer {API_KEY}"], "Content-Type": ["application/json"]},
                pool=self.pool)
            data = await resp.content()
            if resp.code >= 300:
                raise RuntimeError(f"{method} {path}: HTTP {resp.code} {data[:300]!r}")
            return json.loads(data)

        from twisted.internet.defer import Deferred

        return await self.sem.run(lambda: Deferred.fromCoroutine(once()))

    async def close(self) -> None:
        await self.pool.closeCachedConnections()


async def _gather(coros) -> list:
    from twisted.internet.defer import Deferred, gatherResults

    return await gatherResults([Deferred.fromCoroutine(c) for c in coros], consumeErrors=True)


async def _sleep(reactor, seconds: float) -> None:
    from twisted.internet.task import deferLater

    await deferLater(reactor, seconds, lambda: None)


async def _start_gateway(reactor, config, timeout: float = 20.0):
    from prometheus_client import CollectorRegistry

    from smscore.app import Gateway

    gw = Gateway(config, reactor, CollectorRegistry())
    await gw.start()
    deadline = time.monotonic() + timeout
    while not all(link.is_up() for link in gw.links.values()):
        if time.monotonic() > deadline:
            await gw.stop()
            raise RuntimeError("ported world: the simulated operators did not bind")
        await _sleep(reactor, 0.02)
    return gw


async def _send_round(reactor, client: _Client, numbers: list[str], text: str, cursor: str,
                      timeout: float) -> tuple[list[dict], str]:
    """One message to every number; returns their final states with histories, and the cursor."""
    batches = [numbers[i:i + BATCH] for i in range(0, len(numbers), BATCH)]
    answers = await _gather(client.call("POST", "/v1/messages", {"to": b, "text": text}) for b in batches)
    ids = [m["id"] for a in answers for m in a["messages"]]
    status = {i: None for i in ids}
    waiting = set(ids)
    deadline = time.monotonic() + timeout
    while waiting:
        page = await client.call("GET", f"/v1/messages?cursor={cursor}&limit=1000")
        for m in page["messages"]:
            if m["id"] in status:
                status[m["id"]] = m["status"]
                if m["status"] in FINAL:
                    waiting.discard(m["id"])
                else:
                    waiting.add(m["id"])
        cursor = page["next_cursor"]
        if len(page["messages"]) == 1000:
            continue
        if not waiting or time.monotonic() > deadline:
            break
        await _sleep(reactor, 0.05)
    messages = await _gather(client.call("GET", f"/v1/messages/{i}") for i in ids)
    return messages, cursor


async def run_world(reactor, workdir: Path, numbers: int = 2000, seed: int = 20261122, restart: bool = True,
                    timeout: float = 120.0, receipt_delay: str = "0ms", log=print) -> dict:
    """Run the world in ``workdir`` (store and config go there); returns the figures:
    ``{"numbers", "seed", "rounds": [round_figures...], "misses": [...]}``."""
    from smscore.config import parse_config

    workdir = Path(workdir)
    text = config_text(workdir / "world.db", receipt_delay)
    (workdir / "world.toml").write_text(text)
    config = parse_config(text, path=workdir / "world.toml")
    population_ = population(numbers, seed)
    plan = [("first message", False), ("second message", False)]
    if restart:
        plan.append(("after a restart", True))
    rounds = []
    cursor = "0"
    gw = await _start_gateway(reactor, config)
    client = _Client(reactor, gw.http_port.getHost().port)
    try:
        for i, (name, restart_first) in enumerate(plan, 1):
            if restart_first:
                await client.close()
                await gw.stop()
                gw = None
                gw = await _start_gateway(reactor, config)
                client = _Client(reactor, gw.http_port.getHost().port)
            t0 = time.monotonic()
            messages, cursor = await _send_round(reactor, client, population_, f"ported world, message {i}",
                                                 cursor, timeout)
            figures = round_figures(name, messages, time.monotonic() - t0)
            rounds.append(figures)
            if log:
                log(f"ported world: {name}: {figures['delivered']}/{figures['reachable']} delivered, "
                    f"{figures['mean_attempts']:.3f} attempts, {figures['seconds']:.1f} s")
    finally:
        await client.close()
        if gw is not None:
            await gw.stop()
    result = {"numbers": numbers, "seed": seed, "rounds": rounds}
    result["misses"] = misses(result)
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--numbers", type=int, default=2000, help="size of the population (default 2000)")
    p.add_argument("--seed", type=int, default=20261122, help="population seed")
    p.add_argument("--no-restart", action="store_true", help="skip the third round after a gateway restart")
    p.add_argument("--receipt-delay", default="0ms", help="simulated operators' receipt delay (default 0ms)")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for each round to end")
    p.add_argument("--json", action="store_true", help="print the figures as JSON after the table")
    p.add_argument("--keep", action="store_true", help="keep the work folder (store, config)")
    p.add_argument("--log-level", default="error", choices=("debug", "info", "warning", "error"),
                   help="gateway logs to stderr at this level (default error)")
    p.add_argument("--plan", action="store_true",
                   help="the number-plan world instead (issue 14: 24 blocks, 15%% ported, 2%% dead; --seed "
                        "defaults to 14), one message at a time, against the pure model's cheapest-first")
    p.add_argument("--first", type=int, default=720, help="--plan: numbers of the learning round (default 720)")
    p.add_argument("--new", type=int, default=360, help="--plan: new numbers in known blocks (default 360)")
    p.add_argument("--lookup-cost", default=None,
                   help="--plan: with [lookup] at this price per look-up, a simulated HLR/MNP service answering "
                        "from the world (e.g. 0.002)")
    args = p.parse_args(argv)
    if args.plan:
        from ported_world_plan import plan_main

        return plan_main(args)

    from twisted.internet import task

    from smscore.logs import configure

    configure(args.log_level, stream=sys.stderr)
    workdir = Path(tempfile.mkdtemp(prefix="smsgw-ported-world-"))
    if not args.keep:
        import atexit
        import shutil

        atexit.register(shutil.rmtree, workdir, True)
    result: dict = {}

    async def go(reactor):
        result.update(await run_world(reactor, workdir, args.numbers, args.seed, restart=not args.no_restart,
                                      timeout=args.timeout, receipt_delay=args.receipt_delay,
                                      log=lambda line: print(line, file=sys.stderr)))

    from twisted.internet.defer import Deferred

    try:
        task.react(lambda reactor: Deferred.fromCoroutine(go(reactor)))
    except SystemExit as exc:
        if exc.code:
            print(f"ported world: failed to run (exit {exc.code}); work folder {workdir}", file=sys.stderr)
            raise
    print(f"\n== ported-numbers world: {args.numbers} numbers (seed {args.seed}), 3 simulated operators "
          f"(cheap 0.10, mid 0.15, dear 0.25), receipt delay {args.receipt_delay}"
          + (f", work folder {workdir}" if args.keep else ""))
    print(table(result))
    if args.json:
        print(json.dumps(result, indent=2))
    if result["misses"]:
        print("bars missed:\n  " + "\n  ".join(result["misses"]))
        return 1
    print(f"bars met: 100% delivered; later rounds <= {MAX_ATTEMPTS} attempts and within "
          f"{MAX_COST_OVER_ORACLE:.0%} of the oracle's cost")
    return 0


if __name__ == "__main__":
    sys.exit(main())
