"""End-to-end fixtures: the demo configs, `smsgw` commands run as a user runs them, gateways in their
own processes (``tests.harness.processes``) killed at the end of a test, and a callback receiver."""

from __future__ import annotations

import json
import os
import signal
import subprocess

import pytest

from tests.harness.processes import ROOT, SMSGW, GatewayProcess

#: a node on SQLite with its HTTP API and metrics, before its operators and accounts
NODE = """
[gateway]
node = "e2e"
[store]
url = "sqlite:///e2e.db"
[http]
listen = "127.0.0.1:{http}"
[metrics]
listen = "127.0.0.1:{metrics}"
"""

#: a node with two simulated operators (sim_a cannot reach 4670999…) and the demo account
SIM_CONFIG = NODE + """[admin]
api_keys = ["ops-key"]
[operators.sim_a]
type = "simulated"
cost = 0.10
unreachable_prefixes = ["4670999"]
receipt_delay = "50ms"
[operators.sim_b]
type = "simulated"
cost = 0.20
receipt_delay = "50ms"
[profiles.standard]
operators = ["sim_a", "sim_b"]
[accounts.demo]
api_keys = ["demo-key"]
senders = ["DEMO"]
"""

#: the same with the shortcode 72550 and the DEMO keyword's static reply
DEMO_CONFIG = SIM_CONFIG + """
[[shortcodes]]
number = "72550"
[[keywords]]
shortcode = "72550"
keyword = "DEMO"
account = "demo"
reply = "You said: {{payload}}"
"""


def smsgw(*args, timeout=60, check=False) -> subprocess.CompletedProcess:
    proc = subprocess.run([*SMSGW, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    if check and proc.returncode != 0:
        raise AssertionError(f"smsgw {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
    return proc


def one_line_error(proc, code, *fragments, stdout=None) -> None:
    """``proc`` (an ``smsgw`` command) failed with ``code`` and one line on stderr naming every
    fragment (SPEC §2); with ``stdout``, its standard output was exactly that."""
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("smsgw: "), proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    if stdout is not None:
        assert proc.stdout == stdout, proc.stdout


@pytest.fixture
def gateways(tmp_path):
    started: list[GatewayProcess] = []

    def make(config_text: str, http_port: int) -> GatewayProcess:
        path = tmp_path / f"gw{len(started)}.toml"
        path.write_text(config_text)
        gw = GatewayProcess(path, http_port, tmp_path / f"gw{len(started)}.log")
        started.append(gw)
        return gw

    yield make
    for gw in started:
        if gw.proc is not None and gw.proc.poll() is None:
            os.kill(gw.proc.pid, signal.SIGKILL)
            gw.proc.wait()


class CallbackSink:
    """A customer's callback receiver on 127.0.0.1, in threads (stdlib ``http.server``).

    ``received`` lists (path, parsed JSON body) of every request answered 200. While ``stall`` is
    set, a request is held unanswered (until ``stall`` is cleared or 60 s pass) and not recorded:
    the gateway holds its push job meanwhile. ``close()`` stops it.
    """

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        sink = self
        self.received: list[tuple[str, object]] = []
        self.held = 0
        self.stall = threading.Event()
        self._released = threading.Event()
        self._lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if sink.stall.is_set():
                    with sink._lock:
                        sink.held += 1
                    sink._released.wait(60)
                    self.close_connection = True
                    return
                with sink._lock:
                    sink.received.append((self.path, json.loads(body)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def release(self) -> None:
        """Answer from now on; the held requests end without an answer."""
        self.stall.clear()
        self._released.set()

    def close(self) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def callback_sink():
    sink = CallbackSink()
    yield sink
    sink.close()
