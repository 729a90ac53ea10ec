"""Group commit: one thread owns a database connection and runs queued operations in batches.

Callers (on the reactor thread) hand in a function ``op(cursor) -> result`` and get a Deferred. The
writer thread takes everything queued, opens one transaction, runs the ops, commits once, and only
then fires the Deferreds of the batch on the reactor thread, in submission order. When an op
raises, the transaction is rolled back and the batch runs again with each op inside its own
SAVEPOINT, so the failing op rolls back alone and fails alone (ops compute from what they read, so
a second run is what the first would have been; the common case pays no SAVEPOINT per op). Under load a batch holds hundreds
of operations and costs one fsync; when idle a single op commits at once, so latency stays low.

If the commit itself fails, every op of the batch fails: nothing was stored, nobody is told otherwise.

An operation may be ``Merged``: the ops of one kind in a batch run as one call, ``run_many(cursor,
items)``, at the place of the first of them, so that a hundred receipts cost a few statements
instead of a few hundred. Ops in one batch were queued without waiting for each other, so any
order among them is one their callers could have seen; a kind that cares (a receipt queued before
the submit it answers) sorts it out inside ``run_many``, which gets its items in queue order.

Several processes may write one SQLite file (a node's workers, smscore.supervisor): with a
``lock_path``, each batch holds an exclusive ``flock`` on that file from BEGIN to COMMIT, so writers
take turns at once instead of sleeping in SQLite's busy handler. ``on_begin(cursor)`` and
``before_commit(cursor)`` run inside every batch's transaction (the store keeps its counters there).
"""

from __future__ import annotations

import fcntl
import os
import queue
import threading
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

_STOP = object()


class Merged:
    """One item of an operation that runs together with the others of its kind in a batch:
    ``run_many(cursor, items)`` returns one result per item, in order (see the module doc)."""

    __slots__ = ("run_many", "item")

    def __init__(self, run_many: Callable[[Any, list], list], item: Any) -> None:
        self.run_many = run_many
        self.item = item

    def __call__(self, cur) -> Any:
        """Alone (the one-by-one path, or a writer without batching)."""
        return self.run_many(cur, [self.item])[0]


class BatchWriter:
    """Runs operations on one connection in one thread, batched into transactions."""

    def __init__(self, reactor, connect: Callable[[], Any], *, name: str = "store-writer",
                 max_batch: int = 2000, begin: str = "BEGIN IMMEDIATE", lock_path: str | None = None,
                 on_begin: Callable[[Any], None] | None = None,
                 before_commit: Callable[[Any], None] | None = None) -> None:
        self._reactor = reactor
        self._connect = connect
        self._lock_path = lock_path
        self._on_begin = on_begin
        self._before_commit = before_commit
        self._max_batch = max_batch
        self._begin = begin
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._started = False
        self.batches = 0
        self.ops = 0

    def start(self) -> None:
        if not self._started:
            self._started = True
            self._thread.start()

    def submit(self, op: Callable[[Any], Any] | Merged) -> Deferred:
        """Queue ``op(cursor)`` (or a Merged item); the Deferred fires with its result after the commit."""
        d: Deferred = Deferred()
        self._queue.put((op, d))
        return d

    def stop(self) -> Deferred:
        """Finish everything queued, then close the connection. Fires when the thread is done."""
        d: Deferred = Deferred()
        if not self._started:
            d.callback(None)
            return d
        self._queue.put((_STOP, d))
        return d

    # -- the writer thread -----------------------------------------------------------------
    def _run(self) -> None:
        conn = self._connect()
        cur = conn.cursor()
        lock = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600) if self._lock_path else None
        stopping = None
        while stopping is None:
            first = self._queue.get()
            if lock is not None:
                # Take the lock before draining the queue: what arrives while another process
                # writes goes into this transaction instead of waiting for the next turn.
                fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                batch = [first]
                while len(batch) < self._max_batch:
                    try:
                        batch.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                work = []
                for item in batch:
                    if item[0] is _STOP:
                        stopping = item[1]
                    else:
                        work.append(item)
                if work:
                    self._run_batch(conn, cur, work)
            finally:
                if lock is not None:
                    fcntl.flock(lock, fcntl.LOCK_UN)
        try:
            if lock is not None:
                os.close(lock)
            conn.close()
        finally:
            self._reactor.callFromThread(stopping.callback, None)

    def _run_batch(self, conn, cur, work) -> None:
        results = self._all_or_nothing(cur, work)
        if results is None:  # an operation failed: again, each in its own SAVEPOINT
            results = self._one_by_one(cur, work)
        self.batches += 1
        self.ops += len(work)
        self._reactor.callFromThread(_fire_all, results)

    def _all_or_nothing(self, cur, work) -> list | None:
        """The common case, every operation succeeds: no SAVEPOINT per operation. None when one
        raised; the transaction is rolled back and nothing of it is kept (operations compute from
        what they read, so running them again gives what they would have given alone)."""
        results: list[tuple[Deferred, bool, Any]] = []
        try:
            self._start(cur)
            steps = _steps(work)
            for run_many, items, ds in steps:
                if run_many is None:
                    results.append((ds, True, items(cur)))
                else:
                    values = run_many(cur, items)
                    if len(values) != len(items):
                        raise RuntimeError(f"{run_many!r} gave {len(values)} results for {len(items)} items")
                    results.extend((d, True, v) for d, v in zip(ds, values))
            if len(steps) < len(work):  # some ran merged, out of queue order
                order = {id(d): i for i, (_, d) in enumerate(work)}
                results.sort(key=lambda r: order[id(r[0])])  # fired in queue order all the same
            if self._before_commit is not None:
                self._before_commit(cur)
        except BaseException:  # noqa: BLE001 - the slow path below sorts out which one failed
            self._rollback(cur)
            return None
        try:
            cur.execute("COMMIT")
        except BaseException:  # noqa: BLE001 - the batch is lost as a whole: fail every op
            failure = Failure()
            self._rollback(cur)
            return [(d, False, failure) for _, d in work]
        return results

    def _one_by_one(self, cur, work) -> list:
        """Each operation in its own SAVEPOINT: one that fails rolls back alone and fails alone."""
        results: list[tuple[Deferred, bool, Any]] = []
        try:
            self._start(cur)
            for op, d in work:
                cur.execute("SAVEPOINT op")
                try:
                    value = op(cur)
                except BaseException:  # noqa: BLE001 - handed to the caller's errback
                    failure = Failure()
                    cur.execute("ROLLBACK TO SAVEPOINT op")
                    cur.execute("RELEASE SAVEPOINT op")
                    results.append((d, False, failure))
                else:
                    cur.execute("RELEASE SAVEPOINT op")
                    results.append((d, True, value))
            if self._before_commit is not None:
                self._before_commit(cur)
            cur.execute("COMMIT")
        except BaseException:  # noqa: BLE001 - the batch is lost as a whole: fail every op
            failure = Failure()
            self._rollback(cur)
            results = [(d, False, failure) for _, d in work]
        return results

    def _start(self, cur) -> None:
        cur.execute(self._begin)
        if self._on_begin is not None:
            self._on_begin(cur)

    @staticmethod
    def _rollback(cur) -> None:
        try:
            cur.execute("ROLLBACK")
        except Exception:  # noqa: BLE001 - already rolled back
            pass


def _steps(work):
    """The batch as steps ``(run_many, items, deferreds)``: a plain op alone as ``(None, op, d)``;
    the Merged items of one kind together, at the place of the first of them."""
    steps: list = []
    kinds: dict = {}
    for op, d in work:
        if isinstance(op, Merged):
            step = kinds.get(op.run_many)
            if step is None:
                step = kinds[op.run_many] = (op.run_many, [], [])
                steps.append(step)
            step[1].append(op.item)
            step[2].append(d)
        else:
            steps.append((None, op, d))
    return steps


def _fire_all(results) -> None:
    for d, ok, value in results:
        if ok:
            d.callback(value)
        else:
            d.errback(value)
