"""One running node a name on one store (``smscore.store.node_guard``), as ``smsgw run`` meets it:
a second node started with the name of one that runs on the same store is refused in one line
before it binds or claims anything (it took the running node's leases as its own and sent its
messages again: an audit), and the name is free again the moment its holder dies, however."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import DEMO_CONFIG, one_line_error, smsgw
from tests.harness.net import free_port, http


def _configs(gateways, tmp_path, store_url: str | None = None):
    """Two configs of the demo node (same name, same store) on ports of their own."""
    made = []
    for _ in range(2):
        hp, mp = free_port(), free_port()
        text = DEMO_CONFIG.format(http=hp, metrics=mp)
        if store_url is not None:
            text = text.replace('url = "sqlite:///e2e.db"', f'url = "{store_url}"')
        made.append(gateways(text, hp))
    return made


def _refused_then_started(first, second) -> None:
    first.start()
    one_line_error(smsgw("run", "-c", str(second.config)), 1, "node 'e2e' is running on this store already",
                   "give each node its own [gateway] node")
    assert http("GET", f"{first.url}/healthz")[0] == 200  # the running node goes on
    first.kill()  # SIGKILL: the lock goes with the process
    second.start()
    code, body = http("POST", f"{second.url}/v1/messages", {"to": "46701239999", "text": "hi"}, key="demo-key")
    assert code == 202, body
    assert second.stop() == 0


def test_a_second_node_of_the_same_name_on_the_same_sqlite_file_is_refused(gateways, tmp_path):
    _refused_then_started(*_configs(gateways, tmp_path))


@pytest.mark.postgres
def test_a_second_node_of_the_same_name_on_the_same_postgresql_database_is_refused(gateways, tmp_path, pg_url):
    _refused_then_started(*_configs(gateways, tmp_path, pg_url))
