"""Group commit: a writer owns a database connection and runs queued operations in batches.

Callers (on the reactor thread) hand in a function ``op(cursor) -> result`` and get a Deferred. The
writer takes everything queued, opens one transaction, runs the ops, commits once, and only then
fires the Deferreds of the batch on the reactor thread, in submission order. When an op raises,
the transaction is rolled back and the batch runs again with each op inside its own SAVEPOINT, so
the failing op rolls back alone and fails alone (ops compute from what they read, so a second run
is what the first would have been; the common case pays no SAVEPOINT per op). Under load a batch
holds hundreds of operations and costs one fsync; when idle a single op commits at once, so
latency stays low.

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
The reactor's writer tells ``after_batch(error)`` how each batch ended (the store's readiness):
once a batch, instead of a callback on every operation's Deferred.

Two writers run batches this way:

- ``BatchWriter``: one thread owns the connection. For a database across a network (PostgreSQL):
  the reactor goes on while the thread waits for the server's answers.
- ``ReactorWriter``: the reactor thread runs the batch itself, once per reactor turn, after the
  turn's events queued their operations. For an embedded database (SQLite), whose work is CPU in
  this process: a writer thread gains little from running beside the reactor (the GIL lets one of
  them run Python at a time) and loses much while it holds the file lock, because every statement
  hands the GIL over and the thread may wait for the reactor to give it back before its next one.
  Timed (docs/benchmarks.md, ninth session): with a thread, the main worker held the lock for
  5.3 s of which 3.0 s were its CPU. When another process holds the lock, a small thread waits
  for it (``_LockWaiter``) so the reactor never blocks on it.
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


class RefusedBeforeCommit(Exception):
    """A write sent with the COMMIT (PostgreSQL's deferred writes, ``pg_session.Cursor.defer``)
    was refused: the COMMIT never ran, nothing of the batch is stored, and the batch runs again
    with each operation alone, which tells whose write it was."""


def _flush(cur) -> None:
    """Send what the cursor holds back to send with its next statement (PostgreSQL's writes,
    ``pg_session.Cursor.defer``), so that an error of them is raised here."""
    flush = getattr(cur, "flush", None)
    if flush is not None:
        flush()


class _Transactions:
    """Operations in one transaction: what both writers share. Subclasses set ``_begin``,
    ``_on_begin`` and ``_before_commit``."""

    _begin: str
    _on_begin: Callable[[Any], None] | None
    _before_commit: Callable[[Any], None] | None

    def _attempt(self, cur, work) -> tuple[list, BaseException | None] | None:
        """Run ``work`` (``(op, deferred)`` pairs) in one transaction and commit: the results to
        fire, in queue order, and None when the transaction committed, else the error that failed
        the batch as a whole; None when the database is locked by another program and the batch
        is to wait (``_wait_when``: nothing was done, it runs again later).

        The common case, every operation succeeds, pays no SAVEPOINT per operation. When one
        raises, the transaction is rolled back and the batch runs again with each operation in a
        SAVEPOINT of its own, so that the failing one rolls back alone and fails alone (operations
        compute from what they read, so running them again gives what they would have given
        alone). If the commit fails, every operation of the batch fails."""
        for alone in (False, True):
            try:
                cur.execute(self._begin)
            except BaseException as exc:  # noqa: BLE001 - the batch waits, or fails as a whole
                if self._wait_when(exc):
                    return None
                return _all_failed(work, Failure())
            try:
                if self._on_begin is not None:
                    self._on_begin(cur)
                results = self._each_alone(cur, work) if alone else self._each(cur, work)
                if self._before_commit is not None:
                    self._before_commit(cur)
            except BaseException:  # noqa: BLE001 - again, each operation alone; or the batch failed
                failure = Failure()
                self._rollback(cur)
                if alone:
                    return _all_failed(work, failure)
                continue
            try:
                cur.execute("COMMIT")
            except RefusedBeforeCommit:  # a write sent with the COMMIT: whose it was, each op alone says
                failure = Failure()
                self._rollback(cur)
                if alone:
                    return _all_failed(work, failure)
                continue
            except BaseException:  # noqa: BLE001 - the batch is lost as a whole: fail every op
                failure = Failure()
                self._rollback(cur)
                return _all_failed(work, failure)
            return results, None
        raise AssertionError("unreachable")

    def _wait_when(self, exc: BaseException) -> bool:
        """Whether a BEGIN that raised ``exc`` makes the batch wait (instead of failing)."""
        return False

    def _each(self, cur, work) -> list:
        """Every operation, the Merged ones of a kind together; raises when one raises."""
        results: list[tuple[Deferred, bool, Any]] = []
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
        return results

    @staticmethod
    def _each_alone(cur, work) -> list:
        """Every operation in its own SAVEPOINT: the failures as results."""
        results: list[tuple[Deferred, bool, Any]] = []
        for op, d in work:
            cur.execute("SAVEPOINT op")
            try:
                value = op(cur)
                _flush(cur)
            except BaseException:  # noqa: BLE001 - handed to the caller's errback
                failure = Failure()
                cur.execute("ROLLBACK TO SAVEPOINT op")
                cur.execute("RELEASE SAVEPOINT op")
                results.append((d, False, failure))
            else:
                cur.execute("RELEASE SAVEPOINT op")
                results.append((d, True, value))
        return results

    @staticmethod
    def _rollback(cur) -> None:
        try:
            cur.execute("ROLLBACK")
        except Exception:  # noqa: BLE001 - already rolled back
            pass


class BatchWriter(_Transactions):
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
        results, _ = self._attempt(cur, work)
        self.batches += 1
        self.ops += len(work)
        self._reactor.callFromThread(_fire_all, results)

class ReactorWriter(_Transactions):
    """Runs operations on one connection on the reactor thread, batched into transactions: the
    operations queued in one reactor turn (and those queued while the file lock was another
    process's) run in one transaction at the next turn. Needs a ``lock_path``.

    ``connect`` should give a connection that does not wait when the database is locked, and
    ``busy(exc)`` tell that error: a program that writes the file without the lock (a sqlite3
    shell, a backup tool) then makes the batch wait and try again, 2 ms to 100 ms later, instead
    of blocking the reactor; after ``busy_for`` seconds of that it fails. An operation queued after
    ``stop()`` fails (RuntimeError).

    ``sync_after()``, when given, makes a committed batch durable once the file lock is let go
    (``sqlite.WalSync``), before ``after_batch`` and the Deferreds; when it raises, the batch
    failed as a whole.

    ``after_batch(error)`` is called once a batch ended, before its Deferreds fire: with None when
    it committed, else with the error that failed it as a whole (the file lock, BEGIN, COMMIT, the
    sync); not while it waits for SQLite's lock. One call a batch tells what a callback on every
    operation's Deferred told, for the price of none per operation."""

    busy_for = 30.0

    def __init__(self, reactor, connect: Callable[[], Any], *, lock_path: str, name: str = "store-writer",
                 max_batch: int = 2000, begin: str = "BEGIN IMMEDIATE",
                 on_begin: Callable[[Any], None] | None = None,
                 before_commit: Callable[[Any], None] | None = None,
                 busy: Callable[[BaseException], bool] = lambda exc: False,
                 after_batch: Callable[[BaseException | None], None] = lambda error: None,
                 sync_after: Callable[[], None] | None = None) -> None:
        self._reactor = reactor
        self._sync_after = sync_after
        self._connect = connect
        self._lock_path = lock_path
        self._busy = busy
        self._after_batch = after_batch
        self._backoff = 0.0  # while SQLite's lock is held by another program: the wait before trying again
        self._busy_since: float | None = None
        self._name = name
        self._max_batch = max_batch
        self._begin = begin
        self._on_begin = on_begin
        self._before_commit = before_commit
        self._pending: list[tuple[Any, Deferred]] = []
        self._conn = self._cur = None
        self._lock: int | None = None
        self._waiter: _LockWaiter | None = None
        self._turn_call = None  # the reactor call of the next batch, while one is due
        self._locking = False  # the lock is asked of the waiter thread
        self._stopped: list[Deferred] | None = None  # stop() was called: fired once closed
        self.batches = 0
        self.ops = 0

    def start(self) -> None:
        if self._conn is None and self._stopped is None:
            self._conn = self._connect()
            self._cur = self._conn.cursor()
            self._lock = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            self._schedule()

    def submit(self, op: Callable[[Any], Any] | Merged) -> Deferred:
        """Queue ``op(cursor)`` (or a Merged item); the Deferred fires with its result after the commit."""
        d: Deferred = Deferred()
        if self._stopped is not None:
            d.errback(Failure(RuntimeError(f"{self._name} is stopped")))
            return d
        self._pending.append((op, d))
        self._schedule()
        return d

    def stop(self) -> Deferred:
        """Finish everything queued, then close the connection."""
        d: Deferred = Deferred()
        if self._stopped is None:
            self._stopped = []
        self._stopped.append(d)
        if self._conn is None:
            self._close()
        elif self._turn_call is None and not self._locking:
            self._schedule() if self._pending else self._close()
        return d

    # -- on the reactor thread -------------------------------------------------------------
    def _schedule(self, delay: float = 0.0) -> None:
        if self._conn is not None and self._turn_call is None and not self._locking:
            self._turn_call = self._reactor.callLater(delay, self._turn)

    def _turn(self) -> None:
        self._turn_call = None
        if not self._pending:
            if self._stopped is not None:
                self._close()
            return
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # another process writes: wait for it off the reactor
            self._locking = True
            if self._waiter is None:
                self._waiter = _LockWaiter(self._reactor, f"{self._name}-lock")
            self._waiter.ask(self._lock, self._locked)
            return
        self._locked(None)

    def _locked(self, error: BaseException | None) -> None:
        """The file lock is held (or could not be taken: ``error``): run a batch, let go, fire."""
        self._locking = False
        work = self._pending[:self._max_batch]
        del self._pending[:len(work)]
        if error is not None:
            ended = _all_failed(work, Failure(error))
        else:
            try:
                ended = self._attempt(self._cur, work)
            finally:
                fcntl.flock(self._lock, fcntl.LOCK_UN)
            if ended is not None and ended[1] is None and self._sync_after is not None:
                try:
                    self._sync_after()
                except BaseException:  # noqa: BLE001 - committed, not known to be on disk: failed
                    ended = _all_failed(work, Failure())
        if ended is None:  # SQLite's lock is another program's: try again soon
            self._pending[:0] = work
            self._backoff = min(max(2 * self._backoff, 0.002), 0.1)
        else:
            self._busy_since, self._backoff = None, 0.0
            self.batches += 1
            self.ops += len(work)
            results, failed_with = ended
            self._after_batch(failed_with)
            _fire_all(results)
        if self._pending:
            self._schedule(self._backoff)
        elif self._stopped is not None and self._turn_call is None:
            self._close()

    def _wait_when(self, exc: BaseException) -> bool:
        if not self._busy(exc):
            return False
        now = self._reactor.seconds()
        if self._busy_since is None:
            self._busy_since = now
        return now - self._busy_since < self.busy_for

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = self._cur = None
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None
        if self._waiter is not None:
            self._waiter.stop()
            self._waiter = None
        waiting, self._stopped = self._stopped or [], []
        for d in waiting:
            d.callback(None)


class _LockWaiter:
    """A thread that takes a file lock for the reactor: ``ask(fd, then)`` blocks here in ``flock``
    and calls ``then(None)`` (or ``then(error)``) on the reactor thread once the lock is held."""

    def __init__(self, reactor, name: str) -> None:
        self._reactor = reactor
        self._asks: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def ask(self, fd: int, then: Callable[[BaseException | None], None]) -> None:
        self._asks.put((fd, then))

    def stop(self) -> None:
        self._asks.put(None)

    def _run(self) -> None:
        while (ask := self._asks.get()) is not None:
            fd, then = ask
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except OSError as exc:
                self._reactor.callFromThread(then, exc)
            else:
                self._reactor.callFromThread(then, None)


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


def _all_failed(work, failure: Failure) -> tuple[list, BaseException]:
    """Every operation of ``work`` failed with ``failure``: the batch as a whole (see ``_attempt``)."""
    return [(d, False, failure) for _, d in work], failure.value


def _fire_all(results) -> None:
    for d, ok, value in results:
        if ok:
            d.callback(value)
        else:
            d.errback(value)
