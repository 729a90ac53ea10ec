"""Crash trials (scripts/crash.py): SIGKILL the gateway under traffic, start it again, nothing lost.

Each trial is real processes: a standalone `smsgw smsc-sim` and `smsgw run` (SQLite file, or a
PostgreSQL database of its own), messages POSTed one by one and in lists, MO injected through the
simulator's control port, a SIGKILL at a seeded random moment 0.5–2 s into the traffic, a restart
with the same node name. Then: every message answered 2xx is delivered; every receipt and MO the
simulator got ESME_ROK for is in the store; duplicate submits are at most window × binds and each
is one submit before the crash and one after (SPEC §10, §11).

The slow-commit case makes the race that the random trials hit only now and then happen every
time: the store cannot commit while the gateway submits, so at the crash every answered submit is
still unstored. SPEC §11 allows duplicates only for submits without a response at the crash.

The backlog case crashes a gateway that holds more than one claim batch (1,000) of messages it
accepted while the SMSC was away, and starts it again at once: each must be delivered, once.

Larger trial counts: `scripts/bench --phases crash` (or scripts/crash.py directly).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[2] / "scripts" / "crash.py"
_spec = importlib.util.spec_from_file_location("crash", _PATH)
crash = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("crash", crash)
_spec.loader.exec_module(crash)

pytestmark = pytest.mark.slow

SEED = 20261122
TRIALS = 3


def assert_trial(result) -> None:
    print(result.line())
    assert result.accepted > 0 and result.accepted_before_kill > 0, result.line()
    assert result.receipts_acked > 0 and result.mo_acked > 0, result.line()
    assert result.ok, result.line()


@pytest.mark.parametrize("trial", range(TRIALS))
def test_crash_trial_sqlite(trial, tmp_path):
    assert_trial(crash.run_trial("sqlite", trial, SEED + trial, tmp_path, messages=300))


@pytest.mark.postgres
@pytest.mark.parametrize("trial", range(TRIALS))
def test_crash_trial_postgresql(trial, pg_url, tmp_path):
    assert_trial(crash.run_trial("postgresql", trial, SEED + trial, tmp_path, pg_url=pg_url, messages=300))


def test_slow_commit_at_the_crash_sqlite(tmp_path):
    result = crash.run_slow_commit("sqlite", tmp_path, messages=100)
    print(result.line())
    assert result.delivered == 100, result.line()
    assert not result.problems, result.line()


@pytest.mark.postgres
def test_slow_commit_at_the_crash_postgresql(pg_url, tmp_path):
    result = crash.run_slow_commit("postgresql", tmp_path, pg_url=pg_url, messages=100)
    print(result.line())
    assert result.delivered == 100, result.line()
    assert not result.problems, result.line()


def assert_backlog(result) -> None:
    print(result.line())
    assert result.delivered == result.messages, result.line()
    assert result.duplicates == 0, result.line()


def test_restart_with_a_backlog_of_several_claim_batches_sqlite(tmp_path):
    assert_backlog(crash.run_restart_backlog("sqlite", tmp_path, messages=1500, wait=15))


@pytest.mark.postgres
def test_restart_with_a_backlog_of_several_claim_batches_postgresql(pg_url, tmp_path):
    assert_backlog(crash.run_restart_backlog("postgresql", tmp_path, pg_url=pg_url, messages=1500, wait=15))
