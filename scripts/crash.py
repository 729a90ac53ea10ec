"""Crash trials: SIGKILL the gateway under traffic, start it again, and check that nothing was lost.

One trial (``run_trial``): a standalone simulated SMSC (``smsgw smsc-sim``, one process) and a
gateway (``smsgw run``, another) with the simulator as an ``smpp`` operator (window 10, one bind),
on a fresh SQLite file or a fresh PostgreSQL database. A load thread POSTs messages (one per
request, and now and then a list of 2–4), recording every 2xx answer's ids; an MO thread makes the
simulator send MO through its control port (``POST /mo``), recording every MO the simulator says
the gateway acknowledged (``{"outcome": "delivered"}``: the deliver_sm_resp was ESME_ROK). At a
random moment (seeded) the gateway is SIGKILLed, then started again with the same node name; the
traffic goes on a little, stops, and the trial waits until every accepted message is final,
reading the store directly (SQLite read-only, or psycopg2). Then it checks:

- every id answered 2xx is in the store and ``delivered``;
- every receipt the simulator got a deliver_sm_resp ESME_ROK for is in the store (its SMSC id is
  a key of ``smsc_ids``, or still held in ``orphan_receipts`` when it was the receipt of a submit
  whose response the killed gateway never stored), and its message is ``delivered``;
- every acknowledged MO is in ``mo_messages``;
- duplicates (per destination: submits the simulator accepted, minus one) number at most
  ``window × binds`` (one crash, SPEC §11), and each is a first submit on a session of the killed
  gateway followed by one on a session of the restarted one.

Two deterministic cases make races the random trials hit only now and then happen every time:
``run_slow_commit`` (the store cannot commit while the gateway submits, then SIGKILL: only what
was in a window may go twice) and ``run_restart_backlog`` (a SIGKILL while holding more than one
claim batch of queued messages, then a restart at once: each is sent once). ``--cases`` runs them.

The restarted gateway's ``smsgw_submit_unanswered_total`` is printed next to the duplicates; it
starts from zero at the restart, so it cannot count what the killed process had in its window:
the bound above is what is checked.

The simulator needs one log line it does not have: which receipt was acknowledged. It runs here as
``smsgw smsc-sim`` through a small boot (``SIM_BOOT``) that fills the scenario hook
``SimulatedSMSC.receipt_acknowledged`` with a log line "receipt acknowledged" (``smsc_message_id``,
``session``); everything else is the standalone simulator as shipped.

CLI::

    .venv/bin/python scripts/crash.py --store sqlite --trials 10 --messages 400
    .venv/bin/python scripts/crash.py --store postgresql --pg-url URL --trials 10

(``--pg-url`` or ``SMSGW_BENCH_PG_URL`` / ``SMSGW_TEST_PG_URL`` name a server; each trial creates a
database of its own there and drops it.) Exit status 1 when a trial failed a check.
``tests/e2e/test_crash_trials.py`` runs three short trials per store.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from crash_rig import API_KEY, Gateway, Load, MoLoad, Sim, StoreReader, log_entries  # noqa: E402
from crash_slow_commit import run_slow_commit  # noqa: E402

from connectors.smpp.receipts import keys_for_receipt  # noqa: E402
from tests.harness.pg import create_database, drop_database  # noqa: E402
from tests.harness.waiting import wait_until  # noqa: E402


# -- one trial ------------------------------------------------------------------------------------
@dataclass
class TrialResult:
    store: str
    trial: int
    seed: int
    kill_after: float = 0.0
    accepted: int = 0
    accepted_before_kill: int = 0
    unanswered_posts: int = 0
    delivered: int = 0
    receipts_acked: int = 0
    mo_acked: int = 0
    mo_tried: int = 0
    submits: int = 0
    duplicates: int = 0
    bound: int = 0
    unanswered_counter: float = 0.0
    restart_seconds: float = 0.0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def line(self) -> str:
        return (f"{self.store:<10} trial {self.trial:>2} seed {self.seed}: kill at {self.kill_after:.2f}s "
                f"({self.accepted_before_kill} accepted by then), accepted {self.accepted} "
                f"(+{self.unanswered_posts} posts unanswered), delivered {self.delivered}, "
                f"receipts acked {self.receipts_acked}, MO acked {self.mo_acked}/{self.mo_tried}, "
                f"submits {self.submits}, duplicates {self.duplicates} (bound {self.bound}; restarted "
                f"gateway's submit_unanswered {self.unanswered_counter:.0f}), restart {self.restart_seconds:.2f}s, "
                f"{self.seconds:.1f}s: {'ok' if self.ok else 'FAILED: ' + '; '.join(self.problems)}")


def run_trial(store: str, trial: int, seed: int, workdir: Path, *, pg_url: str | None = None,
              messages: int = 400, rate: float | None = None, window: int = 10, binds: int = 1,
              kill_between: tuple[float, float] = (0.5, 2.0), after: float = 1.0,
              final_timeout: float = 60.0) -> TrialResult:
    """One crash trial (see the module docstring). ``workdir`` holds the logs (and the SQLite file).
    ``pg_url`` is the URL of an empty PostgreSQL database for ``store == "postgresql"``. ``rate``
    (messages a second offered) defaults to spreading ``messages`` over the latest kill, the restart
    and ``after``, so that traffic runs before, during and after the crash."""
    if rate is None:
        rate = messages / (kill_between[1] + 1.0 + after)
    t0 = time.monotonic()
    rng = random.Random(seed)
    result = TrialResult(store, trial, seed, bound=window * binds)
    result.kill_after = round(rng.uniform(*kill_between), 3)
    workdir.mkdir(parents=True, exist_ok=True)
    if store == "sqlite":
        reader = StoreReader(sqlite_path=workdir / "crash.db")
        store_url = "sqlite:///crash.db"
    elif store == "postgresql":
        if not pg_url:
            raise ValueError("a PostgreSQL trial needs pg_url")
        reader = StoreReader(pg_url=pg_url)
        store_url = pg_url
    else:
        raise ValueError(f"unknown store {store!r}")

    sim = Sim(workdir, window=window).start()
    gw = Gateway(workdir, store_url, sim.smpp_port, window=window, binds=binds)
    load = mo = None
    try:
        gw.start()
        load = Load(gw, rng, rate, messages).start()
        mo = MoLoad(sim, trial).start()
        time.sleep(max(0.0, load.started + result.kill_after - time.monotonic()))
        gw.kill()
        with load.lock:
            result.accepted_before_kill = len(load.accepted)
        # Sessions the killed gateway had bound: everything bound so far.
        old_sessions = {e["session"] for e in log_entries(sim.log) if e.get("event") == "esme bound"}
        restart = time.monotonic()
        gw.start(ready=False)
        result.restart_seconds = time.monotonic() - restart
        time.sleep(after)
        load.join()
        mo.join()
        accepted = dict(load.accepted)
        result.accepted, result.unanswered_posts = len(accepted), load.unanswered
        result.mo_acked, result.mo_tried = len(mo.acked), sum(mo.outcomes.values())

        def all_final():
            stored = reader.messages()
            return all(mid in stored and stored[mid][1] in FINAL for mid in accepted)

        try:
            wait_until(all_final, final_timeout, 0.25, what="every accepted message final")
        except TimeoutError as exc:
            result.problems.append(f"{exc}: store has {reader.count_by_status()}")
        time.sleep(0.5)  # receipts on their way are acknowledged by now
        result.unanswered_counter = gw.metric("smsgw_submit_unanswered_total", operator="smsc")
        code = gw.stop()
        if code != 0:
            result.problems.append(f"the restarted gateway exited with {code} on SIGTERM")
        sim.stop()
        check(result, reader, accepted, mo.acked, log_entries(sim.log), old_sessions)
    finally:
        for t in (load, mo):
            if t is not None:
                t.stop.set()
        gw.stop()
        sim.stop()
        result.seconds = time.monotonic() - t0
    return result


FINAL = {"delivered", "failed", "expired", "unknown", "stopped", "rejected"}


def check(result: TrialResult, reader: StoreReader, accepted: dict[str, str], mo_acked: list[str],
          sim_log: list[dict], old_sessions: set[str]) -> None:
    """The checks of the module docstring; problems go to ``result.problems``."""
    problems = result.problems
    stored = reader.messages()
    missing = [mid for mid in accepted if mid not in stored]
    if missing:
        problems.append(f"{len(missing)} accepted messages not in the store, e.g. {missing[:3]}")
    not_delivered = [(mid, stored[mid][1]) for mid in accepted if mid in stored and stored[mid][1] != "delivered"]
    if not_delivered:
        problems.append(f"{len(not_delivered)} accepted messages not delivered, e.g. {not_delivered[:3]}")
    result.delivered = sum(1 for mid in accepted if stored.get(mid, ("", ""))[1] == "delivered")

    # The simulator's view: submits per destination, and the receipts it was told ESME_ROK for.
    submits: dict[str, list[str]] = {}
    destination_of: dict[str, str] = {}  # SMSC message id -> destination
    acked_receipts: list[str] = []
    for e in sim_log:
        if e.get("event") == "submit_sm accepted":
            submits.setdefault(e["destination_addr"], []).append(e["session"])
            destination_of[e["smsc_message_id"]] = e["destination_addr"]
        elif e.get("event") == "receipt acknowledged":
            acked_receipts.append(e["smsc_message_id"])
    result.submits = sum(len(s) for s in submits.values())
    result.receipts_acked = len(acked_receipts)
    not_submitted = [to for to in accepted.values() if to not in submits]
    if not_submitted:
        problems.append(f"{len(not_submitted)} accepted destinations never submitted, e.g. {not_submitted[:3]}")

    by_destination: dict[str, list[str]] = {}
    for mid, (to, status) in stored.items():
        by_destination.setdefault(to, []).append(status)
    known = reader.smsc_keys() | reader.orphan_keys()
    lost_receipts, undelivered_receipts = [], []
    for smsc_id in acked_receipts:
        if not set(keys_for_receipt(smsc_id)) & known:
            lost_receipts.append(smsc_id)
        to = destination_of.get(smsc_id)
        if to is None or by_destination.get(to) != ["delivered"]:
            undelivered_receipts.append((smsc_id, to, by_destination.get(to)))
    if lost_receipts:
        problems.append(f"{len(lost_receipts)} acknowledged receipts not in the store, e.g. {lost_receipts[:3]}")
    if undelivered_receipts:
        problems.append(f"{len(undelivered_receipts)} acknowledged receipts whose message is not delivered, "
                        f"e.g. {undelivered_receipts[:3]}")

    mo_stored = reader.mo_bodies()
    lost_mo = [text for text in mo_acked if text not in mo_stored]
    if lost_mo:
        problems.append(f"{len(lost_mo)} acknowledged MO not in the store, e.g. {lost_mo[:3]}")

    twice = {to: sessions for to, sessions in submits.items() if len(sessions) > 1}
    result.duplicates = sum(len(s) - 1 for s in twice.values())
    if result.duplicates > result.bound:
        problems.append(f"{result.duplicates} duplicate submits, more than window x binds = {result.bound}: "
                        f"{dict(list(twice.items())[:12])}")
    odd = {to: s for to, s in twice.items()
           if not (len(s) == 2 and s[0] in old_sessions and s[1] not in old_sessions)}
    if odd:
        problems.append(f"duplicates other than one submit before the crash and one after: {dict(list(odd.items())[:5])}")


@dataclass
class BacklogResult:
    store: str
    messages: int
    delivered: int = 0
    duplicates: int = 0
    most_submits: int = 0
    never_submitted: int = 0
    problems: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (f"{self.store:<10} backlog: {self.messages} held at the crash, {self.delivered} delivered after the "
                f"restart, {self.never_submitted} never submitted, {self.duplicates} duplicate submits (one "
                f"message up to {self.most_submits} times): "
                f"{'ok' if not self.problems else 'FAILED: ' + '; '.join(self.problems)}")


def run_restart_backlog(store: str, workdir: Path, *, pg_url: str | None = None, messages: int = 3000,
                        window: int = 10, wait: float = 40.0) -> BacklogResult:
    """SPEC §10-11: ``messages`` are accepted while the SMSC is away (so the gateway holds them,
    claimed by its node, in memory: more than one claim batch of 1,000), the gateway is SIGKILLed,
    the SMSC comes up and the gateway is started again at once with the same node name. Nothing
    was in a window at the crash, so every message must be delivered, each submitted once."""
    result = BacklogResult(store, messages)
    workdir.mkdir(parents=True, exist_ok=True)
    reader = StoreReader(sqlite_path=workdir / "crash.db" if store == "sqlite" else None, pg_url=pg_url)
    sim = Sim(workdir, window=window)
    gw = Gateway(workdir, "sqlite:///crash.db" if store == "sqlite" else pg_url, sim.smpp_port, window=window)
    try:
        gw.start(ready=False)
        ids = []
        for first in range(0, messages, 100):
            numbers = [f"4672{i:07d}" for i in range(first, min(messages, first + 100))]
            req = urllib.request.Request(f"{gw.url}/v1/messages", method="POST",
                                         data=json.dumps({"to": numbers, "text": "backlog"}).encode(),
                                         headers={"Authorization": f"Bearer {API_KEY}",
                                                  "Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=30) as resp:
                ids += [m["id"] for m in json.loads(resp.read())["messages"]]
        gw.kill()
        sim.start()
        gw.start(ready=False)
        try:
            wait_until(lambda: all(reader.messages().get(mid, ("", ""))[1] == "delivered" for mid in ids), wait, 0.5,
                       what="every message delivered after the restart")
        except TimeoutError as exc:
            result.problems.append(f"{exc}: store has {reader.count_by_status()}")
        time.sleep(0.3)
        gw.stop()
        sim.stop()
        stored = reader.messages()
        result.delivered = sum(1 for mid in ids if stored.get(mid, ("", ""))[1] == "delivered")
        submits: dict[str, int] = {}
        for e in log_entries(sim.log):
            if e.get("event") == "submit_sm accepted":
                submits[e["destination_addr"]] = submits.get(e["destination_addr"], 0) + 1
        result.duplicates = sum(n - 1 for n in submits.values())
        result.most_submits = max(submits.values(), default=0)
        result.never_submitted = messages - len(submits)
        if result.duplicates:
            result.problems.append(f"{result.duplicates} duplicate submits though no submit was in a window at the crash")
    finally:
        gw.stop()
        sim.stop()
    return result


# -- CLI ------------------------------------------------------------------------------------------
def summary(results: list[TrialResult]) -> str:
    lines = []
    for store in dict.fromkeys(r.store for r in results):
        rs = [r for r in results if r.store == store]
        dups = [r.duplicates for r in rs]
        lines.append(
            f"{store}: {sum(r.ok for r in rs)}/{len(rs)} trials passed; accepted {sum(r.accepted for r in rs)}, "
            f"delivered {sum(r.delivered for r in rs)}, receipts acked {sum(r.receipts_acked for r in rs)}, "
            f"MO acked {sum(r.mo_acked for r in rs)}, duplicates total {sum(dups)} (max {max(dups)} per crash, "
            f"bound {rs[0].bound}), restart to /healthz mean {sum(r.restart_seconds for r in rs) / len(rs):.2f}s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--store", choices=["sqlite", "postgresql"], action="append",
                   help="store to crash (repeatable; default sqlite)")
    p.add_argument("--trials", type=int, default=5, help="trials per store (default 5)")
    p.add_argument("--messages", type=int, default=400, help="messages per trial at most (default 400)")
    p.add_argument("--rate", type=float, default=None,
                   help="messages per second offered (default: --messages spread over about 4 s)")
    p.add_argument("--window", type=int, default=10, help="SMPP window (default 10)")
    p.add_argument("--binds", type=int, default=1, help="SMPP binds (default 1)")
    p.add_argument("--seed", type=int, default=20261122, help="trial i uses seed + i")
    p.add_argument("--pg-url", default=os.environ.get("SMSGW_BENCH_PG_URL") or os.environ.get("SMSGW_TEST_PG_URL"),
                   help="a PostgreSQL server (default $SMSGW_BENCH_PG_URL, then $SMSGW_TEST_PG_URL); "
                        "each trial creates and drops a database there")
    p.add_argument("--cases", action="store_true",
                   help="also run the deterministic cases (slow commit, restart with a backlog) per store")
    p.add_argument("--keep", action="store_true", help="keep the logs (and databases) of every trial")
    args = p.parse_args(argv)
    stores = args.store or ["sqlite"]
    if "postgresql" in stores and not args.pg_url:
        p.error("--store postgresql needs --pg-url (or SMSGW_BENCH_PG_URL)")
    base = Path(tempfile.mkdtemp(prefix="smsgw-crash-"))
    print(f"crash trials: {', '.join(stores)}, {args.trials} each, up to {args.messages} messages at "
          f"{args.rate or args.messages / 4:.0f}/s, window {args.window} x {args.binds} bind(s); logs in {base}", flush=True)
    results = []
    for store in stores:
        for i in range(args.trials):
            workdir = base / f"{store}-{i}"
            url = create_database(args.pg_url, prefix="smsgw_crash") if store == "postgresql" else None
            try:
                r = run_trial(store, i, args.seed + i, workdir, pg_url=url, messages=args.messages,
                              rate=args.rate, window=args.window, binds=args.binds)
            finally:
                if url and not args.keep:
                    drop_database(args.pg_url, url)
            results.append(r)
            print(r.line(), flush=True)
            if r.ok and not args.keep:
                for f in workdir.iterdir():
                    f.unlink()
                workdir.rmdir()
    print(summary(results))
    failed = [r for r in results if not r.ok]
    if args.cases:
        for store in stores:
            for name, case in (("slow-commit", run_slow_commit), ("backlog", run_restart_backlog)):
                url = create_database(args.pg_url, prefix="smsgw_crash") if store == "postgresql" else None
                try:
                    c = case(store, base / f"{store}-{name}", pg_url=url)
                finally:
                    if url and not args.keep:
                        drop_database(args.pg_url, url)
                print(c.line(), flush=True)
                if c.problems:
                    failed.append(c)
    if not failed and not args.keep:
        shutil.rmtree(base, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
