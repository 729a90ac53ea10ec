"""Soak: a real gateway under mixed load for a bounded time, SIGKILLed and restarted now and then,
watched for lost messages, duplicates and growth (issue 13 item 3; SPEC §4, §6, §10, §15).

Theory of operation. One asyncio loop in this process runs everything the gateway talks to, and
watches it:

- Two standalone simulated SMSCs (``smsgw smsc-sim`` as scripts/crash.py starts them, info log:
  one line per accepted submit), the gateway's ``smpp`` operators ``sim_a`` (cost 0.10, cannot
  reach ``4670999…``: it accepts, then sends an UNDELIV receipt, so those messages fail over) and
  ``sim_b`` (0.20). They are processes of their own on purpose: an SMSC outlives the gateway's
  crash, keeps the receipts it owes and sends them once the gateway binds again. In-process
  simulators would die with the gateway and take those receipts along, leaving messages
  ``submitted`` until ``receipt_timeout``.
- An in-process ``type = "simulated"`` operator ``sim_mo`` in no profile: MO is injected through it
  with ``POST /v1/admin/operators/sim_mo/mo`` (see scripts/run), from a new phone each time, as
  ``SOAK m<k>`` to shortcode 72550. The keyword ``SOAK`` pushes to the MO receiver here, which
  answers ``{"reply": "re m<k>"}``: that becomes the reply SMS (SPEC §4, §6), sent through the
  ``standard`` profile.
- ``smsgw run`` (crash.py's Gateway: SQLite file by default, ``--pg-url`` for a database of its own
  on a PostgreSQL server, dropped afterwards) with the account ``soak``: ``callback_url`` to the
  signed-callback receiver of scripts/bench_receiver.py (checks signatures, counts repeated
  ``event_id``s), ``callback_statuses = "final"``, ``[push] allow_networks = ["127.0.0.0/8"]``.

Tasks, for ``--minutes``: the MT load (one message per request at ``--rate`` over keep-alive
connections, at most ``MAX_IN_FLIGHT`` requests at once: a tick with no room is skipped, not
queued; every 10th destination is unreachable at sim_a); MO every ``--mo-every`` (jittered); the
killer (every ``--kill-every`` ±30 %, seeded, never before ``--warmup``: SIGKILL to every PID of the
``smsgw run`` tree, supervisor first, then start it again at once and wait for /readyz); receiver
outages (every ``--outage-every`` ±30 %: the callback receiver stops listening for 10–30 s); and the
sampler (every ``--sample-every``: RSS and open fds summed over the gateway's process tree from
/proc, ``smsgw_queue_depth`` and ``smsgw_inflight`` from /metrics, and from the store the messages
not final yet, the push jobs waiting and the counts by status). Kills and outages are planned only
to end inside the load time, so each run of the killer finishes by itself.

Then the drain (bounded by ``--drain``): until every message answered 202 is final in the store and
its final status reached the receiver, and every MO the gateway acknowledged is stored, pushed and
answered by a final reply. The gateway is stopped with SIGTERM, the simulators too, and their logs
counted: a destination the same SMSC accepted more than once is a duplicate submit (SPEC §11
allows at most window × binds per operator per crash; more is a problem).

Figures: accepted, lost (no final status in the store; no final callback), duplicate submits and
callbacks (``event_id`` seen again: at least once is allowed, counted), MO acknowledged / pushed /
replied, RSS slope in MB/hour by least squares over the load's samples after ``--warmup`` (across
restarts, which reset RSS) and within each run between kills (after the run's first
``RUN_SETTLE`` seconds), fd min/max, the largest backlogs. Printed as a table; written to
``--out`` (default a new temp folder, named at the start) as soak.json and soak.png (RSS and backlog
over time, kills as red lines, receiver outages shaded; needs matplotlib, the extra ``bench``),
beside the processes' logs. Exit status 1 when anything was lost, a duplicate exceeded the bound, a
signature was bad, or the gateway did not stop cleanly.

Usage::

    .venv/bin/python scripts/soak.py [--minutes 30] [--rate 100] [--kill-every 3m] [--out DIR]
    .venv/bin/python scripts/soak.py --minutes 2                       # a quick run
    .venv/bin/python scripts/soak.py --pg-url postgresql://…/postgres   # on PostgreSQL

Loopback only; bounded in time and count; only processes started here are signalled, by PID.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_load import Http  # noqa: E402
from bench_receiver import FINAL_STATUSES, CallbackReceiver, MoReceiver  # noqa: E402
from crash_rig import Gateway, Sim, StoreReader  # noqa: E402
from soak_verdict import UNREACHABLE, Sample, proc_figures, scrape, table, verdict, write_plot  # noqa: E402
from smscore.durations import parse_duration  # noqa: E402
from tests.harness.net import free_port  # noqa: E402
from tests.harness.pg import create_database, drop_database  # noqa: E402
from tests.harness.processes import tree  # noqa: E402

API_KEY = "soak-key"
ADMIN_KEY = "soak-admin"
SECRET = "soak-secret"
SHORTCODE = "72550"
MAX_IN_FLIGHT = 32  # MT requests at once; the load never queues beyond this
REQUEST_TIMEOUT = 15.0
OUTAGE_SECONDS = (10.0, 30.0)

CONFIG = """
[gateway]
node = "soak"
[store]
url = "{store_url}"
[http]
listen = "127.0.0.1:{http}"
[metrics]
listen = "127.0.0.1:{metrics}"
[admin]
api_keys = ["{admin_key}"]
[push]
allow_networks = ["127.0.0.0/8"]  # both receivers listen on loopback (SPEC §15)
[operators.sim_a]
type = "smpp"
host = "127.0.0.1"
port = {sim_a}
system_id = "soak"
password = "pw"
window = {window}
cost = 0.10
[operators.sim_b]
type = "smpp"
host = "127.0.0.1"
port = {sim_b}
system_id = "soak"
password = "pw"
window = {window}
cost = 0.20
[operators.sim_mo]
type = "simulated"  # in-process, in no profile: only carries the MO injected by the admin endpoint
cost = 1.0
[profiles.standard]
operators = ["sim_a", "sim_b"]
[accounts.soak]
api_keys = ["{api_key}"]
senders = ["SOAK"]
billing = "postpaid"
callback_url = "http://127.0.0.1:{callback}/status"
secret = "{secret}"
callback_statuses = "final"
[[shortcodes]]
number = "{shortcode}"
[[keywords]]
shortcode = "{shortcode}"
keyword = "SOAK"
account = "soak"
url = "http://127.0.0.1:{mo}/mo"
"""


# -- the processes ----------------------------------------------------------------------------------
class SoakGateway(Gateway):
    """crash.py's ``smsgw run`` process with this soak's config (warning log), killed as a tree."""

    def __init__(self, workdir: Path, store_url: str, sims: dict[str, Sim], window: int, callback_port: int,
                 mo_port: int) -> None:
        super().__init__(workdir, store_url, 0, window=window, log_level="warning", node="soak")
        self.config.write_text(CONFIG.format(
            store_url=store_url, http=self.http_port, metrics=self.metrics_port, admin_key=ADMIN_KEY,
            sim_a=sims["sim_a"].smpp_port, sim_b=sims["sim_b"].smpp_port, window=window, api_key=API_KEY,
            callback=callback_port, secret=SECRET, shortcode=SHORTCODE, mo=mo_port))

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL ``smsgw run`` and every process under it, by their PIDs (the supervisor first)."""
        for pid in tree(self.proc.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(timeout=10)


def start_sims(workdir: Path, window: int, receipt_delay: str) -> dict[str, Sim]:
    sims = {}
    for name in ("sim_a", "sim_b"):
        (workdir / name).mkdir(parents=True)
        sims[name] = Sim(workdir / name, window=window, receipt_delay=receipt_delay, system_id="soak", password="pw")
    sims["sim_a"].options += ["--unreachable-prefix", UNREACHABLE]
    for sim in sims.values():
        sim.start()
    return sims


class SoakStore(StoreReader):
    """crash.py's read-only store queries plus what the soak samples and checks."""

    def push_backlog(self) -> int:
        return self._query("SELECT COUNT(*) FROM push_jobs")[0][0]

    def replies(self) -> list[tuple[str, str]]:
        """(text, status) of every reply the gateway sent from a shortcode."""
        return self._query("SELECT body, status FROM messages WHERE origin = 'reply'")


# -- the soak ---------------------------------------------------------------------------------------
@dataclass
class Events:
    """What the chaos tasks did, in seconds since the load started."""

    kills: list[dict] = field(default_factory=list)  # {"t", "restart_s"}
    outages: list[dict] = field(default_factory=list)  # {"t", "seconds"}


class Soak:
    """Drives the load and the chaos, samples, drains, and judges (see the module docstring)."""

    def __init__(self, args, workdir: Path, store: SoakStore, gw: SoakGateway, receiver: CallbackReceiver,
                 callback_port: int, mo_receiver: MoReceiver) -> None:
        self.args, self.workdir, self.store, self.gw = args, workdir, store, gw
        self.receiver, self.callback_port, self.mo_receiver = receiver, callback_port, mo_receiver
        self.rng = random.Random(args.seed)
        self.accepted: dict[str, str] = {}  # message id -> destination
        self.unanswered = 0  # requests without an answer (the gateway was down or went down)
        self.refused: Counter[int] = Counter()
        self.skipped = 0  # load ticks with MAX_IN_FLIGHT requests outstanding
        self.mo_outcomes: Counter[str] = Counter()
        self.mo_acked: list[str] = []  # texts of the MO the gateway acknowledged
        self.samples: list[Sample] = []
        self.events = Events()
        self._idle: list[Http] = []
        self._loading = True
        self.restarting = False  # between a kill and /readyz: no samples (a process half started)
        self.t0 = 0.0

    def now(self) -> float:
        return time.monotonic() - self.t0

    # -- load ---------------------------------------------------------------------------------------
    async def run(self) -> None:
        self.t0 = time.monotonic()
        until = self.args.minutes * 60
        sampler = asyncio.create_task(self.sample_forever())
        await asyncio.gather(self.mt_load(until), self.mo_load(until), self.kill_now_and_then(until),
                             self.outage_now_and_then(until))
        self._loading = False
        self.drained = await self.drain()
        sampler.cancel()
        await asyncio.gather(sampler, return_exceptions=True)
        await self.sample()
        for conn in self._idle:
            conn.writer.close()

    async def mt_load(self, until: float) -> None:
        interval, n, due = 1 / self.args.rate, 0, self.now()
        in_flight: set[asyncio.Task] = set()
        while due < until:
            if len(in_flight) >= MAX_IN_FLIGHT:
                self.skipped += 1
            else:
                task = asyncio.create_task(self.send_one(n))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
                n += 1
            due += interval
            await asyncio.sleep(max(0.0, due - self.now()))
        await asyncio.gather(*in_flight)

    @staticmethod
    def destination(n: int) -> str:
        return f"{UNREACHABLE}{n:08d}" if n % 10 == 9 else f"4671{n:08d}"

    async def send_one(self, n: int) -> None:
        to = self.destination(n)
        body = json.dumps({"to": to, "text": f"soak {n}"}).encode()
        conn = self._idle.pop() if self._idle else None
        try:
            if conn is None:
                conn = Http("127.0.0.1", self.gw.http_port)
                await asyncio.wait_for(conn.connect(), REQUEST_TIMEOUT)
            status, data = await asyncio.wait_for(conn.post("/v1/messages", body, API_KEY), REQUEST_TIMEOUT)
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            self.unanswered += 1  # no answer, no promise: this destination is not used again
            if conn is not None and hasattr(conn, "writer"):
                conn.writer.close()
            return
        self._idle.append(conn)
        if status == 202:
            for m in json.loads(data)["messages"]:
                self.accepted[m["id"]] = to
        else:
            self.refused[status] += 1

    async def mo_load(self, until: float) -> None:
        k = 0
        while True:
            pause = self.rng.uniform(0.5, 1.5) * self.args.mo_every
            if self.now() + pause >= until:
                return
            await asyncio.sleep(pause)
            await self.inject_mo(k)
            k += 1

    async def inject_mo(self, k: int) -> None:
        text = f"SOAK m{k}"
        body = json.dumps({"from": f"4673{k:08d}", "to": SHORTCODE, "text": text}).encode()
        conn = Http("127.0.0.1", self.gw.http_port)
        try:
            await asyncio.wait_for(conn.connect(), REQUEST_TIMEOUT)
            status, data = await asyncio.wait_for(conn.post("/v1/admin/operators/sim_mo/mo", body, ADMIN_KEY),
                                                  REQUEST_TIMEOUT)
            outcome = json.loads(data)["outcome"] if status == 202 else f"http {status}"
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError, KeyError):
            outcome = "no answer"
        finally:
            if hasattr(conn, "writer"):
                conn.writer.close()
        self.mo_outcomes[outcome.split(":")[0]] += 1
        if outcome == "delivered":  # the deliver_sm_resp came: the gateway stored it (SPEC §6)
            self.mo_acked.append(text)

    # -- chaos --------------------------------------------------------------------------------------
    def _next_after(self, every: float, earliest: float = 0.0) -> float:
        return max(earliest, self.now() + self.rng.uniform(0.7, 1.3) * every)

    async def kill_now_and_then(self, until: float) -> None:
        every = self.args.kill_every
        while True:
            at = self._next_after(every, earliest=self.args.warmup)
            if at >= until - 5:  # the restart should come inside the load time
                return
            await asyncio.sleep(at - self.now())
            started = time.monotonic()
            self.restarting = True
            self.gw.kill()
            kill = {"t": round(self.now(), 1)}
            self.events.kills.append(kill)  # samples of the new process belong to the next run
            await asyncio.to_thread(self.gw.start)
            self.restarting = False
            kill["restart_s"] = round(time.monotonic() - started, 2)
            print(f"  {kill['t']:7.1f}s  gateway SIGKILLed, ready again after {kill['restart_s']:.1f}s", flush=True)

    async def outage_now_and_then(self, until: float) -> None:
        every = self.args.outage_every
        while True:
            at, seconds = self._next_after(every), self.rng.uniform(*OUTAGE_SECONDS)
            if at + seconds >= until:
                return
            await asyncio.sleep(at - self.now())
            await self.receiver.stop()
            self.events.outages.append({"t": round(self.now(), 1), "seconds": round(seconds, 1)})
            print(f"  {self.now():7.1f}s  callback receiver down for {seconds:.0f}s", flush=True)
            await asyncio.sleep(seconds)
            await self.receiver.start(self.callback_port)

    # -- sampling -----------------------------------------------------------------------------------
    async def sample_forever(self) -> None:
        every = self.args.sample_every
        while True:
            await self.sample()
            await asyncio.sleep(every)

    async def sample(self) -> None:
        if self.restarting or not self.gw.running:
            return
        pids = tree(self.gw.proc.pid)
        rss, fds = proc_figures(pids)
        t, run, started = self.now(), len(self.events.kills), time.monotonic()
        metrics = await asyncio.to_thread(scrape, self.gw.metrics_port)
        statuses = await asyncio.to_thread(self.store.count_by_status)
        backlog = await asyncio.to_thread(self.store.push_backlog)
        self.samples.append(Sample(
            t=round(t, 1), run=run, rss_mb=round(rss, 1), fds=fds, processes=len(pids),
            queue_depth=metrics.get("smsgw_queue_depth") if metrics else None,
            inflight=metrics.get("smsgw_inflight") if metrics else None,
            not_final=sum(n for s, n in statuses.items() if s not in FINAL_STATUSES), push_backlog=backlog,
            statuses=statuses, accepted=len(self.accepted), loading=self._loading,
            took_s=round(time.monotonic() - started, 2)))

    # -- the end ------------------------------------------------------------------------------------
    async def drain(self) -> bool:
        """Until every accepted message and acknowledged MO has come all the way (bounded)."""
        deadline = time.monotonic() + self.args.drain
        self.receiver.expect(self.accepted)
        while time.monotonic() < deadline:
            if not self.receiver.missing and not self.mo_missing() and not await asyncio.to_thread(self.store_missing):
                return True
            await asyncio.sleep(2)
        return False

    def mo_missing(self) -> list[str]:
        return [text for text in self.mo_acked if not self.mo_receiver.pushes[text]]

    def store_missing(self) -> int:
        """Accepted messages not final in the store, plus acknowledged MO without a final reply."""
        stored = self.store.messages()
        final = {mid for mid, (_, status) in stored.items() if status in FINAL_STATUSES}
        replied = {body for body, status in self.store.replies() if status in FINAL_STATUSES}
        return len(self.accepted.keys() - final) + sum(1 for t in self.mo_acked if f"re {t.split()[1]}" not in replied)


async def soak(args, workdir: Path, store_url: str, store: SoakStore) -> dict:
    sims = start_sims(workdir, args.window, args.receipt_delay)
    receiver, mo_receiver = CallbackReceiver(SECRET), MoReceiver(SECRET)
    callback_port = await receiver.start(free_port())
    gw = SoakGateway(workdir, store_url, sims, args.window, callback_port, await mo_receiver.start())
    stopped_cleanly = False
    try:
        await asyncio.to_thread(gw.start)
        print(f"soak: gateway up on {gw.url} (metrics :{gw.metrics_port}); {args.minutes:g} min of load", flush=True)
        run = Soak(args, workdir, store, gw, receiver, callback_port, mo_receiver)
        await run.run()
        stopped_cleanly = await asyncio.to_thread(gw.stop) == 0
    finally:
        if gw.running:
            gw.kill()
        for sim in sims.values():
            sim.stop()
        await receiver.stop()
        await mo_receiver.stop()
    return verdict(run, sims, stopped_cleanly, args.window)


def parse_args(argv: list[str] | None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=30.0, help="minutes of load (default 30; 0.5..1440)")
    p.add_argument("--rate", type=float, default=100.0, help="MT messages per second (default 100; 1..1000)")
    p.add_argument("--kill-every", default="3m", help="SIGKILL the gateway about this often (default 3m, ±30%%)")
    p.add_argument("--outage-every", default="4m",
                   help="stop the callback receiver for 10-30 s about this often (default 4m, ±30%%)")
    p.add_argument("--mo-every", default="2s", help="inject an MO about this often (default 2s)")
    p.add_argument("--warmup", default="60s", help="no kill before this; the overall RSS slope starts here (60s)")
    p.add_argument("--sample-every", default="5s", help="sampling interval (default 5s)")
    p.add_argument("--drain", default="10m", help="at most this long for everything to come through (10m)")
    p.add_argument("--receipt-delay", default="200ms", help="the simulators' receipt delay (default 200ms)")
    p.add_argument("--window", type=int, default=10, help="SMPP window per operator (default 10)")
    p.add_argument("--seed", type=int, default=20261204, help="seed of the kill, outage and MO times")
    p.add_argument("--pg-url", default=None, help="a PostgreSQL server: the store is a new database there, dropped "
                                                  "afterwards (default: a SQLite file in --out)")
    p.add_argument("--keep", action="store_true", help="keep the logs and the SQLite file after a run that passed")
    p.add_argument("--out", type=Path, default=None, help="folder for soak.json, soak.png and the logs "
                                                          "(default: a new temp folder)")
    args = p.parse_args(argv)
    if not 0.5 <= args.minutes <= 1440 or not 1 <= args.rate <= 1000:
        p.error("--minutes must be 0.5..1440 and --rate 1..1000")
    for name in ("kill_every", "outage_every", "mo_every", "warmup", "sample_every", "drain"):
        try:  # durations in seconds from here on
            setattr(args, name, parse_duration(getattr(args, name)))
        except ValueError as exc:
            p.error(f"--{name.replace('_', '-')}: {exc}")
        if getattr(args, name) <= 0 and name != "warmup":
            p.error(f"--{name.replace('_', '-')} must be above zero")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="smsgw-soak-"))
    out.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="run-", dir=out))
    print(f"soak: output in {out}", flush=True)
    db_url = create_database(args.pg_url, prefix="smsgw_soak") if args.pg_url else None
    try:
        store = SoakStore(sqlite_path=None if db_url else workdir / "soak.db", pg_url=db_url)
        record = asyncio.run(soak(args, workdir, db_url or "sqlite:///soak.db", store))
    finally:
        if db_url:
            drop_database(args.pg_url, db_url)
    (out / "soak.json").write_text(json.dumps(record, indent=1))
    why = write_plot(record, out / "soak.png")
    print(table(record))
    print(f"soak: {out / 'soak.json'}" + (f"; plot skipped: {why}" if why else f", {out / 'soak.png'}"))
    for problem in record["problems"]:
        print(f"soak: PROBLEM: {problem}")
    if record["problems"] or args.keep:
        print(f"soak: logs and store in {workdir}")
    else:
        shutil.rmtree(workdir)
    return 1 if record["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
