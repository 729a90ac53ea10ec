"""`smsgw check-config` as a user runs it, with a secret read from the environment (SPEC §15)."""

from __future__ import annotations

import os
import subprocess

from tests.harness.processes import ROOT, SMSGW

#: an SMPP operator whose password is read from the environment, added to the shipped file
OPERATOR = """
[operators.telia]
host = "smsc.example"
system_id = "acme"
password = "env:SMSGW_E2E_SMSC_PASSWORD"
"""


def check_config(config, password: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "SMSGW_E2E_SMSC_PASSWORD": password}
    return subprocess.run([*SMSGW, "check-config", "-c", str(config)], capture_output=True, text=True,
                          timeout=60, cwd=ROOT, env=env)


def test_check_config_reads_a_password_from_env_and_never_prints_it(tmp_path):
    shipped = (ROOT / "etc" / "gateway.toml").read_text(encoding="utf-8")
    config = tmp_path / "gateway.toml"
    config.write_text(shipped.replace('"sqlite:///../var/smsgw.db"', '"sqlite:///smsgw.db"') + OPERATOR,
                      encoding="utf-8")

    good = check_config(config, "pw123")
    assert good.returncode == 0, good.stderr

    too_long = "TooLongSmscPassword"
    bad = check_config(config, too_long)
    assert bad.returncode == 2
    assert "operators.telia.password: must be at most 8 characters" in bad.stderr
    assert too_long not in bad.stdout + bad.stderr
