"""A PostgreSQL store URL checked as libpq will read it, before the gateway connects.

Why: `run` hands ``[store] url`` to libpq, which refuses a URL it cannot read, or a port or timeout
that is no integer, only then and with no key path; check-config must find it first (SPEC §3),
and must never show the password while saying what is wrong (SPEC §15): libpq's own messages
quote the token they refuse, which may be the password. ``postgresql_url_problem`` is what
``read_store`` reports on ``store.url``.
"""

from __future__ import annotations

import re

from smscore.config.table import _show
from smscore.config.values import StoreConfig

#: libpq's connection options that take an integer; a port must also be from 1 to 65535.
_LIBPQ_INTEGER_OPTIONS = ("port", "connect_timeout", "keepalives", "keepalives_idle",
                          "keepalives_interval", "keepalives_count", "tcp_user_timeout")
#: An integer as libpq's parse_int_param reads it: strtol's (spaces, a sign, digits), spaces after.
_LIBPQ_INTEGER = re.compile(r"\s*[+-]?[0-9]+\s*", re.ASCII)
_C_INT = range(-2**31, 2**31)
_PORT = range(1, 65536)
_PASSWORD_HINT = 'in a password, write "%" as %25, "/" as %2F and "@" as %40'


def _libpq_integer(text: str) -> int | None:
    """`text` as libpq reads an integer option, or None where libpq refuses it; leading zeros and
    all, without Python's int() extras ("5_432", other scripts' digits) or its digit limit."""
    if not _LIBPQ_INTEGER.fullmatch(text):
        return None
    digits = text.strip().lstrip("+-").lstrip("0")
    return int(text) if len(digits) <= 10 else None


def _libpq_options(url: str) -> dict[str, str] | str:
    """libpq's reading of a URL without connecting (psycopg2's parse_dsn): its options, or what it
    says is wrong (libpq quotes the URL, so give it only text that may be shown)."""
    import psycopg2
    from psycopg2.extensions import parse_dsn

    try:
        return parse_dsn(url)
    except psycopg2.Error as exc:
        words = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return words.removeprefix("invalid dsn: ")


def postgresql_url_problem(url: str) -> str | None:
    """What libpq would refuse in a PostgreSQL store URL before it connects, or None.

    Why: `run` hands the URL to libpq, which refuses a URL it cannot read, or a port or timeout
    that is no integer, only then, with no key path; check-config must find it first (SPEC §3).
    No answer holds the password (SPEC §15): libpq's words and a bad value are shown as libpq
    reads the redacted URL, and a value that differs there is not shown at all."""
    redacted = StoreConfig(url=url).redacted_url
    shown = _show(redacted)
    options = _libpq_options(url)
    visible = _libpq_options(redacted)
    if isinstance(options, str):
        if isinstance(visible, str):
            got = "" if redacted in visible else f", got {shown}"  # libpq may quote it itself
            return f"is not a URL libpq can read: {visible}{got}"
        return f"libpq cannot read the part shown as *** ({_PASSWORD_HINT}), got {shown}"
    for name in _LIBPQ_INTEGER_OPTIONS:
        value = options.get(name)
        if value is None:
            continue
        # a port per host, an empty one for libpq's default
        values = [v for v in value.split(",") if v] if name == "port" else [value]
        wanted, within = (("a number from 1 to 65535", _PORT) if name == "port"
                          else ("an integer", _C_INT))
        for one in values:
            number = _libpq_integer(one)
            if number is not None and number in within:
                continue
            if isinstance(visible, dict) and visible.get(name) == value:
                return f"{name} must be {wanted}, got {_show(one)} in {shown}"
            return (f"{name} must be {wanted}, got a value from the part shown as *** "
                    f"({_PASSWORD_HINT}) in {shown}")
    return None
