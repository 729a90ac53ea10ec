"""The typed, frozen values a configuration is made of: one dataclass per section and `Config`.

Why: these are what the rest of the gateway receives, so they live apart from the code that reads
TOML; a caller that only needs `OperatorConfig` or `PrefixTable` reads this module and nothing else.
The field defaults below are the documented defaults (SPEC §11), written once: the section
readers (`sections.py`) take them from here.
"""

from __future__ import annotations

import ipaddress

import hashlib
import hmac
import re
from dataclasses import dataclass, field, fields, replace
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping, NamedTuple

from policies.callbacks import ALL

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
    #: the lengths the prefixes have, longest first: a look-up (a few for every message routed)
    #: tries only those, and a flat table none
    _lengths: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index = dict(self.prefixes)
        object.__setattr__(self, "prefixes", tuple(sorted(index.items())))
        object.__setattr__(self, "_index", MappingProxyType(index))
        object.__setattr__(self, "_lengths", tuple(sorted({len(p) for p in index if p}, reverse=True)))

    @classmethod
    def flat(cls, amount: Decimal) -> PrefixTable:
        return cls((), amount)

    def lookup(self, msisdn: str) -> Decimal | None:
        # a length beyond the number slices the whole number: found only if it is a prefix itself,
        # the longest one that can start it
        for length in self._lengths:
            amount = self._index.get(msisdn[:length])
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
    max_backlog: int = 1_000_000  # queued messages of the cluster above which requests are refused (SPEC §15)


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
        """`url` with any password replaced by "***", for logs and errors (SPEC §15). Errs on the side
        of hiding: everything between the user's ":" and the last "@" goes, so a password with an
        unescaped "/" or "@" is hidden whole, and so is a libpq ``password=`` parameter."""
        scheme, sep, rest = self.url.partition("://")
        at = rest.rfind("@")
        colon = rest.find(":", 0, at) if sep and at >= 0 else -1
        if colon >= 0:
            rest = f"{rest[:colon + 1]}***{rest[at:]}"
        return re.sub(r"([?&]password=)[^&#]*", r"\1***", f"{scheme}{sep}{rest}")


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpConfig:
    """[http]: the customer and admin API."""

    listen: ListenAddress = ListenAddress("127.0.0.1", 8080)
    tls_cert: Path | None = None  # HTTPS with tls_key (SPEC §15); None: plain HTTP
    tls_key: Path | None = None
    access_log: bool = True  # one info line per API request (component "access"); applies at reload


@dataclass(frozen=True, slots=True, kw_only=True)
class SmppServerConfig:
    """[smpp_server]: the SMPP listener for customers' own ESMEs (SPEC §13); absent: none."""

    listen: ListenAddress | None = None
    tls_listen: ListenAddress | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    enquire_link: float = 30.0  # the gateway's own enquire_link to an idle session
    window: int = 100  # outstanding deliver_sm per session


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountSmppConfig:
    """[accounts.NAME.smpp]: how the account's ESMEs bind (SPEC §13)."""

    system_id: str
    password: str = field(repr=False)
    max_binds: int = 1


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
    #: networks a push may reach although they are not globally routable (SPEC §15)
    allow_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class LookupConfig:
    """[lookup]: an HLR/MNP look-up service (issue 14), asked who serves a number when the saving
    it is expected to bring is above its `cost`; absent: no look-ups.

    `url` is http(s) with the placeholder ``{number}`` once, in its path or query (the number is
    URL-quoted into it). `cost` is in the currency of the operators' `cost`; `cache` and `timeout`
    are seconds; an answer is kept `cache` seconds for at most `cache_size` numbers.
    """

    url: str = field(repr=False)  # a service's URL may carry its API key
    cost: Decimal = Decimal(0)
    cache: float = 7 * 86400.0
    cache_size: int = 100_000
    timeout: float = 2.0


@dataclass(frozen=True, slots=True, kw_only=True)
class OperatorConfig:
    """[operators.NAME]: one SMSC account, real (type "smpp") or in-process ("simulated").

    host/port/tls are None/None/False for a simulated operator; the simulator knobs
    (unreachable_prefixes, receipt_delay, message_id_format, throttle_tps) mean nothing for smpp.
    Durations are seconds; tps and throttle_tps 0 mean no limit.

    The carrier parameters (SPEC §15) are for smpp only: `hosts` holds every address of the SMSC
    in the order they are tried (from `hosts`, or host/port alone), host/port are its first; the
    TLS files are absolute paths; a TON/NPI of None is chosen per message as without them.

    `networks` names the networks this operator reaches, as the look-up service ([lookup]) names
    them (e.g. MCC-MNC "24001"); "*" is every network. Read only when [lookup] is configured.
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
    hosts: tuple[tuple[str, int], ...] = ()
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    address_range: str = ""
    service_type: str = ""
    source_ton: int | None = None
    source_npi: int | None = None
    dest_ton: int | None = None
    dest_npi: int | None = None
    validity: float | None = None
    networks: tuple[str, ...] = ()

    def bind_settings(self) -> tuple[Any, ...]:
        """Everything that shapes this operator's sessions: on reload, reconnect only when this
        changed (a change of `cost` or `networks` alone applies at once, without reconnecting)."""
        return tuple(getattr(self, f.name) for f in fields(self) if f.name not in _NOT_BIND_SETTINGS)


#: OperatorConfig fields that choose operators, not how their sessions bind
_NOT_BIND_SETTINGS = frozenset({"cost", "networks"})


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
    #: hosts a request's callback_url may name (SPEC §15); the reader fills in the default (the
    #: hosts of callback_url and of the account's keywords' urls) when the file names none
    callback_hosts: tuple[str, ...] | None = None
    #: which status events are pushed: a ``policies.callbacks`` selection ("all", "final" or
    #: status names joined by ",")
    callback_statuses: str = ALL
    callback_batch: int = 1  # events per status POST; above 1 the body is {"events": [...]}
    callback_linger: float = 0.2  # seconds the oldest event of a batch that is not full waits
    secret: str | None = field(default=None, repr=False)
    approved_domains: tuple[str, ...] = ()
    daily_volume_limit: int | None = None
    tps: int = 0
    smpp: AccountSmppConfig | None = None  # binds over SMPP (SPEC §13); None: HTTP only


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
    smpp_server: SmppServerConfig | None = None
    lookup: LookupConfig | None = None
    operators: Mapping[str, OperatorConfig] = field(default_factory=dict)
    profiles: Mapping[str, ProfileConfig] = field(default_factory=dict)
    accounts: Mapping[str, AccountConfig] = field(default_factory=dict)
    shortcodes: Mapping[str, ShortcodeConfig] = field(default_factory=dict)
    keywords: tuple[KeywordConfig, ...] = ()
    #: the TOML text this config was read from (``parse_config``): what a node's processes share
    #: as the config it runs (``smscore.running_config``)
    source: str = field(default="", repr=False, compare=False)
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

    def restart_settings(self) -> dict[str, object]:
        """The settings a reload does not apply, by key path (docs/configuration.md, "What reload
        changes"): a process runs with those it started with until a restart, so a reload compares
        the file's with these as they were at start, not with the file read before."""
        lookup = self.lookup
        return {"gateway.node": self.gateway.node, "gateway.lease": self.gateway.lease,
                "gateway.processes": self.gateway.processes, "store": self.store,
                "http.listen": self.http.listen, "metrics.listen": self.metrics.listen,
                "http.tls": (self.http.tls_cert, self.http.tls_key),  # read once, when the listener starts
                "smpp_server": self.smpp_server,
                "lookup": None if lookup is None else (lookup.url, lookup.timeout)}

    def keeping_restart_settings(self, started: Config) -> Config:
        """This config with the settings of ``restart_settings`` as ``started`` has them: what a
        process runs when it starts after reloads (a worker restarted by the supervisor) while the
        node's other processes still run with the settings they started with."""
        lookup = self.lookup
        if lookup is None or started.lookup is None:
            lookup = started.lookup
        else:
            lookup = replace(lookup, url=started.lookup.url, timeout=started.lookup.timeout)
        return replace(
            self, gateway=replace(self.gateway, node=started.gateway.node, lease=started.gateway.lease,
                                  processes=started.gateway.processes),
            store=started.store, http=replace(self.http, listen=started.http.listen, tls_cert=started.http.tls_cert,
                                              tls_key=started.http.tls_key),
            metrics=replace(self.metrics, listen=started.metrics.listen), smpp_server=started.smpp_server,
            lookup=lookup)
