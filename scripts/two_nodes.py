"""Two gateway nodes on one PostgreSQL: what a second node costs per message, and what a node's
death loses (issue 10: "Two nodes on one PostgreSQL: CPU per message at most 1.1x that of one
node; one killed mid-run, 0 lost").

Why: SPEC §10 lets several nodes share one PostgreSQL store: they claim work with leases, split an
operator's binds between the live nodes by themselves (heartbeats in the store) and take over a
dead node's work. That should cost little: the same messages through two nodes should take about
the CPU they take through one (the bar: at most 1.1x per message), and a node killed under
traffic should lose nothing, sending again at most what it had in its SMPP window.

How: three runs, each with a fresh database on the PostgreSQL server of ``--pg-url`` (else
$SMSGW_BENCH_PG_URL, then $SMSGW_TEST_PG_URL; dropped afterwards), a fresh standalone simulated
SMSC (``smsgw smsc-sim`` as scripts/crash.py starts it: info log, one line per submit) and fresh
``smsgw run`` nodes (``--processes``, default "auto": one per core for every node, so on one
machine two nodes run twice the processes of one; "split" shares the cores out between a run's
nodes; a number gives every node that many, the same node in every run, so B/A is what clustering
itself costs; each node crash.py's gateway config plus ``lease``
(``--lease``, default 3s, the same in every run), an admin key, and the account's
``callback_url`` to this process's signed-callback receiver (scripts/bench_receiver.py) with
``callback_statuses = "final"``). The operator has ``binds = --binds`` (2) and ``window = --window``
(100) for the whole cluster. The load is scripts/bench.py's: -n messages, one per request, over
-c keep-alive connections; a run ends when every accepted message's final status came back to the
receiver.

  A  one node (gw1), holding both binds.
  B  two nodes (gw1, gw2; the same config but for the node name and ports). Before the load it
     waits until the simulator has exactly --binds sessions (TCP connections to its SMPP port) and
     each node's ``GET /v1/admin/binds`` shows its share (1 + 1). Requests alternate between the
     nodes, half the connections to each.
  C  two nodes as in B; the first half of the messages to both nodes, then gw1's ``smsgw run`` and
     every process under it are SIGKILLed (whatever it had claimed, in its window or waiting for
     a receipt is left to gw2, once gw1's lease ran out), and the second half goes to gw2. After
     the load it notes when gw2 held every bind (a figure, not a check).

Measured per run: accepted and end-to-end msg/s, latency, CPU seconds of each node's process tree
(summed over the nodes; in C gw1's until the kill) and CPU ms per message, the simulator's CPU,
the nodes' idle CPU per second just before the load (``--idle`` s: what two nodes cost doing
nothing, which weighs on a small -n), and the PostgreSQL server's CPU (its postmaster's process
tree and reaped children, from /proc: server-wide, only when the server runs on this machine).
The simulator's sessions are counted as TCP connections because it logs no line when an ESME
unbinds (a node giving up a bind at a heartbeat unbinds). Checked: every message answered 2xx has
its final status at the receiver and in the database (0 lost); no node exited or lost a worker
unless killed on purpose, and each stopped cleanly on SIGTERM; destinations the simulator saw
more than once (duplicates): none in A and B, in C at most window x the dead node's binds, each
first submitted before the kill and once more after it. The CPU ratio B/A is a figure, not a
check: it is printed with whether the bar (<= 1.1) is met.

Printed: scripts/bench.py's figures per run, then a small table; written (appended) as JSON lines
to ``--out`` (default var/bench/two-nodes-<timestamp>.jsonl): one per run (bench.py's fields plus
this script's) and a summary line. Exit status 1 on a lost message, a node that died unasked, a
bind split not reached, too many or odd duplicates, or a run that timed out.

Usage::

    .venv/bin/python scripts/two_nodes.py --pg-url URL [-n 10000] [-c 32] [--runs A,B,C] [--out FILE]

(scripts/bench runs it as its phase "nodes", with a throwaway PostgreSQL cluster when no URL is
given.) Loopback only; every process started here is stopped by its PID, with its children.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import signal
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench import SECRET, Scenario, final_stats  # noqa: E402
from bench_load import Sent, drive, request_bodies  # noqa: E402
from bench_receiver import CallbackReceiver  # noqa: E402
from bench_results import Result, report  # noqa: E402
from crash_rig import API_KEY, Gateway, Sim, log_entries  # noqa: E402
from node_probes import postmaster, sessions_at, snapshot, wait_for_binds  # noqa: E402
from restart_scale import submits  # noqa: E402
from smscore.durations import parse_duration  # noqa: E402
from tests.harness.net import free_port  # noqa: E402
from tests.harness.pg import create_database, drop_database, pg_query  # noqa: E402
from tests.harness.processes import cpu_seconds, tree  # noqa: E402
from tests.harness.waiting import wait_until  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
LOAD_KEY = "bench-key"  # the key bench_load.drive sends
ADMIN_KEY = "nodes-admin"
OPERATOR = "smsc"  # crash.py's operator name
BAR = 1.1


@dataclass(frozen=True)
class RunSpec:
    key: str
    scenario: Scenario
    nodes: int
    kill: bool = False

    @property
    def names(self) -> list[str]:
        return [f"gw{i + 1}" for i in range(self.nodes)]


def _scenario(name: str, title: str, prefix: str) -> Scenario:
    return Scenario(name, title, callbacks=True, spec12=(("callback_statuses", '"final"'),), prefix=prefix)


RUNS = {r.key: r for r in (
    RunSpec("A", _scenario("one-node", "one node holding every bind", "4670"), 1),
    RunSpec("B", _scenario("two-nodes", "two nodes, binds split 1+1, requests alternating", "4671"), 2),
    RunSpec("C", _scenario("two-nodes-kill", "two nodes; gw1 SIGKILLed at half the messages, the rest to gw2",
                           "4672"), 2, kill=True),
)}


class Node(Gateway):
    """One node: crash.py's ``smsgw run`` process (``[gateway] processes`` as --processes says, warning log unless --log-level) with its config
    plus a lease, the load's API key, status callbacks to the receiver and an admin key."""

    def __init__(self, workdir: Path, name: str, store_url: str, smpp_port: int, *, window: int, binds: int,
                 lease: str, account_lines: str, log_level: str = "warning", processes: str = "auto") -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        super().__init__(workdir, store_url, smpp_port, window=window, binds=binds, log_level=log_level, node=name)
        self.name = name
        text = self.config.read_text().replace("[gateway]\n", f'[gateway]\nlease = "{lease}"\n', 1)
        if processes != "auto":
            text = text.replace('processes = "auto"', f"processes = {processes}", 1)
        text = text.replace(f'["{API_KEY}"]', f'["{API_KEY}", "{LOAD_KEY}"]', 1)
        self.config.write_text(text + account_lines + f'\n[admin]\napi_keys = ["{ADMIN_KEY}"]\n')
        self.killed = False

    def bound(self) -> int:
        """Bound sessions of the operator, as ``GET /v1/admin/binds`` shows them (-1: no answer)."""
        req = urllib.request.Request(f"{self.url}/v1/admin/binds", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                body = json.loads(resp.read())
        except (OSError, ValueError):
            return -1
        return sum(1 for op in body["operators"] if op["operator"] == OPERATOR for s in op["sessions"] if s["bound"])

    def kill_tree(self) -> None:
        """SIGKILL ``smsgw run`` and every process under it, by their PIDs (the supervisor first)."""
        for pid in tree(self.proc.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(timeout=10)
        self.killed = True

    def workers_died(self) -> int:
        return sum(1 for e in log_entries(self.log) if e.get("event") == "worker died")


def merge(parts: list[Sent]) -> Sent:
    return Sent(requests=[r for p in parts for r in p.requests], errors=sum(p.errors for p in parts),
                samples=[s for p in parts for s in p.samples][:5])


async def drive_split(nodes: list[Node], bodies: list[bytes], concurrency: int) -> list[Sent]:
    """The bodies alternately to each node, ``concurrency`` connections split between them."""
    k = len(nodes)
    return list(await asyncio.gather(*(drive(n.http_port, bodies[i::k], max(1, concurrency // k))
                                       for i, n in enumerate(nodes))))


@dataclass
class Measured:
    result: Result
    cpu_by_node: dict[str, float]
    accepted_by_node: dict[str, int]
    postgres_cpu: float | None
    idle_cpu_per_s: float
    kill: dict = field(default_factory=dict)


async def measure(spec: RunSpec, nodes: list[Node], sim: Sim, bodies: list[bytes], args, cb_port: int,
                  db_url: str, pg_pid: int | None) -> Measured:
    receiver = CallbackReceiver(SECRET)
    await receiver.start(cb_port)
    try:
        processes = sum(len(tree(n.proc.pid)) for n in nodes)
        # what the nodes cost doing nothing (heartbeats, leases, enquire_link), for reading small runs
        idle0 = sum(cpu_seconds(n.proc.pid) for n in nodes)
        await asyncio.sleep(args.idle)
        idle = (sum(cpu_seconds(n.proc.pid) for n in nodes) - idle0) / args.idle if args.idle > 0 else 0.0
        at0 = {n.name: snapshot(n) for n in nodes}
        sim0, pg0 = cpu_seconds(sim.proc.pid), cpu_seconds(pg_pid) if pg_pid else 0.0
        self0 = resource.getrusage(resource.RUSAGE_SELF)
        at1: dict[str, dict] = {}
        kill: dict = {}
        t0 = time.time()
        if spec.kill:
            half = len(bodies) // 2
            first = await drive_split(nodes, bodies[:half], args.concurrency)
            victim = nodes[0]
            before = {i for s in first for i in s.ids}
            at1[victim.name] = snapshot(victim)
            kill["at"] = time.time()
            victim.kill_tree()
            kill["done"] = time.time()
            kill.update(node=victim.name, accepted_before=len(before),
                        not_final_at_kill=len(before - receiver.final_at.keys()),
                        its_not_final_at_kill=len(set(first[0].ids) - receiver.final_at.keys()))
            rest = await drive_split(nodes[1:], bodies[half:], args.concurrency)
            parts = first + rest
            by_node = {victim.name: len(first[0].ids),
                       nodes[1].name: len(first[1].ids) + sum(len(s.ids) for s in rest)}
        else:
            parts = await drive_split(nodes, bodies, args.concurrency)
            by_node = {n.name: len(s.ids) for n, s in zip(nodes, parts)}
        sent = merge(parts)
        submit_end = time.time()
        receiver.expect(sent.ids)
        done = await receiver.wait(submit_end + args.timeout)
        at1.update({n.name: snapshot(n) for n in nodes if not n.killed})
        sim1, pg1 = cpu_seconds(sim.proc.pid), cpu_seconds(pg_pid) if pg_pid else 0.0
        self1 = resource.getrusage(resource.RUSAGE_SELF)
    finally:
        await receiver.stop()
    wanted = set(sent.ids)
    in_store, total = final_stats(db_url)
    cpu_by_node = {name: at1[name]["cpu"] - at0[name]["cpu"] for name in at0}
    result = Result(
        scenario=spec.scenario, messages=len(bodies), store="postgresql", concurrency=args.concurrency, t0=t0,
        submit_end=submit_end, sent=sent, final_at={i: t for i, t in receiver.final_at.items() if i in wanted},
        statuses=receiver.statuses, done=done,
        cpu={"smsgw": sum(cpu_by_node.values()), "smsc_sim": sim1 - sim0},
        threads={k: sum(at1[name]["threads"][k] - at0[name]["threads"][k] for name in at0)
                 for k in ("main", "threads")},
        processes=processes, bench_cpu=(self1.ru_utime - self0.ru_utime) + (self1.ru_stime - self0.ru_stime),
        peak_rss_mb=sum(a["rss"] for a in at1.values()), store_final=sum(1 for i in in_store if i in wanted),
        store_total=total, receiver=receiver)
    return Measured(result, cpu_by_node, by_node, pg1 - pg0 if pg_pid else None, idle, kill)


def duplicates(sim: Sim, kill: dict, bound: int) -> tuple[int, list[str]]:
    """Submits repeating a destination, and what is wrong with them: without a kill there may be
    none; with one, at most ``bound``, each once before the kill and once after it."""
    seen: dict[str, list[float]] = {}
    for at, to in submits(sim.log):
        seen.setdefault(to, []).append(at)
    twice = {to: times for to, times in seen.items() if len(times) > 1}
    count = sum(len(t) - 1 for t in twice.values())
    problems = []
    if not kill and count:
        problems.append(f"{count} duplicate submits though no node was killed: {list(twice)[:5]}")
    elif kill:
        if count > bound:
            problems.append(f"{count} duplicate submits after one kill, more than window x binds of the dead node "
                            f"= {bound}")
        # the first from the dead node (its log line may come a moment after the kill), the second later
        odd = [to for to, t in twice.items() if not (len(t) == 2 and t[0] <= kill["done"] + 0.5 and t[1] >= kill["at"])]
        if odd:
            problems.append(f"duplicates other than one submit before the kill and one after: {odd[:5]}")
    return count, problems


def node_processes(choice: str, nodes: int) -> str:
    """``[gateway] processes`` of each node: "auto" (the default: one per core, every node), "split"
    (the cores shared out: every run has as many processes in all), or a number."""
    if choice == "split":
        return str(max(1, min(4, os.cpu_count() or 1) // nodes))
    return choice


def run(spec: RunSpec, args, base: Path) -> dict:
    """One run (see the module docstring): its record, with ``problems`` (empty when it passed)."""
    print(f"\n== run {spec.key}: {spec.scenario.title}; {args.messages} messages, one per request, "
          f"{args.concurrency} connections; binds = {args.binds}, window {args.window}, lease {args.lease}",
          flush=True)
    workdir = base / spec.key
    workdir.mkdir(parents=True)
    db_name = f"smsgw_nodes_{uuid.uuid4().hex[:12]}"
    db_url = create_database(args.pg_url, db_name)
    sim = Sim(workdir, window=args.window, receipt_delay=args.receipt_delay, log_level="info")
    nodes: list[Node] = []
    problems: list[str] = []
    extra: dict = {"run": spec.key, "nodes": spec.nodes, "node_names": spec.names, "binds": args.binds,
                   "window": args.window, "lease": args.lease, "receipt_delay": args.receipt_delay,
                   "processes_per_node": node_processes(args.processes, spec.nodes)}
    measured = None
    try:
        sim.start()
        cb_port = free_port()
        lines = spec.scenario.account_lines(cb_port, legacy=False)
        for name in spec.names:
            node = Node(workdir / name, name, db_url, sim.smpp_port, window=args.window, binds=args.binds,
                        lease=args.lease, account_lines=lines, log_level=args.log_level,
                        processes=node_processes(args.processes, spec.nodes))
            nodes.append(node)
            node.start()
        extra["binds_by_node"] = wait_for_binds(sim, nodes, args.binds)
        extra["sim_sessions"] = sessions_at(sim.smpp_port)
        print(f"  (logs in {workdir}) binds held: {extra['binds_by_node']}, sessions at the simulator: "
              f"{extra['sim_sessions']}", flush=True)
        bodies = request_bodies(args.messages, 1, spec.scenario.prefix)
        measured = asyncio.run(measure(spec, nodes, sim, bodies, args, cb_port, db_url, postmaster(db_url)))
        if spec.kill:
            # the survivor takes the dead node's binds once its heartbeat is a lease old (a figure)
            survivor = nodes[-1]
            try:
                wait_until(lambda: survivor.bound() == args.binds and sessions_at(sim.smpp_port) == args.binds,
                           3 * parse_duration(args.lease) + 10, 0.2)
                extra["survivor_took_every_bind_s"] = round(time.time() - measured.kill["at"], 2)
            except TimeoutError:
                extra["survivor_took_every_bind_s"] = None
            extra["survivor_binds_after"] = survivor.bound()
            extra["sim_sessions_after"] = sessions_at(sim.smpp_port)
        time.sleep(0.3)  # the last submits' log lines
        bound = args.window * (extra["binds_by_node"].get(nodes[0].name, 0) if spec.kill else 0)
        count, odd = duplicates(sim, measured.kill, bound)
        extra.update(duplicates=count, duplicate_bound=bound)
        problems += odd
    except (TimeoutError, RuntimeError) as exc:
        problems.append(str(exc))
    finally:
        for node in nodes:
            if node.proc is None:
                continue
            if not node.killed and node.proc.poll() is not None:
                problems.append(f"{node.name} exited by itself with status {node.proc.returncode}")
            died = node.workers_died()
            if died:
                problems.append(f"{node.name}: {died} worker(s) died (its log: {node.log})")
            status = node.stop()
            if not node.killed and status != 0:
                problems.append(f"{node.name} ended with status {status} on SIGTERM")
        sim.stop()
        drop_database(args.pg_url, db_name)
    if measured is None:
        print(f"  FAILED: {'; '.join(problems)}")
        return {**extra, "label": spec.scenario.name, "problems": problems, "ok": False}
    r = measured.result
    report(r, legacy=False)
    record = r.record(legacy=False)
    n = max(1, r.accepted)
    lost_store = r.accepted - r.store_final
    record.update(extra, cpu_by_node={k: round(v, 2) for k, v in measured.cpu_by_node.items()},
                  accepted_by_node=measured.accepted_by_node, lost_in_store=lost_store,
                  idle_cpu_per_s=round(measured.idle_cpu_per_s, 4),
                  postgres_cpu_seconds=None if measured.postgres_cpu is None else round(measured.postgres_cpu, 2),
                  postgres_cpu_ms_per_message=None if measured.postgres_cpu is None
                  else round(measured.postgres_cpu / n * 1000, 3))
    if measured.kill:
        record["kill"] = {k: round(v, 3) if isinstance(v, float) else v for k, v in measured.kill.items()}
    if r.lost or lost_store:
        problems.append(f"lost: {r.lost} without a final status at the receiver, {lost_store} not final in the "
                        f"database (of {r.accepted} accepted)")
    if not r.done:
        problems.append(f"timed out waiting {args.timeout:.0f} s for the final statuses")
    if r.sent.errors and not spec.kill:
        problems.append(f"{r.sent.errors} requests refused or unanswered: {r.sent.samples[:2]}")
    if r.receiver is not None and r.receiver.counts["bad_signatures"]:
        problems.append(f"{r.receiver.counts['bad_signatures']} callbacks with a bad signature")
    print(f"  CPU per node         {', '.join(f'{k} {v:.2f} s' for k, v in measured.cpu_by_node.items())}"
          f"   (accepted: {', '.join(f'{k} {v}' for k, v in measured.accepted_by_node.items())}; "
          f"idle before the load: {measured.idle_cpu_per_s * 1000:.0f} ms CPU per s, all nodes)")
    if record["postgres_cpu_seconds"] is None:
        print("  CPU PostgreSQL                -   (the server is not on this machine)")
    else:
        print(f"  CPU PostgreSQL       {record['postgres_cpu_ms_per_message']:10.3f} ms per message  "
              f"({record['postgres_cpu_seconds']:.2f} s, the whole server)")
    if measured.kill:
        k = measured.kill
        print(f"  killed               {k['node']} after {k['at'] - r.t0:.2f} s, {k['accepted_before']} accepted "
              f"by then ({k['not_final_at_kill']} without a final status, {k['its_not_final_at_kill']} of them "
              f"accepted by {k['node']}); then the survivor held {record.get('survivor_binds_after')} bind(s), "
              f"the simulator {record.get('sim_sessions_after')} session(s), "
              f"{record.get('survivor_took_every_bind_s')} s after the kill")
    if "duplicates" in record:
        print(f"  duplicate submits    {record['duplicates']:10d}   (bound {record['duplicate_bound']})")
    print(f"  lost in the database {lost_store:10d}")
    print(f"  run {spec.key}: {'ok' if not problems else 'FAILED: ' + '; '.join(problems)}", flush=True)
    record.update(problems=problems, ok=not problems)
    return record


def table(records: list[dict], ratio: float | None) -> str:
    head = ("| run | nodes × processes | accepted | lost (receiver/db) | end-to-end msg/s | gateway CPU s | CPU ms/msg "
            "| vs A | PostgreSQL CPU ms/msg | binds held | duplicates (bound) | ok |\n" + "|---" * 12 + "|")
    a = next((r.get("cpu_ms_per_message") for r in records if r["run"] == "A"), None)
    rows = []
    for r in records:
        if "accepted" not in r:
            rows.append(f"| {r['run']} | {r['nodes']} | - | - | - | - | - | - | - | - | - | FAILED |")
            continue
        cpu = r["cpu_ms_per_message"]
        vs = f"{cpu / a:.2f}x" if a and r["run"] != "C" else "-"
        pg = r["postgres_cpu_ms_per_message"]
        rows.append(f"| {r['run']} | {r['nodes']} × {r.get('processes_per_node', 'auto')} | {r['accepted']} | {r['lost']}/{r['lost_in_store']} | "
                    f"{r['end_to_end_per_s']:.0f} | {r['cpu_seconds']['smsgw']:.2f} | {cpu:.3f} | {vs} | "
                    f"{'-' if pg is None else f'{pg:.3f}'} | "
                    f"{' '.join(f'{k}={v}' for k, v in r.get('binds_by_node', {}).items())} | "
                    f"{r.get('duplicates', '-')} ({r.get('duplicate_bound', '-')}) | {'yes' if r['ok'] else 'NO'} |")
    out = head + "\n" + "\n".join(rows)
    if ratio is not None:
        out += (f"\n\nCPU per message, two nodes / one node (B/A): {ratio:.2f}x; the bar (<= {BAR}x) is "
                f"{'met' if ratio <= BAR else 'NOT met'}")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-n", "--messages", type=int, default=10000, help="messages per run (default 10000)")
    p.add_argument("-c", "--concurrency", type=int, default=32, help="HTTP connections (default 32)")
    p.add_argument("--binds", type=int, default=2, help="the operator's binds for the cluster (default 2)")
    p.add_argument("--window", type=int, default=100, help="SMPP window per session (default 100)")
    p.add_argument("--lease", default="3s", help="[gateway] lease of every node, every run (default 3s)")
    p.add_argument("--receipt-delay", default="100ms", help="the simulated SMSC's receipt delay (default 100ms)")
    p.add_argument("--timeout", type=float, default=300,
                   help="seconds to wait for the final statuses after the last request (default 300)")
    p.add_argument("--idle", type=float, default=2.0,
                   help="seconds the nodes' idle CPU is measured before each load (default 2; 0: not)")
    p.add_argument("--runs", default="A,B,C", help="any of A,B,C (default all three)")
    p.add_argument("--pg-url", default=os.environ.get("SMSGW_BENCH_PG_URL") or os.environ.get("SMSGW_TEST_PG_URL"),
                   help="a PostgreSQL server whose role may CREATE DATABASE (default $SMSGW_BENCH_PG_URL, then "
                        "$SMSGW_TEST_PG_URL); each run creates a database there and drops it")
    p.add_argument("--out", metavar="FILE",
                   help="JSON lines appended here (default var/bench/two-nodes-<timestamp>.jsonl)")
    p.add_argument("--log-level", default="warning", help="the nodes' log level (default warning; info to diagnose)")
    p.add_argument("--keep", action="store_true", help="keep the logs even when every run passed")
    p.add_argument("--processes", default="auto",
                   help='[gateway] processes of each node: "auto" (default; one per core each, so two nodes '
                        'on one machine run twice as many processes as one node), "split" (the cores shared '
                        'out between the nodes of a run: as many processes in every run), or a number '
                        '(every node that many: the same node in every run)')
    args = p.parse_args(argv)
    if not args.pg_url:
        p.error("needs --pg-url (or SMSGW_BENCH_PG_URL): a PostgreSQL server")
    keys = [k for k in args.runs.split(",") if k]
    if not keys or any(k not in RUNS for k in keys):
        p.error("--runs takes any of A,B,C")
    if not 2 <= args.messages <= 1_000_000 or not 2 <= args.concurrency <= 1000 or args.binds < 2:
        p.error("-n must be 2..1,000,000, -c 2..1000 and --binds at least 2 (one per node)")
    version = pg_query(args.pg_url, "SHOW server_version")[0][0]
    base = Path(tempfile.mkdtemp(prefix="smsgw-nodes-"))
    print(f"two nodes on one PostgreSQL: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, PostgreSQL {version}; "
          f"runs {','.join(keys)}; logs in {base}", flush=True)
    records = [run(RUNS[k], args, base) for k in keys]
    by = {r["run"]: r for r in records}
    ratio = None
    if by.get("A", {}).get("cpu_ms_per_message") and by.get("B", {}).get("cpu_ms_per_message"):
        ratio = by["B"]["cpu_ms_per_message"] / by["A"]["cpu_ms_per_message"]
    ok = all(r["ok"] for r in records)
    print(f"\n== summary (PostgreSQL {version}; gateway CPU: the process trees of `smsgw run`, summed over the nodes, "
          f"in C gw1's until the kill; PostgreSQL CPU: the whole server)\n")
    print(table(records, ratio))
    summary = {"run": "summary", "messages": args.messages, "concurrency": args.concurrency,
               "cpu_ms_per_message": {k: r.get("cpu_ms_per_message") for k, r in by.items()},
               "cpu_ratio_b_over_a": None if ratio is None else round(ratio, 3), "bar": BAR,
               "bar_met": None if ratio is None else ratio <= BAR,
               "lost": {k: [r.get("lost"), r.get("lost_in_store")] for k, r in by.items()}, "ok": ok}
    out = Path(args.out) if args.out else ROOT / "var" / "bench" / f"two-nodes-{time.strftime('%Y%m%d-%H%M%S')}.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "a") as f:
        for record in [*records, summary]:
            f.write(json.dumps(record) + "\n")
    print(f"\ntwo_nodes: results in {out}; {'every check passed' if ok else 'FAILED (logs in ' + str(base) + ')'}")
    if ok and not args.keep:
        shutil.rmtree(base, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
