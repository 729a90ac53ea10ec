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
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.harness.configs import PAIR_CONFIG
from tests.harness.net import free_port, http
from tests.harness.processes import GatewayProcess, SimProcess
from tests.harness.waiting import wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

WINDOW, BINDS = 10, 2


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


def start_pair(pg_url, tmp_path, processes, *sim_args, tps=100000):
    """The simulator, then nodes a and b bound to it: ({name: GatewayProcess}, the simulator's
    log, the sessions node a bound)."""
    sim_log = tmp_path / "sim.log"
    sim = SimProcess(sim_log, system_id="pair", password="pw", options=[*sim_args, "--log-level", "info"])
    smpp = sim.smpp_port
    processes.append(sim.start().proc)

    nodes = {}
    for name in ("a", "b"):
        hp = free_port()
        path = tmp_path / f"{name}.toml"
        path.write_text(PAIR_CONFIG.format(node=name, lease="3s", url=pg_url, http=hp, metrics=free_port(), smpp=smpp,
                                      binds=BINDS, window=WINDOW, tps=tps))
        nodes[name] = GatewayProcess(path, hp, tmp_path / f"{name}.log")
    nodes["a"].start()
    processes.append(nodes["a"].proc)
    a_sessions = {e["session"] for e in sim_log_entries(sim_log) if e.get("event") == "esme bound"}
    assert len(a_sessions) == BINDS
    nodes["b"].start()
    processes.append(nodes["b"].proc)
    return nodes, sim_log, a_sessions


def submitted_to(sim_log) -> dict[str, list[str]]:
    """destination -> the sessions its submit_sm came on, in order."""
    submits: dict[str, list[str]] = {}
    for e in sim_log_entries(sim_log):
        if e.get("event") == "submit_sm accepted":
            submits.setdefault(e["destination_addr"], []).append(e["session"])
    return submits


def test_two_nodes_share_the_work_and_one_finishes_what_the_killed_one_held(pg_url, tmp_path, processes):
    nodes, sim_log, a_sessions = start_pair(pg_url, tmp_path, processes, "--receipt-delay", "100ms",
                                            "--throttle-tps", "150")

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
        wait_until(lambda: accepted_by_a() >= 150, 30, step=0.01, what="node a's backlog")
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
        wait_until(lambda: not undelivered(), 45, step=0.5, what="every accepted message delivered by node b")
    except TimeoutError:
        raise AssertionError(f"not delivered: {undelivered()[:5]}; store: {store_summary(pg_url)}") from None

    # Each destination submitted once, except what node a had in a window without a response.
    wait_until(lambda: set(accepted.values()) <= set(submitted_to(sim_log)), 5, step=0.05,
               what="the simulator's log of every accepted destination's submit")
    submits = submitted_to(sim_log)
    twice = {to: sessions for to, sessions in submits.items() if len(sessions) > 1}
    # Node a's sessions: those it bound alone, and those it bound again when b joined and the cluster
    # gave each node one of the two binds (a's link restarts with its share): the ones that went
    # without an unbind when a was killed. (Not the first ones only: a flaky failure in CI.)
    a_sessions = a_sessions | {e["session"] for e in sim_log_entries(sim_log) if e.get("event") == "esme gone"}
    assert all(len(s) == 2 and s[0] in a_sessions and s[1] not in a_sessions for s in twice.values()), (twice, a_sessions)
    assert len(twice) <= WINDOW * BINDS, twice
    # and node b really took over queued work of node a (not only its receipts)
    assert any(to.startswith("4670") and sessions[-1] not in a_sessions for to, sessions in submits.items())
    assert b.stop() == 0


def held_by(url: str, owner: str) -> list[str]:
    """The queued messages ``owner`` holds (its live lease), oldest first."""
    import psycopg2

    conn = psycopg2.connect(url)
    try:
        cur = conn.cursor()
        cur.execute("SELECT id FROM messages WHERE status = 'queued' AND owner = %s "
                    "AND lease_until > extract(epoch FROM now()) ORDER BY id", (owner,))
        return [row[0] for row in cur.fetchall()]
    finally:
        conn.close()


def test_a_cancel_on_one_node_of_a_message_the_other_node_holds_stops_it(pg_url, tmp_path, processes):
    """SPEC §4 and §11: any node answers for every message, so a DELETE on node b of a queued
    message node a holds is 200 ``stopped`` and a drops it at its next lease renewal (it was 409
    until 2026-12-05); the holder's own DELETE of one it holds stops it too. Neither goes out."""
    nodes, sim_log, _ = start_pair(pg_url, tmp_path, processes, tps=2)  # one a second for each node
    a, b = nodes["a"], nodes["b"]
    sent = {}
    for i in range(6):
        code, body = http("POST", f"{a.url}/v1/messages", {"to": f"46702{i:06d}", "text": f"m{i}"}, key="demo-key")
        assert code == 202, body
        sent[body["messages"][0]["id"]] = f"46702{i:06d}"
    wait_until(lambda: len(held_by(pg_url, "a")) >= 3, 10, what="node a holding queued messages")
    elsewhere_id, cancelled_id = held_by(pg_url, "a")[-2:]

    code, body = http("DELETE", f"{b.url}/v1/messages/{elsewhere_id}", key="demo-key")
    assert code == 200 and body["status"] == "stopped", body
    code, body = http("DELETE", f"{a.url}/v1/messages/{cancelled_id}", key="demo-key")
    assert code == 200 and body["status"] == "stopped", body

    def final():
        return {mid: http("GET", f"{b.url}/v1/messages/{mid}", key="demo-key")[1]["status"] for mid in sent}

    wait_until(lambda: all(s in ("delivered", "stopped") for s in final().values()), 30, step=0.5,
             what="every message delivered or stopped")
    statuses = final()
    assert sorted(mid for mid, s in statuses.items() if s == "stopped") == sorted([elsewhere_id, cancelled_id])
    submits = submitted_to(sim_log)
    assert sent[cancelled_id] not in submits and sent[elsewhere_id] not in submits
    assert a.stop() == 0 and b.stop() == 0
