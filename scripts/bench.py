"""End-to-end benchmark of the customer's path: HTTP API → store → SMPP → simulated SMSC → receipt
→ store → signed status callback → the customer's backend.

Each scenario gets a fresh standalone simulated SMSC (`smsgw smsc-sim`) and gateway (`smsgw run`),
separate processes on loopback, with a throwaway SQLite store (or, with `--store postgresql`, a
new database on the PostgreSQL server of `--pg-url` / SMSGW_BENCH_PG_URL, dropped afterwards).
This process drives the HTTP API with keep-alive connections (asyncio, raw HTTP/1.1, so the load
generator stays cheap) and, for the scenarios with callbacks, is the customer's backend too: a
signed-callback receiver on 127.0.0.1 (scripts/bench_receiver.py) that checks every signature,
drops repeated events and notes when each message's final status arrived. The load generator is
scripts/bench_load.py; what a scenario measured and how it is printed, scripts/bench_results.py.

Scenarios (`--scenarios`, default all four; each needs -n messages):
  single     one message per request, no callbacks (end = the store has every final status)
  single-cb  one message per request, account callback_url, callback_statuses = "final"
  list       lists of 100 recipients per request, no callbacks
  list-cb    lists of 100, callback_statuses = "final", callback_batch = 100 (SPEC §12)
With callbacks, end-to-end is until every accepted message's final status came back to the
receiver (as /work/shared/peers/load/loadgen.py measures Kannel and us), not until the store has
the receipt. `--legacy-callbacks`: the -cb scenarios leave out the SPEC §12 keys (every status,
one event per POST), for a gateway that does not know them yet.

Phases (`--phases`, default single,batch,throttled): "single" and "batch" run the scenarios
(without --scenarios: single,single-cb for "single" and list,list-cb for "batch"); "throttled" is
one message per request against an SMSC that answers ESME_RTHROTTLED above --throttle-tps. Other
names (ported, pg, restart, crash, smpp, nodes) belong to scripts/bench and are ignored here.

Printed per scenario: the old figures (accepted msg/s, end-to-end msg/s, accept latency, CPU per
message per process and per thread, lost) and at the end one table in the columns of the peers'
summarize.py (accepted/s, all DLRs after s, end-to-end msg/s, latency p50/p95/p99/max from the
request's start to the final status, lost, gateway CPU s summed over the process tree of
`smsgw run`, CPU s per process) plus CPU ms per message and peak RSS. Into the output folder
(`--plots DIR`, default var/bench/<timestamp>-<store>/): results-<store>.jsonl (loadgen.py's
fields, so summarize.py reads it), throughput-<store>.png and latency-cdf-<store>.png (matplotlib,
the optional extra `bench`; without it the plots are skipped with a note).

`--waiting-callbacks N` puts N status callbacks of another account into each scenario's store
before the gateway starts, waiting for retries an hour away: the path while a customer's backend
has been down for a while (docs/benchmarks.md).

Run through `scripts/bench` (it sets up .venv and the extra first). Bounded in count and time;
loopback only; every process started here is stopped by its PID, with its children.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench_load import drive, request_bodies  # noqa: E402
from bench_plot import write_plots  # noqa: E402
from bench_receiver import FINAL_STATUSES, CallbackReceiver  # noqa: E402
from bench_results import TABLE_HEAD, Result, report, table_row  # noqa: E402
from tests.harness.net import free_port, http_status, listening  # noqa: E402
from tests.harness.pg import create_database, drop_database, pg_query  # noqa: E402
from tests.harness.processes import cpu_seconds, peak_rss_mb, stop_process, thread_cpu, tree  # noqa: E402
from tests.harness.waiting import wait_until  # noqa: E402

SMSGW = str(ROOT / ".venv" / "bin" / "smsgw")
SECRET = "bench-secret"
# Account keys of SPEC §12, which a gateway from before it refuses as unknown keys.
SPEC12_KEYS = ("callback_statuses", "callback_batch", "callback_linger")


CONFIG = """
[gateway]
node = "bench"
[store]
url = "{store_url}"
[http]
listen = "127.0.0.1:{http}"
[metrics]
listen = "127.0.0.1:{metrics}"
[operators.sim]
type = "smpp"
host = "127.0.0.1"
port = {smpp}
system_id = "bench"
password = "bench"
binds = {binds}
window = {window}
cost = 0.1
[profiles.standard]
operators = ["sim"]
[accounts.bench]
api_keys = ["bench-key"]
senders = ["BENCH"]
{account}"""


@dataclass(frozen=True)
class Scenario:
    """One measured run: how requests are made and what the account hears back."""

    name: str
    title: str
    per_request: int = 1
    callbacks: bool = False
    spec12: tuple[tuple[str, str], ...] = ()  # SPEC §12 account keys and their TOML values
    throttle_tps: int = 0
    prefix: str = "4670"

    def account_lines(self, callback_port: int, legacy: bool) -> str:
        if not self.callbacks:
            return ""
        lines = [f'callback_url = "http://127.0.0.1:{callback_port}/callbacks"', f'secret = "{SECRET}"']
        if not legacy:
            lines += [f"{key} = {value}" for key, value in self.spec12]
            lines += ["[push]", 'allow_networks = ["127.0.0.0/8"]  # the receiver is on loopback (SPEC §15)']
        return "\n".join(lines) + "\n"

    def callbacks_said(self, legacy: bool) -> str:
        if not self.callbacks:
            return "no callbacks"
        if legacy or not self.spec12:
            return "callbacks of every status, one event per POST"
        return "callbacks: " + ", ".join(f"{k} = {v}" for k, v in self.spec12)


SCENARIOS = {s.name: s for s in (
    Scenario("single", "one message per request"),
    Scenario("single-cb", "one message per request, status callbacks", callbacks=True,
             spec12=(("callback_statuses", '"final"'),)),
    Scenario("list", "lists of 100 per request", per_request=100, prefix="4671"),
    Scenario("list-cb", "lists of 100 per request, status callbacks", per_request=100, callbacks=True,
             spec12=(("callback_statuses", '"final"'), ("callback_batch", "100")), prefix="4671"),
)}


class GatewayExited(Exception):
    """A process of the rig exited while starting; the text is the end of its log."""


def wait_port(port: int, timeout: float = 60.0, proc: subprocess.Popen | None = None, log: Path | None = None) -> None:
    def up():
        if proc is not None and proc.poll() is not None:
            raise GatewayExited(log.read_text()[-3000:] if log else f"exit status {proc.returncode}")
        return listening(port)

    try:
        wait_until(up, timeout, 0.2, what=f"a listener on 127.0.0.1:{port}")
    except TimeoutError:
        raise SystemExit(f"bench: nothing listens on 127.0.0.1:{port} after {timeout:.0f}s") from None


def _store_query(db: Path | str, sql: str) -> list[tuple]:
    """``sql`` with ``{final}`` = the SPEC §5 final statuses, on the SQLite file or PostgreSQL URL."""
    sql = sql.format(final=", ".join(f"'{s}'" for s in sorted(FINAL_STATUSES)))
    if isinstance(db, str):
        return pg_query(db, sql)
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def seed_callbacks(db: Path | str, n: int, account: str, url: str, *, attempts: int, next_at: float) -> None:
    """``n`` status callbacks of ``account`` to ``url`` in the store, one message each, tried
    ``attempts`` times and due at ``next_at``: a customer's backend down for a while (due again in
    an hour), or hung (due now)."""
    from smscore.store import pg_schema
    from smscore.store import sqlite as sq

    now = time.time()
    rows = [("status", account, f"{account}-{i}", url, "{}", attempts, now - 600 if attempts else now, next_at)
            for i in range(n)]
    sql = ("INSERT INTO push_jobs (kind, account, subject, url, body, attempts, first_at, next_at) "
           "VALUES (?,?,?,?,?,?,?,?)")
    if isinstance(db, str):
        pg_schema.upgrade(db)
        conn = pg_schema.connect(db)
        try:
            conn.cursor().executemany(sql.replace("?", "%s"), rows)
            conn.commit()
        finally:
            conn.close()
        return
    sq.upgrade(db)
    conn = sqlite3.connect(db)
    try:
        with conn:
            conn.executemany(sql, rows)
    finally:
        conn.close()


def count_final(db: Path | str) -> int:
    """Messages in a final status (every scenario has a store of its own)."""
    return _store_query(db, "SELECT COUNT(*) FROM messages WHERE status IN ({final})")[0][0]


def final_stats(db: Path | str) -> tuple[dict[str, tuple[str, float | None]], int]:
    """({message id: (final status, time it was first reached)}, messages in the store)."""
    rows = _store_query(db, "SELECT m.id, m.status, (SELECT MIN(at) FROM events e WHERE e.message_id = m.id "
                            "AND e.final) FROM messages m WHERE m.status IN ({final})")
    total = _store_query(db, "SELECT COUNT(*) FROM messages")[0][0]
    return {r[0]: (r[1], r[2]) for r in rows}, total


class Rig:
    """A simulated SMSC and a gateway, each its own process, on fresh loopback ports and store."""

    def __init__(self, args, scenario: Scenario, profile: str | None = None) -> None:
        self.args, self.scenario, self.profile = args, scenario, profile
        self.tmp = Path(tempfile.mkdtemp(prefix=f"smsgw-bench-{scenario.name}-"))
        self.db: Path | str = self.tmp / "bench.db"
        self.store_url = "sqlite:///bench.db"
        self.pg_name = None
        if args.store == "postgresql":
            self.pg_name = f"smsgw_bench_{self.tmp.name.rsplit('-', 1)[-1].lower()}"
            self.db = self.store_url = create_database(args.pg_url, self.pg_name)
        self.http_port, self.metrics_port, self.smpp_port = free_port(), free_port(), free_port()
        # The callback receiver's port is held from now on: the gateway starts first, and its own
        # listeners on port 0 could otherwise be given a port merely picked here (it happened).
        self.callback_socket = socket.create_server(("127.0.0.1", 0), backlog=1024) if scenario.callbacks else None
        self.callback_port = self.callback_socket.getsockname()[1] if self.callback_socket else 0
        # --hung-callbacks: a backend that takes connections (the kernel does, up to the backlog)
        # and never reads or answers them
        self.waiting_callbacks = getattr(args, "waiting_callbacks", 0)  # scripts/bench_smpp.py has neither
        self.hung_callbacks = getattr(args, "hung_callbacks", 0)
        self.hung_socket = socket.create_server(("127.0.0.1", 0), backlog=4096) if self.hung_callbacks else None
        self.hung_port = self.hung_socket.getsockname()[1] if self.hung_socket else 0
        self.procs: list[subprocess.Popen] = []

    def __enter__(self) -> Rig:
        try:
            return self._start()
        except BaseException:
            self.__exit__()
            raise

    def _start(self) -> Rig:
        args = self.args
        (self.tmp / "gw.toml").write_text(CONFIG.format(
            store_url=self.store_url, http=self.http_port, metrics=self.metrics_port, smpp=self.smpp_port,
            binds=args.binds, window=args.window,
            account=self.scenario.account_lines(self.callback_port, args.legacy_callbacks) + (
                f'[accounts.hung]\napi_keys = ["hung-key"]\nsenders = ["HUNG"]\n'
                f'callback_url = "http://127.0.0.1:{self.hung_port}/status"\nsecret = "{SECRET}"\n'
                if self.hung_callbacks else "")))
        sim = subprocess.Popen([SMSGW, "smsc-sim", "--listen", f"127.0.0.1:{self.smpp_port}", "--system-id", "bench",
                                "--password", "bench", "--receipt-delay", args.receipt_delay, "--window",
                                str(args.window), "--throttle-tps", str(self.scenario.throttle_tps),
                                "--log-level", "warning"],
                               stdout=open(self.tmp / "sim.log", "w"), stderr=subprocess.STDOUT)
        self.procs.append(sim)
        wait_port(self.smpp_port, proc=sim, log=self.tmp / "sim.log")
        if self.waiting_callbacks:
            seed_callbacks(self.db, self.waiting_callbacks, "down", "http://127.0.0.1:9/status", attempts=3,
                           next_at=time.time() + 3600)
            print(f"  waiting callbacks    {self.waiting_callbacks} of another account in the store, due in an hour",
                  flush=True)
        if self.hung_callbacks:
            seed_callbacks(self.db, self.hung_callbacks, "hung", f"http://127.0.0.1:{self.hung_port}/status",
                           attempts=0, next_at=time.time())
            print(f"  hung callbacks       {self.hung_callbacks} of another account in the store, due now, to a "
                  "backend that never answers", flush=True)
        prefix = [sys.executable, "-m", "cProfile", "-o", self.profile, SMSGW] if self.profile else [SMSGW]
        gw = subprocess.Popen([*prefix, "run", "-c", str(self.tmp / "gw.toml"), "--log-level", "warning"],
                              stdout=open(self.tmp / "gw.log", "w"), stderr=subprocess.STDOUT)
        self.procs.append(gw)
        wait_port(self.http_port, proc=gw, log=self.tmp / "gw.log")
        # ready = the binds are up (/readyz: every profile has a bound operator)
        try:
            wait_until(lambda: http_status(f"http://127.0.0.1:{self.http_port}/readyz", 2) == 200, 60, 0.1,
                       what="/readyz")
        except TimeoutError:
            raise SystemExit(f"bench: the gateway was not ready within 60 s (log: {self.tmp / 'gw.log'})") from None
        self.pids = {"smsgw": gw.pid, "smsc_sim": sim.pid}
        return self

    def __exit__(self, *exc) -> None:
        """Stop the processes and drop the store: the PostgreSQL database, or the SQLite files (tens
        of MB a run, which piled up in /tmp run after run). The config and logs stay in ``tmp``."""
        for proc in reversed(self.procs):
            stop_process(proc)
        self.procs.clear()
        for held in (self.callback_socket, self.hung_socket):
            if held is not None:
                held.close()
        if self.pg_name:
            drop_database(self.args.pg_url, self.pg_name)
            self.pg_name = None
        elif isinstance(self.db, Path):  # the database, its WAL, shared memory and lock files
            for path in self.tmp.glob(self.db.name + "*"):
                path.unlink(missing_ok=True)

    def metric(self, name: str, **labels) -> float:
        """The sum of the samples of ``name`` from the gateway's /metrics that have ``labels``
        (others may differ: ``smsgw_messages_total{status}`` adds up every operator); 0 when absent."""
        from prometheus_client.parser import text_string_to_metric_families

        text = urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10).read().decode()
        return sum(s.value for family in text_string_to_metric_families(text) for s in family.samples
                   if s.name == name and labels.items() <= s.labels.items())


async def _measure(scenario: Scenario, args, rig: Rig, bodies: list[bytes], messages: int) -> Result:
    receiver = None
    if scenario.callbacks:
        receiver = CallbackReceiver(SECRET)
        await receiver.start(sock=rig.callback_socket)
    try:
        cpu0 = {k: cpu_seconds(p) for k, p in rig.pids.items()}
        threads0 = thread_cpu(rig.pids["smsgw"])
        self0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.time()
        sent = await drive(rig.http_port, bodies, args.concurrency)
        submit_end = time.time()
        accepted = sent.ids
        deadline = submit_end + args.timeout
        if receiver is not None:
            receiver.expect(accepted)
            done = await receiver.wait(deadline)
        else:
            while not (done := count_final(rig.db) >= len(accepted)) and time.time() < deadline:
                await asyncio.sleep(0.25)
        cpu1 = {k: cpu_seconds(p) for k, p in rig.pids.items()}
        threads1 = thread_cpu(rig.pids["smsgw"])
        self1 = resource.getrusage(resource.RUSAGE_SELF)
    finally:
        if receiver is not None:
            await receiver.stop()
    in_store, total = final_stats(rig.db)
    wanted = set(accepted)
    if receiver is not None:
        final_at = {i: t for i, t in receiver.final_at.items() if i in wanted}
        statuses = receiver.statuses
    else:
        final_at = {i: at for i, (_, at) in in_store.items() if i in wanted and at is not None}
        statuses = Counter(status for i, (status, _) in in_store.items() if i in wanted)
    return Result(
        scenario=scenario, messages=messages, store=args.store, concurrency=args.concurrency, t0=t0,
        submit_end=submit_end, sent=sent, final_at=final_at, statuses=statuses, done=done,
        cpu={k: cpu1[k] - cpu0[k] for k in cpu0},
        threads={k: threads1[k] - threads0[k] for k in threads0},
        processes=len(tree(rig.pids["smsgw"])),
        bench_cpu=(self1.ru_utime - self0.ru_utime) + (self1.ru_stime - self0.ru_stime),
        peak_rss_mb=peak_rss_mb(rig.pids["smsgw"]),
        store_final=sum(1 for i in in_store if i in wanted), store_total=total, receiver=receiver)


def scenarios_to_run(args, parser) -> list[Scenario]:
    phases = set(args.phases.split(","))
    if args.scenarios:
        names = [n for n in args.scenarios.split(",") if n]
        unknown = [n for n in names if n not in SCENARIOS]
        if unknown:
            parser.error(f"unknown scenario(s) {', '.join(unknown)}; choose from {','.join(SCENARIOS)}")
        if not phases & {"single", "batch"}:
            print("bench: --scenarios is not run: --phases names neither single nor batch", file=sys.stderr)
            return []
    else:
        names = (["single", "single-cb"] if "single" in phases else []) + (["list", "list-cb"] if "batch" in phases else [])
    return [SCENARIOS[n] for n in names]


def output_folder(args) -> Path:
    if args.plots:
        return Path(args.plots)
    return ROOT / "var" / "bench" / f"{time.strftime('%Y%m%d-%H%M%S')}-{args.store}"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-n", "--messages", type=int, default=10000, help="messages per scenario (default 10000)")
    p.add_argument("--concurrency", type=int, default=32, help="HTTP connections (default 32)")
    p.add_argument("--window", type=int, default=100,
                   help="SMPP window per session, both ways: submits and receipts (default 100)")
    p.add_argument("--binds", type=int, default=1, help="SMPP sessions (default 1)")
    p.add_argument("--receipt-delay", default="0ms", help="simulated SMSC receipt delay (default 0ms)")
    p.add_argument("--timeout", type=float, default=300,
                   help="seconds to wait for the final statuses after the last request, per scenario (default 300)")
    p.add_argument("--scenarios", default="",
                   help=f"any of {','.join(SCENARIOS)} (default: all four, or as --phases selects)")
    p.add_argument("--legacy-callbacks", action="store_true",
                   help="the -cb scenarios without the SPEC §12 keys (callback_statuses, callback_batch): every "
                        "status, one event per POST, as a gateway from before §12 sends them")
    p.add_argument("--phases", default="single,batch,throttled",
                   help="any of single,batch,throttled (default all three); single and batch run the scenarios")
    p.add_argument("--throttle-tps", type=int, default=500,
                   help="the throttled phase's SMSC answers ESME_RTHROTTLED above this rate (default 500)")
    p.add_argument("--plots", metavar="DIR",
                   help="folder for the plots and the results (default var/bench/<timestamp>-<store>/)")
    p.add_argument("--profile", metavar="FILE", help="run the gateway under cProfile, writing FILE")
    p.add_argument("--store", choices=["sqlite", "postgresql"], default="sqlite",
                   help="the gateway's store (default sqlite); postgresql: a new database per rig on --pg-url")
    p.add_argument("--pg-url", default=os.environ.get("SMSGW_BENCH_PG_URL"),
                   help="a PostgreSQL server whose role may CREATE DATABASE (default $SMSGW_BENCH_PG_URL; "
                        "scripts/bench starts a throwaway one when neither is given)")
    p.add_argument("--waiting-callbacks", type=int, default=0, metavar="N",
                   help="N status callbacks of another account waiting for their retries in each store before "
                        "the gateway starts: a customer's backend down for a while (default 0)")
    p.add_argument("--hung-callbacks", type=int, default=0, metavar="N",
                   help="N status callbacks of another account due now, to a backend that takes connections and "
                        "never answers, in each store before the gateway starts (default 0)")
    args = p.parse_args()
    if not 0 <= args.waiting_callbacks <= 10_000_000 or not 0 <= args.hung_callbacks <= 1_000_000:
        p.error("--waiting-callbacks must be 0 to 10,000,000, --hung-callbacks 0 to 1,000,000")
    if args.store == "postgresql" and not args.pg_url:
        p.error("--store postgresql needs --pg-url or SMSGW_BENCH_PG_URL")
    if not 1 <= args.messages <= 1_000_000 or not 1 <= args.concurrency <= 1000:
        p.error("-n must be 1..1,000,000 and --concurrency 1..1000")
    scenarios = scenarios_to_run(args, p)
    if "throttled" in args.phases.split(","):
        scenarios.append(Scenario("throttled", f"one message per request, SMSC throttling at {args.throttle_tps} "
                                  "submits/s", throttle_tps=args.throttle_tps, prefix="4672"))
    if args.store == "postgresql":
        version = pg_query(args.pg_url, "SHOW server_version")[0][0]
        sync = pg_query(args.pg_url, "SHOW synchronous_commit")[0][0]
        store = f"PostgreSQL {version} (synchronous_commit={sync}, one writer connection)"
    else:
        store = "SQLite (WAL, each batch fdatasynced)"
    print(f"smsgw bench: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, store {store}, "
          f"window {args.window} x {args.binds} bind(s), receipt delay {args.receipt_delay}")
    if not scenarios:
        return 0
    failed = False
    results: list[Result] = []
    for scenario in scenarios:
        n = max(1000, args.messages // 4) if scenario.throttle_tps else args.messages
        bodies = request_bodies(n, scenario.per_request, scenario.prefix)
        print(f"\n== {scenario.name}: {scenario.title}; {scenario.callbacks_said(args.legacy_callbacks)}; "
              f"{n} messages, {len(bodies)} requests of {min(n, scenario.per_request)}, {args.concurrency} connections")
        try:
            profile = args.profile
            if profile and len(scenarios) > 1:  # one profile per gateway: FILE-<scenario>
                profile = f"{profile}-{scenario.name}"
            with Rig(args, scenario, profile) as rig:
                print(f"  (logs in {rig.tmp})")
                result = asyncio.run(_measure(scenario, args, rig, bodies, n))
                if scenario.throttle_tps:
                    throttled = rig.metric("smsgw_operator_attempts_total", operator="sim", outcome="throttled")
                    refused = rig.metric("smsgw_messages_total", status="failed")
                    print(f"  throttled answers    {throttled:10.0f}   (requeued, never failures: {refused:.0f} failed)")
        except GatewayExited as exc:
            failed = True
            text = str(exc)
            known = [k for k in SPEC12_KEYS if f"{k}: unknown key" in text]
            if known:
                print(f"  SKIPPED: this gateway does not know the account key(s) {', '.join(known)} of SPEC §12 yet "
                      f"(`smsgw run` refused them as unknown keys). Measure the callbacks as it sends them with "
                      f"--legacy-callbacks (every status, one event per POST), or leave the -cb scenarios out.")
            else:
                print(f"  FAILED: a process of the rig exited while starting:\n{text}")
            continue
        report(result, args.legacy_callbacks)
        results.append(result)
        failed |= result.lost > 0 or not result.done
        if result.receiver is not None and result.receiver.counts["bad_signatures"]:
            failed = True

    if not results:
        return 1
    records = [r.record(args.legacy_callbacks) for r in results]
    print(f"\n== summary ({store}; latency: request start to the final status, at the receiver with callbacks, "
          f"else in the store; gateway CPU: the process tree of `smsgw run`)\n")
    print(TABLE_HEAD)
    for record in records:
        print(table_row(record))
    folder = output_folder(args)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"results-{args.store}.jsonl", "a") as out:
        for record in records:
            out.write(json.dumps(record) + "\n")
    written, why = write_plots([r.series() for r in results], folder, suffix=f"-{args.store}")
    if written:
        print(f"\nbench: results and plots in {folder}: " + ", ".join(p.name for p in written))
    else:
        print(f"\nbench: results in {folder}; plots skipped: {why}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
