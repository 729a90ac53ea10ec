"""scripts/restart_scale.py (the restart bar's measurement: `scripts/bench --phases restart`) at a
tiny N on both stores: the store is filled the way the script fills it, the gateway restarts on
it and sends every queued message once."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
N = 600

pytestmark = pytest.mark.slow


def _script():
    spec = importlib.util.spec_from_file_location("restart_scale", ROOT / "scripts" / "restart_scale.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_a_filled_store_is_sent_after_a_restart(store, tmp_path, request):
    pg_url = request.getfixturevalue("pg_server_url") if store == "postgresql" else None
    figures = _script().run(store, N, pg_url=pg_url, owner="held", observe=6.0, workdir=tmp_path)
    assert figures["first_submit_seconds"] is not None, figures
    # the messages held by the "killed" node's name are taken back at once: all sent, none twice
    assert figures["submits_first_10s"] == N and figures["duplicate_submits"] == 0, figures
