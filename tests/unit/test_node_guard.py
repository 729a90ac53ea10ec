"""The node's lock on a SQLite store (``smscore.store.node_guard``): held once, refused to a second
holder after the wait, free again once let go. A fake clock: no real waiting."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from smscore.store.node_guard import NodeRunning, StoreUnreachable, hold_node


def config(db, node="gw1"):
    return SimpleNamespace(gateway=SimpleNamespace(node=node), store=SimpleNamespace(sqlite_path=db))


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.naps = 0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.naps += 1
        self.now += seconds


def test_one_holder_a_name_and_store_the_name_free_again_once_let_go(tmp_path):
    db = tmp_path / "var" / "gw.db"  # its folder is made, as the store makes it
    first = hold_node(config(db))
    t = FakeTime()
    with pytest.raises(NodeRunning, match=r"node 'gw1' is running on this store already: .*gw\.db\.node-gw1\.lock"):
        hold_node(config(db), wait=2.0, sleep=t.sleep, clock=t.clock)
    assert t.naps == 20  # it waited for the holder to go, 0.1 s at a time
    other = hold_node(config(db, node="gw2"))  # another name on the same store
    elsewhere = hold_node(config(tmp_path / "other.db"))  # the same name on another store
    first.close()
    again = hold_node(config(db), wait=0.0)
    for held in (other, elsewhere, again):
        held.close()


def test_a_store_folder_that_cannot_be_made_is_the_stores_error(tmp_path):
    with pytest.raises(StoreUnreachable, match=r"^store\.url: /proc/nope/gw\.db: "):
        hold_node(config("/proc/nope/gw.db"))
