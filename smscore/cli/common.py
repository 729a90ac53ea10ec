"""What every ``smsgw`` command shares: its one-line error and reading a config file."""

from __future__ import annotations

import sys

DEFAULT_CONFIG = "etc/gateway.toml"


def one_line(text: str) -> str:
    """``text`` with its line breaks and runs of blanks made single spaces: an error from below (a
    driver's, such as libpq's "...refused" and a tab-indented hint under it) as the one line an
    ``smsgw`` error is (SPEC §2), saying all it said."""
    return " ".join(text.split())


class CliError(Exception):
    """A one-line error for the user; ``code`` is the exit status."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def load(path: str):
    """The config at ``path``; its errors on stderr, one a line, each ``smsgw: FILE: key.path: what``
    (several: then a line counting them), and a ``CliError`` (exit status 2)."""
    from smscore.config import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as exc:
        lines = [error if error.startswith(f"{path}:") else f"{path}: {error}" for error in exc.errors]
        if len(lines) == 1:
            raise CliError(lines[0], 2) from None
        for line in lines:
            print(f"smsgw: {line}", file=sys.stderr)
        raise CliError(f"{path}: {len(lines)} configuration errors", 2) from None
