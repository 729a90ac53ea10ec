"""SPEC §15: HTTPS on the API listener (``[http] tls_cert`` / ``tls_key``), through ``smsgw run`` with
an API worker beside the main one, so both the worker's and the main process's listeners serve TLS."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import urllib.error
import urllib.request

import pytest

from tests.certs import TestCA
from tests.e2e.conftest import SIM_CONFIG
from tests.harness.net import free_port
from tests.harness.processes import ROOT, SMSGW
from tests.harness.waiting import wait_until


def https(url: str, context: ssl.SSLContext, body=None, key="demo-key"):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"Authorization": f"Bearer {key}",
                                                          "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5, context=context) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_the_api_answers_over_https_only(tmp_path):
    ca = TestCA(tmp_path)
    cert, key = ca.issue("gateway", ip="127.0.0.1")
    hp = free_port()
    config = SIM_CONFIG.format(http=hp, metrics=free_port()).replace(
        "[gateway]\n", "[gateway]\nprocesses = 2\n", 1).replace(
        f'listen = "127.0.0.1:{hp}"\n', f'listen = "127.0.0.1:{hp}"\ntls_cert = "{cert}"\ntls_key = "{key}"\n', 1)
    (tmp_path / "gw.toml").write_text(config)
    log = open(tmp_path / "gw.log", "w")
    proc = subprocess.Popen([*SMSGW, "run", "-c", str(tmp_path / "gw.toml")], stdout=log, stderr=subprocess.STDOUT,
                            cwd=ROOT)
    trusted = ssl.create_default_context(cafile=str(ca.path))
    base = f"https://127.0.0.1:{hp}"
    try:
        def ready():
            assert proc.poll() is None, (tmp_path / "gw.log").read_text()[-2000:]
            try:
                return https(base + "/readyz", trusted)[0] == 200
            except OSError:
                return False

        wait_until(ready, 60, what="/readyz over HTTPS")
        ids = []
        for i in range(6):  # new connections: the kernel spreads them over both processes' listeners
            code, answer = https(base + "/v1/messages", trusted, {"to": f"467012345{i:02d}", "text": "over TLS"})
            assert code == 202, answer
            ids.append(answer["messages"][0]["id"])
        wait_until(lambda: all(https(f"{base}/v1/messages/{i}", trusted)[1]["status"] == "delivered" for i in ids),
                 30, what="delivery")
        # the CLI finds the API and trusts its certificate from the config's [http] section alone
        done = subprocess.run([*SMSGW, "status", "-c", str(tmp_path / "gw.toml"), "--key", "demo-key", ids[0]],
                              capture_output=True, text=True, timeout=30, cwd=ROOT)
        assert done.returncode == 0 and json.loads(done.stdout)["status"] == "delivered", done.stderr
        # a client that offers ALPN, as curl, browsers and Python's own default context do
        alpn = ssl.create_default_context(cafile=str(ca.path))
        alpn.set_alpn_protocols(["h2", "http/1.1"])
        with socket.create_connection(("127.0.0.1", hp), timeout=5) as raw, \
                alpn.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            assert tls.selected_alpn_protocol() == "http/1.1"
        assert https(base + "/healthz", alpn)[0] == 200
        with pytest.raises(urllib.error.URLError) as refused:
            https(base + "/healthz", ssl.create_default_context())  # not signed by a CA the system trusts
        assert isinstance(refused.value.reason, ssl.SSLCertVerificationError)
        with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
            urllib.request.urlopen(f"http://127.0.0.1:{hp}/healthz", timeout=5).read()  # plain HTTP gets nothing
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0
