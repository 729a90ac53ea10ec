"""Two gateway nodes on one PostgreSQL, one SMSC: traffic to both, one node SIGKILLed mid-way.

Each node is `smsgw run` in its own process with its own binds to a standalone `smsgw smsc-sim`
(the operator; both bind with the same account, so a receipt may come back on either node's
bind). The killed node's leases run out (3 s) and the other node finishes its work. Every message
answered 2xx is delivered; the SMSC saw each destination once, except messages the killed node
had submitted without a response stored: those are sent again, at most window × binds of them.
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.e2e.conftest import ROOT, SMSGW, GatewayProcess, free_port, http, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

WINDOW, BINDS = 10, 2

CONFIG = """
[gateway]
node = "{node}"
lease = "3s"
[store]
url = "{url}"
[http]
listen = "127.0.0.1:{http}"
[metrics]
listen = "127.0.0.1:{metrics}"
[operators.smsc]
type = "smpp"
host = "127.0.0.1"
port = {smpp}
system_id = "pair"
password = "pw"
binds = {binds}
window = {window}
cost = 0.1
[profiles.standard]
operators = ["smsc"]
[accounts.demo]
api_keys = ["demo-key"]
senders = ["DEMO"]
"""


def store_summary(url: str) -> list[tuple]:
    """(status, owner, seconds left on the lease, count): what to look at when a message is stuck."""
    import psycopg2

    conn = psycopg2.connect(url)
    try:
        cur = conn.cursor()
        cur.execute("SELECT status, owner, round((lease_until - extract(epoch FROM now()))::numeric, 1), COUNT(*) "
                    "FROM messages GROUP BY 1, 2, 3 ORDER BY 4 DESC LIMIT 10")
        return cur.fetchall()
    finally:
        conn.close()


def sim_log_entries(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


@pytest.fixture
def processes(tmp_path):
    started: list[subprocess.Popen] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)


def test_two_nodes_share_the_work_and_one_finishes_what_the_killed_one_held(pg_url, tmp_path, processes):
    smpp = free_port()
    sim_log = tmp_path / "sim.log"
    sim = subprocess.Popen([*SMSGW, "smsc-sim", "--listen", f"127.0.0.1:{smpp}", "--system-id", "pair",
                            "--password", "pw", "--receipt-delay", "100ms", "--throttle-tps", "150",
                            "--log-level", "info"],
                           stdout=open(sim_log, "w"), stderr=subprocess.STDOUT, cwd=ROOT)
    processes.append(sim)
    wait_for(lambda: "simulated SMSC listening" in sim_log.read_text(), 30, what="the simulator")

    nodes = {}
    for name in ("a", "b"):
        hp = free_port()
        path = tmp_path / f"{name}.toml"
        path.write_text(CONFIG.format(node=name, url=pg_url, http=hp, metrics=free_port(), smpp=smpp,
                                      binds=BINDS, window=WINDOW))
        nodes[name] = GatewayProcess(path, hp, tmp_path / f"{name}.log")
    nodes["a"].start()
    processes.append(nodes["a"].proc)
    bound = [e["session"] for e in sim_log_entries(sim_log) if e.get("event") == "esme bound"]
    a_sessions = set(bound)
    assert len(a_sessions) == BINDS
    nodes["b"].start()
    processes.append(nodes["b"].proc)

    # Traffic to both nodes at once; node a is killed while it holds a backlog (the SMSC takes
    # 150 submits a second from both and throttles the rest).
    accepted: dict[str, str] = {}  # message id -> destination
    lock = threading.Lock()
    killed = threading.Event()

    def send(node: str, i: int) -> None:
        to = f"467{0 if node == 'a' else 1}{i:07d}"
        try:
            code, body = http("POST", f"{nodes[node].url}/v1/messages", {"to": to, "text": f"m{i}"},
                              key="demo-key", timeout=5)
        except OSError:
            return  # the node is gone: no answer, so no promise
        if code == 202:
            with lock:
                accepted[body["messages"][0]["id"]] = to

    def accepted_by_a() -> int:
        with lock:
            return sum(1 for to in accepted.values() if to.startswith("4670"))

    def kill_a_midway() -> None:
        wait_for(lambda: accepted_by_a() >= 150, 30, step=0.01, what="node a's backlog")
        nodes["a"].kill()
        killed.set()

    killer = threading.Thread(target=kill_a_midway)
    killer.start()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda args: send(*args), [(n, i) for i in range(250) for n in ("a", "b")]))
    killer.join()
    assert killed.is_set()
    from_a = [mid for mid, to in accepted.items() if to.startswith("4670")]
    assert len(from_a) >= 150 and len(accepted) - len(from_a) == 250

    # Node b answers for every message, node a's included, and delivers them all.
    b = nodes["b"]

    def undelivered():
        left = []
        for mid in accepted:
            code, body = http("GET", f"{b.url}/v1/messages/{mid}", key="demo-key")
            assert code == 200, (mid, code, body)
            if body["status"] != "delivered":
                left.append((mid, body["status"]))
        return left

    try:
        wait_for(lambda: not undelivered(), 45, step=0.5, what="every accepted message delivered by node b")
    except AssertionError:
        raise AssertionError(f"not delivered: {undelivered()[:5]}; store: {store_summary(pg_url)}") from None

    # Each destination submitted once, except what node a had in a window without a response.
    time.sleep(0.3)
    submits: dict[str, list[str]] = {}
    for e in sim_log_entries(sim_log):
        if e.get("event") == "submit_sm accepted":
            submits.setdefault(e["destination_addr"], []).append(e["session"])
    assert set(accepted.values()) <= set(submits)
    twice = {to: sessions for to, sessions in submits.items() if len(sessions) > 1}
    assert all(len(s) == 2 and s[0] in a_sessions and s[1] not in a_sessions for s in twice.values()), twice
    assert len(twice) <= WINDOW * BINDS, twice
    # and node b really took over queued work of node a (not only its receipts)
    assert any(to.startswith("4670") and sessions[-1] not in a_sessions for to, sessions in submits.items())
    assert b.stop() == 0
