"""etc/prometheus/alerts.yml and etc/grafana/smsgw.json checked by Prometheus's own promtool: the
rules load (``promtool check rules``), each alert fires on the series it is about and not before
(``promtool test rules``), and every dashboard query is valid PromQL.

promtool comes with Debian's package ``prometheus``: scripts/test finds it or installs it
(scripts/promtool) and passes its path in ``SMSGW_PROMTOOL``. Without it these tests are skipped,
naming the command that installs it; under CI they fail instead (as the PostgreSQL tests do).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml


ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "etc" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "etc" / "grafana" / "smsgw.json"


@pytest.fixture(scope="module")
def promtool() -> str:
    found = os.environ.get("SMSGW_PROMTOOL") or shutil.which("promtool")
    if found:
        return found
    why = (os.environ.get("SMSGW_TEST_PROMTOOL_SKIP")
           or "promtool is not installed; scripts/promtool installs it (Debian: apt-get install prometheus)")
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{why}, and CI must check the alert rules")
    pytest.skip(why)


def run(promtool: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([promtool, *args], capture_output=True, text=True, timeout=120)


def test_promtool_check_rules_accepts_the_alert_rules(promtool):
    proc = run(promtool, "check", "rules", str(RULES))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_every_dashboard_query_is_valid_promql(promtool, tmp_path):
    """Grafana's variables replaced by values, each query becomes a recording rule promtool parses."""
    board = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    assert len(exprs) > 20
    substituted = [e.replace("$__rate_interval", "5m").replace("$job", "smsgw").replace("$operator", ".*")
                   for e in exprs]
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:panel_{i}", "expr": e} for i, e in enumerate(substituted)]}]}
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump(rules))
    proc = run(promtool, "check", "rules", str(path))
    assert proc.returncode == 0, proc.stdout + proc.stderr


# -- each alert on its series -------------------------------------------------------------------
# (series, values every minute) per alert, the time it must fire by, a time before which it must not,
# and the labels it fires with. Annotations are left out (a copy of the rules without them): their
# templates are checked by `check rules`.
JOB = 'job="smsgw"'
CASES = [
    ("SmsgwDown", [(f'up{{{JOB},instance="gw1:9100"}}', "1 1 0x10")], "2m", "5m",
     {"job": "smsgw", "instance": "gw1:9100", "severity": "critical"}),
    ("SmsgwNotReady", [(f'smsgw_ready{{{JOB},instance="gw1:9100"}}', "1 0x10")], "2m", "5m",
     {"job": "smsgw", "instance": "gw1:9100", "severity": "critical"}),
    ("SmsgwBindDown", [(f'smsgw_bind_up{{{JOB},operator="sim_a",session="sim_a/1"}}', "1 1 0x10"),
                       (f'smsgw_bind_up{{{JOB},operator="sim_a",session="sim_a/2"}}', "1 1 0x10"),
                       (f'smsgw_bind_up{{{JOB},operator="sim_b",session="sim_b/1"}}', "1x12")], "3m", "6m",
     {"job": "smsgw", "operator": "sim_a", "severity": "critical"}),
    # a day at 1 delivered a second, then half of them fail
    ("SmsgwDeliveryRatioDrop", [
        (f'smsgw_messages_total{{{JOB},operator="sim_a",status="delivered"}}', "0+60x1440 86430+30x60"),
        (f'smsgw_messages_total{{{JOB},operator="sim_a",status="failed"}}', "0x1440 30+30x60")],
     "1440m", "1480m", {"job": "smsgw", "operator": "sim_a", "severity": "warning"}),
    ("SmsgwBacklogGrowing", [(f"smsgw_backlog{{{JOB}}}", "0+100x60"), (f"smsgw_backlog_limit{{{JOB}}}", "2000x60")],
     "8m", "25m", {"job": "smsgw", "severity": "warning"}),
    ("SmsgwShedding", [(f"smsgw_backlog{{{JOB}}}", "0+100x60"), (f"smsgw_backlog_limit{{{JOB}}}", "1000x60")],
     "10m", "13m", {"job": "smsgw", "severity": "critical"}),
    ("SmsgwPushBacklogGrowing", [(f'smsgw_push_backlog{{{JOB},kind="status"}}', "0+100x60"),
                                 (f'smsgw_push_backlog{{{JOB},kind="mo"}}', "0x60")], "15m", "35m",
     {"job": "smsgw", "kind": "status", "severity": "warning"}),
    ("SmsgwCallbacksFailing", [(f'smsgw_callbacks_total{{{JOB},kind="status",outcome="failed"}}', "0+60x40"),
                               (f'smsgw_callbacks_total{{{JOB},kind="status",outcome="ok"}}', "0+6x40"),
                               (f'smsgw_callbacks_total{{{JOB},kind="mo",outcome="ok"}}', "0+60x40")],
     "5m", "25m", {"job": "smsgw", "kind": "status", "severity": "warning"}),
]


def test_each_alert_fires_on_its_series_and_not_before(promtool, tmp_path):
    rules = yaml.safe_load(RULES.read_text())
    names = {r["alert"] for g in rules["groups"] for r in g["rules"]}
    assert names == {case[0] for case in CASES}, "every alert has a case here"
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules))
    tests = []
    for alert, series, quiet_at, firing_at, labels in CASES:
        tests.append({"interval": "1m", "input_series": [{"series": s, "values": v} for s, v in series],
                      "alert_rule_test": [
                          {"eval_time": quiet_at, "alertname": alert, "exp_alerts": []},
                          {"eval_time": firing_at, "alertname": alert, "exp_alerts": [{"exp_labels": labels}]}]})
    (tmp_path / "rules_test.yml").write_text(yaml.safe_dump(
        {"rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": tests}))
    proc = run(promtool, "test", "rules", str(tmp_path / "rules_test.yml"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
