"""The group-commit writers on a real SQLite file: merged operations, failures that stay alone,
and (the reactor's writer) a file lock held by another process."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading

import pytest
import pytest_twisted
from twisted.internet import reactor, task
from twisted.internet.defer import Deferred, gatherResults

from smscore.store.writer import BatchWriter, Merged, ReactorWriter
from tests.harness.waiting import eventually

KINDS = ["thread", "reactor"]


def _table(tmp_path):
    path = tmp_path / "w.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, v INTEGER)")
    conn.close()
    return path


def _writer(tmp_path, kind: str = "thread"):
    path = _table(tmp_path)
    connect = lambda: sqlite3.connect(path, isolation_level=None, check_same_thread=False)  # noqa: E731
    if kind == "reactor":
        writer = ReactorWriter(reactor, connect, lock_path=str(tmp_path / "w.db.lock"))
    else:
        writer = BatchWriter(reactor, connect)
    writer.start()
    return writer


def _hold(writer):
    """Ops submitted until the returned function is called go in one batch: the thread's writer
    is kept busy meanwhile; the reactor's writer batches what one reactor turn queued anyway."""
    if isinstance(writer, ReactorWriter):
        return lambda: None
    gate = threading.Event()
    writer.submit(lambda cur: gate.wait(10))
    return gate.set


def _rows(tmp_path) -> list:
    conn = sqlite3.connect(tmp_path / "w.db")
    try:
        return conn.execute("SELECT k, v FROM t ORDER BY k").fetchall()
    finally:
        conn.close()


@pytest.mark.parametrize("kind", KINDS)
@pytest_twisted.ensureDeferred
async def test_items_of_one_kind_run_in_one_call_in_queue_order_and_fire_in_queue_order(tmp_path, kind):
    writer = _writer(tmp_path, kind)
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


@pytest.mark.parametrize("kind", KINDS)
@pytest_twisted.ensureDeferred
async def test_a_merged_kind_that_fails_runs_again_item_by_item_and_only_the_bad_item_fails(tmp_path, kind):
    writer = _writer(tmp_path, kind)
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
    assert _rows(tmp_path) == [("a", 1), ("c", 3)]
    await writer.stop()
    assert outcomes == ["a", "refused", "c"] and calls == [3, 1, 1, 1]


@pytest.mark.parametrize("kind", KINDS)
@pytest_twisted.ensureDeferred
async def test_a_kind_that_answers_the_wrong_number_of_results_fails_its_items(tmp_path, kind):
    writer = _writer(tmp_path, kind)
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


@pytest_twisted.ensureDeferred
async def test_the_reactors_writer_waits_for_a_lock_another_process_holds_without_stopping_the_reactor(tmp_path):
    writer = _writer(tmp_path, "reactor")
    other = os.open(tmp_path / "w.db.lock", os.O_RDWR)  # its own open file: a lock of its own
    fcntl.flock(other, fcntl.LOCK_EX)
    try:
        put = writer.submit(lambda cur: cur.execute("INSERT INTO t VALUES ('a', 1)") and "stored")
        ticks = 0
        for _ in range(5):  # the reactor goes on turning meanwhile; nothing is written
            await task.deferLater(reactor, 0.01, lambda: None)
            ticks += 1
        assert ticks == 5 and not put.called and _rows(tmp_path) == []
    finally:
        fcntl.flock(other, fcntl.LOCK_UN)
        os.close(other)
    assert await put == "stored"
    assert _rows(tmp_path) == [("a", 1)]
    # The lock is let go after each batch: another process gets it at once.
    other = os.open(tmp_path / "w.db.lock", os.O_RDWR)
    try:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(other)
    await writer.stop()


@pytest_twisted.ensureDeferred
async def test_the_reactors_writer_runs_one_turns_operations_in_one_transaction(tmp_path):
    writer = _writer(tmp_path, "reactor")
    ds = [writer.submit(lambda cur, i=i: cur.execute("INSERT INTO t VALUES (?, ?)", (f"k{i:03}", i)) and i)
          for i in range(100)]
    assert await gatherResults(ds) == list(range(100))
    assert (writer.batches, writer.ops) == (1, 100)
    # What the callbacks of a batch queue goes in the next one.
    later: Deferred = Deferred()
    first = writer.submit(lambda cur: 1)
    first.addCallback(lambda _: writer.submit(lambda cur: 2).chainDeferred(later))
    assert await later == 2 and writer.batches == 3
    await writer.stop()


@pytest_twisted.ensureDeferred
async def test_the_reactors_writer_finishes_what_is_queued_when_stopped_and_refuses_what_comes_after(tmp_path):
    writer = _writer(tmp_path, "reactor")
    put = writer.submit(lambda cur: cur.execute("INSERT INTO t VALUES ('a', 1)") and "stored")
    await writer.stop()
    assert put.called and put.result == "stored" and _rows(tmp_path) == [("a", 1)]
    late = writer.submit(lambda cur: cur.execute("INSERT INTO t VALUES ('b', 2)"))
    with pytest.raises(RuntimeError, match="stopped"):
        await late
    assert _rows(tmp_path) == [("a", 1)]


@pytest_twisted.ensureDeferred
async def test_the_reactors_writer_waits_while_another_program_holds_sqlites_lock_then_gives_up(tmp_path):
    """A program that writes the file without the gateway's lock (a sqlite3 shell): the batch tries
    again a little later, the reactor turning meanwhile; past ``busy_for`` it fails."""
    from smscore.store.sqlite import is_busy

    path = _table(tmp_path)
    writer = ReactorWriter(reactor, lambda: sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                                                            timeout=0),
                           lock_path=str(tmp_path / "w.db.lock"), busy=is_busy)
    writer.start()
    shell = sqlite3.connect(path, isolation_level=None)
    shell.execute("BEGIN IMMEDIATE")
    put = writer.submit(lambda cur: cur.execute("INSERT INTO t VALUES ('a', 1)") and "stored")
    await eventually(lambda: writer._busy_since is not None, "the batch to find SQLite's lock taken")
    assert not put.called
    shell.execute("ROLLBACK")
    assert await put == "stored" and _rows(tmp_path) == [("a", 1)]

    writer.busy_for = 0.05
    shell.execute("BEGIN IMMEDIATE")
    try:
        late = writer.submit(lambda cur: cur.execute("INSERT INTO t VALUES ('b', 2)"))
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            await late
    finally:
        shell.execute("ROLLBACK")
        shell.close()
    assert await writer.submit(lambda cur: cur.execute("INSERT INTO t VALUES ('c', 3)") and "again") == "again"
    assert _rows(tmp_path) == [("a", 1), ("c", 3)]
    await writer.stop()


@pytest_twisted.ensureDeferred
async def test_the_reactors_writer_tells_how_each_batch_ended_before_its_deferreds_fire(tmp_path):
    """``after_batch``: None for a batch that committed (an operation's own error in it or not),
    the error for one that failed as a whole; once a batch, before its callbacks run (SQLite's
    readiness is read there); not while the batch waits for SQLite's lock."""
    from smscore.store.sqlite import is_busy

    path = _table(tmp_path)
    ended, broken = [], []

    def before_commit(cur):
        if broken:
            raise sqlite3.OperationalError(broken[0])

    writer = ReactorWriter(reactor, lambda: sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                                                            timeout=0),
                           lock_path=str(tmp_path / "w.db.lock"), busy=is_busy, before_commit=before_commit,
                           after_batch=ended.append)
    writer.start()
    seen = []
    ok = writer.submit(lambda cur: cur.execute("INSERT INTO t VALUES ('a', 1)") and "stored")
    own = writer.submit(lambda cur: 1 / 0)
    ok.addCallback(lambda v: seen.append(list(ended)) or v)
    assert await ok == "stored"
    with pytest.raises(ZeroDivisionError):
        await own
    assert ended == [None] and seen == [[None]]

    broken.append("disk I/O error")
    lost = [writer.submit(lambda cur: cur.execute("INSERT INTO t VALUES ('b', 2)")) for _ in range(2)]
    for d in lost:
        with pytest.raises(sqlite3.OperationalError, match="disk I/O error"):
            await d
    assert len(ended) == 2 and isinstance(ended[1], sqlite3.OperationalError)
    broken.clear()

    shell = sqlite3.connect(path, isolation_level=None)
    shell.execute("BEGIN IMMEDIATE")
    put = writer.submit(lambda cur: cur.execute("INSERT INTO t VALUES ('c', 3)") and "stored")
    await eventually(lambda: writer._busy_since is not None, "the batch to find SQLite's lock taken")
    assert not put.called and len(ended) == 2  # waiting is no outcome
    shell.execute("ROLLBACK")
    shell.close()
    assert await put == "stored" and ended[2:] == [None]
    assert _rows(tmp_path) == [("a", 1), ("c", 3)]
    await writer.stop()
