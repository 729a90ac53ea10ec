"""``smsgw run`` with several processes: one node, both cores (SPEC §10).

Python runs one core per process, so a node runs ``[gateway] processes`` of them, all children of
``smsgw run``: one unit for systemd, and SIGTERM or Ctrl-C stops them all.

Theory of operation
-------------------
- Process 0, the *main* worker, is the gateway as one process runs it, less the status callbacks:
  operator binds, simulated operators, the MT pipeline (claims, submits, receipts), MO, sweeps, the
  admin API, and ``/metrics`` for the whole node. Processes 1..N-1, the *API* workers, answer the
  customers' busy calls (``POST /v1/messages``, status reads, pulls) and deliver the push jobs
  (status callbacks, MO pushes). Every other request an API worker receives it hands to the main
  worker over loopback, so an answer never depends on which process took the connection.
- The supervisor opens every listening socket before any worker starts (so a port in use is one
  clear error) and hands them down: the API port once per API worker with SO_REUSEPORT (the kernel
  spreads connections over them; the main worker takes none), the main worker's internal API and the metrics ports,
  and one UDP "kick" port per process, on which workers nudge each other: an API worker tells the
  main worker "claim" after storing messages, the main worker tells the API workers "push" after
  storing status changes that queued callbacks, and "reload" after an admin reload.
- The store is shared: SQLite with a file lock around each write transaction (``SQLiteStore``), or
  PostgreSQL as between nodes. Leases belong to a process: the main worker holds messages as the
  node, API worker *i* holds push jobs as ``<node>/<i>``. A process that starts gives back what
  the node's processes of an earlier run held, whatever their number was (``policies.leases``).
- A worker that dies is started again after a second; the others go on, and the listening sockets
  stay open meanwhile (connections wait in the kernel's queue). Workers die with the supervisor
  (``PR_SET_PDEATHSIG``), so a SIGKILL of ``smsgw run`` leaves no process behind.
"""

from __future__ import annotations

import json
import errno
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace

from smscore import running_config
from smscore.ratelimit import NodeBuckets

WORKER_ENV = "SMSGW_WORKER"


@dataclass(frozen=True)
class WorkerSpec:
    """What one worker process gets from the supervisor (travels as JSON in ``SMSGW_WORKER``)."""

    index: int
    count: int
    api_fd: int  # the customers' API listener (SO_REUSEPORT); -1 for the main worker, which has none
    kick_fd: int
    kick_ports: list[int]  # by worker index
    internal_port: int  # the main worker's internal API (loopback)
    metrics_fd: int  # main: the public metrics listener; API worker: its own, on loopback
    internal_fd: int = -1  # main only
    worker_metrics_ports: list[int] = field(default_factory=list)  # main only: the API workers'
    rates_fd: int = -1  # the node's shared account rate buckets (smscore.ratelimit.NodeBuckets)
    smpp_fd: int = -1  # the worker serving customers' ESMEs only: [smpp_server] listen
    smpp_tls_fd: int = -1  # ... and tls_listen
    config_fd: int = -1  # the config the node runs (smscore.running_config): what a restarted worker runs
    #: the simulated operators' SMSC listeners (loopback): their sockets, main only, and their
    #: ports, for every worker (a push must never reach them, SPEC §15)
    sim_fds: dict[str, int] = field(default_factory=dict)
    sim_ports: list[int] = field(default_factory=list)
    #: shared by the workers of one ``smsgw run``: what the main worker's internal routes ask of
    #: the API workers (a loopback port is open to every local user; the token is not)
    token: str = ""

    @property
    def is_main(self) -> bool:
        return self.index == 0

    def to_env(self) -> str:
        return json.dumps(self.__dict__)

    @classmethod
    def from_env(cls, text: str) -> WorkerSpec:
        return cls(**json.loads(text))


def smpp_worker(count: int) -> int:
    """The worker that serves customers' ESMEs (SPEC §13): the first API worker, so that their
    submits and receipts do not share a core with the operator binds; the main one when alone."""
    return min(1, count - 1)


def resolve_processes(configured: int | None) -> int:
    """``processes = "auto"`` (None): one per core, at most 4 (one SQLite file takes one writer at a time)."""
    if configured is not None:
        return configured
    return max(1, min(4, os.cpu_count() or 1))


def _tcp(host: str, port: int, reuse_port: bool = False, key: str = "") -> socket.socket:
    """A listening socket on ``host:port``; an OSError names the address and the config ``key``
    that asked for it (two listeners fail alike: "Address already in use" alone says neither)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        s.bind((host, port))
    except OSError as exc:
        s.close()
        where = f"{host}:{port}" + (f" ({key})" if key else "")
        hint = ": is another gateway running?" if exc.errno == errno.EADDRINUSE else ""
        raise OSError(exc.errno, f"{where}: {exc.strerror}{hint}") from None
    s.listen(1024)
    s.setblocking(False)
    return s


def _unused(host: str, port: int, key: str) -> int:
    """``port`` (0: a free one) once no other process listens on ``host:port``. The API workers'
    sockets share their port (SO_REUSEPORT), and so could another gateway's of the same user: a
    second ``smsgw run`` started on the same ``http.listen`` took half the requests, into its own
    store. A socket without SO_REUSEPORT binds only where nobody listens, with it or not."""
    probe = _tcp(host, port, key=key)
    try:
        return probe.getsockname()[1]
    finally:
        probe.close()


def _udp() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.setblocking(False)
    return s


class Supervisor:
    """Opens the sockets, starts the workers, forwards signals, restarts a worker that died."""

    def __init__(self, config, argv: list[str], count: int, log) -> None:
        self.config = config
        self.argv = argv  # how a worker is started: the same ``smsgw run`` arguments
        self.count = count
        self.log = log
        self.children: dict[int, subprocess.Popen] = {}  # index -> process
        self.started: dict[int, float] = {}  # index -> when it was (re)started
        self.stopping = False
        self.specs: list[WorkerSpec] = []
        self._sockets: list[socket.socket] = []

    def open_sockets(self) -> None:
        """Every listening socket, before any worker runs (raises OSError: a port in use)."""
        http, mon = self.config.http.listen, self.config.metrics.listen
        # The customers' API is the API workers' alone: the main worker, the one busy core of a node
        # (binds, submits, receipts), takes no customer connection (docs/architecture.md).
        port = _unused(http.host, http.port, key="http.listen")
        api = [_tcp(http.host, port, reuse_port=True, key="http.listen") for _ in range(self.count - 1)]
        internal = _tcp("127.0.0.1", 0)
        public_metrics = _tcp(mon.host, mon.port, key="metrics.listen")
        worker_metrics = [_tcp("127.0.0.1", 0) for _ in range(self.count - 1)]
        kicks = [_udp() for _ in range(self.count)]
        # The SMPP server's listeners, for the worker that serves customers' ESMEs (the first API
        # worker): open before it runs, so that an ESME connecting early, or while that worker is
        # restarted, waits in the kernel instead of being refused.
        smpp_conf = self.config.smpp_server
        wanted = ((smpp_conf.listen, smpp_conf.tls_listen) if smpp_conf is not None else (None, None))
        smpp = [_tcp(a.host, a.port, key=f"smpp_server.{key}") if a is not None else None
                for key, a in zip(("listen", "tls_listen"), wanted)]
        # The simulated operators' SMSCs run in the main worker; their ports are known to every
        # worker from the start (an API worker's push must not reach them, SPEC §15), and a restarted
        # main worker finds them again. One a reload adds listens where the main worker chooses.
        sims = {name: _tcp("127.0.0.1", 0) for name, op in self.config.operators.items() if op.type == "simulated"}
        sim_ports = [s.getsockname()[1] for s in sims.values()]
        self._sockets = (api + [internal, public_metrics] + worker_metrics + kicks + [x for x in smpp if x is not None]
                         + list(sims.values()))
        for s in self._sockets:
            os.set_inheritable(s.fileno(), True)
        kick_ports = [k.getsockname()[1] for k in kicks]
        self._rates_fd = NodeBuckets.create()
        os.set_inheritable(self._rates_fd, True)
        self._config_fd = running_config.create(self.config.source)
        token = secrets.token_hex(16)
        self.specs = [WorkerSpec(
            index=0, count=self.count, api_fd=-1, kick_fd=kicks[0].fileno(), kick_ports=kick_ports,
            internal_port=internal.getsockname()[1], metrics_fd=public_metrics.fileno(),
            internal_fd=internal.fileno(), worker_metrics_ports=[m.getsockname()[1] for m in worker_metrics],
            rates_fd=self._rates_fd, config_fd=self._config_fd, token=token,
            sim_fds={name: s.fileno() for name, s in sims.items()}, sim_ports=sim_ports)]
        for i in range(1, self.count):
            self.specs.append(WorkerSpec(
                index=i, count=self.count, api_fd=api[i - 1].fileno(), kick_fd=kicks[i].fileno(), kick_ports=kick_ports,
                internal_port=internal.getsockname()[1], metrics_fd=worker_metrics[i - 1].fileno(),
                rates_fd=self._rates_fd, config_fd=self._config_fd, token=token, sim_ports=sim_ports))
        serving = self.specs[smpp_worker(self.count)]
        self.specs[serving.index] = replace(serving, smpp_fd=smpp[0].fileno() if smpp[0] is not None else -1,
                                            smpp_tls_fd=smpp[1].fileno() if smpp[1] is not None else -1)

    def _fds(self, spec: WorkerSpec) -> list[int]:
        return [fd for fd in (spec.api_fd, spec.kick_fd, spec.metrics_fd, spec.internal_fd, spec.rates_fd,
                              spec.smpp_fd, spec.smpp_tls_fd, spec.config_fd, *spec.sim_fds.values()) if fd >= 0]

    def spawn(self, index: int) -> None:
        spec = self.specs[index]
        env = dict(os.environ, **{WORKER_ENV: spec.to_env()})
        # The worker starts with SIGHUP blocked (the mask is inherited across exec) and unblocks it
        # once it has started: a reload sent meanwhile waits for it instead of killing it (SIGHUP's
        # default), as it did when it came during the second the interpreter takes to start.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})
        try:
            proc = subprocess.Popen([sys.executable, "-m", "smscore.cli", *self.argv], env=env,
                                    pass_fds=self._fds(spec), stdin=subprocess.DEVNULL)
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGHUP})
        self.children[index] = proc
        self.started[index] = time.monotonic()
        self.log.info("worker started", worker=index, pid=proc.pid, role="main" if index == 0 else "api")

    def signal_all(self, signum: int) -> None:
        for proc in self.children.values():
            if proc.poll() is None:
                try:
                    proc.send_signal(signum)
                except ProcessLookupError:
                    pass

    def _reload(self) -> None:
        """SIGHUP: the main worker reloads and tells the API workers."""
        main = self.children.get(0)
        if main is not None and main.poll() is None:
            main.send_signal(signal.SIGHUP)

    def run(self) -> int:
        """Start every worker and wait; returns the exit status for ``smsgw run``."""
        def stop(signum, _frame):
            self.stopping = True
            self.signal_all(signal.SIGTERM)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, lambda signum, _frame: self._reload())
        for i in range(self.count):
            self.spawn(i)
        quick_deaths = 0
        code = 0
        while self.children:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            index = next((i for i, p in self.children.items() if p.pid == pid), None)
            if index is None:
                continue
            proc = self.children.pop(index)
            proc.returncode = os.waitstatus_to_exitcode(status)
            if self.stopping:
                if proc.returncode not in (0, -signal.SIGTERM):
                    code = 1
                continue
            lived = time.monotonic() - self.started[index]
            self.log.error("worker died", worker=index, pid=pid, status=proc.returncode, lived=round(lived, 1))
            quick_deaths = failed_starts(quick_deaths, lived, proc.returncode)
            if quick_deaths >= FAILED_STARTS:  # it cannot start (the store, a port, the config): stop the node
                print("smsgw: a worker keeps dying at start; stopping", file=sys.stderr)
                self.stopping = True
                self.signal_all(signal.SIGTERM)
                code = 1
                continue
            time.sleep(1.0)
            if not self.stopping:
                self.spawn(index)
        for s in self._sockets:
            s.close()
        return code


#: a worker that exits by itself within QUICK_EXIT seconds of its start, FAILED_STARTS times in a
#: row, cannot start: the node stops (its log says why) instead of starting it every second for ever
QUICK_EXIT, FAILED_STARTS = 5.0, 3


def failed_starts(before: int, lived: float, returncode: int) -> int:
    """The failed starts in a row once a worker ended after ``lived`` seconds with ``returncode``
    (``Popen``'s: negative for a signal). Exiting by itself soon after its start is a failed start;
    later, it ends the run. Killed by a signal (the OOM killer, an ops' ``kill -9``) says nothing
    about starting, however soon: the worker is started again and the count stays as it was."""
    if returncode < 0:
        return before
    return before + 1 if lived < QUICK_EXIT else 0


def die_with_parent() -> None:
    """Linux: this process gets SIGKILL when its parent (the supervisor) dies."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the supervisor's SIGTERM is all there is
        return
    if os.getppid() == 1:  # the parent died before prctl: go too
        os.kill(os.getpid(), signal.SIGKILL)
