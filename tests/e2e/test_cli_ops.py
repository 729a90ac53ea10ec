"""The ops commands as an operator types them against a running `smsgw run`: stop lists, pause and
resume, approve and refuse, reload (and SIGHUP). Errors are one line on stderr and a non-zero exit."""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.request
from decimal import Decimal

from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import one_line_error, smsgw
from tests.harness.net import free_port, http
from tests.harness.waiting import wait_until

CONFIG = """
[gateway]
node = "cli-ops"
[store]
url = "sqlite:///cli-ops.db"
[http]
listen = "127.0.0.1:{http}"
[metrics]
listen = "127.0.0.1:{metrics}"
[admin]
api_keys = ["ops-key"]
[operators.sim_a]
type = "simulated"
cost = 0.10
receipt_delay = "20ms"
[profiles.standard]
operators = ["sim_a"]
[accounts.demo]
api_keys = ["demo-key"]
senders = ["DEMO"]
approved_domains = ["demo.example"]
"""

NEWCO = """
[accounts.newco]
api_keys = ["{key}"]
senders = ["NEWCO"]
"""


def start(gateways, extra=""):
    hp, mp = free_port(), free_port()
    gw = gateways(CONFIG.format(http=hp, metrics=mp) + extra, hp)
    gw.metrics_port = mp
    return gw.start()


def counted(gw, status: str) -> float:
    """``smsgw_messages_total{status}`` of the node, every operator label together."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{gw.metrics_port}/metrics", timeout=5).read().decode()
    return sum(s.value for family in text_string_to_metric_families(text) for s in family.samples
               if s.name == "smsgw_messages_total" and s.labels["status"] == status)


def ops(gw, *args):
    """An ops command against the gateway of ``gw``'s config file, with the admin key."""
    return smsgw(*args, "-c", str(gw.config), "--admin-key", "ops-key")


def send(gw, to, text="hello", key="demo-key"):
    code, body = http("POST", f"{gw.url}/v1/messages", {"to": to, "text": text}, key=key)
    assert code == 202, body
    return body["messages"]


def status_of(gw, mid, key="demo-key"):
    code, body = http("GET", f"{gw.url}/v1/messages/{mid}", key=key)
    assert code == 200, body
    return body


def until(gw, mid, status, key="demo-key", timeout=15):
    return wait_until(lambda: (lambda m: m if m["status"] == status else None)(status_of(gw, mid, key)), timeout,
                    step=0.05, what=f"{mid} {status}")


def test_stoplist_import_stops_mt_to_listed_numbers_and_consent_lets_them_through(gateways, tmp_path):
    gw = start(gateways)
    listed = tmp_path / "dnc.csv"
    listed.write_text("# do-not-call, exported from the CRM\nnumber,name\n46701230001\n+46701230002, Jane Doe\n\n"
                      "46701230003 # moved\n")  # the header row is no number: skipped
    proc = ops(gw, "stoplist", "import", str(listed))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"changed": 3, "numbers": 3}

    messages = send(gw, ["46701230001", "46701230002", "46701230004"])
    assert [m["status"] for m in messages] == ["stopped", "stopped", "queued"]
    stopped = status_of(gw, messages[0]["id"])
    assert stopped["status"] == "stopped" and [e["status"] for e in stopped["events"]] == ["stopped"]
    until(gw, messages[2]["id"], "delivered")

    # the account's consent overrides do-not-call; removing a number lets everyone send again
    proc = ops(gw, "stoplist", "add", "--account", "demo", "--consent", "46701230001")
    assert proc.returncode == 0 and json.loads(proc.stdout)["changed"] == 1, proc.stderr
    proc = ops(gw, "stoplist", "remove", "46701230002")
    assert proc.returncode == 0 and json.loads(proc.stdout) == {"changed": 1, "numbers": 1}, proc.stderr
    proc = ops(gw, "stoplist", "add", "--account", "demo", "46701230005")
    assert proc.returncode == 0, proc.stderr
    again = send(gw, ["46701230001", "46701230002", "46701230003", "46701230005"])
    assert [m["status"] for m in again] == ["queued", "queued", "stopped", "stopped"]
    until(gw, again[0]["id"], "delivered")

    # errors: one line, non-zero, nothing changed
    one_line_error(ops(gw, "stoplist", "import", str(tmp_path / "missing.txt")), 2, "missing.txt")
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n\n")
    one_line_error(ops(gw, "stoplist", "import", str(empty)), 2, "no numbers")
    bad = tmp_path / "bad.txt"
    bad.write_text("46701230006\n# a comment\nnot-a-number\n")
    # the file's line, not numbers[1]
    one_line_error(ops(gw, "stoplist", "import", str(bad)), 1, "422 invalid_number", f"{bad} line 3: ")
    assert send(gw, "46701230006")[0]["status"] == "queued"  # refused whole
    one_line_error(ops(gw, "stoplist", "add", "--account", "nobody", "46701230007"), 1, "404 not_found")
    one_line_error(smsgw("stoplist", "import", str(listed), "-c", str(gw.config)), 2, "admin key")
    one_line_error(smsgw("stoplist", "import", str(listed), "-c", str(gw.config), "--admin-key", "wrong"), 1,
                   "401 unauthorized")
    one_line_error(smsgw("stoplist", "import", str(listed), "-c", str(gw.config), "--admin-key", "demo-key"), 1,
                   "403 forbidden")
    one_line_error(smsgw("stoplist", "import", str(listed), "--url", f"http://127.0.0.1:{free_port()}",
                         "--admin-key", "ops-key"), 1, "cannot reach the gateway")
    assert gw.stop() == 0


def test_pause_and_resume_an_account(gateways):
    gw = start(gateways)
    proc = ops(gw, "pause", "demo")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"account": "demo", "paused": True, "messages": 0}
    [held] = send(gw, "46701240001")
    assert held["status"] == "paused"
    time.sleep(0.5)
    assert status_of(gw, held["id"])["status"] == "paused"
    code, account = http("GET", f"{gw.url}/v1/account", key="demo-key")
    assert code == 200 and account["paused"] is True

    proc = ops(gw, "resume", "demo")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"account": "demo", "paused": False, "messages": 1}
    m = until(gw, held["id"], "delivered")
    assert [e["status"] for e in m["events"]] == ["paused", "queued", "submitted", "delivered"]
    assert send(gw, "46701240002")[0]["status"] == "queued"

    one_line_error(ops(gw, "pause", "nobody"), 1, "404 not_found")
    one_line_error(smsgw("pause", "demo", "-c", str(gw.config), "--admin-key", "demo-key"), 1, "403 forbidden")
    proc = smsgw("pause", "-c", str(gw.config), "--admin-key", "ops-key")  # no ACCOUNT: a usage error
    one_line_error(proc, 2, "smsgw: pause: the following arguments are required: account (see smsgw pause --help)")
    code, account = http("GET", f"{gw.url}/v1/account", key="demo-key")
    assert account["paused"] is False
    assert gw.stop() == 0


def test_approve_and_refuse_messages_waiting_for_approval(gateways):
    gw = start(gateways)
    first, second, third = send(gw, ["46701250001", "46701250002", "46701250004"], "Offer: https://other.example/x")
    assert first["status"] == second["status"] == third["status"] == "pending_approval"
    [fine] = send(gw, "46701250003", "See https://www.demo.example/")
    assert fine["status"] == "queued"

    proc = ops(gw, "approve", first["id"])
    assert proc.returncode == 0, proc.stderr
    shown = json.loads(proc.stdout)
    assert shown["id"] == first["id"] and shown["status"] == "queued"
    assert [e["status"] for e in shown["events"]] == ["pending_approval", "queued"]
    until(gw, first["id"], "delivered")

    proc = ops(gw, "refuse", second["id"])
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["status"] == "stopped"
    time.sleep(0.3)
    assert status_of(gw, second["id"])["status"] == "stopped"

    one_line_error(ops(gw, "approve", second["id"]), 1, "409 conflict")
    one_line_error(ops(gw, "refuse", first["id"]), 1, "409 conflict")
    one_line_error(ops(gw, "approve", "0" * 24), 1, "404 not_found")
    one_line_error(smsgw("approve", first["id"], "-c", str(gw.config)), 2, "admin key")
    # an argument is one segment of the path, whatever it holds: "ID/refuse?" refused the message
    one_line_error(ops(gw, "approve", third["id"] + "/refuse?"), 1, "404 not_found")
    assert status_of(gw, third["id"])["status"] == "pending_approval"
    one_line_error(ops(gw, "pause", "bétä"), 1, "404 not_found")  # was a UnicodeEncodeError traceback
    one_line_error(smsgw("status", "a b", "-c", str(gw.config), "--key", "demo-key"), 1, "404 not_found")
    assert gw.stop() == 0


def test_what_people_do_to_messages_is_counted_in_messages_total(gateways):
    """SPEC §9: ``smsgw_messages_total`` counts status changes. A cancel, a refusal, an approval and
    a resume changed statuses (their callbacks went) but were not counted: a dashboard showed 1
    stopped message where the store held 4."""
    gw = start(gateways)
    code, body = http("POST", f"{gw.url}/v1/messages", {"to": "46701270001", "text": "later",
                                                        "send_at": "2030-01-01T00:00:00Z"}, key="demo-key")
    assert code == 202 and body["messages"][0]["status"] == "scheduled", body
    waiting = send(gw, ["46701270002", "46701270003"], "Offer: https://other.example/x")
    before = {status: counted(gw, status) for status in ("stopped", "queued", "paused")}

    assert http("DELETE", f"{gw.url}/v1/messages/{body['messages'][0]['id']}", key="demo-key")[0] == 200
    assert ops(gw, "refuse", waiting[0]["id"]).returncode == 0
    assert ops(gw, "approve", waiting[1]["id"]).returncode == 0
    until(gw, waiting[1]["id"], "delivered")  # not queued still when the account is paused
    assert ops(gw, "pause", "demo").returncode == 0
    [held] = send(gw, "46701270004")  # paused at acceptance: counted there, as before
    assert json.loads(ops(gw, "resume", "demo").stdout)["messages"] == 1
    until(gw, held["id"], "delivered")
    assert counted(gw, "stopped") - before["stopped"] == 2  # the cancel and the refusal
    assert counted(gw, "queued") - before["queued"] == 2  # the approval and the resume
    assert counted(gw, "paused") - before["paused"] == 1
    assert gw.stop() == 0


def test_reload_and_sighup_apply_a_new_account_and_refuse_a_broken_file(gateways):
    gw = start(gateways)
    base = gw.config.read_text()
    code, body = http("POST", f"{gw.url}/v1/messages", {"to": "46701260001", "text": "x"}, key="new-key")
    assert code == 401 and body["error"]["code"] == "unauthorized"

    # smsgw reload after an edit: the new account's key works at once
    gw.config.write_text(base + NEWCO.format(key="new-key"))
    proc = ops(gw, "reload")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["reloaded"] is True
    [m] = send(gw, "46701260001", key="new-key")
    assert until(gw, m["id"], "delivered", key="new-key")["from"] == "NEWCO"

    # a broken file is refused (one line, non-zero) and the running config keeps working
    broken = '[accounts.newco2]\napi_keys = ["k2"]\ntps = "fast"\n'
    gw.config.write_text(base + NEWCO.format(key="new-key") + broken)
    proc = smsgw("reload", "--url", gw.url, "--admin-key", "ops-key")
    one_line_error(proc, 1, "accounts.newco2.tps")
    assert send(gw, "46701260002", key="new-key")[0]["status"] == "queued"
    assert send(gw, "46701260003")[0]["status"] == "queued"
    assert http("POST", f"{gw.url}/v1/messages", {"to": "46701260004", "text": "x"}, key="k2")[0] == 401
    copy = gw.config.with_name("copy.toml")  # -c names where the gateway listens, not what it reads
    copy.write_text(base + NEWCO.format(key="new-key") + '[accounts.other]\napi_keys = ["other-key"]\n')
    proc = smsgw("reload", "-c", str(copy), "--admin-key", "ops-key")
    assert proc.stderr.splitlines()[0] == f"smsgw: note: the gateway read {gw.config}, not {copy}", proc.stderr
    proc = ops(gw, "reload")  # -c names the gateway's file: the CLI reads its [http] only, the gateway refuses
    one_line_error(proc, 1, "reload refused, the running config stays: accounts.newco2.tps")
    assert send(gw, "46701260005", key="new-key")[0]["status"] == "queued"

    # kill -HUP does the same: a good edit applies ...
    gw.config.write_text(base + NEWCO.format(key="hup-key"))
    os.kill(gw.proc.pid, signal.SIGHUP)
    # SIGHUP has no answer to wait for: the main worker reloads, then tells the API workers, and
    # a connection may land on either until all have; so wait until every one has the edit.
    # (each request is a new connection: three of each reach every process of the node, likely)
    wait_until(lambda: [http("GET", f"{gw.url}/v1/account", key=k)[0] for k in ("hup-key", "new-key") * 3]
             == [200, 401] * 3, 10, step=0.05, what="the key added by SIGHUP, and the old one gone with the edit")
    [m] = send(gw, "46701260006", key="hup-key")
    until(gw, m["id"], "delivered", key="hup-key")
    # ... and a broken file is refused, the gateway runs on with what it had
    gw.config.write_text(base + "[accounts.newco\napi_keys = [\"broken-key\"]\n")
    os.kill(gw.proc.pid, signal.SIGHUP)
    wait_until(lambda: "reload refused" in gw.log.read_text(), 10, step=0.05, what="the refused reload in the log")
    assert gw.proc.poll() is None
    assert http("GET", f"{gw.url}/v1/account", key="hup-key")[0] == 200
    assert send(gw, "46701260007", key="hup-key")[0]["status"] == "queued"
    one_line_error(smsgw("reload", "--url", gw.url, "--admin-key", "ops-key"), 1, "invalid TOML")
    assert gw.stop() == 0


def test_a_prepaid_account_added_by_reload_has_its_balance_at_once_and_keeps_top_ups_and_pauses(gateways):
    gw = start(gateways)
    gw.config.write_text(gw.config.read_text() + NEWCO.format(key="new-key")
                         + 'billing = "prepaid"\nbalance = "1.0"\nprices = { "46" = "0.5" }\n')
    assert json.loads(ops(gw, "reload").stdout)["reloaded"] is True
    code, account = http("GET", f"{gw.url}/v1/account", key="new-key")
    assert code == 200 and Decimal(str(account["balance"])) == 1  # the opening balance, without a restart

    code, body = http("POST", f"{gw.url}/v1/admin/accounts/newco/topup", {"amount": 5}, key="ops-key")
    assert code == 200 and Decimal(str(body["balance"])) == 6
    code, account = http("GET", f"{gw.url}/v1/account", key="new-key")
    assert Decimal(str(account["balance"])) == 6
    [m] = send(gw, "46701270001", key="new-key")
    assert Decimal(str(until(gw, m["id"], "delivered", key="new-key")["cost"])) == Decimal("0.5")

    assert json.loads(ops(gw, "pause", "newco").stdout)["paused"] is True
    code, account = http("GET", f"{gw.url}/v1/account", key="new-key")
    assert account["paused"] is True and Decimal(str(account["balance"])) == Decimal("5.5")
    assert send(gw, "46701270002", key="new-key")[0]["status"] == "paused"
    assert gw.stop() == 0


def test_look_up_messages_a_number_and_accounts(gateways):
    """`smsgw messages`, `smsgw number` and `smsgw accounts` as ops type them (SPEC §14): JSON out,
    paged with --cursor, the admin key required, one-line errors."""
    gw = start(gateways)
    first = send(gw, ["46701240001", "46701240002"])
    later = send(gw, "46701240001", text="again")
    for m in first + later:
        until(gw, m["id"], "delivered")

    proc = ops(gw, "messages", "--account", "demo", "--limit", "2")
    assert proc.returncode == 0, proc.stderr
    page = json.loads(proc.stdout)
    assert [m["id"] for m in page["messages"]] == [later[0]["id"], first[1]["id"]]
    assert page["messages"][0]["account"] == "demo" and page["next_cursor"] == first[1]["id"]
    proc = ops(gw, "messages", "--account", "demo", "--limit", "2", "--cursor", page["next_cursor"])
    assert [m["id"] for m in json.loads(proc.stdout)["messages"]] == [first[0]["id"]], proc.stderr
    proc = ops(gw, "messages", "--to", "+46701240001", "--status", "delivered", "--operator", "sim_a",
               "--since", "2000-01-01")
    assert [m["id"] for m in json.loads(proc.stdout)["messages"]] == [later[0]["id"], first[0]["id"]], proc.stderr

    assert ops(gw, "stoplist", "add", "--account", "demo", "46701240001").returncode == 0
    proc = ops(gw, "number", "+46701240001")
    assert proc.returncode == 0, proc.stderr
    number = json.loads(proc.stdout)
    assert number["number"] == "46701240001" and len(number["messages"]) == 2
    assert number["learned"]["operator"] == "sim_a"
    assert [e["account"] for e in number["stop_list"]] == ["demo"] and number["do_not_call"] is None

    proc = ops(gw, "accounts")
    assert proc.returncode == 0, proc.stderr
    [demo] = json.loads(proc.stdout)["accounts"]
    assert demo["account"] == "demo" and demo["paused"] is False and demo["senders"] == ["DEMO"]
    proc = ops(gw, "accounts", "demo")
    assert json.loads(proc.stdout) == demo, proc.stderr

    one_line_error(ops(gw, "accounts", "nobody"), 1, "404 not_found")
    one_line_error(ops(gw, "messages", "--since", "yesterday"), 1, "400 invalid_request", "since")
    one_line_error(ops(gw, "number", "0701"), 1, "422 invalid_number")
    one_line_error(smsgw("messages", "-c", str(gw.config)), 2, "admin key")
    one_line_error(smsgw("accounts", "-c", str(gw.config), "--admin-key", "demo-key"), 1, "403 forbidden")
    assert gw.stop() == 0
