"""scripts/bench_smpp.py at a tiny N: a customer's ESME submits over SMPP and every receipt comes
back as deliver_sm, measured end to end (its own processes, as `scripts/bench` runs it)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
N = 300

pytestmark = pytest.mark.slow


def test_smpp_in_bench_gets_every_receipt(tmp_path):
    out = tmp_path / "smpp.jsonl"
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_smpp.py"), "-n", str(N), "--timeout", "60",
                           "--out", str(out)], capture_output=True, text=True, timeout=150, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    [r] = [json.loads(line) for line in out.read_text().splitlines()]
    assert (r["accepted"], r["lost"], r["repeated_receipts"]) == (N, 0, 0), r
    assert r["end_to_end_per_s"] > 0 and r["cpu_seconds"]["smsgw"] > 0 and r["latency_ms"]["99"] > 0, r
    assert "| sqlite | smsgw smpp-in | 300 |" in proc.stdout
