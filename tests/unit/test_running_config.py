"""The config a node of several processes runs (``smscore.running_config``): what the supervisor
shares, what a reload the main worker applied changes, and what a worker started after reloads
runs (``Config.keeping_restart_settings``)."""

from __future__ import annotations

import os
from decimal import Decimal

from smscore import running_config
from tests.config_rig import BASE, parse

STARTED = """
[gateway]
node = "gw1"
lease = "30s"
[store]
url = "sqlite:///one.db"
[http]
listen = "127.0.0.1:8080"
[metrics]
listen = "127.0.0.1:9100"
""" + BASE + """
[accounts.demo]
api_keys = ["demo-key"]
senders = ["DEMO"]
"""

#: edited and reloaded: a new account and a price (applied at once), and settings a reload does
#: not apply (the node, the store, the listeners: they need a restart)
RELOADED = (STARTED.replace('node = "gw1"', 'node = "gw2"').replace("one.db", "two.db")
            .replace("127.0.0.1:8080", "127.0.0.1:8081").replace("127.0.0.1:9100", "127.0.0.1:9101")
            .replace('lease = "30s"', 'lease = "60s"')
            + '[accounts.late]\napi_keys = ["late-key"]\nsenders = ["LATE"]\n'
            + '[accounts.demo.prices]\n"46" = 0.9\n')


def test_the_shared_file_holds_the_started_text_and_the_last_applied_one():
    fd = running_config.create(STARTED)
    try:
        assert os.get_inheritable(fd)
        assert running_config.read(fd) == (STARTED, STARTED)
        running_config.applied(fd, RELOADED)
        assert running_config.read(fd) == (STARTED, RELOADED)
        running_config.applied(fd, "é" * 100_000)  # any size, any text
        assert running_config.read(fd) == (STARTED, "é" * 100_000)
    finally:
        os.close(fd)


def test_a_worker_started_after_a_reload_runs_what_it_changed_and_what_needs_a_restart_as_started():
    started, reloaded = parse(STARTED), parse(RELOADED)
    assert reloaded.source == RELOADED
    runs = reloaded.keeping_restart_settings(started)
    assert runs.restart_settings() == started.restart_settings()
    assert (runs.gateway.node, runs.store.url, str(runs.http.listen)) == ("gw1", "sqlite:///one.db", "127.0.0.1:8080")
    assert set(runs.accounts) == {"demo", "late"} and runs.account_for_key("late-key").name == "late"
    assert runs.accounts["demo"].prices.lookup("46701234567") == Decimal("0.9")
