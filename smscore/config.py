"""The gateway configuration: one TOML file, parsed once into typed, frozen objects.

Why: the rest of the gateway receives these objects and never sees raw TOML, so a typo, a wrong
type or a dangling reference is found when the file is loaded (by `run`, `check-config` or
`reload`), with the key path that names it, and not on the first message that needs it.

Theory of operation: `load_config(path)` reads the file with tomllib and hands the dict to a
`_Parser`, which walks it section by section. Every TOML table is read through a `_Table` that
knows its key path and which keys were asked for, so a key nobody asked for is an "unknown key"
(that is how typos are caught). A bad value is recorded as an error and replaced by its default,
so the walk goes on and reports every problem, not just the first. References between sections
(profile -> operator, account -> profile, keyword -> account and shortcode, unique API keys ...)
are checked once every section is built. Any error -> `ConfigError` with all of them, section by
section; otherwise a `Config`.

Money is `Decimal` (a TOML float goes through `str()` first, so 0.1 is Decimal("0.1")); durations
are float seconds (`smscore.durations`); API keys are kept only as SHA-256 digests. Defaults live
in one place, the dataclass fields below, and are the ones SPEC §11 names.
"""

from __future__ import annotations

import difflib
import hashlib
import hmac
import ipaddress
import math
import os
import re
import string
import tomllib
from dataclasses import MISSING, dataclass, field, fields, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Mapping, NamedTuple
from urllib.parse import urlsplit

from policies.callbacks import ALL, FINAL, parse_selection
from policies.numbers import InvalidSender, normalize_sender
from smscore.durations import DurationError, parse_duration
from smscore.model import STATUS_NAMES

__all__ = [
    "AccountConfig",
    "AdminConfig",
    "Config",
    "ConfigError",
    "GatewayConfig",
    "HttpConfig",
    "KeySet",
    "KeywordConfig",
    "ListenAddress",
    "MetricsConfig",
    "OperatorConfig",
    "PrefixTable",
    "ProfileConfig",
    "PushConfig",
    "ShortcodeConfig",
    "StoreConfig",
    "hash_api_key",
    "load_config",
    "parse_config",
]

SMPP_PORT = 2775
MAX_SENDERS = 5
#: Placeholders a reply template may use ({account} only in a shortcode's stop_reply).
MO_PLACEHOLDERS = ("text", "payload", "from", "keyword")


class ConfigError(Exception):
    """The configuration is not valid. `errors` lists every problem, each starting with its key
    path (`operators.telia.window: must be an integer >= 1, got "ten"`)."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = list(errors)


# --- value types -----------------------------------------------------------------------------


class ListenAddress(NamedTuple):
    """Where a server listens, from "host:port" ("[::1]:8080" for IPv6). Port 0 = any free port."""

    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def endpoint(self) -> str:
        """The Twisted server endpoint string (for `serverFromString`)."""
        if ":" in self.host:
            return f"tcp6:port={self.port}:interface={self.host.replace(':', chr(92) + ':')}"
        return f"tcp:port={self.port}:interface={self.host}"


@dataclass(frozen=True, slots=True)
class PrefixTable:
    """An amount by destination prefix (operator cost, account price): the longest prefix that
    starts the number wins, else `default`. `lookup` gives None when nothing applies; a plain
    number in the file is a table with only a default (`PrefixTable.flat`)."""

    prefixes: tuple[tuple[str, Decimal], ...] = ()
    default: Decimal | None = None
    _index: Mapping[str, Decimal] = field(init=False, repr=False, compare=False)
    _longest: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index = dict(self.prefixes)
        object.__setattr__(self, "prefixes", tuple(sorted(index.items())))
        object.__setattr__(self, "_index", MappingProxyType(index))
        object.__setattr__(self, "_longest", max(map(len, index), default=0))

    @classmethod
    def flat(cls, amount: Decimal) -> PrefixTable:
        return cls((), amount)

    def lookup(self, msisdn: str) -> Decimal | None:
        for end in range(min(len(msisdn), self._longest), 0, -1):
            amount = self._index.get(msisdn[:end])
            if amount is not None:
                return amount
        return self.default


def hash_api_key(key: str) -> str:
    """The form of `key` to write in the config instead of the key itself: "sha256:<hex>"."""
    return "sha256:" + _digest(key)


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class KeySet:
    """API keys, kept only as SHA-256 hex digests (plain keys in the file are hashed at load)."""

    digests: frozenset[str] = frozenset()

    def matches(self, key: str) -> bool:
        """Whether `key` is one of these keys, in time that does not depend on which one."""
        presented = _digest(key)
        found = False
        for digest in self.digests:
            found |= hmac.compare_digest(digest, presented)
        return found

    def __len__(self) -> int:
        return len(self.digests)


# --- the sections (field defaults are the documented defaults) --------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewayConfig:
    """[gateway]: this node and the gateway-wide rules."""

    node: str = "gw1"
    default_sender: str = "SMSGW"
    max_parts_cap: int = 3
    retention_days: int = 60
    receipt_timeout: float = 72 * 3600.0
    reply_profile: str = ""  # resolved at load: the first profile of the file when not set
    lease: float = 30.0
    processes: int | None = None  # None = "auto": one per core (smscore.supervisor)


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreConfig:
    """[store]: `url` as written; `sqlite_path` resolved (absolute) for sqlite, else None."""

    url: str = field(default="sqlite:///smsgw.db", repr=False)
    sqlite_path: Path | None = None
    auto_upgrade: bool = True

    @property
    def backend(self) -> str:
        return "sqlite" if self.url.startswith("sqlite:") else "postgresql"

    @property
    def redacted_url(self) -> str:
        """`url` with any password replaced by "***", for logs."""
        return re.sub(r"(//[^:/@]*:)[^@/]*@", r"\1***@", self.url)


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpConfig:
    """[http]: the customer and admin API."""

    listen: ListenAddress = ListenAddress("127.0.0.1", 8080)


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricsConfig:
    """[metrics]: the Prometheus exposition."""

    listen: ListenAddress = ListenAddress("127.0.0.1", 9100)


@dataclass(frozen=True, slots=True, kw_only=True)
class AdminConfig:
    """[admin]: keys for /v1/admin/*; none means the admin API refuses everyone."""

    api_keys: KeySet = KeySet()


@dataclass(frozen=True, slots=True, kw_only=True)
class PushConfig:
    """[push]: HTTP pushes to customer backends (seconds)."""

    timeout: float = 10.0
    retry_for: float = 24 * 3600.0


@dataclass(frozen=True, slots=True, kw_only=True)
class OperatorConfig:
    """[operators.NAME]: one SMSC account, real (type "smpp") or in-process ("simulated").

    host/port/tls are None/None/False for a simulated operator; the simulator knobs
    (unreachable_prefixes, receipt_delay, message_id_format, throttle_tps) mean nothing for smpp.
    Durations are seconds; tps and throttle_tps 0 mean no limit.
    """

    name: str
    type: str = "smpp"
    host: str | None = None
    port: int | None = None
    tls: bool = False
    system_id: str = ""
    password: str = field(default="", repr=False)
    system_type: str = ""
    bind: str = "transceiver"
    binds: int = 1
    window: int = 10
    tps: int = 0
    enquire_link: float = 30.0
    receipt_id_format: str = "auto"
    latin1: bool = False
    packed_gsm: bool = False
    cost: PrefixTable = PrefixTable.flat(Decimal(0))
    unreachable_prefixes: tuple[str, ...] = ()
    receipt_delay: float = 1.0
    message_id_format: str = "hex"
    throttle_tps: int = 0

    def bind_settings(self) -> tuple[Any, ...]:
        """Everything that shapes this operator's sessions: on reload, reconnect only when this
        changed (a change of `cost` alone applies at once, without reconnecting)."""
        return tuple(getattr(self, f.name) for f in fields(self) if f.name != "cost")


@dataclass(frozen=True, slots=True, kw_only=True)
class ProfileConfig:
    """[profiles.NAME]: the operators that may carry a message, in tie-break order."""

    name: str
    operators: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountConfig:
    """[accounts.NAME]: a customer. Senders are kept as they go out (a numeric sender without
    "+"). `balance` is the opening balance (the store owns it after that)."""

    name: str
    api_keys: KeySet = KeySet()
    senders: tuple[str, ...] = ()
    default_sender: str | None = None
    profile: str = ""  # resolved at load: the first profile of the file when not set
    max_parts: int = 3  # resolved at load: gateway.max_parts_cap when not set
    billing: str = "postpaid"
    balance: Decimal = Decimal(0)
    prices: PrefixTable = PrefixTable.flat(Decimal(0))
    callback_url: str | None = None
    #: which status events are pushed: a ``policies.callbacks`` selection ("all", "final" or
    #: status names joined by ",")
    callback_statuses: str = ALL
    callback_batch: int = 1  # events per status POST; above 1 the body is {"events": [...]}
    callback_linger: float = 0.2  # seconds the oldest event of a batch that is not full waits
    secret: str | None = field(default=None, repr=False)
    approved_domains: tuple[str, ...] = ()
    daily_volume_limit: int | None = None
    tps: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ShortcodeConfig:
    """[[shortcodes]]: a number MOs arrive on. Stop words match case-insensitively."""

    number: str
    unknown_keyword_reply: str | None = None
    stop_words: tuple[str, ...] = ("STOP",)
    stop_reply: str = "You will get no more messages from {account}."
    monthly_cap_per_phone: Decimal | None = None
    cap_reply: str = "Monthly limit reached."


@dataclass(frozen=True, slots=True, kw_only=True)
class KeywordConfig:
    """[[keywords]]: a keyword (and aliases, case-insensitive) on a shortcode, rented by an
    account. `url` pushes the MO; `reply` answers statically; neither = pull only."""

    shortcode: str
    keyword: str
    account: str
    aliases: tuple[str, ...] = ()
    url: str | None = None
    price: Decimal = Decimal(0)
    unavailable_reply: str | None = None
    reply: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """The whole configuration. `path` is the file it came from (absolute). Mappings keep the
    file's order and are read-only; `shortcodes` is keyed by number."""

    path: Path | None = None
    gateway: GatewayConfig = GatewayConfig()
    store: StoreConfig = StoreConfig()
    http: HttpConfig = HttpConfig()
    metrics: MetricsConfig = MetricsConfig()
    admin: AdminConfig = AdminConfig()
    push: PushConfig = PushConfig()
    operators: Mapping[str, OperatorConfig] = field(default_factory=dict)
    profiles: Mapping[str, ProfileConfig] = field(default_factory=dict)
    accounts: Mapping[str, AccountConfig] = field(default_factory=dict)
    shortcodes: Mapping[str, ShortcodeConfig] = field(default_factory=dict)
    keywords: tuple[KeywordConfig, ...] = ()
    _account_by_digest: Mapping[str, AccountConfig] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        for name in ("operators", "profiles", "accounts", "shortcodes"):
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))
        by_digest = {
            digest: account
            for account in self.accounts.values()
            for digest in account.api_keys.digests
        }
        object.__setattr__(self, "_account_by_digest", MappingProxyType(by_digest))

    def account_for_key(self, key: str) -> AccountConfig | None:
        """The account whose API key `key` is, or None. One hash and one dict lookup: the lookup
        is by SHA-256 digest, so its timing can reveal nothing usable about the key itself."""
        return self._account_by_digest.get(_digest(key))

    def is_admin_key(self, key: str) -> bool:
        return self.admin.api_keys.matches(key)


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and validate the config file at `path`; raise ConfigError listing every problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError([f"{path}: cannot read the file: {reason}"]) from None
    return parse_config(text, path=path)


def parse_config(text: str, *, path: str | os.PathLike[str]) -> Config:
    """Validate TOML `text` as if read from `path` (relative sqlite paths start at its folder)."""
    path = Path(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: invalid TOML: {exc}"]) from None
    parser = _Parser(path.absolute())
    config = parser.parse(data)
    if parser.errors:
        raise ConfigError(parser.errors)
    return config


# --- reading one table ------------------------------------------------------------------------


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


class _Table:
    """One TOML table being read: knows its key path and which keys were asked for."""

    def __init__(self, errors: list[str], path: str, data: dict[str, Any]) -> None:
        self.errors, self.path, self.data = errors, path, data
        self.known: list[str] = []

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


# --- value converters: raw TOML value -> typed value, or _Invalid ---------------------------


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


def _defaults(cls: type) -> dict[str, Any]:
    """The field defaults of a section dataclass: the one place defaults are written."""
    return {
        f.name: f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]
        for f in fields(cls)
        if f.default is not MISSING or f.default_factory is not MISSING
    }


# --- the parser -------------------------------------------------------------------------------


_SMPP_ONLY = ("host", "port", "tls")
_SIMULATOR_ONLY = ("unreachable_prefixes", "receipt_delay", "message_id_format", "throttle_tps")


class _Parser:
    """Walks the TOML dict, building sections and collecting errors (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.errors: list[str] = []

    # -- structure

    def _table(self, path: str, value: Any) -> _Table:
        if not isinstance(value, dict):
            self.errors.append(f"{path}: must be a table, got {_show(value)}")
            value = {}
        return _Table(self.errors, path, value)

    def _named_tables(self, root: _Table, section: str) -> dict[str, _Table]:
        """[section.NAME] tables, by name."""
        raw = root.get(section, lambda v: v, {})
        if not isinstance(raw, dict):
            root.error(section, f"must be a table of [{section}.NAME] tables, got {_show(raw)}")
            return {}
        tables = {}
        for name, value in raw.items():
            if not re.fullmatch(_NAME, name):
                self.errors.append(
                    f"{section}.{name}: a name must be 1-64 letters, digits, '_' or '-'"
                )
            tables[name] = self._table(f"{section}.{name}", value)
        return tables

    def _array_tables(self, root: _Table, section: str) -> list[_Table]:
        """[[section]] tables, in order."""
        raw = root.get(section, lambda v: v, [])
        if not isinstance(raw, list):
            root.error(section, f"must be an array of tables ([[{section}]]), got {_show(raw)}")
            return []
        return [self._table(f"{section}[{i}]", value) for i, value in enumerate(raw)]

    # -- the whole file

    def parse(self, data: dict[str, Any]) -> Config:
        root = _Table(self.errors, "", data)
        gateway_t = self._table("gateway", root.get("gateway", lambda v: v, {}))
        gateway = self._gateway(gateway_t)
        store = self._store(self._table("store", root.get("store", lambda v: v, {})))
        http = HttpConfig(listen=self._listen_section(root, "http", HttpConfig().listen))
        metrics = MetricsConfig(
            listen=self._listen_section(root, "metrics", MetricsConfig().listen)
        )
        admin_t = self._table("admin", root.get("admin", lambda v: v, {}))
        admin = AdminConfig(api_keys=KeySet(frozenset(
            admin_t.get("api_keys", _list(_api_key, unique=True), ())
        )))
        admin_t.finish()
        push = self._push(self._table("push", root.get("push", lambda v: v, {})))

        operators = {n: self._operator(n, t)
                     for n, t in self._named_tables(root, "operators").items()}
        if not operators and isinstance(data.get("operators", {}), dict):
            self.errors.append("operators: at least one [operators.NAME] is required")
        profiles = {n: self._profile(n, t, operators)
                    for n, t in self._named_tables(root, "profiles").items()}
        if not profiles and isinstance(data.get("profiles", {}), dict):
            self.errors.append("profiles: at least one [profiles.NAME] is required")
        first_profile = next(iter(profiles), "")
        if not gateway.reply_profile:
            gateway = replace(gateway, reply_profile=first_profile)
        elif profiles and gateway.reply_profile not in profiles:
            gateway_t.error("reply_profile", f"unknown profile {_quote(gateway.reply_profile)}")

        account_tables = self._named_tables(root, "accounts")
        accounts = {n: self._account(n, t, gateway, profiles, first_profile)
                    for n, t in account_tables.items()}
        shortcodes = self._shortcodes(self._array_tables(root, "shortcodes"))
        keyword_tables = self._array_tables(root, "keywords")
        keywords = [self._keyword(t) for t in keyword_tables]

        self._check_keywords(keywords, keyword_tables, accounts, shortcodes)
        self._check_accounts(accounts, account_tables, keywords, shortcodes)
        self._check_keys(account_tables, admin_t)
        root.finish()
        return Config(
            path=self.path,
            gateway=gateway,
            store=store,
            http=http,
            metrics=metrics,
            admin=admin,
            push=push,
            operators=operators,
            profiles=profiles,
            accounts=accounts,
            shortcodes={s.number: s for s in shortcodes},
            keywords=tuple(keywords),
        )

    # -- sections

    def _gateway(self, t: _Table) -> GatewayConfig:
        d = _defaults(GatewayConfig)
        gateway = GatewayConfig(
            node=t.get("node", _string(pattern=r"[A-Za-z0-9_.-]{1,64}",
                                       what="1-64 letters, digits, '.', '_' or '-'"), d["node"]),
            default_sender=t.get("default_sender", _sender, d["default_sender"]),
            max_parts_cap=t.get("max_parts_cap", _integer(1, 255), d["max_parts_cap"]),
            retention_days=t.get("retention_days", _integer(1), d["retention_days"]),
            receipt_timeout=t.get("receipt_timeout", _duration(), d["receipt_timeout"]),
            reply_profile=t.get("reply_profile", _NONEMPTY, d["reply_profile"]),
            lease=t.get("lease", _duration(), d["lease"]),
            processes=t.get("processes", _processes, d["processes"]),
        )
        t.finish()
        return gateway

    def _store(self, t: _Table) -> StoreConfig:
        d = _defaults(StoreConfig)
        url = t.get("url", _string(), d["url"])
        sqlite_path = None
        if url.startswith("sqlite:"):
            if not url.startswith("sqlite:///") or url == "sqlite:///":
                t.error("url", f'must be "sqlite:///relative/path" or "sqlite:////absolute/path", '
                               f"got {_show(url)}")
            else:
                written = Path(url[len("sqlite:///"):])
                folder = self.path.parent
                sqlite_path = Path(os.path.normpath(folder / written))
        elif not url.startswith(("postgresql://", "postgres://")):
            t.error("url", f'must start with "sqlite:///" or "postgresql://", got {_show(url)}')
        store = StoreConfig(
            url=url,
            sqlite_path=sqlite_path,
            auto_upgrade=t.get("auto_upgrade", _boolean, d["auto_upgrade"]),
        )
        t.finish()
        return store

    def _listen_section(self, root: _Table, section: str, default: ListenAddress
                        ) -> ListenAddress:
        t = self._table(section, root.get(section, lambda v: v, {}))
        listen = t.get("listen", _listen, default)
        t.finish()
        return listen

    def _push(self, t: _Table) -> PushConfig:
        d = _defaults(PushConfig)
        push = PushConfig(
            timeout=t.get("timeout", _duration(), d["timeout"]),
            retry_for=t.get("retry_for", _duration(allow_zero=True), d["retry_for"]),
        )
        t.finish()
        return push

    def _operator(self, name: str, t: _Table) -> OperatorConfig:
        d = _defaults(OperatorConfig)
        kinds = ("smpp", "simulated")
        kind = t.get("type", _string(choices=kinds), d["type"])
        if t.data.get("type", kind) not in kinds:
            # Which keys belong depends on the type: say nothing more until the type is right.
            t.known.extend(t.data)
            return OperatorConfig(name=name)
        smpp = kind == "smpp"
        if smpp:
            t.reject(_SIMULATOR_ONLY, 'only for type = "simulated"')
            host = t.get("host", _string(pattern=r"\S+", what="a host name or address"))
            port = t.get("port", _integer(1, 65535), SMPP_PORT)
            tls = t.get("tls", _boolean, d["tls"])
            credential = _REQUIRED
        else:
            t.reject(_SMPP_ONLY, 'only for type = "smpp"')
            host, port, tls, credential = None, None, False, ""
        session = dict(
            system_id=t.get("system_id", _string(max_length=15), credential),
            password=t.get("password", _string(max_length=8), credential),
            system_type=t.get("system_type", _string(max_length=12), d["system_type"]),
            bind=t.get("bind", _string(choices=("transceiver", "transmitter+receiver")), d["bind"]),
            binds=t.get("binds", _integer(1), d["binds"]),
            window=t.get("window", _integer(1), d["window"]),
            tps=t.get("tps", _integer(0), d["tps"]),
            enquire_link=t.get("enquire_link", _duration(), d["enquire_link"]),
            receipt_id_format=t.get(
                "receipt_id_format", _string(choices=("auto", "hex", "dec", "as-is")),
                d["receipt_id_format"],
            ),
            latin1=t.get("latin1", _boolean, d["latin1"]),
            packed_gsm=t.get("packed_gsm", _boolean, d["packed_gsm"]),
            cost=t.get("cost", _prefix_table, d["cost"]),
        )
        simulator = {}
        if not smpp:
            simulator = dict(
                unreachable_prefixes=t.get("unreachable_prefixes", _list(_DIGITS, unique=True), ()),
                receipt_delay=t.get(
                    "receipt_delay", _duration(allow_zero=True), d["receipt_delay"]
                ),
                message_id_format=t.get(
                    "message_id_format", _string(choices=("hex", "dec")), d["message_id_format"]
                ),
                throttle_tps=t.get("throttle_tps", _integer(0), d["throttle_tps"]),
            )
        t.finish()
        return OperatorConfig(name=name, type=kind, host=host, port=port, tls=tls,
                              **session, **simulator)

    def _profile(self, name: str, t: _Table, operators: Mapping[str, OperatorConfig]
                 ) -> ProfileConfig:
        names = t.get("operators", _list(_NONEMPTY, unique=True, non_empty=True)) or ()
        for index, operator in enumerate(names):
            if operator not in operators:
                t.error(f"operators[{index}]", f"unknown operator {_quote(operator)}")
        t.finish()
        return ProfileConfig(name=name, operators=names)

    def _shortcodes(self, tables: list[_Table]) -> list[ShortcodeConfig]:
        d = _defaults(ShortcodeConfig)
        reply = _template(MO_PLACEHOLDERS)
        stop_reply = _template(("account",) + MO_PLACEHOLDERS)
        words = _list(_WORD, unique=True, casefold=True)
        result, numbers = [], set()
        for t in tables:
            number = t.get("number", _DIGITS)
            if number is not None and number in numbers:
                t.error("number", f"shortcode {number} is already configured")
            numbers.add(number)
            result.append(ShortcodeConfig(
                number=number or "",
                unknown_keyword_reply=t.get("unknown_keyword_reply", reply, None),
                stop_words=t.get("stop_words", words, d["stop_words"]),
                stop_reply=t.get("stop_reply", stop_reply, d["stop_reply"]),
                monthly_cap_per_phone=t.get("monthly_cap_per_phone", _money, None),
                cap_reply=t.get("cap_reply", reply, d["cap_reply"]),
            ))
            t.finish()
        return result

    def _keyword(self, t: _Table) -> KeywordConfig:
        template = _template(MO_PLACEHOLDERS)
        keyword = KeywordConfig(
            shortcode=t.get("shortcode", _DIGITS) or "",
            keyword=t.get("keyword", _WORD) or "",
            aliases=t.get("aliases", _list(_WORD, unique=True, casefold=True), ()),
            account=t.get("account", _NONEMPTY) or "",
            url=t.get("url", _url, None),
            price=t.get("price", _money, Decimal(0)),
            unavailable_reply=t.get("unavailable_reply", template, None),
            reply=t.get("reply", template, None),
        )
        if keyword.url is not None and keyword.reply is not None:
            t.error("reply", "cannot be combined with url (a pushed MO is answered by the backend)")
        t.finish()
        return keyword

    def _account(self, name: str, t: _Table, gateway: GatewayConfig,
                 profiles: Mapping[str, ProfileConfig], first_profile: str) -> AccountConfig:
        d = _defaults(AccountConfig)
        keys = t.get("api_keys", _list(_api_key, unique=True), ())
        senders = t.get("senders", _list(_sender, unique=True, max_items=MAX_SENDERS), ())
        default_sender = t.get("default_sender", _sender, None)
        if default_sender is not None and senders and default_sender not in senders:
            t.error("default_sender",
                    f"{_quote(default_sender)} is not one of the account's senders")
        profile = t.get("profile", _NONEMPTY, first_profile)
        if profile and profiles and profile not in profiles:
            t.error("profile", f"unknown profile {_quote(profile)}")
        cap = gateway.max_parts_cap
        max_parts = t.get("max_parts", _integer(1), cap)
        if max_parts > cap:
            t.error("max_parts", f"{max_parts} is above gateway.max_parts_cap ({cap})")
        account = AccountConfig(
            name=name,
            api_keys=KeySet(frozenset(keys)),
            senders=senders,
            default_sender=default_sender,
            profile=profile,
            max_parts=max_parts,
            billing=t.get("billing", _string(choices=("prepaid", "postpaid")), d["billing"]),
            balance=t.get("balance", _money, d["balance"]),
            prices=t.get("prices", _prefix_table, d["prices"]),
            callback_url=t.get("callback_url", _url, None),
            callback_statuses=t.get("callback_statuses", _callback_statuses, d["callback_statuses"]),
            callback_batch=t.get("callback_batch", _integer(1, 1000), d["callback_batch"]),
            callback_linger=t.get("callback_linger", _duration(allow_zero=True), d["callback_linger"]),
            secret=t.get("secret", _string(allow_empty=False), None),
            approved_domains=tuple(
                domain.lower() for domain in
                t.get("approved_domains", _list(_DOMAIN, unique=True, casefold=True), ())
            ),
            daily_volume_limit=t.get("daily_volume_limit", _integer(1), None),
            tps=t.get("tps", _integer(0), d["tps"]),
        )
        t.finish()
        return account

    # -- references between sections

    def _check_keywords(self, keywords: list[KeywordConfig], tables: list[_Table],
                        accounts: Mapping[str, AccountConfig],
                        shortcodes: list[ShortcodeConfig]) -> None:
        by_number = {s.number: s for s in shortcodes}
        used: dict[tuple[str, str], str] = {}  # (shortcode, word) -> where it was first used
        for index, (keyword, t) in enumerate(zip(keywords, tables)):
            if keyword.account and keyword.account not in accounts:
                t.error("account", f"unknown account {_quote(keyword.account)}")
            shortcode = by_number.get(keyword.shortcode)
            if keyword.shortcode and shortcode is None:
                t.error("shortcode", f"unknown shortcode {_quote(keyword.shortcode)}")
            stop_words = {w.casefold() for w in shortcode.stop_words} if shortcode else set()
            words = [("keyword", keyword.keyword)]
            words += [(f"aliases[{i}]", alias) for i, alias in enumerate(keyword.aliases)]
            for key, word in words:
                if not word:
                    continue
                token = (keyword.shortcode, word.casefold())
                if token[1] in stop_words:
                    t.error(key, f"{_quote(word)} is a stop word of shortcode {keyword.shortcode}")
                elif token in used:
                    t.error(key, f"{_quote(word)} is already used on shortcode "
                                 f"{keyword.shortcode} by {used[token]}")
                else:
                    used[token] = f"keywords[{index}]"

    def _check_accounts(self, accounts: Mapping[str, AccountConfig], tables: Mapping[str, _Table],
                        keywords: list[KeywordConfig], shortcodes: list[ShortcodeConfig]) -> None:
        numbers = {s.number for s in shortcodes}
        for name, account in accounts.items():
            t = tables[name]
            own = [k for k in keywords if k.account == name]
            for index, sender in enumerate(account.senders):
                if sender in numbers and not any(k.shortcode == sender for k in own):
                    t.error(f"senders[{index}]",
                            f"shortcode {sender} has no keyword of this account")
            if account.secret is None and (account.callback_url or any(k.url for k in own)):
                t.error("secret", "is required: pushes to this account (callback_url or a "
                                  "keyword url) are signed with it")

    def _check_keys(self, accounts: Mapping[str, _Table], admin: _Table) -> None:
        """An API key belongs to one account, and an admin key to no account."""
        owner: dict[str, str] = {}
        for name, table in accounts.items():
            for index, digest in _digests(table):
                if owner.setdefault(digest, name) != name:
                    table.error(f"api_keys[{index}]",
                                f"is also an API key of account {_quote(owner[digest])}")
        for index, digest in _digests(admin):
            if digest in owner:
                admin.error(f"api_keys[{index}]",
                            f"is also an API key of account {_quote(owner[digest])}")


def _digests(table: _Table) -> list[tuple[int, str]]:
    """(index, digest) of each valid entry of the table's api_keys (the rest are reported
    where the keys are read)."""
    raw = table.data.get("api_keys")
    result = []
    for index, value in enumerate(raw if isinstance(raw, list) else []):
        try:
            result.append((index, _api_key(value)))
        except _Invalid:
            pass
    return result
