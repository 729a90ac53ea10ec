"""The gateway as a user runs it: `smsgw` commands, the HTTP API, the metrics, a SIGKILL."""

from __future__ import annotations

import json
import re

from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import DEMO_CONFIG, SIM_CONFIG, one_line_error, smsgw
from tests.harness.net import free_port, http
from tests.harness.waiting import wait_until


def test_check_config_accepts_the_shipped_files_and_names_key_paths(tmp_path):
    for name in ("etc/gateway.toml", "etc/gateway.example.toml"):
        proc = smsgw("check-config", "-c", name)
        assert proc.returncode == 0, proc.stderr
        assert "OK" in proc.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text('[operators.x]\ntype = "simulated"\nwindow = "ten"\n[profiles.p]\noperators = ["y"]\n')
    proc = smsgw("check-config", "-c", str(bad))
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.splitlines()  # each names the file and starts its error with the key path
    assert lines[0].startswith(f"smsgw: {bad}: operators.x.window: ")
    assert lines[1].startswith(f"smsgw: {bad}: profiles.p.operators[0]: ")
    assert lines[2:] == [f"smsgw: {bad}: 2 configuration errors"]


def test_every_command_has_help():
    for command in (["run"], ["check-config"], ["db", "upgrade"], ["smsc-sim"], ["send"], ["status"], ["mo"]):
        proc = smsgw(*command, "--help")
        assert proc.returncode == 0 and "usage: smsgw" in proc.stdout, command


def test_argument_errors_are_one_line_naming_the_command_and_its_help():
    """Not argparse's usage block (2-6 lines starting "usage:") above the message (SPEC §2)."""
    for command, says in (
            ([], "smsgw: the following arguments are required: COMMAND (see smsgw --help)"),
            (["frobnicate"], "smsgw: argument COMMAND: invalid choice: 'frobnicate'"),
            (["status"], "smsgw: status: the following arguments are required: id (see smsgw status --help)"),
            (["send", "--to", "46701234567", "--text", "x", "--max-parts", "x"],
             "smsgw: send: argument --max-parts: invalid int value: 'x' (see smsgw send --help)"),
            (["run", "--log-level", "loud"], "smsgw: run: argument --log-level: invalid choice: 'loud'"),
            (["db"], "smsgw: db: the following arguments are required: ACTION (see smsgw db --help)"),
            (["db", "upgrade", "--bogus"],
             "smsgw: db upgrade: unrecognized arguments: --bogus (see smsgw db upgrade --help)")):
        one_line_error(smsgw(*command), 2, says, stdout="")


def test_errors_are_one_line_and_non_zero(tmp_path):
    proc = smsgw("check-config", "-c", str(tmp_path / "missing.toml"))
    assert proc.returncode == 2 and "cannot read the file" in proc.stderr
    port = free_port()  # nothing listens there
    proc = smsgw("send", "--url", f"http://127.0.0.1:{port}", "--key", "k", "--to", "46701234567", "--text", "x")
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0 and "cannot reach the gateway" in proc.stderr


def test_output_into_a_pipe_closed_early_ends_quietly():
    """``smsgw messages | head``: a BrokenPipeError traceback, and exit status 1."""
    import subprocess

    from tests.e2e.conftest import ROOT, SMSGW

    proc = subprocess.Popen([*SMSGW, "check-config", "-c", "etc/gateway.example.toml"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before the command writes
    assert (proc.wait(timeout=60), proc.stderr.read()) == (0, b"")


def test_a_sqlite_store_that_cannot_be_opened_is_one_line_from_db_upgrade_and_run(tmp_path):
    """``db upgrade`` printed a traceback (``run`` of one process said one line already)."""
    (tmp_path / "garbage.db").write_text("garbage")
    (tmp_path / "folder").mkdir()
    for url, says in (("sqlite:////proc/nope/x.db", "No such file or directory"),
                      ("sqlite:///folder", "unable to open database file"),
                      ("sqlite:///garbage.db", "file is not a database")):
        config = tmp_path / "store.toml"
        config.write_text(f'[store]\nurl = "{url}"\n[gateway]\nprocesses = 2\n'
                          '[operators.a]\ntype = "simulated"\n[profiles.p]\noperators = ["a"]\n')
        one_line_error(smsgw("db", "upgrade", "-c", str(config)), 1, "store.url: ", says, stdout="")
        one_line_error(smsgw("run", "-c", str(config)), 1, "store.url: ", says)  # the supervisor upgrades first


def test_bad_options_and_a_missing_file_are_one_line_not_a_traceback(tmp_path):
    missing = str(tmp_path / "missing.toml")
    for command in (["run", "-c", missing], ["status", "-c", missing, "--key", "k", "x"],
                    ["send", "-c", missing, "--key", "k", "--to", "46701234567", "--text", "x"],
                    ["reload", "-c", missing, "--admin-key", "k"]):
        # not a fall back to 127.0.0.1:8080
        one_line_error(smsgw(*command), 2, f"{missing}: cannot read the file", stdout="")
    for url, says in (("notaurl", "--url must be http:// or https://"), ("http://[::1", "is not a URL"),
                      ("http://h:abc", "is not a URL")):
        send = ["send", "--url", url, "--key", "k", "--to", "46701234567", "--text", "x"]
        one_line_error(smsgw(*send), 2, says, stdout="")
        one_line_error(smsgw("messages", "--url", url, "--admin-key", "k"), 2, says, stdout="")
    for option, value, says in (("--receipt-delay", "xyz", "--receipt-delay: must be"),
                                ("--throttle-tps", "-5", "--throttle-tps must be >= 0"),
                                # what the config refuses for a simulated operator (it started with them)
                                ("--password", "123456789", "--password must be at most 8 characters"),
                                ("--system-id", "s" * 16, "--system-id must be at most 15 characters"),
                                ("--unreachable-prefix", "abc", "--unreachable-prefix must be digits, not 'abc'"),
                                ("--window", "0", "--window must be at least 1")):
        one_line_error(smsgw("smsc-sim", "--listen", "127.0.0.1:0", option, value), 2, says, stdout="")
    bad = tmp_path / "bad.toml"
    bad.write_text("[gateway\n")  # one error: one line, not the error and a count of errors
    one_line_error(smsgw("run", "-c", str(bad)), 2, str(bad), stdout="")
    bad.write_text('[operators.x]\ntype = "simulated"\nwindow = 0\n[profiles.p]\noperators = ["x"]\n')
    for command in ("run", "check-config"):  # the file is named with one error too, as with several
        one_line_error(smsgw(command, "-c", str(bad)), 2, f"smsgw: {bad}: operators.x.window: ", stdout="")
    binary = tmp_path / "numbers.csv"
    binary.write_bytes(b"\xff\xfe46701234567\n")  # read before any gateway is asked
    one_line_error(smsgw("stoplist", "import", str(binary), "--url", "http://127.0.0.1:9", "--admin-key", "k"),
                   2, f"{binary}: not UTF-8 text", stdout="")


def test_a_store_that_cannot_be_reached_is_one_line(tmp_path):
    """libpq's "Connection refused" comes with a tab-indented hint on a line of its own: one line."""
    config = tmp_path / "pg.toml"
    config.write_text(SIM_CONFIG.format(http=free_port(), metrics=free_port())
                      .replace('url = "sqlite:///e2e.db"', f'url = "postgresql://smsgw@127.0.0.1:{free_port()}/smsgw"')
                      .replace("[gateway]\n", "[gateway]\nprocesses = 1\n", 1))
    one_line_error(smsgw("run", "-c", str(config), "--log-level", "error"), 1, "smsgw: cannot start: ",
                   "Connection refused")


def test_send_status_metrics_failover_and_clean_stop(gateways, tmp_path):
    hp, mp = free_port(), free_port()
    gw = gateways(SIM_CONFIG.format(http=hp, metrics=mp), hp).start()
    url = gw.url
    # Send with the CLI, as the README shows.
    proc = smsgw("send", "--url", url, "--key", "demo-key", "--to", "46701234567", "--text", "Hello e2e")
    assert proc.returncode == 0, proc.stderr
    [msg] = json.loads(proc.stdout)["messages"]
    assert msg["status"] == "queued" and msg["parts"] == 1

    def delivered(mid):
        code, body = http("GET", f"{url}/v1/messages/{mid}", key="demo-key")
        return body if code == 200 and body["status"] == "delivered" else None

    body = wait_until(lambda: delivered(msg["id"]), 20, what="delivered")
    assert body["operator"] == "sim_a"
    assert [e["status"] for e in body["events"]] == ["queued", "submitted", "delivered"]
    assert "stat=DELIVRD" in body["events"][-1]["detail"]
    proc = smsgw("status", "--url", url, "--key", "demo-key", msg["id"])
    assert proc.returncode == 0 and json.loads(proc.stdout)["status"] == "delivered"

    # A number the cheap operator cannot reach: failed there, delivered through the next one.
    code, answer = http("POST", f"{url}/v1/messages", {"to": "46709991234", "text": "ported"}, key="demo-key")
    assert code == 202
    ported = wait_until(lambda: delivered(answer["messages"][0]["id"]), 20, what="failover delivery")
    assert ported["operator"] == "sim_b"
    assert [(e["status"], e["operator"], e["final"]) for e in ported["events"]] == [
        ("queued", None, False), ("submitted", "sim_a", False), ("failed", "sim_a", False),
        ("queued", None, False), ("submitted", "sim_b", False), ("delivered", "sim_b", True)]
    assert "UNDELIV" in ported["events"][2]["detail"]

    # A long UCS-2 text goes as parts and is delivered only when every part is.
    code, answer = http("POST", f"{url}/v1/messages", {"to": "46701234568", "text": "Привет мир! " * 10},
                        key="demo-key")
    assert code == 202 and answer["messages"][0]["parts"] == 2
    wait_until(lambda: delivered(answer["messages"][0]["id"]), 20, what="multipart delivery")

    # Metrics, as Prometheus scrapes them.
    code, text = http("GET", f"http://127.0.0.1:{mp}/metrics")
    assert code == 200
    assert re.search(r'^smsgw_bind_up\{operator="sim_a",session="[^"]+"\} 1\.0$', text, re.M)
    delivered_by = {s.labels["operator"]: s.value for f in text_string_to_metric_families(text) for s in f.samples
                    if s.name == "smsgw_messages_total" and s.labels["status"] == "delivered"}
    assert delivered_by == {"sim_a": 2, "sim_b": 1}
    assert re.search(r'^smsgw_pdus_total\{command="submit_sm",direction="out",operator="sim_a"\} 4\.0$', text, re.M)
    assert re.search(r"^smsgw_submit_seconds_count 4\.0$", text, re.M)

    # Logs are JSON lines, and lines about a message carry its id.
    assert gw.stop() == 0
    lines = [json.loads(line) for line in gw.log.read_text().splitlines() if line.startswith("{")]
    assert lines and all("event" in line and "timestamp" in line for line in lines)
    assert any(line.get("message_id") == msg["id"] for line in lines)
    assert not any("demo-key" in json.dumps(line) for line in lines)
    # An access line per request; Twisted's own lines in the same stream, the routine ones at debug
    # (this gateway runs at --log-level debug).
    posts = [line for line in lines if line.get("component") == "access" and line["path"] == "/v1/messages"
             and line["method"] == "POST"]
    assert len(posts) == 3 and all(p["status"] == 202 and p["account"] == "demo" for p in posts)
    factories = [line for line in lines if line["event"].startswith("Starting factory")]
    assert factories and all(line["component"] == "twisted" and line["level"] == "debug" for line in factories)


def test_an_mo_from_the_cli_gets_its_static_reply_and_is_in_the_inbox(gateways):
    hp, mp = free_port(), free_port()
    gw = gateways(DEMO_CONFIG.format(http=hp, metrics=mp).replace('senders = ["DEMO"]', 'senders = ["DEMO", "72550"]'),
                  hp).start()
    proc = smsgw("mo", "--url", gw.url, "--admin-key", "ops-key", "--operator", "sim_a", "--from", "46701234567",
                 "--to", "72550", "--text", "DEMO hello there")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["outcome"] == "delivered"
    code, inbound = http("GET", f"{gw.url}/v1/inbound", key="demo-key")
    [mo] = inbound["messages"]
    assert (mo["keyword"], mo["payload"], mo["from"], mo["to"]) == ("DEMO", "hello there", "46701234567", "72550")

    def reply_delivered():
        code, page = http("GET", f"{gw.url}/v1/messages?to=46701234567&status=delivered", key="demo-key")
        return page["messages"] if page["messages"] else None

    [reply] = wait_until(reply_delivered, 20, what="the reply delivered")
    assert (reply["from"], reply["text"]) == ("72550", "You said: hello there")
    assert gw.stop() == 0


def test_a_port_in_use_is_named_with_its_config_key(tmp_path):
    """Two listeners fail alike ("Address already in use"): the error says which, one line."""
    import socket

    for processes in (1, 2):
        for key in ("http.listen", "metrics.listen"):
            with socket.socket() as taken:
                taken.bind(("127.0.0.1", 0))
                taken.listen()
                busy = taken.getsockname()[1]
                ports = {"http": free_port(), "metrics": free_port()}
                ports[key.split(".")[0]] = busy
                config = tmp_path / f"gw{processes}{key}.toml"
                config.write_text(SIM_CONFIG.format(**ports).replace(
                    "[gateway]\n", f"[gateway]\nprocesses = {processes}\n", 1))
                done = smsgw("run", "-c", str(config), timeout=60)
            assert done.returncode == 1, (processes, key, done.stderr)
            line = done.stderr.strip().splitlines()[-1]
            assert f"127.0.0.1:{busy}" in line and f"({key})" in line and "is another gateway running?" in line, line

