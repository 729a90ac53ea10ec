"""Whose leases are whose within one node (SPEC §10, §15): pure decisions on lease owners' names.

A node may run several processes, and leases belong to a process: the main worker (or the only
process) holds as the node's name, API worker *i* as ``<node>/<i>`` (``smscore.supervisor``). A
restarted node takes back at once every lease it held, whichever of its processes held it, and
the number of its processes may have changed meanwhile: a node of two processes restarted with
one finds its push jobs held by ``gw1/1``, a name no process of it has any more.

So a process that starts gives back the leases of its node that no process running now holds:
every owner that is the node's name or begins with ``<node>/`` (``gw1/2`` is ``gw1``'s; ``gw10``
and ``gw10/1`` are not), except the names of the node's other processes running now (``keep``),
which hold their own. Its own name is not kept: it held nothing yet, what it finds under its name
is its earlier run's. Whichever process starts first, none gives back another's live lease.
"""

from __future__ import annotations

from collections.abc import Iterable


def process_owner(node: str, index: int | None, main: bool) -> str:
    """The lease owner of a process: the node's name for the main worker (or the only process,
    ``index`` None), ``<node>/<index>`` for an API worker."""
    return node if index is None or main else f"{node}/{index}"


def node_of(owner: str) -> str:
    """The node a lease owner of ``process_owner`` belongs to (what its log lines call ``node``)."""
    return owner.partition("/")[0]


def pushing_owners(node: str, processes: int) -> tuple[str, ...]:
    """The owners under which a node of ``processes`` processes holds HTTP push jobs: the only
    process, or every API worker (the main worker pushes nothing then)."""
    if processes <= 1:
        return (node,)
    return tuple(f"{node}/{i}" for i in range(1, processes))


def of_node(owner: str | None, node: str) -> bool:
    """``owner`` is ``node`` or one of its processes (``gw1`` or ``gw1/2``; not ``gw10``)."""
    return owner is not None and (owner == node or owner.startswith(node + "/"))


def given_back_at_start(owner: str | None, node: str, keep: Iterable[str]) -> bool:
    """A lease that a process of ``node`` starting gives back: its node's, and not one of
    ``keep``, the node's other processes running now."""
    return of_node(owner, node) and owner not in set(keep)
