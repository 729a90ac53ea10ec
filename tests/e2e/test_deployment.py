"""The deployment kit as an operator uses it: the systemd unit's own command lines, the Dockerfile
(linted: no Docker daemon here), the wheel and its example config, `smsgw init`, the production
example with its secrets from the environment, how scripts/pg finds PostgreSQL and which Python
scripts/setup makes .venv with."""

from __future__ import annotations

import configparser
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import zipfile
from fnmatch import fnmatch
from pathlib import Path

import pytest

from tests.e2e.conftest import smsgw
from tests.harness.net import free_port, http
from tests.harness.processes import ROOT, SMSGW
from tests.harness.waiting import wait_until

UNIT = ROOT / "etc" / "systemd" / "smsgw.service"
VENV_BIN = Path(sys.executable).parent
#: where the unit and the Dockerfile expect things; the tests put their own in their place
UNIT_SMSGW = "/opt/smsgw/bin/smsgw"
ETC_CONFIG = "/etc/smsgw/gateway.toml"


def read_unit(path: Path = UNIT) -> configparser.ConfigParser:
    unit = configparser.ConfigParser(interpolation=None, strict=False)
    unit.optionxform = str  # systemd's keys are case-sensitive
    unit.read(path, encoding="utf-8")
    return unit


def demo_config(tmp_path: Path) -> tuple[Path, int]:
    """etc/gateway.toml with its store in tmp_path and free ports: (the file, its HTTP port)."""
    http_port, metrics_port = free_port(), free_port()
    text = (ROOT / "etc" / "gateway.toml").read_text(encoding="utf-8")
    for old, new in (('"sqlite:///../var/smsgw.db"', '"sqlite:///smsgw.db"'),
                     ('"127.0.0.1:8080"', f'"127.0.0.1:{http_port}"'),
                     ('"127.0.0.1:9100"', f'"127.0.0.1:{metrics_port}"')):
        assert old in text, f"etc/gateway.toml no longer has {old}: update this test"
        text = text.replace(old, new)
    config = tmp_path / "gateway.toml"
    config.write_text(text, encoding="utf-8")
    return config, http_port


# -- systemd ---------------------------------------------------------------------------------------
def test_the_unit_is_hardened_and_reloads_with_sighup():
    service = read_unit()["Service"]
    assert service["Type"] == "simple"  # the gateway does not speak sd_notify
    assert service["User"] == "smsgw"
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert service["Restart"] == "on-failure"
    assert service["EnvironmentFile"] == "-/etc/smsgw/env"
    for key, value in {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
                       "PrivateTmp": "yes", "ReadWritePaths": "/var/lib/smsgw", "CapabilityBoundingSet": "",
                       "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX"}.items():
        assert service.get(key) == value, key
    assert int(service["LimitNOFILE"]) >= 65536


@pytest.mark.slow
def test_the_units_commands_start_reload_and_stop_the_gateway(tmp_path):
    """ExecStart as written (its smsgw and config swapped for this checkout's), then ExecReload's
    signal after an edit of the file, then the SIGTERM that KillMode=mixed sends to it alone."""
    service = read_unit()["Service"]
    argv = shlex.split(service["ExecStart"])
    assert argv[0] == UNIT_SMSGW and argv[1:] == ["run", "-c", ETC_CONFIG], argv
    assert service["KillMode"] == "mixed"
    config, http_port = demo_config(tmp_path)
    argv = [str(VENV_BIN / "smsgw")] + [str(config) if a == ETC_CONFIG else a for a in argv[1:]]
    log = tmp_path / "gateway.log"
    url = f"http://127.0.0.1:{http_port}"
    proc = subprocess.Popen(argv, stdout=open(log, "w"), stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        def healthy():
            if proc.poll() is not None:
                raise AssertionError(f"smsgw exited with {proc.returncode}: {log.read_text()[-3000:]}")
            try:
                return http("GET", url + "/healthz", timeout=1)[0] == 200
            except OSError:
                return False

        wait_until(healthy, 60, what="/healthz")
        assert http("GET", url + "/v1/account", key="reload-key")[0] == 401
        assert docker_healthcheck(url).returncode == 0  # the image's probe, on the same gateway

        # A new account in the file, then ExecReload exactly as systemd runs it.
        with open(config, "a", encoding="utf-8") as f:
            f.write('\n[accounts.reloaded]\napi_keys = ["reload-key"]\nsenders = ["DEMO"]\n')
        reload = shlex.split(service["ExecReload"].replace("$MAINPID", str(proc.pid)))
        subprocess.run(reload, check=True, timeout=10)
        wait_until(lambda: "config reloaded" in log.read_text(), 30, what="a reload in the log")
        # Every process of the node takes it: any of them may answer.
        wait_until(lambda: all(http("GET", url + "/v1/account", key="reload-key")[0] == 200 for _ in range(8)),
                 30, what="the reloaded account's key")
        assert proc.poll() is None
        assert http("GET", url + "/healthz")[0] == 200

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, log.read_text()[-3000:]
        assert docker_healthcheck(url).returncode != 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_systemd_analyze_verifies_the_unit(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not on this machine")
    # verify insists that ExecStart's program exists: this checkout's smsgw stands in for it.
    unit = tmp_path / "smsgw.service"
    text = UNIT.read_text(encoding="utf-8").replace(UNIT_SMSGW, str(VENV_BIN / "smsgw"))
    unit.write_text(text, encoding="utf-8")
    proc = subprocess.run([analyze, "verify", "--man=no", str(unit)], capture_output=True, text=True,
                          timeout=60)
    # An unknown or misspelt key is only a line on stderr, with exit 0: that fails here too.
    assert proc.returncode == 0 and not proc.stderr.strip(), proc.stderr


# -- Docker ----------------------------------------------------------------------------------------
def test_the_dockerfile_passes_hadolint():
    hadolint = shutil.which("hadolint", path=str(VENV_BIN)) or shutil.which("hadolint")
    if hadolint is None:
        if sys.platform == "win32":  # pyproject's lint extra has no hadolint wheel for it
            pytest.skip("hadolint has no wheel for Windows")
        pytest.fail("hadolint is missing: scripts/setup installs it (pyproject.toml's lint extra)")
    proc = subprocess.run([hadolint, "--no-color", "--failure-threshold", "warning", "Dockerfile"],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_dockerfile_runs_the_gateway_as_documented():
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.11-slim$", text, re.M)
    assert re.search(r"^USER (?!root|0)\S+$", text, re.M)
    assert 'ENTRYPOINT ["smsgw"]' in text
    assert f'CMD ["run", "-c", "{ETC_CONFIG}"]' in text
    assert 'VOLUME ["/etc/smsgw", "/var/lib/smsgw"]' in text
    assert "EXPOSE 8080 9100 2775" in text
    assert "/healthz" in text.split("HEALTHCHECK", 1)[1]


def docker_healthcheck(url: str) -> subprocess.CompletedProcess:
    """The Dockerfile's HEALTHCHECK command (its exec form), asking `url` through SMSGW_HEALTHZ."""
    line = (ROOT / "Dockerfile").read_text(encoding="utf-8").split("HEALTHCHECK", 1)[1].split("CMD", 1)[1]
    argv = json.loads(line.splitlines()[0])
    assert argv[0] == "python"
    return subprocess.run([sys.executable, *argv[1:]], capture_output=True, text=True, timeout=30,
                          env={**os.environ, "SMSGW_HEALTHZ": url + "/healthz"})


def docker_context(tmp_path: Path) -> Path:
    """The tree `docker build` would get: the checkout less .dockerignore's patterns (root-anchored,
    a folder's contents with it, as Docker reads them), symlinks kept as COPY keeps them."""
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
                if line.strip() and not line.startswith("#")]

    def ignored(folder: str, names: list[str]) -> list[str]:
        rel = Path(folder).relative_to(ROOT)
        return [n for n in names
                if any(fnmatch((rel / n).as_posix(), p) or fnmatch((rel / n).as_posix(), p.removeprefix("**/"))
                       for p in patterns)]

    context = tmp_path / "context"
    shutil.copytree(ROOT, context, symlinks=True, ignore=ignored)
    return context


@pytest.mark.slow
def test_the_wheel_built_as_the_image_builds_it_carries_the_example_config(tmp_path):
    """The image's first stage, `pip wheel --no-deps .` on the Docker build context: the wheel has
    etc/gateway.example.toml as a file and the console's files, and `smsgw init` from the unpacked
    wheel writes the example."""
    context = docker_context(tmp_path)
    assert (context / "etc" / "production.toml").is_file()  # the Dockerfile COPYs it
    assert not (context / ".venv").exists() and not (context / "var").exists()
    out = tmp_path / "wheels"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check",
                            "-w", str(out), "."], capture_output=True, text=True, timeout=600, cwd=context)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    (wheel,) = out.glob("smsgw-*.whl")
    example = (ROOT / "etc" / "gateway.example.toml").read_text(encoding="utf-8")
    with zipfile.ZipFile(wheel) as zf:
        assert zf.read("smscore/examples/gateway.example.toml").decode("utf-8") == example
        # the web console's files (SPEC §14: served by the gateway, nothing fetched from elsewhere)
        for asset in (ROOT / "smscore" / "console" / "assets").iterdir():
            assert zf.read(f"smscore/console/assets/{asset.name}") == asset.read_bytes(), asset.name
        zf.extractall(tmp_path / "site")

    # The unpacked wheel first on the path (the checkout's editable install comes after it).
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}
    where = subprocess.run([sys.executable, "-c", "import smscore; print(smscore.__file__)"], capture_output=True,
                           text=True, timeout=60, cwd=tmp_path, env=env)
    assert where.stdout.startswith(str(tmp_path / "site")), where.stdout + where.stderr
    init = subprocess.run([sys.executable, "-m", "smscore.cli", "init", "written.toml"], capture_output=True,
                          text=True, timeout=60, cwd=tmp_path, env=env)
    assert init.returncode == 0, init.stderr
    assert (tmp_path / "written.toml").read_text(encoding="utf-8") == example


# -- smsgw init ------------------------------------------------------------------------------------
def test_init_writes_the_example_that_check_config_accepts_and_keeps_an_existing_file(tmp_path):
    target = tmp_path / "gateway.toml"
    first = smsgw("init", str(target), check=True)
    assert f"smsgw check-config -c {target}" in first.stdout  # what to do next
    example = (ROOT / "etc" / "gateway.example.toml").read_text(encoding="utf-8")
    assert target.read_text(encoding="utf-8") == example
    smsgw("check-config", "-c", str(target), check=True)

    target.write_text("# mine\n", encoding="utf-8")
    again = smsgw("init", str(target))
    assert again.returncode == 2 and "already exists; --force overwrites it" in again.stderr
    assert target.read_text(encoding="utf-8") == "# mine\n"
    smsgw("init", "--force", str(target), check=True)
    assert target.read_text(encoding="utf-8").startswith("# smsgw")


def test_init_without_a_path_writes_where_the_other_commands_look(tmp_path):
    """``smsgw init && smsgw check-config`` in a new folder: init wrote ./gateway.toml and
    check-config looked for etc/gateway.toml."""
    import subprocess

    from tests.e2e.conftest import SMSGW

    for command in (["init"], ["check-config"]):
        done = subprocess.run([*SMSGW, *command], capture_output=True, text=True, timeout=60, cwd=tmp_path)
        assert done.returncode == 0, (command, done.stderr)
    assert (tmp_path / "etc" / "gateway.toml").is_file()


# -- etc/production.toml ---------------------------------------------------------------------------
PRODUCTION = ROOT / "etc" / "production.toml"
SECRETS = {"SMSGW_STORE_URL": "postgresql://smsgw:Pg-Secret-1@db.example:5432/smsgw",
           "SMSGW_ADMIN_KEY": "admin-secret-2", "SMSGW_TELIA_PASSWORD": "Tel3cret",
           "SMSGW_ACME_SECRET": "hmac-secret-4"}


@pytest.fixture
def production(tmp_path) -> Path:
    """etc/production.toml as installed: /etc/smsgw/gateway.toml with the API's certificate and key
    in tls/ beside it (a test CA's)."""
    from tests.certs import TestCA

    (tmp_path / "tls").mkdir()
    cert, key = TestCA(tmp_path / "tls").issue("api", ip="127.0.0.1")
    cert.rename(tmp_path / "tls" / "api.pem")
    key.rename(tmp_path / "tls" / "api.key")
    shutil.copy(PRODUCTION, tmp_path / "gateway.toml")
    return tmp_path / "gateway.toml"


def check_production(config: Path, secrets: dict[str, str]) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMSGW_")} | secrets
    return subprocess.run([*SMSGW, "check-config", "-c", str(config)], capture_output=True,
                          text=True, timeout=60, cwd=ROOT, env=env)


def test_production_reads_every_secret_from_the_environment_it_documents(production):
    text = PRODUCTION.read_text(encoding="utf-8")
    written = set(re.findall(r'"env:([A-Z0-9_]+)"', text))
    assert written == set(SECRETS)
    header = text.split("\n[", 1)[0]
    for name in written:
        assert f"#   {name}=" in header, f"{name} is not in the file's list of variables"

    proc = check_production(production, SECRETS)
    assert proc.returncode == 0, proc.stderr
    assert "OK" in proc.stdout


def test_production_serves_the_api_over_https_and_names_a_missing_certificate(production):
    text = PRODUCTION.read_text(encoding="utf-8")
    assert re.search(r'^tls_cert = "tls/api.pem"$', text, re.M) and re.search(r'^tls_key = "tls/api.key"$', text, re.M)
    (production.parent / "tls" / "api.pem").unlink()
    proc = check_production(production, SECRETS)
    assert proc.returncode == 2 and "http.tls_cert" in proc.stderr, proc.stderr


def test_production_without_a_secret_names_the_variable_and_prints_no_secret(production):
    given = {k: v for k, v in SECRETS.items() if k != "SMSGW_TELIA_PASSWORD"}
    proc = check_production(production, given)
    assert proc.returncode == 2
    assert "operators.telia.password: environment variable SMSGW_TELIA_PASSWORD is not set" in proc.stderr
    out = proc.stdout + proc.stderr
    for value in (*given.values(), "Pg-Secret-1"):
        assert value not in out

    nothing = check_production(production, {})
    assert nothing.returncode == 2
    for name in SECRETS:
        assert f"environment variable {name} is not set" in nothing.stderr


# -- scripts/pg: finding PostgreSQL ----------------------------------------------------------------
def pg_bin(tmp_path: Path, search: str) -> subprocess.CompletedProcess:
    """`scripts/pg bin` looking only in `search`, never installing (this may run as root)."""
    env = {**os.environ, "SMSGW_PG_SEARCH": search, "SMSGW_PG_INSTALL": "no"}
    env.pop("PG_BIN", None)
    return subprocess.run([str(ROOT / "scripts" / "pg"), "bin"], capture_output=True, text=True, timeout=60,
                          env=env, cwd=tmp_path)


def test_scripts_pg_finds_the_binaries_or_names_the_command_that_installs_them(tmp_path):
    found = tmp_path / "pgbin"
    found.mkdir()
    for name in ("initdb", "pg_ctl", "postgres"):
        (found / name).write_text("#!/bin/sh\n", encoding="utf-8")
        (found / name).chmod(0o755)
    proc = pg_bin(tmp_path, f"{tmp_path / 'empty'} {found}")
    assert (proc.returncode, proc.stdout.strip()) == (0, str(found)), proc.stderr

    missing = pg_bin(tmp_path, str(tmp_path / "empty"))
    assert missing.returncode == 3, missing.stderr
    assert "no PostgreSQL binaries" in missing.stderr
    command = missing.stdout.strip()
    assert command and "\n" not in command  # one command, which scripts/test prints and skips with
    if shutil.which("apt-get"):
        assert command == "sudo apt-get install -y postgresql"


# -- scripts/setup: which Python .venv is made with ------------------------------------------------
def setup_which(tmp_path: Path, search: str, path: Path, python: str | None = None) -> str:
    """`scripts/setup --which` with ``search`` for the /usr/bin list and ``path`` first on PATH."""
    env = {**os.environ, "SMSGW_PYTHON_SEARCH": search, "PATH": f"{path}:/bin"}  # /bin: dirname
    env.pop("PYTHON", None)
    if python is not None:
        env["PYTHON"] = python
    proc = subprocess.run(["/bin/bash", str(ROOT / "scripts" / "setup"), "--which"], capture_output=True,
                          text=True, timeout=60, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def fake_python(folder: Path, name: str, fits: bool) -> Path:
    """A stand-in interpreter: answers scripts/setup's check (3.11+, venv, ensurepip) with ``fits``."""
    folder.mkdir(exist_ok=True)
    exe = folder / name
    exe.write_text(f"#!/bin/sh\nexit {0 if fits else 1}\n", encoding="utf-8")
    exe.chmod(0o755)
    return exe


def test_scripts_setup_prefers_the_distributions_python_then_the_path(tmp_path):
    dist, path = tmp_path / "usr-bin", tmp_path / "path"
    old = fake_python(dist, "python3.10", fits=False)  # too old, or without venv: passed by
    good = fake_python(dist, "python3.11", fits=True)
    fake_python(path, "python3.11", fits=True)
    fake_python(path, "python3", fits=True)
    assert setup_which(tmp_path, f"{old} {good}", path) == str(good)
    # none of the distribution's fits: the first of the path's, in scripts/setup's order
    assert setup_which(tmp_path, f"{old} {dist / 'python3.13'}", path) == "python3.11"
    # PYTHON chooses, whatever else there is
    assert setup_which(tmp_path, str(good), path, python="/opt/py/bin/python3") == "/opt/py/bin/python3"
