"""End-to-end benchmark: HTTP API → store → SMPP → simulated SMSC → receipt → store.

Starts a standalone simulated SMSC (`smsgw smsc-sim`) and a gateway (`smsgw run`) as separate
processes on loopback, with a throwaway SQLite store (or, with `--store postgresql`, a new database
on the PostgreSQL server of `--pg-url` / SMSGW_BENCH_PG_URL, dropped afterwards), then drives the HTTP API from this process
with keep-alive connections (asyncio, raw HTTP/1.1, so the load generator stays cheap), and waits
until every accepted message has its receipt stored. Prints, for each phase:

  accepted msg/s, end-to-end msg/s, accept latency p50/p99, accept→delivered p50/p99,
  CPU seconds per 1,000 messages (gateway, SMSC simulator), and lost messages (must be 0).

Run through `scripts/bench` (it sets up .venv first). Bounded in count and time; loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SMSGW = str(ROOT / ".venv" / "bin" / "smsgw")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds of the main thread and of all other threads together (the store writer)."""
    out = {"main": 0.0, "threads": 0.0}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        used = (int(fields[11]) + int(fields[12])) / CLK_TCK
        out["main" if int(task.name) == pid else "threads"] += used
    return out


def pct(values, q) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


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
"""


class Http:
    """A minimal keep-alive HTTP/1.1 client connection."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port

    async def connect(self):
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def post(self, path: str, body: bytes, key: str) -> tuple[int, bytes]:
        head = (f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nAuthorization: Bearer {key}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
        self.writer.write(head + body)
        status_line = await self.reader.readuntil(b"\r\n")
        status = int(status_line.split()[1])
        length = 0
        while True:
            line = await self.reader.readuntil(b"\r\n")
            if line == b"\r\n":
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)


async def drive(port: int, requests: list[bytes], concurrency: int) -> tuple[list[str], list[float], int]:
    """Send every request body; returns accepted ids, per-request latencies, errors."""
    ids: list[str] = []
    latencies: list[float] = []
    errors = 0
    queue = list(reversed(requests))

    async def worker():
        nonlocal errors
        conn = Http("127.0.0.1", port)
        await conn.connect()
        while queue:
            body = queue.pop()
            t0 = time.perf_counter()
            status, data = await conn.post("/v1/messages", body, "bench-key")
            latencies.append(time.perf_counter() - t0)
            if status == 202:
                ids.extend(m["id"] for m in json.loads(data)["messages"])
            else:
                errors += 1
        conn.writer.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return ids, latencies, errors


def wait_until(predicate, timeout: float, step: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def wait_port(port: int, timeout: float = 60.0) -> None:
    def up():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False

    if not wait_until(up, timeout):
        raise SystemExit(f"bench: nothing listens on 127.0.0.1:{port} after {timeout:.0f}s")


def pg_query(url: str, sql: str, params=()) -> list[tuple]:
    import psycopg2

    conn = psycopg2.connect(url, connect_timeout=10)
    try:
        cur = conn.cursor()
        cur.execute(sql, params)
        return cur.fetchall()
    finally:
        conn.close()


def delivered_stats(db: Path | str, ids: list[str]) -> tuple[int, list[float], int]:
    """(delivered count, accept→delivered latencies, ids missing from the store). ``db`` is the
    SQLite file, or the URL of the PostgreSQL database."""
    if isinstance(db, str):
        rows = pg_query(db, "SELECT m.status, m.created_at, (SELECT MAX(at) FROM events e WHERE e.message_id = m.id "
                            "AND e.status = 'delivered') FROM messages m WHERE m.id = ANY(%s)", (ids,))
        delivered = [r for r in rows if r[0] == "delivered"]
        return len(delivered), [r[2] - r[1] for r in delivered if r[2] is not None], len(ids) - len(rows)
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        conn.execute("CREATE TEMP TABLE want (id TEXT PRIMARY KEY)")
        conn.executemany("INSERT INTO want VALUES (?)", [(i,) for i in ids])
        rows = conn.execute(
            "SELECT m.status, m.created_at, (SELECT MAX(at) FROM events e WHERE e.message_id = m.id "
            "AND e.status = 'delivered') FROM want w JOIN messages m ON m.id = w.id").fetchall()
    finally:
        conn.close()
    delivered = [r for r in rows if r[0] == "delivered"]
    return len(delivered), [r[2] - r[1] for r in delivered if r[2] is not None], len(ids) - len(rows)


def count_delivered(db: Path | str, ids: list[str]) -> int:
    if isinstance(db, str):
        return pg_query(db, "SELECT COUNT(*) FROM messages WHERE id = ANY(%s) AND status = 'delivered'", (ids,))[0][0]
    return delivered_stats(db, ids)[0]


def pg_database(server_url: str, name: str, drop: bool = False) -> str:
    """Create (or drop) database ``name`` on the server of ``server_url``; returns its URL."""
    from urllib.parse import urlsplit, urlunsplit

    import psycopg2

    conn = psycopg2.connect(server_url, connect_timeout=10)
    conn.autocommit = True
    try:
        conn.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)' if drop else f'CREATE DATABASE "{name}"')
    finally:
        conn.close()
    parts = urlsplit(server_url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def run_phase(name, args, http_port, db, pids, bodies, per_request):
    cpu0 = {k: cpu_seconds(p) for k, p in pids.items()}
    threads0 = thread_cpu(pids["gateway"])
    t0 = time.perf_counter()
    ids, lat, errors = asyncio.run(drive(http_port, bodies, args.concurrency))
    t_accept = time.perf_counter() - t0

    def all_delivered():
        return count_delivered(db, ids) >= len(ids)

    done = wait_until(all_delivered, args.timeout, 0.25)
    t_total = time.perf_counter() - t0
    cpu1 = {k: cpu_seconds(p) for k, p in pids.items()}
    threads1 = thread_cpu(pids["gateway"])
    delivered, dlat, missing = delivered_stats(db, ids)
    n = len(ids)
    print(f"\n== {name}: {n} messages, {len(bodies)} requests of {per_request}, "
          f"{args.concurrency} connections")
    print(f"  accepted             {n / t_accept:10.0f} msg/s   ({len(bodies) / t_accept:.0f} requests/s, "
          f"{errors} refused)")
    print(f"  end-to-end           {delivered / t_total:10.0f} msg/s   ({delivered} delivered in {t_total:.1f} s"
          f"{'' if done else ', TIMED OUT'})")
    print(f"  accept latency       p50 {pct(lat, 0.5) * 1000:7.1f} ms   p99 {pct(lat, 0.99) * 1000:7.1f} ms")
    print(f"  accept->delivered    p50 {pct(dlat, 0.5) * 1000:7.1f} ms   p99 {pct(dlat, 0.99) * 1000:7.1f} ms")
    for k in pids:
        used = cpu1[k] - cpu0[k]
        print(f"  CPU {k:<16} {used / max(1, n) * 1000:10.3f} s per 1,000 messages  ({used:.1f} s)")
    print(f"    of which: reactor thread {threads1['main'] - threads0['main']:.1f} s, "
          f"store and other threads {threads1['threads'] - threads0['threads']:.1f} s")
    lost = n - delivered
    print(f"  lost messages        {lost:10d}   ({missing} not in the store)")
    return lost


class Rig:
    """A simulated SMSC and a gateway, each its own process, on fresh loopback ports and store."""

    def __init__(self, args, name: str, throttle_tps: int = 0) -> None:
        self.args, self.throttle_tps = args, throttle_tps
        self.tmp = Path(tempfile.mkdtemp(prefix=f"smsgw-bench-{name}-"))
        self.db: Path | str = self.tmp / "bench.db"
        self.store_url = "sqlite:///bench.db"
        self.pg_name = None
        if args.store == "postgresql":
            self.pg_name = f"smsgw_bench_{self.tmp.name.rsplit('-', 1)[-1].lower()}"
            self.db = self.store_url = pg_database(args.pg_url, self.pg_name)
        self.http_port, self.metrics_port, self.smpp_port = free_port(), free_port(), free_port()
        self.procs: list[subprocess.Popen] = []

    def __enter__(self) -> Rig:
        args = self.args
        (self.tmp / "gw.toml").write_text(CONFIG.format(
            store_url=self.store_url, http=self.http_port, metrics=self.metrics_port, smpp=self.smpp_port,
            binds=args.binds, window=args.window))
        sim = subprocess.Popen([SMSGW, "smsc-sim", "--listen", f"127.0.0.1:{self.smpp_port}", "--system-id", "bench",
                                "--password", "bench", "--receipt-delay", args.receipt_delay, "--window",
                                str(args.window), "--throttle-tps", str(self.throttle_tps), "--log-level", "warning"],
                               stdout=open(self.tmp / "sim.log", "w"), stderr=subprocess.STDOUT)
        self.procs.append(sim)
        wait_port(self.smpp_port)
        prefix = [sys.executable, "-m", "cProfile", "-o", args.profile, SMSGW] if args.profile else [SMSGW]
        gw = subprocess.Popen([*prefix, "run", "-c", str(self.tmp / "gw.toml"), "--log-level", "warning"],
                              stdout=open(self.tmp / "gw.log", "w"), stderr=subprocess.STDOUT)
        self.procs.append(gw)
        wait_port(self.http_port)
        time.sleep(1.0)  # let the binds come up
        self.pids = {"gateway": gw.pid, "smsc-sim": sim.pid}
        return self

    def __exit__(self, *exc) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
        if self.pg_name:
            pg_database(self.args.pg_url, self.pg_name, drop=True)

    def metric(self, name: str, **labels) -> float:
        """A sample from the gateway's /metrics (0 when absent)."""
        import urllib.request

        want = "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}" if labels else ""
        text = urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10).read().decode()
        for line in text.splitlines():
            if line.startswith(name + want + " "):
                return float(line.rsplit(" ", 1)[1])
        return 0.0


def single_bodies(n: int, prefix: str = "4670") -> list[bytes]:
    return [json.dumps({"to": f"{prefix}{i:07d}", "text": f"bench message {i}"}).encode() for i in range(n)]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-n", "--messages", type=int, default=20000, help="messages per phase (default 20000)")
    p.add_argument("--concurrency", type=int, default=32, help="HTTP connections (default 32)")
    p.add_argument("--window", type=int, default=100,
                   help="SMPP window per session, both ways: submits and receipts (default 100)")
    p.add_argument("--binds", type=int, default=1, help="SMPP sessions (default 1)")
    p.add_argument("--receipt-delay", default="0ms", help="simulated SMSC receipt delay (default 0ms)")
    p.add_argument("--timeout", type=float, default=300, help="seconds to wait for receipts per phase")
    p.add_argument("--phases", default="single,batch,throttled",
                   help="any of single,batch,throttled (default all three)")
    p.add_argument("--throttle-tps", type=int, default=500,
                   help="the throttled phase's SMSC answers ESME_RTHROTTLED above this rate (default 500)")
    p.add_argument("--profile", metavar="FILE", help="run the gateway under cProfile, writing FILE")
    p.add_argument("--store", choices=["sqlite", "postgresql"], default="sqlite",
                   help="the gateway's store (default sqlite); postgresql: a new database per rig on --pg-url")
    p.add_argument("--pg-url", default=os.environ.get("SMSGW_BENCH_PG_URL"),
                   help="a PostgreSQL server whose role may CREATE DATABASE (default $SMSGW_BENCH_PG_URL; "
                        "scripts/bench starts a throwaway one when neither is given)")
    args = p.parse_args()
    if args.store == "postgresql" and not args.pg_url:
        p.error("--store postgresql needs --pg-url or SMSGW_BENCH_PG_URL")
    phases = args.phases.split(",")
    lost = 0
    if args.store == "postgresql":
        version = pg_query(args.pg_url, "SHOW server_version")[0][0]
        sync = pg_query(args.pg_url, "SHOW synchronous_commit")[0][0]
        store = f"PostgreSQL {version} (synchronous_commit={sync}, one writer connection)"
    else:
        store = "SQLite (WAL, synchronous=FULL)"
    print(f"smsgw bench: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, store {store}, "
          f"window {args.window} x {args.binds} bind(s), receipt delay {args.receipt_delay}")
    if "single" in phases or "batch" in phases:
        with Rig(args, "main") as rig:
            print(f"  (logs in {rig.tmp})")
            if "single" in phases:
                lost += run_phase("one message per request", args, rig.http_port, rig.db, rig.pids,
                                  single_bodies(args.messages), 1)
            if "batch" in phases:
                bodies = [json.dumps({"to": [f"4671{i * 100 + j:07d}" for j in range(100)],
                                      "text": f"bench batch {i}"}).encode() for i in range(args.messages // 100)]
                lost += run_phase("lists of 100 per request", args, rig.http_port, rig.db, rig.pids, bodies, 100)
    if "throttled" in phases:
        with Rig(args, "throttled", throttle_tps=args.throttle_tps) as rig:
            n = max(1000, args.messages // 4)
            lost += run_phase(f"one message per request, SMSC throttling at {args.throttle_tps} submits/s", args,
                              rig.http_port, rig.db, rig.pids, single_bodies(n, "4672"), 1)
            throttled = rig.metric("smsgw_operator_attempts_total", operator="sim", outcome="throttled")
            failed = rig.metric("smsgw_messages_total", status="failed")
            print(f"  throttled answers    {throttled:10.0f}   (requeued, never failures: {failed:.0f} failed)")
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
