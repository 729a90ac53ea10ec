"""The config a node of several processes runs, shared by its processes (SPEC §3 reload, §10).

Why a module of its own: a worker that dies is started again by the supervisor, and it read its
config from the file. The file is not the config the node runs: ops may have edited it without a
reload (the restarted worker then ran an account or a price no other process knew), or a reload may
have refused it (the worker could not start, and after three tries the supervisor stopped the whole
node: one crash away from an outage). So the node keeps what it runs in an anonymous shared file
(``memfd``) that every worker inherits: the TOML text it started with, and the text of the last
reload the main worker applied.

- ``create(text)``: the supervisor, before the first worker starts; both texts are ``text``.
- ``applied(fd, text)``: the main worker, once a reload is applied and before the API workers are
  told to reload (they read it here, not the file, so every process applies the same text).
- ``read(fd)``: ``(started, running)`` texts. A process starting after reloads runs ``running``
  with the settings a reload does not change as ``started`` has them
  (``Config.keeping_restart_settings``), as the processes that did not restart do.

The file is locked (``flock``) around each read and write: a reload and a restart may meet.
"""

from __future__ import annotations

import fcntl
import json
import os

__all__ = ["applied", "create", "read"]


def create(text: str) -> int:
    """A new shared file holding ``text`` as both the started and the running config; its fd
    (inheritable: the supervisor passes it to every worker)."""
    fd = os.memfd_create("smsgw-config", 0)
    _write(fd, {"started": text, "running": text})
    os.set_inheritable(fd, True)
    return fd


def applied(fd: int, text: str) -> None:
    """A reload of ``text`` was applied: processes that start from now on run it."""
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        state = _load(fd)
        state["running"] = text
        _store(fd, state)
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


def read(fd: int) -> tuple[str, str]:
    """``(started, running)``: the text the node started with and the one it runs now."""
    fcntl.flock(fd, fcntl.LOCK_SH)
    try:
        state = _load(fd)
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
    return state["started"], state["running"]


def _write(fd: int, state: dict) -> None:
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        _store(fd, state)
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


def _store(fd: int, state: dict) -> None:
    data = json.dumps(state).encode()
    os.ftruncate(fd, 0)
    done = 0
    while done < len(data):
        done += os.pwrite(fd, data[done:], done)


def _load(fd: int) -> dict:
    size = os.fstat(fd).st_size
    return json.loads(os.pread(fd, size, 0))
