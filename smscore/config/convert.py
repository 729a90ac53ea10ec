"""Value converters: one raw TOML value -> a typed value, or `_Invalid` saying what is wrong.

Why: the same kinds of value (strings, integers, durations, money, prefix tables, listen
addresses, URLs, templates, lists, senders, API keys) appear in many sections; each is checked
in one place here, with one wording for its error, and the section readers only name them.
"""

from __future__ import annotations

import ipaddress
import math
import re
import string
from decimal import Decimal, InvalidOperation
from typing import Any, Callable
from urllib.parse import urlsplit

from policies.callbacks import ALL, FINAL, parse_selection
from policies.numbers import InvalidSender, normalize_sender
from smscore.config.table import _Invalid, _quote, _show
from smscore.config.values import ListenAddress, PrefixTable, _digest
from smscore.durations import DurationError, parse_duration
from smscore.model import STATUS_NAMES

def _string(*, choices: tuple[str, ...] = (), pattern: str | None = None, what: str = "",
            allow_empty: bool = True, max_length: int | None = None) -> Callable[[Any], str]:
    compiled = re.compile(pattern) if pattern else None

    def convert(value: Any) -> str:
        if choices:
            if value not in choices:
                options = ", ".join(_quote(c) for c in choices)
                raise _Invalid(f"must be one of {options}, got {_show(value)}")
            return value
        if not isinstance(value, str):
            raise _Invalid(f"must be a string, got {_show(value)}")
        if not allow_empty and not value.strip():
            raise _Invalid("must not be empty")
        if max_length is not None and len(value) > max_length:
            raise _Invalid(f"must be at most {max_length} characters, got {_show(value)}")
        if compiled and not compiled.fullmatch(value):
            raise _Invalid(f"must be {what}, got {_show(value)}")
        return value

    return convert


def _password(max_length: int) -> Callable[[Any], str]:
    """A password: checked like a string, but never shown in an error."""

    def convert(value: Any) -> str:
        if not isinstance(value, str):
            raise _Invalid("must be a string")
        if not value:
            raise _Invalid("must not be empty")
        if len(value) > max_length:
            raise _Invalid(f"must be at most {max_length} characters (SMPP 3.4), got {len(value)}")
        return value

    return convert


def _integer(minimum: int = 0, maximum: int | None = None) -> Callable[[Any], int]:
    bound = f">= {minimum}" if maximum is None else f"from {minimum} to {maximum}"

    def convert(value: Any) -> int:
        if (isinstance(value, bool) or not isinstance(value, int) or value < minimum
                or (maximum is not None and value > maximum)):
            raise _Invalid(f"must be an integer {bound}, got {_show(value)}")
        return value

    return convert


def _processes(value: Any) -> int | None:
    """``"auto"`` (None) or a number of processes from 1 to 64."""
    if value == "auto":
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 64:
        raise _Invalid(f'must be "auto" or an integer from 1 to 64, got {_show(value)}')
    return value


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Invalid(f"must be true or false, got {_show(value)}")
    return value


def _duration(*, allow_zero: bool = False) -> Callable[[Any], float]:
    def convert(value: Any) -> float:
        try:
            seconds = parse_duration(value)
        except DurationError as exc:
            raise _Invalid(f"{exc}, got {_show(value)}") from None
        if seconds == 0 and not allow_zero:
            raise _Invalid(f"must be longer than zero, got {_show(value)}")
        return seconds

    return convert


def _money(value: Any) -> Decimal:
    amount: Decimal | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        amount = Decimal(value)
    elif isinstance(value, float) and math.isfinite(value):
        amount = Decimal(str(value))
    elif isinstance(value, str):
        try:
            amount = Decimal(value.strip())
        except InvalidOperation:
            amount = None
    if amount is None or not amount.is_finite() or amount < 0:
        raise _Invalid(f"must be an amount >= 0 (a number or a decimal string), got {_show(value)}")
    return amount


def _prefix_table(value: Any) -> PrefixTable:
    if not isinstance(value, dict):
        return PrefixTable.flat(_money(value))
    if not value:
        raise _Invalid('must name at least one prefix or "default"')
    problems: list[tuple[str, str]] = []
    prefixes: list[tuple[str, Decimal]] = []
    default = None
    for prefix, amount in value.items():
        if prefix != "default" and not re.fullmatch(r"[0-9]{1,15}", prefix):
            problems.append((f".{prefix}", 'must be a prefix of digits or "default"'))
            continue
        try:
            parsed = _money(amount)
        except _Invalid as exc:
            problems.append((f".{prefix}", str(exc)))
            continue
        if prefix == "default":
            default = parsed
        else:
            prefixes.append((prefix, parsed))
    if problems:
        raise _Invalid(problems=problems)
    return PrefixTable(tuple(prefixes), default)


def _listen(value: Any) -> ListenAddress:
    problem = f'must be "host:port" such as "127.0.0.1:8080", got {_show(value)}'
    if not isinstance(value, str):
        raise _Invalid(problem)
    host, colon, port = value.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise _Invalid(problem) from None
    elif not colon or not _is_host(host):
        raise _Invalid(problem)
    if not re.fullmatch(r"[0-9]{1,5}", port) or int(port) > 65535:
        raise _Invalid(f"port must be from 0 to 65535, got {_show(value)}")
    return ListenAddress(host, int(port))


def _is_host(text: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,252})", text)) and ".." not in text


def _url(value: Any) -> str:
    problem = f"must be an http:// or https:// URL, got {_show(value)}"
    if not isinstance(value, str):
        raise _Invalid(problem)
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _Invalid(problem)
    return value


def _template(allowed: tuple[str, ...]) -> Callable[[Any], str]:
    def convert(value: Any) -> str:
        text = _string()(value)
        try:
            names = [name for _, name, _, _ in string.Formatter().parse(text) if name is not None]
        except ValueError as exc:
            raise _Invalid(
                f"is not a valid template ({exc}; write {{{{ for a literal {{)"
            ) from None
        for name in names:
            if name not in allowed:
                options = ", ".join("{" + a + "}" for a in allowed)
                raise _Invalid(f"unknown placeholder {{{name}}}; use {options}")
        return text

    return convert


def _list(item: Callable[[Any], Any], *, unique: bool = False, casefold: bool = False,
          max_items: int | None = None, non_empty: bool = False) -> Callable[[Any], tuple]:
    def convert(value: Any) -> tuple:
        if not isinstance(value, list):
            raise _Invalid(f"must be an array, got {_show(value)}")
        if non_empty and not value:
            raise _Invalid("must not be empty")
        if max_items is not None and len(value) > max_items:
            raise _Invalid(f"must have at most {max_items} entries, got {len(value)}")
        problems, items, seen = [], [], set()
        for index, raw in enumerate(value):
            try:
                parsed = item(raw)
            except _Invalid as exc:
                problems.extend((f"[{index}]{suffix}", msg) for suffix, msg in exc.problems)
                continue
            token = parsed.casefold() if casefold else parsed
            if unique and token in seen:
                problems.append((f"[{index}]", f"duplicate {_show(raw)}"))
                continue
            seen.add(token)
            items.append(parsed)
        if problems:
            raise _Invalid(problems=problems)
        return tuple(items)

    return convert


_NAME = r"[A-Za-z0-9_-]{1,64}"
_NONEMPTY = _string(allow_empty=False)
_DIGITS = _string(pattern=r"[0-9]{1,15}", what="a string of 1-15 digits")
_WORD = _string(pattern=r"\S{1,40}", what="one word without spaces")
_DOMAIN = _string(
    pattern=r"[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*", what='a domain name such as "acme.example"'
)


def _callback_statuses(value: Any) -> str:
    """``"all"``, ``"final"`` or an array of status names → a ``policies.callbacks`` selection."""
    if isinstance(value, list):
        names = _list(_string(choices=STATUS_NAMES), unique=True)(value)
        return parse_selection(list(names), STATUS_NAMES)
    if isinstance(value, str) and value in (ALL, FINAL):
        return value
    raise _Invalid(f'must be "all", "final" or an array of statuses, got {_show(value)}')


def _sender(value: Any) -> str:
    """A sender ID as it goes out (policies.numbers decides what is valid)."""
    try:
        return normalize_sender(value)
    except InvalidSender as exc:
        raise _Invalid(str(exc)) from None


def _api_key(value: Any) -> str:
    """A configured key -> its SHA-256 hex digest."""
    if not isinstance(value, str) or not value:
        raise _Invalid(f"must be a non-empty string, got {_show(value)}")
    if value.startswith("sha256:"):
        digest = value[len("sha256:"):]
        if not re.fullmatch(r"[0-9A-Fa-f]{64}", digest):
            raise _Invalid('must be "sha256:" and 64 hex digits, or a plain key')
        return digest.lower()
    return _digest(value)
