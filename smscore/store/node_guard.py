"""One running node a name on one store.

Why: a restarted node takes back at once the leases its name held (SPEC §10), so a second `smsgw
run` started with the name of a node that still ran on the same store (a copied config, a restart
that did not wait for the old process) took that node's messages as its own and sent most of them
again, with twice the operator's binds and tps, and neither log said a word: an audit counted
1,728 of 2,000 messages submitted twice on SQLite, 2,335 of 3,000 on PostgreSQL.

How: ``smsgw run`` holds, for its life, a lock that its end releases at once, however it ends:

- SQLite: ``flock`` on ``<db>.node-<name>.lock`` beside the database (the kernel lets go with the
  process);
- PostgreSQL: a session advisory lock on the node's name (a key space of its own: two 32-bit
  keys, never the 64-bit ones of the store's transaction locks), on a connection of its own; the
  server lets go when the connection ends, and keepalives end one whose host died (in about half
  a minute).

A node started again after a crash finds the lock free; one started while the old process is
still going away waits up to ``wait`` seconds for it, then refuses (``NodeRunning``).
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

#: The first key of the node's advisory lock on PostgreSQL ("sm" "sg" as ASCII): apart from any
#: other use of two-key advisory locks on the database.
NODE_LOCK_CLASS = 0x736D7367 & 0x7FFFFFFF


class NodeRunning(Exception):
    """Another process runs the node on this store."""


class StoreUnreachable(Exception):
    """The store could not be asked (PostgreSQL down, a bad URL): the node cannot start either."""


def hold_node(config, *, wait: float = 5.0, sleep=time.sleep, clock=time.monotonic):
    """Take the node's lock on its store for this process's life; returns what holds it (keep a
    reference; ``close()`` lets go). Raises ``NodeRunning`` or ``StoreUnreachable``."""
    node = config.gateway.node
    deadline = clock() + wait
    if config.store.sqlite_path is not None:
        db = config.store.sqlite_path
        try:
            return _hold_file(Path(f"{db}.node-{node}.lock"), node, deadline, sleep, clock)
        except OSError as exc:  # the database's folder cannot be made or written: the store could not either
            raise StoreUnreachable(f"store.url: {db}: {exc.strerror or exc}") from None
    return _hold_advisory(config.store.url, config.store.redacted_url, node, deadline, sleep, clock)


class _Held:
    def __init__(self, close) -> None:
        self.close = close


def _hold_file(path: Path, node: str, deadline: float, sleep, clock) -> _Held:
    path.parent.mkdir(parents=True, exist_ok=True)  # as the store does for its database
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)  # not inherited by the workers
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return _Held(lambda: os.close(fd))
        except BlockingIOError:
            if clock() >= deadline:
                os.close(fd)
                raise NodeRunning(f"node {node!r} is running on this store already: another smsgw run "
                                  f"holds {path} (give each node its own [gateway] node)") from None
            sleep(0.1)


def _hold_advisory(url: str, shown: str, node: str, deadline: float, sleep, clock) -> _Held:
    import psycopg2

    from smscore.store import pg_schema

    try:
        conn = pg_schema.connect(url)
        cur = conn.cursor()
        cur.execute("SET tcp_keepalives_idle = 10; SET tcp_keepalives_interval = 5; SET tcp_keepalives_count = 3")
        while True:
            cur.execute("SELECT pg_try_advisory_lock(%s, hashtext(%s))", (NODE_LOCK_CLASS, node))
            if cur.fetchone()[0]:
                return _Held(conn.close)
            if clock() >= deadline:
                conn.close()
                raise NodeRunning(f"node {node!r} is running on this store already: another smsgw run holds "
                                  f"its lock on {shown} (give each node its own [gateway] node)")
            sleep(0.1)
    except psycopg2.Error as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StoreUnreachable(f"{shown}: {message}") from None
