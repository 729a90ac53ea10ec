"""The slow-commit case of the crash trials (scripts/crash.py, ``--cases``): the store cannot commit
while the gateway submits, then SIGKILL; after the restart every message is delivered, and only
what was in a window at the crash may have gone twice (``run_slow_commit``).
"""

from __future__ import annotations

import json
import sqlite3
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from crash_rig import API_KEY, Gateway, Sim, StoreReader, log_entries  # noqa: E402

from tests.harness.waiting import wait_until  # noqa: E402


@dataclass
class SlowCommitResult:
    store: str
    messages: int
    submitted_before_kill: int = 0
    duplicates: int = 0
    bound: int = 0
    delivered: int = 0
    problems: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (f"{self.store:<10} slow commit: {self.messages} queued, {self.submitted_before_kill} submitted "
                f"while the store could not commit, duplicates after the crash {self.duplicates} (bound "
                f"{self.bound}), delivered {self.delivered}: "
                f"{'ok' if not self.problems else 'FAILED: ' + '; '.join(self.problems)}")


class _StoreLock:
    """Holds the store so that the gateway's writer cannot commit a submit response (SQLite: the
    write lock; PostgreSQL: an EXCLUSIVE lock on smsc_ids, which every record_submit writes)."""

    def __init__(self, sqlite_path: Path | None, pg_url: str | None) -> None:
        if sqlite_path is not None:
            self.conn = sqlite3.connect(str(sqlite_path), isolation_level=None, timeout=30)
            self.conn.execute("BEGIN IMMEDIATE")
        else:
            import psycopg2

            self.conn = psycopg2.connect(pg_url)
            self.conn.cursor().execute("LOCK TABLE smsc_ids IN EXCLUSIVE MODE")
        self.pg_url = pg_url

    def release(self) -> None:
        self.conn.rollback() if self.pg_url else self.conn.execute("ROLLBACK")
        if self.pg_url:
            # The killed gateway's backend may still be waiting on the lock; it ends (and rolls
            # back) once the lock is free and it finds its client gone.
            cur = self.conn.cursor()

            def alone():
                cur.execute("SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() "
                            "AND pid <> pg_backend_pid()")
                n = cur.fetchone()[0]
                self.conn.rollback()
                return n == 0

            wait_until(alone, 30, 0.1, what="the killed gateway's database sessions to end")
        self.conn.close()


def run_slow_commit(store: str, workdir: Path, *, pg_url: str | None = None, messages: int = 100,
                    window: int = 10, binds: int = 1) -> SlowCommitResult:
    """SPEC §11 with a store that commits slowly when the gateway dies: ``messages`` are queued
    while the SMSC is away; then the store is held (``_StoreLock``) so that no submit response can
    be stored, the SMSC comes up, the gateway submits until it stops (or until every message is
    submitted), is SIGKILLed, the store is released, and the gateway is started again. Every
    submit answered but not stored is sent again: only those still in a window at the crash may
    be (at most window × binds).

    One process: the case needs the messages in the memory of the process that holds the binds
    when the store stalls. With API workers (smscore.supervisor) a request may land on a process
    that only stores; the main worker's claim then waits for the store like everything else, and
    nothing is submitted to go twice. The trials (``run_trial``) run the default processes."""
    result = SlowCommitResult(store, messages, bound=window * binds)
    workdir.mkdir(parents=True, exist_ok=True)
    sqlite_path = workdir / "crash.db" if store == "sqlite" else None
    reader = StoreReader(sqlite_path=sqlite_path, pg_url=pg_url)
    sim = Sim(workdir, window=window)
    gw = Gateway(workdir, "sqlite:///crash.db" if store == "sqlite" else pg_url, sim.smpp_port,
                 window=window, binds=binds, processes="1")
    lock = None
    try:
        gw.start(ready=False)  # the SMSC is not there yet: messages are stored and wait
        numbers = [f"4671{i:07d}" for i in range(messages)]
        req = urllib.request.Request(f"{gw.url}/v1/messages", method="POST",
                                     data=json.dumps({"to": numbers, "text": "slow commit"}).encode(),
                                     headers={"Authorization": f"Bearer {API_KEY}",
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            ids = [m["id"] for m in json.loads(resp.read())["messages"]]
        lock = _StoreLock(sqlite_path, pg_url)
        sim.start()

        def submitted() -> int:
            return sum(1 for e in log_entries(sim.log) if e.get("event") == "submit_sm accepted")

        # Wait for the binds and the submits: until all went, or none came for 2 s.
        wait_until(lambda: submitted() > 0, 30, 0.05, what="the first submit")
        last, still = submitted(), time.monotonic()
        while last < messages and time.monotonic() - still < 2.0:
            time.sleep(0.1)
            now = submitted()
            if now != last:
                last, still = now, time.monotonic()
        result.submitted_before_kill = last
        old_sessions = {e["session"] for e in log_entries(sim.log) if e.get("event") == "esme bound"}
        gw.kill()
        lock.release()
        lock = None
        gw.start(ready=False)
        try:
            wait_until(lambda: all(reader.messages().get(mid, ("", ""))[1] == "delivered" for mid in ids), 60, 0.25,
                       what="every message delivered after the restart")
        except TimeoutError as exc:
            result.problems.append(f"{exc}: store has {reader.count_by_status()}")
        time.sleep(0.3)
        gw.stop()
        sim.stop()
        stored = reader.messages()
        result.delivered = sum(1 for mid in ids if stored.get(mid, ("", ""))[1] == "delivered")
        submits: dict[str, list[str]] = {}
        for e in log_entries(sim.log):
            if e.get("event") == "submit_sm accepted":
                submits.setdefault(e["destination_addr"], []).append(e["session"])
        result.duplicates = sum(len(s) - 1 for s in submits.values())
        if result.duplicates > result.bound:
            result.problems.append(
                f"{result.duplicates} duplicate submits after one crash, more than window x binds = {result.bound} "
                f"(each answered by the SMSC before the crash, its response not yet stored)")
        odd = {to: s for to, s in submits.items() if len(s) > 1
               and not (len(s) == 2 and s[0] in old_sessions and s[1] not in old_sessions)}
        if odd:
            result.problems.append(f"duplicates other than one before and one after the crash: {list(odd.items())[:3]}")
    finally:
        if lock is not None:
            try:
                lock.release()
            except Exception:
                pass
        gw.stop()
        sim.stop()
    return result


# -- a crash with a backlog of more than one claim batch -----------------------------------------------
