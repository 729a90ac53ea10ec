"""Processes that tests and scripts start (``smsgw run``, ``smsgw smsc-sim``) and what they read of
them from /proc: each is ended by its own PID only, never by name.

- ``GatewayProcess``: ``smsgw run -c FILE``, started until /healthz (and /readyz) answer, stopped
  with SIGTERM (SIGKILL after a bound), or killed; its metrics read from /metrics.
- ``SimProcess``: a standalone ``smsgw smsc-sim`` on fresh ports, started until it listens.
- ``stop_process``: SIGTERM a child by PID, SIGKILL after a bound, then whatever it left.
- ``tree``, ``cpu_seconds``, ``peak_rss_mb``, ``thread_cpu``: a process tree's figures.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.harness.net import free_port, http_status
from tests.harness.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
#: the gateway's command line, as a user runs it from this checkout
SMSGW = [sys.executable, "-m", "smscore.cli"]
CLK_TCK = os.sysconf("SC_CLK_TCK")


class GatewayProcess:
    """``smsgw run -c config`` in a child process, its output appended to ``log``."""

    def __init__(self, config: Path, http_port: int, log: Path, *, metrics_port: int | None = None,
                 log_level: str = "debug") -> None:
        self.config, self.http_port, self.log = config, http_port, log
        self.metrics_port = metrics_port
        self.log_level = log_level
        self.proc: subprocess.Popen | None = None
        self.started_at = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def spawn(self) -> subprocess.Popen:
        """Start it and return at once."""
        self.started_at = time.time()
        self.proc = subprocess.Popen([*SMSGW, "run", "-c", str(self.config), "--log-level", self.log_level],
                                     stdout=open(self.log, "a"), stderr=subprocess.STDOUT, cwd=ROOT)
        return self.proc

    def start(self, ready: bool = True, timeout: float = 60) -> GatewayProcess:
        """Start it and wait for /healthz, then (``ready``) for /readyz: its binds are up. Raises
        ``RuntimeError`` with the end of its log when it exits meanwhile."""
        self.spawn()

        def healthy():
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited with {self.proc.returncode}: {self.log.read_text()[-3000:]}")
            return http_status(self.url + "/healthz") == 200

        wait_until(healthy, timeout, 0.05, what="the gateway's /healthz")
        if ready:
            wait_until(lambda: http_status(self.url + "/readyz") == 200, 30, 0.05, what="the gateway's /readyz")
        return self

    def kill(self) -> None:
        """SIGKILL, as a crash."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM and its exit status; -9 when it had to be killed after ``timeout`` seconds."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return -9

    def metric(self, name: str, **labels) -> float:
        """The sample of ``name`` with exactly ``labels`` from its /metrics (``metrics_port``): 0
        when absent, NaN when /metrics does not answer."""
        want = "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}" if labels else ""
        try:
            text = urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).read().decode()
        except OSError:
            return float("nan")
        for line in text.splitlines():
            if line.startswith(name + want + " "):
                return float(line.rsplit(" ", 1)[1])
        return 0.0


class SimProcess:
    """A standalone ``smsgw smsc-sim`` on fresh loopback ports (``smpp_port``, and its control API
    on ``control_port``), logging to ``log``. ``boot``: Python source run instead of the plain
    command (``python -c boot ARGS``), for a simulator with an extra hook."""

    def __init__(self, log: Path, *, system_id: str, password: str, options: list[str] = (),
                 boot: str | None = None) -> None:
        self.smpp_port, self.control_port = free_port(), free_port()
        self.log = log
        self.options = ["--system-id", system_id, "--password", password, *options]
        self.boot = boot
        self.proc: subprocess.Popen | None = None

    @property
    def args(self) -> list[str]:
        return ["smsc-sim", "--listen", f"127.0.0.1:{self.smpp_port}", "--control",
                f"127.0.0.1:{self.control_port}", *self.options]

    def start(self, tries: int = 3) -> SimProcess:
        """Start it; when another process took the control port between ``free_port`` and the
        simulator's listen (it then exits saying so), again on another one."""
        command = [sys.executable, "-c", self.boot] if self.boot else SMSGW
        for _ in range(tries):
            self.proc = subprocess.Popen([*command, *self.args], stdout=open(self.log, "w"),
                                         stderr=subprocess.STDOUT, cwd=ROOT)
            wait_until(lambda: self.proc.poll() is not None or b"simulated SMSC listening" in self.log.read_bytes(),
                       30, what="the simulated SMSC")
            if self.proc.poll() is None:
                return self
            if f"{self.control_port}: [Errno 98]".encode() not in self.log.read_bytes():
                break
            self.control_port = free_port()
        raise RuntimeError(f"smsc-sim exited: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            stop_process(self.proc)


def stop_process(proc: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM ``proc`` by its PID (SIGKILL after ``timeout``), then whatever it started and left."""
    children = tree(proc.pid)[1:] if proc.poll() is None else []
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for pid in children:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (as the peers' loadgen.py walks them)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            todo.extend(int(x) for x in Path(f"/proc/{p}/task/{p}/children").read_text().split())
        except OSError:
            pass
    return out


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) of ``pid`` and every descendant, reaped children included."""
    total = 0
    for p in tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(x) for x in fields[11:15])
    return total / CLK_TCK


def peak_rss_mb(pid: int) -> float:
    """The peak resident set (VmHWM) of ``pid`` and its descendants, added up, in MB."""
    kb = 0
    for p in tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    kb += int(line.split()[1])
        except OSError:
            continue
    return kb / 1024


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds of the main thread and of all other threads together (the store writer)."""
    out = {"main": 0.0, "threads": 0.0}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        used = (int(fields[11]) + int(fields[12])) / CLK_TCK
        out["main" if int(task.name) == pid else "threads"] += used
    return out
