"""Reading one TOML table: its key path, the keys asked for, and the errors found in it.

Why: every section is read through a `_Table`, so every error names its key path the same way,
a key nobody asked for is reported as "unknown key" (that is how typos are caught), and a bad value
is recorded and replaced by its default so the walk goes on and reports every problem. A table
also carries the file's `_Sources`, so a secret written "env:NAME" or "file:PATH" is read from
the environment or the file the same way by `run`, `check-config` and `reload` (SPEC §15).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

class _Invalid(Exception):
    """A value is wrong: `problems` are (key path suffix, message) pairs."""

    def __init__(self, message: str = "", *, problems: list[tuple[str, str]] | None = None):
        super().__init__(message)
        self.problems = problems if problems is not None else [("", message)]


_REQUIRED: Any = object()


def _show(value: object) -> str:
    """A value as it would look in TOML, for error messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return str(value)


def _quote(text: str) -> str:
    return f'"{text}"'


@dataclass(frozen=True, slots=True)
class _Sources:
    """What a secret in the file may be read from (SPEC §15): `environ` for "env:NAME" and the
    file's `folder`, where a relative "file:PATH" starts. Passed in, so tests need no real
    environment and the reader touches no global state."""

    environ: Mapping[str, str]
    folder: Path


class _Table:
    """One TOML table being read: knows its key path, which keys were asked for, and where its
    secrets come from."""

    def __init__(self, errors: list[str], path: str, data: dict[str, Any], sources: _Sources) -> None:
        self.errors, self.path, self.data, self.sources = errors, path, data, sources
        self.known: list[str] = []

    def child(self, key: str, data: dict[str, Any]) -> _Table:
        """The table at `key` inside this one (``[accounts.NAME.smpp]``): same errors and sources."""
        return _Table(self.errors, self.key_path(key), data, self.sources)

    def key_path(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def error(self, key: str, message: str) -> None:
        self.errors.append(f"{self.key_path(key)}: {message}")

    def get(self, key: str, convert: Callable[[Any], Any], default: Any = _REQUIRED) -> Any:
        """The value at `key` through `convert`, or `default` (after an error if it is bad or a
        required key is missing; None stands in for a missing required value)."""
        self.known.append(key)
        if key not in self.data:
            if default is _REQUIRED:
                self.error(key, "is required")
                return None
            return default
        try:
            return convert(self.data[key])
        except _Invalid as exc:
            for suffix, message in exc.problems:
                self.error(key + suffix, message)
            return None if default is _REQUIRED else default

    def reject(self, keys: tuple[str, ...], message: str) -> None:
        """`keys` are known keys that make no sense here."""
        for key in keys:
            self.known.append(key)
            if key in self.data:
                self.error(key, message)

    def finish(self) -> None:
        """Report every key nobody asked for."""
        for key in self.data:
            if key not in self.known:
                close = difflib.get_close_matches(key, self.known, n=1, cutoff=0.6)
                hint = f" (did you mean {_quote(close[0])}?)" if close else ""
                self.error(key, "unknown key" + hint)
