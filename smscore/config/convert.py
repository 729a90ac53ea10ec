"""Value converters: one raw TOML value -> a typed value, or `_Invalid` saying what is wrong.

Why: the same kinds of value (strings, integers, durations, money, prefix tables, listen
addresses, URLs, templates, lists, senders, API keys) appear in many sections; each is checked
in one place here, with one wording for its error, and the section readers only name them.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import string
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Callable, Mapping

from connectors.smpp.times import MAX_RELATIVE
from policies.callback_urls import host_pattern_problem, url_problem
from policies.callbacks import ALL, FINAL, parse_selection
from policies.numbers import InvalidSender, normalize_sender
from smscore.config.table import _Invalid, _quote, _show, _Sources
from smscore.config.values import ListenAddress, PrefixTable, _digest
from smscore.durations import DurationError, parse_duration
from smscore.model import STATUS_NAMES

#: The largest integer of a key that names no maximum of its own: the store keeps integers in 64
#: bits and the API's JSON writes no more (a daily_volume_limit above it hung GET /v1/admin/accounts),
#: and a rate past a float's range cannot be computed with at all (an account's tps of 10**400 made
#: every POST /v1/messages fail, an operator's stopped `run` with a traceback).
MAX_INTEGER = 2**63 - 1
#: The longest duration, 100 years: nothing the gateway waits for is longer, and a longer one can
#: leave the calendar once taken from now, or become infinite as a float (a number of 309 digits).
MAX_DURATION_DAYS = 36500


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


def _password(max_length: int | None = None, *, allow_empty: bool = False) -> Callable[[Any], str]:
    """A password or other secret text: checked like a string, but never shown in an error."""

    def convert(value: Any) -> str:
        if not isinstance(value, str):
            raise _Invalid("must be a string")
        if not value and not allow_empty:
            raise _Invalid("must not be empty")
        if max_length is not None and len(value) > max_length:
            raise _Invalid(f"must be at most {max_length} characters (SMPP 3.4), got {len(value)}")
        return value

    return convert


def _integer(minimum: int = 0, maximum: int | None = None) -> Callable[[Any], int]:
    bound = f">= {minimum}" if maximum is None else f"from {minimum} to {maximum}"

    def convert(value: Any) -> int:
        if (isinstance(value, bool) or not isinstance(value, int) or value < minimum
                or (maximum is not None and value > maximum)):
            raise _Invalid(f"must be an integer {bound}, got {_show(value)}")
        if value > MAX_INTEGER:
            raise _Invalid(f"must be an integer from {minimum} to {MAX_INTEGER} (64 bits), got {_show(value)}")
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
        if seconds > MAX_DURATION_DAYS * 86400:
            raise _Invalid(f'must be at most "{MAX_DURATION_DAYS}d" (100 years), got {_show(value)}')
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
    if amount is None or not amount.is_finite() or not 0 <= amount <= MAX_AMOUNT:
        # bounded: the API answers amounts as JSON numbers, and 1e400 was "balance": null for ever
        raise _Invalid(f"must be an amount from 0 to {MAX_AMOUNT} (a number or a decimal string), got {_show(value)}")
    return amount


#: the largest amount (balance, price, cost) a config may give: a float keeps its cents up to ~9e13
MAX_AMOUNT = Decimal(10) ** 12


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
    """A push target (SPEC §15): the rules of ``policies.callback_urls.url_problem``."""
    problem = url_problem(value)
    if problem is not None:
        long = isinstance(value, str) and len(value) > 200  # its length is the problem: not shown
        # user:password@ in a URL is a secret (SPEC §15: none in any error): shown without it
        shown = _CREDENTIALS.sub(r"\1***@", value) if isinstance(value, str) else value
        raise _Invalid(problem if long else f"{problem}, got {_show(shown)}")
    return value


_CREDENTIALS = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#@]*@")


def _host_pattern(value: Any) -> str:
    """A ``callback_hosts`` entry: a host name, an IP address or ``*.domain``; kept lower-case."""
    problem = host_pattern_problem(value)
    if problem is not None:
        raise _Invalid(f"{problem}, got {_show(value)}")
    return value.lower()


def _network(value: Any) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """A CIDR network ("127.0.0.0/8", "fd00::/8"); host bits must be zero."""
    try:
        return ipaddress.ip_network(value, strict=True)
    except (TypeError, ValueError):
        raise _Invalid(f'must be a network in CIDR form such as "10.0.0.0/8", got {_show(value)}') from None


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
          max_items: int | None = None, non_empty: bool = False,
          conceal: bool = False) -> Callable[[Any], tuple]:
    """An array of `item`s; `conceal`: the entries are secrets, so a value written in place of
    the array is named by its type and a duplicate by the index of the entry it repeats, never
    shown."""

    def convert(value: Any) -> tuple:
        if not isinstance(value, list):
            raise _Invalid(f"must be an array, got {_kind(value) if conceal else _show(value)}")
        if non_empty and not value:
            raise _Invalid("must not be empty")
        if max_items is not None and len(value) > max_items:
            raise _Invalid(f"must have at most {max_items} entries, got {len(value)}")
        problems, items, seen = [], [], {}
        for index, raw in enumerate(value):
            try:
                parsed = item(raw)
            except _Invalid as exc:
                problems.extend((f"[{index}]{suffix}", msg) for suffix, msg in exc.problems)
                continue
            token = parsed.casefold() if casefold else parsed
            if unique and token in seen:
                shown = f"of [{seen[token]}]" if conceal else _show(raw)
                problems.append((f"[{index}]", f"duplicate {shown}"))
                continue
            seen[token] = index
            items.append(parsed)
        if problems:
            raise _Invalid(problems=problems)
        return tuple(items)

    return convert


def _kind(value: Any) -> str:
    """What a TOML value is, without what it says (for a secret written where it does not fit)."""
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return _show(value) if isinstance(value, (dict, list)) else "a date or time"


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
    """A configured key -> its SHA-256 hex digest. The key is never shown in an error."""
    if not isinstance(value, str) or not value:
        raise _Invalid("must be a non-empty string")
    if value.startswith("sha256:"):
        digest = value[len("sha256:"):]
        if not re.fullmatch(r"[0-9A-Fa-f]{64}", digest):
            raise _Invalid('must be "sha256:" and 64 hex digits, or a plain key')
        return digest.lower()
    return _digest(value)


def _api_keys(sources: _Sources) -> Callable[[Any], tuple[str, ...]]:
    """An ``api_keys`` array: each entry a secret (SPEC §15) kept as its digest, none repeated."""
    return _list(_secret(_api_key, sources), unique=True, conceal=True)


def _secret(inner: Callable[[Any], Any], sources: _Sources) -> Callable[[Any], Any]:
    """A secret (SPEC §15): "env:NAME", "file:PATH" or "raw:TEXT" resolved first, then `inner`.

    Why here: `run`, `check-config` and `reload` all read the file through this package, so each
    of them reads a secret the same way and at the same moment. `inner` must never show the value
    in its errors (`_password`, `_api_key` do not; the store URL is shown redacted)."""

    def convert(value: Any) -> Any:
        return inner(_resolve(value, sources))

    return convert


def _resolve(value: Any, sources: _Sources) -> Any:
    """The value a written secret stands for; a value without a known prefix stands for itself."""
    if not isinstance(value, str):
        return value
    kind, _, rest = value.partition(":")
    if kind == "raw":
        return rest
    if kind == "env":
        return _from_environment(rest, sources.environ)
    if kind == "file":
        return _from_file(rest, sources.folder)
    return value


def _from_environment(name: str, environ: Mapping[str, str]) -> str:
    if not name:
        raise _Invalid('"env:" must be followed by the name of an environment variable')
    text = environ.get(name)
    if text is None:
        raise _Invalid(f"environment variable {name} is not set")
    if not text:
        raise _Invalid(f"environment variable {name} is empty")
    return text


def _from_file(written: str, folder: Path) -> str:
    """The file's text without its last newline (as `echo` or an editor leaves it); a relative
    path starts at the config file's folder, like a relative sqlite path."""
    if not written:
        raise _Invalid('"file:" must be followed by the path of a file')
    path = Path(os.path.normpath(folder / written))
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise _Invalid(f"cannot read {_quote(str(path))}: {exc.strerror or type(exc).__name__}") from None
    except UnicodeDecodeError:
        raise _Invalid(f"cannot read {_quote(str(path))}: not UTF-8 text") from None
    text = text[:-2] if text.endswith("\r\n") else text.removesuffix("\n")
    if not text:
        raise _Invalid(f"file {_quote(str(path))} is empty")
    return text


def _smsc_address(value: Any) -> tuple[str, int]:
    """One address of an operator's SMSC in ``hosts``: "host:port" ("[v6]:port"), port 1-65535."""
    problem = f'must be "host:port" with a port from 1 to 65535, such as "smsc.example:2775", got {_show(value)}'
    try:
        host, port = _listen(value)
    except _Invalid:
        raise _Invalid(problem) from None
    if port == 0:
        raise _Invalid(problem)
    return host, port


def _validity(value: Any) -> float:
    """An operator's ``validity``: a duration from 1 s to under 100 days, what an SMPP relative
    validity_period can say (days in two digits, whole seconds)."""
    seconds = _duration()(value)
    if not 1 <= seconds < MAX_RELATIVE:
        raise _Invalid(f"must be from 1s to less than 100d (an SMPP relative time), got {_show(value)}")
    return seconds
