"""What the crash trials (scripts/crash.py) start, drive and read: the gateway's config for them, the
simulated SMSC with a log line for every receipt the gateway acknowledged, the gateway, read-only
queries on its store, and the loads (MT over HTTP, MO from the simulator).

Also used by scripts/two_nodes.py and scripts/soak.py.
"""

from __future__ import annotations

import http.client
import json
import random
import sqlite3
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.harness.net import free_port  # noqa: E402
from tests.harness.processes import GatewayProcess, SimProcess  # noqa: E402


#: ``smsgw smsc-sim`` with one more log line: every receipt the ESME acknowledged ESME_ROK.
SIM_BOOT = """
import sys
from connectors.sim.smsc import SimulatedSMSC

def receipt_acknowledged(self, proto, receipt):
    self.log.info("receipt acknowledged", session=proto.label, smsc_message_id=receipt.message_id)

SimulatedSMSC.receipt_acknowledged = receipt_acknowledged
from smscore.cli import main
sys.exit(main(sys.argv[1:]))
"""

NODE = "crash"
API_KEY = "crash-key"
MO_TO = "72550"  # not a shortcode of this gateway: the MO is stored "not routed", no reply

CONFIG = """
[gateway]
node = "{node}"
processes = {processes}
[store]
url = "{store_url}"
[http]
listen = "127.0.0.1:{http}"
[metrics]
listen = "127.0.0.1:{metrics}"
[operators.smsc]
type = "smpp"
host = "127.0.0.1"
port = {smpp}
system_id = "crash"
password = "pw"
binds = {binds}
window = {window}
cost = 0.1
[profiles.standard]
operators = ["smsc"]
[accounts.demo]
api_keys = ["{key}"]
senders = ["CRASH"]
"""


# -- small helpers ------------------------------------------------------------------------------
def log_entries(path: Path) -> list[dict]:
    """The JSON lines of a log written by structlog (a partial last line is skipped)."""
    out = []
    with open(path, "rb") as f:
        for line in f:
            if line.startswith(b"{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
    return out


# -- processes ---------------------------------------------------------------------------------
class Sim(SimProcess):
    """A standalone ``smsgw smsc-sim`` (with the receipt-acknowledged log line) in its own process."""

    def __init__(self, workdir: Path, *, window: int = 10, receipt_delay: str = "100ms",
                 system_id: str = "crash", password: str = "pw", log_level: str = "info") -> None:
        super().__init__(workdir / "sim.log", system_id=system_id, password=password, boot=SIM_BOOT,
                         options=["--receipt-delay", receipt_delay, "--window", str(window), "--log-level", log_level])

    def inject_mo(self, sender: str, text: str, timeout: float = 15.0) -> str:
        body = json.dumps({"from": sender, "to": MO_TO, "text": text}).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{self.control_port}/mo", data=body, method="POST")
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read())["outcome"]


class Gateway(GatewayProcess):
    """``smsgw run`` with this script's config (``CONFIG``) in ``workdir``, on fresh ports."""

    def __init__(self, workdir: Path, store_url: str, smpp_port: int, *, window: int = 10, binds: int = 1,
                 log_level: str = "info", node: str = NODE, processes: str = '"auto"') -> None:
        http_port, metrics_port = free_port(), free_port()
        config = workdir / "gw.toml"
        config.write_text(CONFIG.format(node=node, processes=processes, store_url=store_url, http=http_port,
                                        metrics=metrics_port, smpp=smpp_port, binds=binds, window=window,
                                        key=API_KEY))
        super().__init__(config, http_port, workdir / "gw.log", metrics_port=metrics_port, log_level=log_level)


# -- reading the store directly -----------------------------------------------------------------
class StoreReader:
    """Read-only queries on the gateway's store: a SQLite file or a PostgreSQL URL."""

    def __init__(self, sqlite_path: Path | None = None, pg_url: str | None = None) -> None:
        self.sqlite_path, self.pg_url = sqlite_path, pg_url

    def _query(self, sql: str, params=()) -> list[tuple]:
        if self.sqlite_path is not None:
            if not self.sqlite_path.exists():
                return []
            conn = sqlite3.connect(f"file:{self.sqlite_path}?mode=ro", uri=True, timeout=30)
            try:
                return conn.execute(sql, params).fetchall()
            finally:
                conn.close()
        import psycopg2

        conn = psycopg2.connect(self.pg_url, connect_timeout=10)
        try:
            cur = conn.cursor()
            cur.execute(sql.replace("?", "%s"), params)
            return cur.fetchall()
        finally:
            conn.close()

    def messages(self) -> dict[str, tuple[str, str]]:
        """id -> (destination, status) of every message."""
        return {mid: (to, status) for mid, to, status in self._query("SELECT id, to_number, status FROM messages")}

    def smsc_keys(self) -> set[str]:
        return {k for (k,) in self._query("SELECT key FROM smsc_ids")}

    def orphan_keys(self) -> set[str]:
        return {k for (k,) in self._query("SELECT key FROM orphan_receipts")}

    def mo_bodies(self) -> set[str]:
        return {b for (b,) in self._query("SELECT body FROM mo_messages")}

    def count_by_status(self) -> dict[str, int]:
        return dict(self._query("SELECT status, COUNT(*) FROM messages GROUP BY status"))


# -- load ----------------------------------------------------------------------------------------
class Load:
    """POSTs messages at a steady pace from a few threads, never reusing a destination."""

    def __init__(self, gw: Gateway, rng: random.Random, rate: float, limit: int, threads: int = 2) -> None:
        self.gw, self.rng, self.rate, self.limit = gw, rng, rate, limit
        self.accepted: dict[str, str] = {}  # id -> destination
        self.unanswered = 0
        self.refused = 0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self._next = 0
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]
        # the list sizes are drawn up front so the seed alone fixes them
        # (one per request mostly, some short lists, and a burst of 20-50 now and then to fill the window)
        self._sizes = [rng.choice((2, 3, 4)) if r < 0.2 else rng.randint(20, 50) if r > 0.98 else 1
                       for r in (rng.random() for _ in range(limit))]

    def start(self) -> Load:
        self.started = time.monotonic()
        for t in self._threads:
            t.start()
        return self

    def join(self) -> None:
        self.stop.set()
        for t in self._threads:
            t.join(timeout=30)

    def _take(self) -> list[str] | None:
        with self.lock:
            if self._next >= self.limit:
                return None
            size = self._sizes[self._next]
            first = self._next
            self._next = min(self.limit, self._next + size)
            return [f"4670{i:07d}" for i in range(first, self._next)]

    def _run(self) -> None:
        conn = None
        interval = len(self._threads) / self.rate
        due = time.monotonic()
        while not self.stop.is_set():
            numbers = self._take()
            if numbers is None:
                return
            due += interval * len(numbers)
            body = json.dumps({"to": numbers if len(numbers) > 1 else numbers[0],
                               "text": f"crash {numbers[0]}"}).encode()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.gw.http_port, timeout=5)
                conn.request("POST", "/v1/messages", body, {"Authorization": f"Bearer {API_KEY}",
                                                            "Content-Type": "application/json"})
                resp = conn.getresponse()
                data = resp.read()
                if 200 <= resp.status < 300:
                    with self.lock:
                        for m in json.loads(data)["messages"]:
                            self.accepted[m["id"]] = m["to"].lstrip("+")
                else:
                    with self.lock:
                        self.refused += 1
            except (OSError, http.client.HTTPException):
                # the gateway is gone (or going): no answer, no promise; a fresh destination next
                with self.lock:
                    self.unanswered += 1
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(0.02)
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            else:
                due = time.monotonic()
        if conn is not None:
            conn.close()


class MoLoad:
    """Makes the simulator send MO one after the other; records those the gateway acknowledged."""

    def __init__(self, sim: Sim, trial: int, pause: float = 0.03) -> None:
        self.sim, self.trial, self.pause = sim, trial, pause
        self.acked: list[str] = []
        self.outcomes: dict[str, int] = {}
        self.stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> MoLoad:
        self._thread.start()
        return self

    def join(self) -> None:
        self.stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        i = 0
        while not self.stop.is_set():
            text = f"crash mo {self.trial} {i}"
            try:
                outcome = self.sim.inject_mo(f"46709{i:06d}", text)
            except OSError as exc:
                outcome = f"error: {exc}"
            self.outcomes[outcome.split(":")[0]] = self.outcomes.get(outcome.split(":")[0], 0) + 1
            if outcome == "delivered":
                self.acked.append(text)
            i += 1
            self.stop.wait(self.pause)
