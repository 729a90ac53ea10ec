"""Restart at scale: with N messages queued in the store, how soon does a starting gateway send, and
how much memory does it take?

Kannel loads its whole store before it sends (634k messages took ≈780 MB). The gateway claims
queued messages in batches (at most ``max_in_memory`` = 20,000 in memory), so it should start
sending within seconds whatever the backlog, with flat memory.

What it does:

1. fills a fresh store (a SQLite file, or a new database on a PostgreSQL server) with N queued
   single-part messages, in batches of 20,000 per transaction, through the store's own insert
   (``SqlStore._insert_messages``: the same rows and first event a 202 writes). Who owns them
   (``--owner``): ``held`` (default) is what a node leaves when it is killed with a backlog: the
   oldest 20,000 (``max_in_memory``) claimed by its node name with a live lease, the rest unowned
   (accepted while its memory was full); ``node``: every message owned by the node, lease expired
   (not a state the gateway makes: the worst case for the restart's release of its own leases);
   ``none``: all unowned. PostgreSQL gets ``VACUUM ANALYZE`` after the fill, as autovacuum would
   have done for a backlog built over time;
2. starts a standalone simulated SMSC (``smsgw smsc-sim``, info log: one line per accepted submit,
   with its timestamp) and ``smsgw run`` against that store;
3. measures: from the gateway's process start to ``/healthz`` answering, to the first
   ``submit_sm`` the simulator accepted; the gateway's peak RSS (``VmHWM`` in /proc/PID/status)
   and its RSS over the first ``--observe`` seconds (30); submits in the first 10 s and after, to
   show it keeps sending, and submits that repeat a destination (each message has its own).

Usage::

    .venv/bin/python scripts/restart_scale.py --messages 1000000 --store sqlite
    .venv/bin/python scripts/restart_scale.py --messages 1000000 --store postgresql --pg-url URL

(``--pg-url``, else ``SMSGW_BENCH_PG_URL`` / ``SMSGW_TEST_PG_URL``: a server where a database is
created and dropped.) Exit status 1 when the gateway sent nothing in the first 10 s, or nothing
after them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from tests.harness.net import free_port, http_status  # noqa: E402
from tests.harness.pg import create_database, drop_database  # noqa: E402
from tests.harness.waiting import wait_until  # noqa: E402

PYTHON = sys.executable
SMSGW = [PYTHON, "-m", "smscore.cli"]
NODE = "restart"

CONFIG = """
[gateway]
node = "{node}"
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
system_id = "restart"
password = "pw"
window = {window}
cost = 0.1
[profiles.standard]
operators = ["sim"]
[accounts.bench]
api_keys = ["bench-key"]
senders = ["BENCH"]
"""


# -- filling the store ------------------------------------------------------------------------------
def _messages(first: int, count: int, now: float):
    from smscore.model import Event, Message, Status, new_message_id

    out = []
    for i in range(first, first + count):
        m = Message(id=new_message_id(now), account="bench", to=f"4673{i:07d}", sender="BENCH",
                    text=f"restart scale {i}", encoding="gsm7", parts=1, profile="standard",
                    status=Status.QUEUED, created_at=now, updated_at=now)
        m.events.append(Event(at=now, status=Status.QUEUED))
        out.append(m)
    return out


class _BatchCursor:
    """A psycopg2 cursor whose executemany sends many rows per round trip (execute_batch)."""

    def __init__(self, cur) -> None:
        self._cur = cur

    def executemany(self, sql, rows):
        from psycopg2.extras import execute_batch

        execute_batch(self._cur, sql, rows, page_size=1000)

    def defer(self, sql, params=None):  # the store's writes sent later: at once here
        self._cur.execute(sql, params)

    def __getattr__(self, name):
        return getattr(self._cur, name)


HELD = 20000  # the pipeline's max_in_memory: what a node may hold claimed


def fill(store: str, target, n: int, owner: str, batch: int = 20000, log=print) -> float:
    """Insert ``n`` queued messages; ``target`` is the SQLite path or the PostgreSQL URL; ``owner``
    is ``held``, ``node`` or ``none`` (see the module docstring). Returns the seconds it took."""
    t0 = time.monotonic()
    now = time.time()
    if store == "sqlite":
        from smscore.store import sqlite

        sqlite.upgrade(target)
        st = sqlite.SQLiteStore(target, None)
        conn = sqlite.connect(target)
        conn.execute("PRAGMA synchronous=NORMAL")  # the fill is not what is measured
        cur = conn.cursor()
    else:
        from smscore.store import pg_schema, postgres

        pg_schema.upgrade(target)
        st = postgres.PostgresStore(target, None)
        st._column_types = pg_schema.column_types(target)  # what open() reads, for the set-based inserts
        conn = pg_schema.connect(target)
        raw = conn.cursor()
        raw.execute("SET synchronous_commit = off")
        cur = _BatchCursor(raw)
    done = 0
    while done < n:
        count = min(batch, n - done)
        if owner == "node":
            who, lease_until = NODE, now - 60.0  # expired
        elif owner == "held" and done < HELD:
            count = min(count, HELD - done)
            who, lease_until = NODE, now + 30.0  # live: the node was killed a moment ago
        else:
            who, lease_until = None, None
        cur.execute("BEGIN")
        st._insert_messages(cur, _messages(done, count, now), who, lease_until)
        cur.execute("COMMIT")
        done += count
        if log and (done % 200000 == 0 or done == n):
            log(f"  filled {done:,} in {time.monotonic() - t0:.0f} s")
    if store == "sqlite":
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
    else:
        raw.execute("SELECT setval('messages_update_seq_seq', %s)", (n,))
        raw.execute("VACUUM ANALYZE messages")
        raw.execute("VACUUM ANALYZE events")
        conn.close()
    return time.monotonic() - t0


def store_bytes(store: str, target) -> int:
    if store == "sqlite":
        return sum(p.stat().st_size for p in Path(target).parent.glob(Path(target).name + "*"))
    import psycopg2

    conn = psycopg2.connect(target)
    try:
        cur = conn.cursor()
        cur.execute("SELECT pg_database_size(current_database())")
        return cur.fetchone()[0]
    finally:
        conn.close()


# -- measuring ------------------------------------------------------------------------------------
def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of ``pid`` in kB (empty once it is gone)."""
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
    except OSError:
        pass
    return out


class MemorySampler(threading.Thread):
    def __init__(self, pid: int, step: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.pid, self.step = pid, step
        self.samples: list[tuple[float, int, int]] = []  # (seconds since start, VmRSS kB, VmHWM kB)
        self.t0 = time.time()
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            s = proc_status(self.pid)
            if s:
                self.samples.append((time.time() - self.t0, s.get("VmRSS", 0), s.get("VmHWM", 0)))
            self.stop.wait(self.step)

    def rss_at(self, t: float) -> int:
        before = [s for s in self.samples if s[0] <= t]
        return before[-1][1] if before else 0

    @property
    def peak(self) -> int:
        return max((s[2] for s in self.samples), default=0)


def submits(log: Path) -> list[tuple[float, str]]:
    """(POSIX time, destination) of every submit the simulator accepted."""
    out = []
    with open(log, "rb") as f:
        for line in f:
            if b"submit_sm accepted" in line:
                try:
                    e = json.loads(line)
                    out.append((datetime.fromisoformat(e["timestamp"]).timestamp(), e["destination_addr"]))
                except (ValueError, KeyError):
                    pass
    return out


def run(store: str, n: int, *, pg_url: str | None, owner: str, observe: float = 30.0, window: int = 100,
        workdir: Path | None = None, log=print) -> dict:
    """Fill, start, measure (see the module docstring). Returns the figures."""
    workdir = workdir or Path(tempfile.mkdtemp(prefix="smsgw-restart-"))
    figures: dict = {"store": store, "messages": n, "owner": owner, "workdir": str(workdir)}
    db_url = None
    if store == "sqlite":
        target = workdir / "restart.db"
        store_url = "sqlite:///restart.db"
    else:
        if not pg_url:
            raise SystemExit("restart_scale: --store postgresql needs --pg-url (or SMSGW_BENCH_PG_URL)")
        target = db_url = create_database(pg_url, prefix="smsgw_restart")
        store_url = db_url
    sim = gw = None
    try:
        log(f"restart at scale: filling {store} with {n:,} queued messages (owner: {owner})")
        figures["fill_seconds"] = fill(store, target, n, owner, log=log)
        figures["store_mb"] = store_bytes(store, target) / 1e6
        log(f"  {n / figures['fill_seconds']:,.0f} messages/s; store {figures['store_mb']:,.0f} MB")

        smpp, http, metrics = free_port(), free_port(), free_port()
        (workdir / "gw.toml").write_text(CONFIG.format(node=NODE, store_url=store_url, http=http, metrics=metrics,
                                                       smpp=smpp, window=window))
        sim_log = workdir / "sim.log"
        sim = subprocess.Popen([*SMSGW, "smsc-sim", "--listen", f"127.0.0.1:{smpp}", "--system-id", "restart",
                                "--password", "pw", "--receipt-delay", "0ms", "--window", str(window),
                                "--log-level", "info"], stdout=open(sim_log, "w"), stderr=subprocess.STDOUT, cwd=ROOT)
        wait_until(lambda: b"simulated SMSC listening" in sim_log.read_bytes(), 30, what="the simulator")

        started = time.time()
        gw = subprocess.Popen([*SMSGW, "run", "-c", str(workdir / "gw.toml"), "--log-level", "warning"],
                              stdout=open(workdir / "gw.log", "w"), stderr=subprocess.STDOUT, cwd=ROOT)
        sampler = MemorySampler(gw.pid)
        sampler.t0 = started
        sampler.start()
        healthz = None
        while time.time() - started < observe:
            if gw.poll() is not None:
                raise SystemExit(f"restart_scale: the gateway exited: {(workdir / 'gw.log').read_text()[-2000:]}")
            if healthz is None and http_status(f"http://127.0.0.1:{http}/healthz", 0.5) == 200:
                healthz = time.time() - started
            time.sleep(0.1)
        sampler.stop.set()
        sampler.join()
        seen = submits(sim_log)
        times = [t - started for t, _ in seen]
        figures.update({
            "duplicate_submits": len(seen) - len({to for _, to in seen}),
            "healthz_seconds": healthz,
            "first_submit_seconds": min(times) if times else None,
            "submits_first_10s": sum(1 for t in times if t < 10),
            "submits_after_10s": sum(1 for t in times if 10 <= t < observe),
            "observe_seconds": observe,
            "peak_rss_mb": sampler.peak / 1024,
            "rss_mb": {f"{t}s": sampler.rss_at(t) / 1024
                       for t in sorted({t for t in (2, 5, 10, 20) if t < observe} | {int(observe)})},
        })
        figures["rate_after_10s"] = figures["submits_after_10s"] / max(1e-9, observe - 10)
    finally:
        for proc in (gw, sim):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        if db_url:
            drop_database(pg_url, db_url)
    return figures


def report(f: dict) -> str:
    first = f"{f['first_submit_seconds']:.2f} s" if f["first_submit_seconds"] is not None else "NONE"
    healthz = f"{f['healthz_seconds']:.2f} s" if f["healthz_seconds"] is not None else "never"
    rss = ", ".join(f"{k} {v:.0f}" for k, v in f["rss_mb"].items())
    return (f"== restart with {f['messages']:,} queued messages, {f['store']} (owner {f['owner']}), "
            f"store {f['store_mb']:,.0f} MB, filled in {f['fill_seconds']:.0f} s\n"
            f"  process start -> /healthz          {healthz}\n"
            f"  process start -> first submit_sm   {first}\n"
            f"  submits in the first 10 s          {f['submits_first_10s']:,}\n"
            f"  submits from 10 s to {f['observe_seconds']:.0f} s          {f['submits_after_10s']:,}  "
            f"({f['rate_after_10s']:,.0f}/s)\n"
            f"  submits repeating a destination    {f['duplicate_submits']:,}\n"
            f"  gateway peak RSS (VmHWM)           {f['peak_rss_mb']:.0f} MB   (RSS MB at {rss})")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--messages", type=int, default=1_000_000, help="queued messages (default 1,000,000)")
    p.add_argument("--store", choices=["sqlite", "postgresql"], default="sqlite")
    p.add_argument("--pg-url", default=os.environ.get("SMSGW_BENCH_PG_URL") or os.environ.get("SMSGW_TEST_PG_URL"))
    p.add_argument("--owner", choices=["held", "node", "none"], default="held",
                   help="held (default): the oldest 20,000 owned by the node with a live lease, the rest "
                        "unowned; node: all owned by the node, lease expired; none: all unowned")
    p.add_argument("--observe", type=float, default=30.0, help="seconds to watch the gateway (default 30)")
    p.add_argument("--window", type=int, default=100, help="SMPP window (default 100)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON too")
    p.add_argument("--keep", action="store_true", help="keep the working folder (logs, SQLite file)")
    args = p.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="smsgw-restart-"))
    figures = run(args.store, args.messages, pg_url=args.pg_url, owner=args.owner, observe=args.observe,
                  window=args.window, workdir=workdir)
    print(report(figures), flush=True)
    if args.json:
        print(json.dumps(figures))
    ok = figures["submits_first_10s"] > 0 and figures["submits_after_10s"] > 0
    if not ok:
        print(f"restart_scale: the gateway did not keep sending; logs in {workdir}")
    elif not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
