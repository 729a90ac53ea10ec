"""One node on several processes (smscore.supervisor), as `smsgw run` starts it: every process
serves, the node answers as one, and it stops, dies and recovers as one unit."""

from __future__ import annotations

import http.client
import json
import os
import signal
import time

import pytest

from tests.e2e.conftest import DEMO_CONFIG
from tests.harness.net import free_port, http as call
from tests.harness.waiting import wait_until

pytestmark = pytest.mark.slow

# the demo node of tests/e2e/conftest.py, on two processes; replies come from the shortcode
CONFIG = (DEMO_CONFIG.replace("[gateway]\n", "[gateway]\nprocesses = 2\n", 1)
          .replace('senders = ["DEMO"]', 'senders = ["DEMO", "72550"]'))


def children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def connections_served(pid: int, port: int) -> int:
    """Established TCP connections to ``port`` that process ``pid`` holds (from /proc)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].split(":")[1], 16)
            if local_port == port and fields[3] == "01" and fields[9] in inodes:
                count += 1
    return count


def post(port: int, body: dict, connection: http.client.HTTPConnection | None = None):
    conn = connection or http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("POST", "/v1/messages", json.dumps(body), {"Authorization": "Bearer demo-key"})
    resp = conn.getresponse()
    return resp.status, json.loads(resp.read())


@pytest.fixture
def node(gateways, tmp_path):
    ports = {"http": free_port(), "metrics": free_port()}
    gw = gateways(CONFIG.format(**ports), ports["http"])
    gw.metrics_port = ports["metrics"]
    gw.start()
    wait_until(lambda: len(children(gw.proc.pid)) == 2, 10, what="two worker processes")
    return gw


def test_the_api_worker_serves_and_the_node_answers_as_one(node):
    # 40 kept-alive connections: the kernel spreads them over the API workers (SO_REUSEPORT); the
    # main worker, which sends and receives for the whole node, takes none.
    ids, conns = [], [http.client.HTTPConnection("127.0.0.1", node.http_port, timeout=10) for _ in range(40)]
    for i, conn in enumerate(conns):
        status, body = post(node.http_port, {"to": f"467012345{i:02d}", "text": f"hello {i}"}, conn)
        assert status == 202, body
        ids.append(body["messages"][0]["id"])
    served = [connections_served(pid, node.http_port) for pid in children(node.proc.pid)]
    assert sorted(served) == [0, 40], served
    for conn in conns:
        conn.close()

    def delivered():
        return all(call("GET", f"{node.url}/v1/messages/{i}", key="demo-key")[1]["status"] == "delivered" for i in ids)

    wait_until(delivered, 30, what="every message delivered")
    # Both processes wrote status changes: the pull order (update_seq) stays one sequence, so a
    # paged pull sees each message once, at its last change.
    seen, cursor = [], "0"
    while True:
        status, page = call("GET", f"{node.url}/v1/messages?limit=7&cursor={cursor}", key="demo-key")
        assert status == 200
        if not page["messages"]:
            break
        seen += [m["id"] for m in page["messages"]]
        assert int(page["next_cursor"]) > int(cursor)
        cursor = page["next_cursor"]
    assert sorted(seen) == sorted(ids)
    # Requests an API worker does not answer itself are the main worker's: any connection works.
    for _ in range(6):
        assert call("GET", node.url + "/readyz")[0] == 200
        status, binds = call("GET", node.url + "/v1/admin/binds", key="ops-key")
        assert status == 200 and {o["operator"] for o in binds["operators"]} == {"sim_a", "sim_b"}
        assert call("GET", node.url + "/v1/admin/binds", key="demo-key")[0] == 403
    # /metrics adds up every process: each message was counted queued once, wherever it came in.
    def metric(text, name, **labels):
        return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
                   if s.name == name and labels.items() <= s.labels.items())

    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    text = urllib.request.urlopen(f"http://127.0.0.1:{node.metrics_port}/metrics", timeout=5).read().decode()
    assert metric(text, "smsgw_messages_total", status="queued", operator="") == 40
    assert metric(text, "smsgw_messages_total", status="delivered") == 40
    assert "# TYPE smsgw_messages_total counter" in text.splitlines()  # not untyped for Prometheus
    # Figures of the node, not of a process, are not added up; process_* keep one series per worker.
    assert metric(text, "smsgw_build_info") == 1
    assert {s.labels["worker"] for f in text_string_to_metric_families(text) for s in f.samples
            if s.name == "process_start_time_seconds"} == {"0", "1"}


def test_an_mo_injected_through_any_process_gets_its_static_reply(node):
    status, _ = call("POST", node.url + "/v1/admin/operators/sim_a/mo",
                     {"from": "46701234567", "to": "72550", "text": "DEMO hi"}, key="ops-key")
    assert status == 202

    def replied():
        _, page = call("GET", node.url + "/v1/messages?to=46701234567", key="demo-key")
        return [m for m in page["messages"] if m["text"] == "You said: hi" and m["status"] == "delivered"]

    wait_until(replied, 20, what="the static reply delivered")


def test_sigterm_stops_every_process(node):
    workers = children(node.proc.pid)
    assert node.stop() == 0
    wait_until(lambda: not any(alive(p) for p in workers), 10, what="the workers gone")


def test_sigkill_of_smsgw_run_leaves_no_process_and_the_node_starts_again(node):
    """What a SIGKILL does to accepted messages is the crash trials' business (tests/e2e/
    test_crash_trials.py, with an SMSC that outlives the gateway); here: no worker outlives it."""
    workers = children(node.proc.pid)
    node.kill()
    wait_until(lambda: not any(alive(p) for p in workers), 10, what="the workers killed with smsgw run")
    node.start()
    status, body = post(node.http_port, {"to": "46701230000", "text": "after the restart"})
    assert status == 202
    mid = body["messages"][0]["id"]
    wait_until(lambda: call("GET", f"{node.url}/v1/messages/{mid}", key="demo-key")[1]["status"] == "delivered",
             30, what="a message delivered after the restart")


def test_a_worker_that_dies_is_started_again(node):
    main, api = children(node.proc.pid)
    os.kill(api, signal.SIGKILL)
    wait_until(lambda: api not in children(node.proc.pid) and len(children(node.proc.pid)) == 2, 15,
             what="a new API worker")
    # every connection is served again (the listening socket stayed open meanwhile)
    for i in range(10):
        assert post(node.http_port, {"to": f"467012399{i:02d}", "text": "after"})[0] == 202
    assert main in children(node.proc.pid)


def test_a_worker_killed_again_and_again_soon_after_each_start_is_started_again_each_time(node):
    """SIGKILL from outside (kill -9, the OOM killer) is not a worker that cannot start: the node
    does not stop after three such deaths within seconds of each start."""
    main, api = children(node.proc.pid)
    for _ in range(4):
        os.kill(api, signal.SIGKILL)
        wait_until(lambda: api not in children(node.proc.pid) and len(children(node.proc.pid)) == 2, 15,
                 what="a new API worker")
        api = [p for p in children(node.proc.pid) if p != main][0]
    assert node.proc.poll() is None
    wait_until(lambda: post(node.http_port, {"to": "46701239990", "text": "after"})[0] == 202, 15,
             step=0.1, what="the API served by the last API worker")


def test_an_accounts_tps_holds_for_the_node_not_for_each_process(gateways):
    # tps = 3 for the demo account; 40 connections spread over the two API workers of a node of
    # three processes, one request each, as fast as they go: the node lets 3 through (plus what
    # refills meanwhile), not 3 a process.
    ports = {"http": free_port(), "metrics": free_port()}
    config = (CONFIG.format(**ports).replace("[accounts.demo]\n", "[accounts.demo]\ntps = 3\n", 1)
              .replace("processes = 2\n", "processes = 3\n", 1))
    node = gateways(config, ports["http"]).start()
    wait_until(lambda: len(children(node.proc.pid)) == 3, 10, what="three worker processes")
    conns = [http.client.HTTPConnection("127.0.0.1", node.http_port, timeout=10) for _ in range(40)]
    for conn in conns:
        conn.connect()

    def serving():
        return sum(1 for pid in children(node.proc.pid) if connections_served(pid, node.http_port))

    wait_until(lambda: serving() == 2, 10, what="connections on both API workers")
    started = time.monotonic()
    codes = [post(node.http_port, {"to": f"467012345{i:02d}", "text": "hi"}, conn)[0] for i, conn in enumerate(conns)]
    elapsed = time.monotonic() - started
    accepted = codes.count(202)
    assert set(codes) == {202, 429}, codes
    assert 3 <= accepted <= 3 + int(3 * elapsed) + 1, (accepted, elapsed)


def test_a_reload_sent_while_the_workers_start_kills_none_and_is_applied(gateways, tmp_path):
    """systemd's ExecReload (SIGHUP) right after the start: the main worker, still importing, died of
    SIGHUP's default action (the supervisor restarted it and the reload was lost; one test run in
    six). Workers now start with SIGHUP blocked and take it once started."""
    ports = {"http": free_port(), "metrics": free_port()}
    gw = gateways(CONFIG.format(**ports), ports["http"])
    gw.spawn()
    wait_until(lambda: len(children(gw.proc.pid)) == 2, 10, what="two worker processes")
    with open(gw.config, "a") as f:  # a new account, known once the reload applied it
        f.write('\n[accounts.reloaded]\napi_keys = ["reload-key"]\nsenders = ["DEMO"]\n')
    gw.proc.send_signal(signal.SIGHUP)  # the workers are still starting: none has served yet

    def reloaded():
        try:
            return call("GET", gw.url + "/v1/account", key="reload-key")[0] == 200
        except OSError:  # not listening yet
            return False

    wait_until(reloaded, 30, what="the reloaded account's key accepted")
    assert '"worker died"' not in gw.log.read_text()


def test_every_worker_runs_on_the_lean_reactor(node):
    # connectors.reactor: installed by `smsgw run` in each worker before anything else takes the
    # default reactor; the start line of each says which event loop it runs.
    wait_until(lambda: node.log.read_text().count('"gateway started"') == 2, 20, what="both workers started")
    lines = [json.loads(line) for line in node.log.read_text().splitlines()
             if line.startswith("{") and '"gateway started"' in line]
    assert sorted(line["worker"] for line in lines) == [0, 1]
    assert {line["reactor"] for line in lines} == {"LeanEPollReactor"}


def node_samples(node, timeout: float = 5) -> dict:
    """The node's /metrics as {(name, labels): value}."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    text = urllib.request.urlopen(f"http://127.0.0.1:{node.metrics_port}/metrics", timeout=timeout).read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}


ACCEPTED = ("smsgw_accepted_total", ())


def test_the_nodes_counters_do_not_go_down_when_an_api_worker_restarts(node):
    """The API worker took every message (the main worker takes no customer connection); SIGKILLed
    and started again, its new process counts from 0, and the node's counters went down with it
    (44 → 16 once, which Prometheus counted as 16 new messages). They stay now, and grow on."""
    for i in range(5):
        assert post(node.http_port, {"to": f"467012377{i:02d}", "text": "before"})[0] == 202
    assert node_samples(node)[ACCEPTED] == 5
    main, api = children(node.proc.pid)
    os.kill(api, signal.SIGKILL)
    assert node_samples(node)[ACCEPTED] == 5  # down (or just started again): its last counts stand in
    wait_until(lambda: api not in children(node.proc.pid) and len(children(node.proc.pid)) == 2, 15,
               what="a new API worker")
    wait_until(lambda: {dict(labels).get("worker") for name, labels in node_samples(node)
                        if name == "process_start_time_seconds"} == {"0", "1"}, 15, what="the new worker read")
    assert node_samples(node)[ACCEPTED] == 5
    for i in range(3):
        assert post(node.http_port, {"to": f"467012388{i:02d}", "text": "after"})[0] == 202
    assert node_samples(node)[ACCEPTED] == 8


def test_a_stopped_api_worker_does_not_hold_up_the_nodes_metrics(node):
    """SIGSTOP: the kernel still accepts connections for the worker, which answers nothing. The
    node's /metrics waited for it until SIGCONT; now it answers within the worker's 2 s, with the
    worker's last counts."""
    for i in range(4):
        assert post(node.http_port, {"to": f"467012366{i:02d}", "text": "counted"})[0] == 202
    assert node_samples(node)[ACCEPTED] == 4
    main, api = children(node.proc.pid)
    os.kill(api, signal.SIGSTOP)
    try:
        started = time.monotonic()
        assert node_samples(node, timeout=8)[ACCEPTED] == 4
        assert time.monotonic() - started < 5
    finally:
        os.kill(api, signal.SIGCONT)
    lines = [json.loads(line) for line in node.log.read_text().splitlines() if line.startswith("{")]
    [line] = [e for e in lines if e.get("event") == "a worker's metrics could not be read: its last counts stand in"
              and e.get("error") == "no answer in 2 s"][:1]
    # ``worker`` is the process that wrote the line, everywhere; the one it is about is named apart
    assert (line["worker"], line["unread_worker"]) == (0, 1), line
    assert node_samples(node)[ACCEPTED] == 4


def test_a_push_never_reaches_the_simulated_operators_of_the_main_worker(gateways):
    """SPEC §15: the gateway's own listeners are refused always. The simulated operators' SMSCs run
    in the main worker and the API workers push: a callback_url at a simulator's port went through
    (an audit), even with loopback allowed. Their sockets are the supervisor's now, their ports
    every worker's; a main worker started again finds the same ports."""
    ports = {"http": free_port(), "metrics": free_port()}
    pushing = '[accounts.demo]\ncallback_hosts = ["127.0.0.1"]\nsecret = "s3cret"\n'
    config = (CONFIG.format(**ports).replace("[accounts.demo]\n", pushing, 1)
              + '[push]\nallow_networks = ["127.0.0.0/8"]\n')

    node = gateways(config, ports["http"]).start()
    wait_until(lambda: len(children(node.proc.pid)) == 2, 10, what="two worker processes")

    def sim_ports():
        code, body = call("GET", f"{node.url}/v1/admin/binds", key="ops-key")
        return sorted(op["port"] for op in body["operators"]) if code == 200 else None

    first = sim_ports()
    assert first and len(first) == 2
    for port in first:
        at_the_simulator = {"to": "46701238888", "text": "x", "callback_url": f"http://127.0.0.1:{port}/x"}
        status, _ = post(node.http_port, at_the_simulator)
        assert status == 202
    wait_until(lambda: node.log.read_text().count("is one of the gateway's own listeners") >= 2, 20,
               what="both pushes refused as the gateway's own listeners")
    main = children(node.proc.pid)[0]
    os.kill(main, signal.SIGKILL)
    wait_until(lambda: main not in children(node.proc.pid) and len(children(node.proc.pid)) == 2, 15,
               what="a new main worker")
    wait_until(lambda: sim_ports() == first, 20, what="the simulators on the same ports")
