"""scripts/bench.py at a tiny N: the customer's path measured end to end, nothing lost.

Runs the bench as `scripts/bench` does (its own processes: `smsgw smsc-sim`, `smsgw run`, and the
bench with its signed-callback receiver), with 200 messages in the scenarios "single" (no
callbacks), "single-cb" (callback_statuses = "final", one event per POST) and "list-cb" (lists of
100, callback_batch = 100, SPEC §12). Then reads the results it wrote: every accepted message's
final status arrived (at the receiver for the -cb scenarios), only final events were pushed, the
list's came in batches, no bad signature, the plots are there when matplotlib is installed
(else the bench says it skipped them), and each rig's folder kept its logs but not its database.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
N = 200

pytestmark = pytest.mark.slow


def test_bench_measures_the_callbacks_and_loses_nothing(tmp_path):
    out = tmp_path / "bench"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench.py"), "--scenarios", "single,single-cb,list-cb",
         "--phases", "single,batch", "-n", str(N), "--concurrency", "8", "--timeout", "60", "--plots", str(out)],
        capture_output=True, text=True, timeout=150, cwd=ROOT)
    print(proc.stdout[-6000:], proc.stderr[-3000:])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = {r["label"]: r for r in map(json.loads, (out / "results-sqlite.jsonl").read_text().splitlines())}
    assert sorted(results) == ["list-cb", "single", "single-cb"]
    for r in results.values():
        assert r["accepted"] == N and r["lost"] == 0 and r["dlrs_final"] == N, r
        assert r["all_dlrs_seconds"] is not None and r["end_to_end_per_s"] > 0, r
        assert r["cpu_seconds"]["smsgw"] > 0 and r["peak_rss_mb"] > 0, r
    for name in ("single-cb", "list-cb"):
        cb = results[name]
        assert cb["bad_signatures"] == 0 and cb["bad_callback_bodies"] == 0, cb
        assert cb["receiver"]["final_events"] == N and cb["receiver"].get("nonfinal_events", 0) == 0, cb
    assert results["single-cb"]["receiver"].get("batched_posts", 0) == 0
    assert 2 <= results["list-cb"]["receiver"].get("batched_posts", 0) < N / 10
    assert "| sqlite | smsgw single-cb | 200 |" in proc.stdout
    # each rig's folder keeps its config and logs, not its database (tens of MB a run)
    rigs = [Path(line.split("(logs in ", 1)[1].rstrip(")")) for line in proc.stdout.splitlines() if "(logs in " in line]
    assert len(rigs) == 3
    for rig in rigs:
        assert (rig / "gw.log").is_file() and (rig / "gw.toml").is_file(), sorted(rig.iterdir())
        assert not list(rig.glob("bench.db*")), sorted(rig.iterdir())
    if importlib.util.find_spec("matplotlib") is not None:
        assert sorted(p.name for p in out.glob("*.png")) == ["latency-cdf-sqlite.png", "throughput-sqlite.png"]
    else:  # without the extra `bench` the bench says so and goes on
        assert "plots skipped" in proc.stdout


def test_bench_runs_while_other_customers_backends_are_down_or_hung(tmp_path):
    """``--waiting-callbacks``: the store holds another account's callbacks, due in an hour, before
    the gateway starts; ``--hung-callbacks``: and a third's, due now, to a backend that takes
    connections and never answers. The bench's own customer still gets every final status, within
    the run's timeout (before the push worker shared its slots, it got none in two minutes)."""
    out = tmp_path / "bench"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench.py"), "--scenarios", "single-cb", "--phases", "single",
         "-n", "100", "--concurrency", "8", "--timeout", "30", "--plots", str(out), "--waiting-callbacks", "5000",
         "--hung-callbacks", "500"],
        capture_output=True, text=True, timeout=150, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "waiting callbacks    5000 of another account in the store" in proc.stdout
    assert "hung callbacks       500 of another account in the store" in proc.stdout
    [r] = map(json.loads, (out / "results-sqlite.jsonl").read_text().splitlines())
    assert r["accepted"] == 100 and r["lost"] == 0 and r["dlrs_final"] == 100, r
    assert r["receiver"]["final_events"] == 100, r
