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
in one place, the dataclass fields in `values`, and are the ones SPEC §11 names.

Layout, one module for each thing done: `values` (the frozen dataclasses and value types),
`table` (reading one TOML table), `convert` (raw value -> typed value), `sections` (one reader
per section), `store_url` (a PostgreSQL URL as libpq will read it), `checks` (references between
sections) and `reader` (the whole file, `ConfigError`; `api_address`, its [http] alone).
This package re-exports the public names, so callers import from `smscore.config` only.
"""

from __future__ import annotations

from smscore.config.reader import ConfigError, api_address, load_config, parse_config
# Re-exported (not in __all__): limits the file is held to, importable from here as before.
from smscore.config.sections import MAX_SENDERS, MO_PLACEHOLDERS, SMPP_PORT  # noqa: F401
from smscore.config.values import (
    AccountConfig,
    AccountSmppConfig,
    AdminConfig,
    Config,
    GatewayConfig,
    HttpConfig,
    KeySet,
    KeywordConfig,
    ListenAddress,
    MetricsConfig,
    OperatorConfig,
    PrefixTable,
    ProfileConfig,
    PushConfig,
    ShortcodeConfig,
    SmppServerConfig,
    StoreConfig,
    hash_api_key,
)

__all__ = [
    "api_address",
    "AccountConfig",
    "AccountSmppConfig",
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
    "SmppServerConfig",
    "StoreConfig",
    "hash_api_key",
    "load_config",
    "parse_config",
]
