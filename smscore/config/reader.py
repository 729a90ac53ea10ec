"""Reading the whole file: `load_config`/`parse_config`, the walk over its sections, `ConfigError`.

Why: this is the one entry point from TOML text to a `Config`; it knows the file's structure
(which sections, in which order, [section.NAME] and [[section]] tables) and leaves each section's
rules to `sections.py` and the rules between sections to `checks.py`.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping

from policies.callback_urls import default_hosts
from smscore.config.checks import (
    check_accounts,
    check_keys,
    check_keywords,
    check_listeners,
    check_lookup_networks,
    check_smpp_accounts,
)
from smscore.config.convert import _NAME, _api_keys, _listen, _string
from smscore.config.sections import (
    read_account,
    read_gateway,
    read_http,
    read_keyword,
    read_lookup,
    read_operator,
    read_profile,
    read_push,
    read_shortcodes,
    read_smpp_server,
    read_store,
)
from smscore.config.table import _quote, _show, _Sources, _Table
from smscore.config.values import (
    AccountConfig,
    AdminConfig,
    Config,
    HttpConfig,
    KeySet,
    KeywordConfig,
    ListenAddress,
    MetricsConfig,
    SmppServerConfig,
)


class ConfigError(Exception):
    """The configuration is not valid. `errors` lists every problem, each starting with its key
    path (`operators.telia.window: must be an integer >= 1, got "ten"`)."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = list(errors)


def load_config(path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate the config file at `path`; raise ConfigError listing every problem.
    `environ` is where "env:NAME" secrets are read (default: this process's environment)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError([f"{path}: cannot read the file: {reason}"]) from None
    return parse_config(text, path=path, environ=environ)


def api_address(path: str | os.PathLike[str]) -> tuple[ListenAddress, Path | None]:
    """Where the API of the gateway run with the config at ``path`` listens, and the certificate
    it serves (HTTPS) or None: its ``[http]`` section alone, for the ``smsgw`` commands that call a
    running gateway. They read no more of the file, so they need none of its secrets (an
    "env:NAME" the caller's shell does not have) nor the right to read its key file."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError([f"{path}: cannot read the file: {reason}"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: invalid TOML: {exc}"]) from None
    errors: list[str] = []
    http = data.get("http", {})
    if not isinstance(http, dict):
        raise ConfigError([f"http: must be a table, got {_show(http)}"])
    t = _Table(errors, "http", http, _Sources(os.environ, path.absolute().parent))
    listen = t.get("listen", _listen, HttpConfig().listen)
    cert = t.get("tls_cert", _string(allow_empty=False), None)
    if errors:
        raise ConfigError(errors)
    return listen, None if cert is None else Path(os.path.normpath(t.sources.folder / cert))


def parse_config(text: str, *, path: str | os.PathLike[str],
                 environ: Mapping[str, str] | None = None) -> Config:
    """Validate TOML `text` as if read from `path` (relative sqlite and "file:" paths start at its
    folder), reading "env:NAME" secrets from `environ` (default: this process's environment)."""
    path = Path(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: invalid TOML: {exc}"]) from None
    path = path.absolute()
    parser = _Parser(path, _Sources(os.environ if environ is None else environ, path.parent))
    config = parser.parse(data)
    if parser.errors:
        raise ConfigError(parser.errors)
    object.__setattr__(config, "source", text)
    return config


class _Parser:
    """Walks the TOML dict, building sections and collecting errors (see the package docstring)."""

    def __init__(self, path: Path, sources: _Sources) -> None:
        self.path, self.sources = path, sources
        self.errors: list[str] = []

    # -- structure

    def _table(self, path: str, value: Any) -> _Table:
        if not isinstance(value, dict):
            self.errors.append(f"{path}: must be a table, got {_show(value)}")
            value = {}
        return _Table(self.errors, path, value, self.sources)

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

    def _listen_section(self, root: _Table, section: str, default: ListenAddress
                        ) -> ListenAddress:
        t = self._table(section, root.get(section, lambda v: v, {}))
        listen = t.get("listen", _listen, default)
        t.finish()
        return listen

    # -- the whole file

    def parse(self, data: dict[str, Any]) -> Config:
        root = _Table(self.errors, "", data, self.sources)
        gateway_t = self._table("gateway", root.get("gateway", lambda v: v, {}))
        gateway = read_gateway(gateway_t)
        store = read_store(
            self._table("store", root.get("store", lambda v: v, {})), self.path.parent
        )
        http = read_http(self._table("http", root.get("http", lambda v: v, {})))
        metrics = MetricsConfig(
            listen=self._listen_section(root, "metrics", MetricsConfig().listen)
        )
        admin_t = self._table("admin", root.get("admin", lambda v: v, {}))
        admin = AdminConfig(api_keys=KeySet(frozenset(
            admin_t.get("api_keys", _api_keys(admin_t.sources), ())
        )))
        admin_t.finish()
        push = read_push(self._table("push", root.get("push", lambda v: v, {})))
        smpp_server = None
        if "smpp_server" in data:
            smpp_server = read_smpp_server(self._table("smpp_server", root.get("smpp_server", lambda v: v)))
        lookup = None
        if "lookup" in data:
            written = root.get("lookup", lambda v: v)
            lookup_t = self._table("lookup", written)  # not a table: that one error, not also "url is required"
            lookup = read_lookup(lookup_t) if isinstance(written, dict) else None

        operator_tables = self._named_tables(root, "operators")
        operators = {n: read_operator(n, t) for n, t in operator_tables.items()}
        if not operators and isinstance(data.get("operators", {}), dict):
            self.errors.append("operators: at least one [operators.NAME] is required")
        profiles = {n: read_profile(n, t, operators)
                    for n, t in self._named_tables(root, "profiles").items()}
        if not profiles and isinstance(data.get("profiles", {}), dict):
            self.errors.append("profiles: at least one [profiles.NAME] is required")
        first_profile = next(iter(profiles), "")
        if not gateway.reply_profile:
            gateway = replace(gateway, reply_profile=first_profile)
        elif profiles and gateway.reply_profile not in profiles:
            gateway_t.error("reply_profile", f"unknown profile {_quote(gateway.reply_profile)}")

        account_tables = self._named_tables(root, "accounts")
        accounts = {n: read_account(n, t, gateway, profiles, first_profile)
                    for n, t in account_tables.items()}
        shortcodes = read_shortcodes(self._array_tables(root, "shortcodes"))
        keyword_tables = self._array_tables(root, "keywords")
        keywords = [read_keyword(t) for t in keyword_tables]

        check_keywords(keywords, keyword_tables, accounts, shortcodes)
        check_accounts(accounts, account_tables, keywords, shortcodes)
        check_keys(account_tables, admin_t)
        check_smpp_accounts(accounts, account_tables, smpp_server)
        check_lookup_networks(lookup, operators, operator_tables, profiles)
        server = smpp_server or SmppServerConfig()
        check_listeners([("http.listen", http.listen), ("metrics.listen", metrics.listen),
                         ("smpp_server.listen", server.listen),
                         ("smpp_server.tls_listen", server.tls_listen)], self.errors)
        accounts = {n: _with_callback_hosts(a, keywords) for n, a in accounts.items()}
        root.finish()
        return Config(
            path=self.path,
            gateway=gateway,
            store=store,
            http=http,
            metrics=metrics,
            admin=admin,
            push=push,
            smpp_server=smpp_server,
            lookup=lookup,
            operators=operators,
            profiles=profiles,
            accounts=accounts,
            shortcodes={s.number: s for s in shortcodes},
            keywords=tuple(keywords),
        )


def _with_callback_hosts(account: AccountConfig, keywords: list[KeywordConfig]) -> AccountConfig:
    """The account with its ``callback_hosts`` settled: as written, else SPEC §15's default."""
    if account.callback_hosts is not None:
        return account
    urls = [k.url for k in keywords if k.account == account.name]
    return replace(account, callback_hosts=default_hosts(account.callback_url, urls))
