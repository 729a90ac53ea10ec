"""What a reload says needs a restart (docs/configuration.md, "What reload changes"): the settings
the process runs with, compared with the file, however many reloads came between.

A gateway built on a ``MemoryReactorClock`` and never started: ``reload`` reads the file and
compares, which needs no store, socket or bind.
"""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry
from twisted.internet.testing import MemoryReactorClock

from smscore.app import Gateway
from smscore.config import load_config
from tests.certs import TestCA

CONFIG = """
[gateway]
node = "audit1"
lease = "30s"
[store]
url = "sqlite:///audit.db"
[http]
listen = "127.0.0.1:0"
[metrics]
listen = "127.0.0.1:0"
[operators.sim]
type = "simulated"
[profiles.standard]
operators = ["sim"]
"""

#: (key path, the line as the gateway started, the line changed)
RESTART_ONLY = [
    ("gateway.node", 'node = "audit1"', 'node = "audit9"'),
    ("gateway.lease", 'lease = "30s"', 'lease = "45s"'),
    ("store", 'url = "sqlite:///audit.db"', 'url = "sqlite:///other.db"'),
    ("metrics.listen", '[metrics]\nlisten = "127.0.0.1:0"', '[metrics]\nlisten = "127.0.0.1:9109"'),
]


@pytest.mark.parametrize("key, started, changed", RESTART_ONLY, ids=[k for k, _, _ in RESTART_ONLY])
def test_needs_restart_compares_the_file_with_what_runs_not_with_the_last_reload(tmp_path, key, started, changed):
    path = tmp_path / "gw.toml"
    path.write_text(CONFIG)
    gw = Gateway(load_config(path), MemoryReactorClock(), CollectorRegistry())

    path.write_text(CONFIG.replace(started, changed))
    assert gw.reload()["needs_restart"] == [key]
    assert gw.reload()["needs_restart"] == [key]  # it still runs as it started

    path.write_text(CONFIG)  # back as it runs: nothing waits for a restart
    assert gw.reload()["needs_restart"] == []


def test_a_changed_api_certificate_waits_for_a_restart(tmp_path):
    """[http] tls_cert / tls_key are read when the listener starts: a reload that changes them says
    it needs a restart (it said nothing, and the old certificate went on being served)."""
    ca = TestCA(tmp_path)
    first, second = ca.issue("first", ip="127.0.0.1"), ca.issue("second", ip="127.0.0.1")

    def config(cert, key):
        return CONFIG.replace('[http]\nlisten = "127.0.0.1:0"',
                              f'[http]\nlisten = "127.0.0.1:0"\ntls_cert = "{cert}"\ntls_key = "{key}"')

    path = tmp_path / "gw.toml"
    path.write_text(config(*first))
    gw = Gateway(load_config(path), MemoryReactorClock(), CollectorRegistry())
    path.write_text(config(*second))
    assert gw.reload()["needs_restart"] == ["http.tls"]
    path.write_text(config(*first))
    assert gw.reload()["needs_restart"] == []
