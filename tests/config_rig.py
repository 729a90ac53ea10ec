"""What the configuration tests share: the smallest valid file and pieces to append to it, and
parsing as if the text were /etc/smsgw/gateway.toml."""

from __future__ import annotations

from pathlib import Path

import pytest

from smscore.config import Config, ConfigError, parse_config

REPO = Path(__file__).resolve().parents[1]

# The smallest valid file; error cases append to it.
BASE = """
[operators.sim]
type = "simulated"

[profiles.standard]
operators = ["sim"]
"""

SMPP = """
type = "smpp"
host = "smsc.example"
system_id = "acme"
password = "secret"
"""

MO = """
[accounts.acme]
api_keys = ["acme-key"]

[[shortcodes]]
number = "72550"
"""


def parse(text: str, folder: Path = Path("/etc/smsgw")) -> Config:
    return parse_config(text, path=folder / "gateway.toml")


def errors_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse(text)
    assert str(caught.value) == "\n".join(caught.value.errors)
    return caught.value.errors
