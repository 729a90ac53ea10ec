"""The processes of one node and no other's: a worker the supervisor starts again runs the config
the node runs, not the file as it is now (SPEC §3 reload, §10; ``smscore.running_config``), and a
second node cannot join the API port of a running one. Found by a black-box audit: with a refused
reload, the next crash of any worker stopped the whole node (the new worker could not start, three
times); with an edit not reloaded, the restarted worker ran it alone (a new account's key worked,
at a balance of 0, and a new price applied to some requests only)."""

from __future__ import annotations

import os
import signal

from tests.e2e.conftest import smsgw
from tests.e2e.test_processes import children, node, post  # noqa: F401 (node: the fixture)
from tests.harness.net import free_port, http as call
from tests.harness.waiting import wait_until

LATE = """
[accounts.late]
api_keys = ["late-key"]
senders = ["LATE"]
"""


def restart_api_worker(node) -> None:
    """SIGKILL the API worker (a crash, the OOM killer) and wait for the one started instead."""
    main, api = children(node.proc.pid)
    os.kill(api, signal.SIGKILL)
    wait_until(lambda: api not in children(node.proc.pid) and len(children(node.proc.pid)) == 2, 15,
               what="a new API worker")
    assert main in children(node.proc.pid)


def serving(node, key: str) -> int:
    """The status a POST with ``key`` gets once the new API worker answers."""
    def answer():
        code, _ = call("POST", f"{node.url}/v1/messages", {"to": "46701238800", "text": "x"}, key=key)
        return code if code in (202, 401) else None
    return wait_until(answer, 15, step=0.1, what="an answer from the API")


def reload(node):
    return smsgw("reload", "-c", str(node.config), "--admin-key", "ops-key")


def test_a_restarted_worker_runs_what_the_node_runs_after_a_refused_reload_and_an_edit_not_reloaded(node):
    good = node.config.read_text()
    node.config.write_text(good.replace("[operators.sim_b]\n", "[operators.sim_b]\nwindow = 0\n", 1))
    proc = reload(node)
    assert proc.returncode == 1 and "operators.sim_b.window" in proc.stderr, proc.stderr

    restart_api_worker(node)  # the file on disk is broken: the node must not care
    assert serving(node, "demo-key") == 202
    assert node.proc.poll() is None

    node.config.write_text(good + LATE)  # valid, not reloaded
    restart_api_worker(node)
    assert serving(node, "demo-key") == 202
    assert serving(node, "late-key") == 401  # the node does not know the account until a reload

    proc = reload(node)
    assert proc.returncode == 0, proc.stderr
    assert serving(node, "late-key") == 202
    restart_api_worker(node)  # and one started after the reload runs it too
    assert serving(node, "late-key") == 202
    assert post(node.http_port, {"to": "46701238801", "text": "after"})[0] == 202


def test_a_second_node_on_the_api_port_of_a_running_one_is_refused(node, tmp_path):
    """The API workers share their port (SO_REUSEPORT), and a second ``smsgw run`` of the same
    user on the same ``http.listen`` joined them: it took 8 of 10 requests into its own store."""
    other = tmp_path / "other.toml"
    metrics = node.config.read_text().split("[metrics]\nlisten = ", 1)[1].split("\n", 1)[0]
    other.write_text(node.config.read_text().replace(metrics, f'"127.0.0.1:{free_port()}"')
                     .replace('node = "e2e"', 'node = "other"').replace("sqlite:///e2e.db", "sqlite:///other.db"))
    done = smsgw("run", "-c", str(other), timeout=60)
    assert done.returncode == 1, done.stderr
    line = done.stderr.strip().splitlines()[-1]
    assert f"127.0.0.1:{node.http_port} (http.listen)" in line and "is another gateway running?" in line, line
    assert [post(node.http_port, {"to": f"4670123881{i}", "text": "x"})[0] for i in range(4)] == [202] * 4
