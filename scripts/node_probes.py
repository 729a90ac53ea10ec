"""What a running cluster shows from outside, for scripts/two_nodes.py: sessions at the simulator
(TCP connections, it logs no unbind), the binds each node says it holds, the PostgreSQL server's
process, and CPU by process tree and thread kind."""

from __future__ import annotations

import time
from pathlib import Path

from tests.harness.pg import pg_query
from tests.harness.processes import cpu_seconds, peak_rss_mb, thread_cpu, tree
from tests.harness.waiting import wait_until


def sessions_at(port: int) -> int:
    """Established TCP connections to 127.0.0.1:``port``, counted on the listening side."""
    local = f"0100007F:{port:04X}"
    n = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        cols = line.split()
        n += cols[1] == local and cols[3] == "01"
    return n


def even_split(binds: int, nodes: int) -> list[int]:
    return sorted(binds // nodes + (1 if i < binds % nodes else 0) for i in range(nodes))


def wait_for_binds(sim, nodes: list, binds: int, timeout: float = 60.0) -> dict[str, int]:
    """Until the simulator has ``binds`` sessions and the nodes hold them as evenly as possible,
    unchanged for one second (a node gives up a bind at its next heartbeat). ``nodes`` have
    ``name`` and ``bound()`` (two_nodes.Node)."""
    want = even_split(binds, len(nodes))
    since: list[float] = []
    seen: dict = {}

    def settled() -> bool:
        held = {n.name: n.bound() for n in nodes}
        seen.update(held=held, sim=sessions_at(sim.smpp_port))
        if seen["sim"] != binds or sorted(held.values()) != want:
            since.clear()
            return False
        since[:] = since or [time.monotonic()]
        return time.monotonic() - since[0] >= 1.0

    try:
        wait_until(settled, timeout, 0.2, what=f"{binds} binds split {want} over the nodes")
    except TimeoutError as exc:
        raise TimeoutError(f"{exc}: the simulator has {seen.get('sim')} session(s), the nodes hold {seen.get('held')}")
    return seen["held"]


def postmaster(db_url: str) -> int | None:
    """The PID of the PostgreSQL server's postmaster when it runs on this machine (the parent of
    its checkpointer), else None."""
    try:
        rows = pg_query(db_url, "SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'")
        ppid = next(int(line.split()[1]) for line in Path(f"/proc/{rows[0][0]}/status").read_text().splitlines()
                    if line.startswith("PPid:"))
        return ppid if "postgres" in Path(f"/proc/{ppid}/comm").read_text() else None
    except (OSError, IndexError, StopIteration, ValueError):
        return None


def tree_threads(pid: int) -> dict[str, float]:
    """bench.thread_cpu summed over the process tree: the main threads (reactors) and the others."""
    out = {"main": 0.0, "threads": 0.0}
    for p in tree(pid):
        try:
            for k, v in thread_cpu(p).items():
                out[k] += v
        except OSError:  # gone meanwhile
            pass
    return out


def snapshot(node) -> dict:
    """CPU seconds of the node's process tree, the same by thread kind, and its peak RSS (MB)."""
    pid = node.proc.pid
    return {"cpu": cpu_seconds(pid), "threads": tree_threads(pid), "rss": peak_rss_mb(pid)}
