"""`smsgw --version` and `smsgw hash-key` (SPEC §14), as an operator runs them."""

from __future__ import annotations

import hashlib
import subprocess
from importlib.metadata import version

from smscore.config import parse_config
from tests.e2e.conftest import smsgw
from tests.harness.processes import ROOT, SMSGW, SimProcess


def test_version_names_the_installed_package():
    out = smsgw("--version", check=True)
    assert out.stdout.strip() == f"smsgw {version('smsgw')}"


def test_hash_key_reads_stdin_and_the_config_takes_what_it_prints(tmp_path):
    done = subprocess.run([*SMSGW, "hash-key"], input="s3cret-key\n", capture_output=True, text=True, cwd=ROOT,
                          timeout=30)
    assert done.returncode == 0, done.stderr
    hashed = done.stdout.strip()
    assert hashed == "sha256:" + hashlib.sha256(b"s3cret-key").hexdigest()
    assert "s3cret-key" not in done.stdout + done.stderr
    config = parse_config(f'[operators.sim]\ntype = "simulated"\n[profiles.p]\noperators = ["sim"]\n'
                          f'[accounts.acme]\napi_keys = ["{hashed}"]\n', path=tmp_path / "gw.toml")
    assert config.account_for_key("s3cret-key").name == "acme"


def test_hash_key_without_a_key_or_with_several_is_a_usage_error():
    done = subprocess.run([*SMSGW, "hash-key"], input="", capture_output=True, text=True, cwd=ROOT, timeout=30)
    assert done.returncode == 2 and "no key given" in done.stderr
    # it hashed the first of them alone, and said nothing of the others
    done = subprocess.run([*SMSGW, "hash-key"], input="key-one\nkey-two\n", capture_output=True, text=True,
                          cwd=ROOT, timeout=30)
    assert (done.returncode, done.stdout) == (2, "") and "stdin holds 2 lines: give one key a run" in done.stderr


def test_smsc_sim_exits_with_a_clear_error_when_a_port_is_taken():
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for args in (["--listen", f"127.0.0.1:{port}"], ["--listen", "127.0.0.1:0", "--control", f"127.0.0.1:{port}"]):
            done = smsgw("smsc-sim", *args, timeout=30)
            assert done.returncode == 1, done.stderr
            assert f"cannot listen: Couldn't listen on 127.0.0.1:{port}" in done.stderr


def test_an_mo_the_simulator_could_not_deliver_fails_the_command(tmp_path):
    """Nobody bound to a standalone simulator: ``smsgw mo --sim`` printed the outcome and exited 0,
    and the MO was gone (an audit)."""
    sim = SimProcess(tmp_path / "sim.log", system_id="gw", password="pw").start()
    try:
        done = smsgw("mo", "--sim", f"127.0.0.1:{sim.control_port}", "--from", "46701234567", "--to", "72550",
                     "--text", "HELLO")
    finally:
        sim.stop()
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        "smsgw: the simulated operator did not deliver the MO: no receiver bound"]
    gone = smsgw("mo", "--sim", f"127.0.0.1:{sim.control_port}", "--from", "46701234567", "--to", "72550",
                 "--text", "HI")  # the simulator stopped
    assert gone.returncode == 1 and gone.stderr.startswith("smsgw: cannot reach the simulator at http://127.0.0.1:")
