"""The soak (scripts/soak.py) in one minute: a real gateway under MT and MO, SIGKILLed and restarted
every ~20 s, the callback receiver away for a while; nothing accepted may be lost.

The script is run as the lead runs it, in its own process, and judged by its exit status and its
JSON record (docs/soak.md). The 30-minute soak is the lead's to run; this keeps the script working.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

from tests.harness.processes import ROOT

pytestmark = pytest.mark.slow

SOAK = ROOT / "scripts" / "soak.py"


@pytest.fixture(scope="module")
def soak(tmp_path_factory):
    """One run of the script for the tests below: (its output folder, its JSON record)."""
    out = tmp_path_factory.mktemp("soak")
    proc = subprocess.run(
        [sys.executable, str(SOAK), "--minutes", "1", "--rate", "20", "--kill-every", "20s", "--warmup", "10s",
         "--outage-every", "30s", "--sample-every", "2s", "--drain", "3m", "--out", str(out)],
        capture_output=True, text=True, timeout=480, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return out, json.loads((out / "soak.json").read_text())


def test_one_minute_soak_loses_nothing(soak):
    _, record = soak
    assert record["accepted"] > 500, record["accepted"]
    assert record["lost_store"] == 0 and record["lost_callbacks"] == 0
    assert record["mo"]["acked"] > 0 and record["mo"]["lost"] == 0
    assert record["mo"]["replied"] == record["mo"]["acked"]
    assert len(record["kills"]) >= 1 and record["drained"] and record["stopped_cleanly"]
    assert record["failovers"] > 0  # sim_a cannot reach 4670999…: those went on to sim_b
    assert record["duplicate_submits"] <= record["duplicate_bound"]
    assert record["samples"] and record["fds"]["max"] > 0


def test_one_minute_soak_draws_its_plot(soak):
    if importlib.util.find_spec("matplotlib") is None:
        pytest.skip("matplotlib is not installed (the optional extra `bench`): soak.py skips its plot")
    out, _ = soak
    assert (out / "soak.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
