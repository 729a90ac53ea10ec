"""The group-commit writer on a real SQLite file: merged operations, and failures that stay alone."""

from __future__ import annotations

import sqlite3
import threading

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import gatherResults

from smscore.store.writer import BatchWriter, Merged


def _writer(tmp_path) -> BatchWriter:
    path = tmp_path / "w.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER)")
    conn.close()
    writer = BatchWriter(reactor, lambda: sqlite3.connect(path, isolation_level=None, check_same_thread=False))
    writer.start()
    return writer


def _hold(writer):
    gate = threading.Event()
    writer.submit(lambda cur: gate.wait(10))
    return gate.set


@pytest_twisted.ensureDeferred
async def test_items_of_one_kind_run_in_one_call_in_queue_order_and_fire_in_queue_order(tmp_path):
    writer = _writer(tmp_path)
    calls, fired = [], []

    def put_many(cur, items):
        calls.append(list(items))
        cur.executemany("INSERT INTO t VALUES (?, ?)", items)
        return [k for k, _ in items]

    def count(cur):
        cur.execute("SELECT COUNT(*) FROM t")
        return cur.fetchone()[0]

    release = _hold(writer)
    ds = [writer.submit(Merged(put_many, ("a", 1))), writer.submit(count), writer.submit(Merged(put_many, ("b", 2)))]
    for i, d in enumerate(ds):
        d.addCallback(lambda v, i=i: fired.append(i) or v)
    release()
    results = await gatherResults(ds)
    await writer.stop()
    assert calls == [[("a", 1), ("b", 2)]]
    # Both merged items ran at the place of the first one, before the plain op.
    assert results == ["a", 2, "b"] and fired == [0, 1, 2]


@pytest_twisted.ensureDeferred
async def test_a_merged_kind_that_fails_runs_again_item_by_item_and_only_the_bad_item_fails(tmp_path):
    writer = _writer(tmp_path)
    calls = []

    def put_many(cur, items):
        calls.append(len(items))
        cur.executemany("INSERT INTO t VALUES (?, ?)", items)
        return [k for k, _ in items]

    release = _hold(writer)
    ds = [writer.submit(Merged(put_many, item)) for item in [("a", 1), ("a", 2), ("c", 3)]]
    release()
    outcomes = []
    for d in ds:
        try:
            outcomes.append(await d)
        except sqlite3.IntegrityError:
            outcomes.append("refused")
    conn = sqlite3.connect(tmp_path / "w.db")
    assert conn.execute("SELECT k, v FROM t ORDER BY k").fetchall() == [("a", 1), ("c", 3)]
    await writer.stop()
    assert outcomes == ["a", "refused", "c"] and calls == [3, 1, 1, 1]


@pytest_twisted.ensureDeferred
async def test_a_kind_that_answers_the_wrong_number_of_results_fails_its_items(tmp_path):
    writer = _writer(tmp_path)
    release = _hold(writer)
    ds = [writer.submit(Merged(lambda cur, items: [], item)) for item in (1, 2)]
    release()
    for d in ds:
        try:
            await d
        except IndexError:
            pass
        else:
            raise AssertionError("an item without a result must fail")
    await writer.stop()
