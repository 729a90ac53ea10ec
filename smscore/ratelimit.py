"""Where the account rate buckets live: in this process, or shared by every process of a node.

An account's ``tps`` holds for the whole cluster (SPEC §10): each live node takes an equal share
(``policies.cluster``), and inside a node of several processes (``smscore.supervisor``) the kernel
spreads the customers' connections over the processes, so the node's share must be one bucket,
not one per process. ``NodeBuckets`` keeps the buckets in an anonymous shared file (``memfd``)
that the supervisor creates and every worker maps; a lock on the file makes each take atomic
(a few system calls, only for accounts with a limit). The node's share of the cluster is in the
file's header: the main worker writes it after each heartbeat, the others read it.

The decision itself is ``policies.rates.spend``.
"""

from __future__ import annotations

import fcntl
import hashlib
import mmap
import os
import struct

from policies.rates import Spent, spend


class LocalBuckets:
    """One process's buckets (a node of one process, or tests)."""

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}
        self._share = 1.0

    def share(self) -> float:
        return self._share

    def set_share(self, share: float) -> None:
        self._share = share

    def take(self, name: str, now: float, rate: float) -> Spent:
        tokens, last = self._buckets.get(name, (None, now))
        spent = spend(tokens, last, now, rate)
        self._buckets[name] = (spent.tokens, now)
        return spent


_HEADER = struct.Struct("<d")  # the node's share of the cluster's account limits
_SLOT = struct.Struct("<20sdd")  # sha1 of the account name, tokens, last
#: accounts with a tps limit a node can track; beyond, a request is let through (and counted nowhere)
SLOTS = 4096
_SIZE = _HEADER.size + SLOTS * _SLOT.size
_EMPTY = bytes(20)


class NodeBuckets:
    """The buckets of every process of one node, in the shared file ``fd``."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._map = mmap.mmap(fd, _SIZE)

    @staticmethod
    def create() -> int:
        """A new shared file (its descriptor, to hand to the workers), share 0: a node holds no
        part of an account's tps before its main worker's first heartbeat says which (the API
        workers answer before it; an audit counted 11 accepted in a second against an account's 6
        while a node of two processes joined)."""
        fd = os.memfd_create("smsgw-rates", 0)
        os.ftruncate(fd, _SIZE)
        os.pwrite(fd, _HEADER.pack(0.0), 0)
        return fd

    def share(self) -> float:
        return _HEADER.unpack_from(self._map, 0)[0]

    def set_share(self, share: float) -> None:
        _HEADER.pack_into(self._map, 0, share)

    def take(self, name: str, now: float, rate: float) -> Spent:
        key = hashlib.sha1(name.encode("utf-8")).digest()
        start = int.from_bytes(key[:4], "little") % SLOTS
        fcntl.lockf(self.fd, fcntl.LOCK_EX)
        try:
            for i in range(SLOTS):
                offset = _HEADER.size + ((start + i) % SLOTS) * _SLOT.size
                found, tokens, last = _SLOT.unpack_from(self._map, offset)
                if found == key or found == _EMPTY:
                    spent = spend(tokens if found == key else None, last, now, rate)
                    _SLOT.pack_into(self._map, offset, key, spent.tokens, now)
                    return spent
        finally:
            fcntl.lockf(self.fd, fcntl.LOCK_UN)
        return Spent(True, 0.0, 0)
