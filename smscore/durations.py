"""Durations as operators write them: a number and a unit, ``"200ms"``, ``"30s"``, ``"72h"``.

Why a module of its own: the config, the CLI and the tests all read durations, and there must be
one way to do it. A bare number is refused on purpose: ``timeout = 10`` could mean seconds or
milliseconds, and a wrong guess is found only in production.

Rules (documented in docs/configuration.md):
- one number and one unit, no spaces: ``"1.5s"``, ``"90m"``; a decimal fraction is allowed;
- units ``ms``, ``s``, ``m``, ``h``, ``d`` (lower case; ``m`` is minutes, there is no month);
- no compound forms (``"1h30m"``: write ``"90m"``), no sign, so never negative.
"""

from __future__ import annotations

import re
from decimal import Decimal

__all__ = ["DurationError", "UNITS", "parse_duration"]

#: Seconds per unit.
UNITS: dict[str, float] = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}

_UNIT_SECONDS = {"ms": Decimal("0.001"), "s": Decimal(1), "m": Decimal(60), "h": Decimal(3600),
                 "d": Decimal(86400)}
_DURATION = re.compile(r"(?P<number>[0-9]+(?:\.[0-9]+)?)(?P<unit>ms|s|m|h|d)")
_BARE_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_UNIT_LIST = "ms, s, m, h, d"


class DurationError(ValueError):
    """A value that is not a duration; the message says what a duration looks like."""


def parse_duration(value: object) -> float:
    """Return the duration ``value`` (a string such as ``"30s"``) in seconds.

    Raises DurationError for anything else, with a message meant for the person who wrote it.
    """
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise DurationError(f'must be a duration such as "30s" (units {_UNIT_LIST})')
    text = str(value).strip()
    if isinstance(value, (int, float)) or _BARE_NUMBER.fullmatch(text):
        if text.startswith("-"):
            raise DurationError("must not be negative")
        raise DurationError(f'a duration needs a unit ({_UNIT_LIST}), e.g. "{text}s"')
    match = _DURATION.fullmatch(value)
    if match is None:
        raise DurationError(
            f'must be a number and a unit ({_UNIT_LIST}) such as "30s" or "1.5s", '
            f'without spaces or sign'
        )
    # Decimal arithmetic so "1.1ms" is 0.0011, not 0.0011000000000000001.
    return float(Decimal(match["number"]) * _UNIT_SECONDS[match["unit"]])
