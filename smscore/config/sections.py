"""The section readers: one function per section of the file, from its `_Table` to its dataclass.

Why: each section's rules (which keys it has, which converter reads each, which keys exclude
each other) are read in one function, with the dataclass's own defaults (`_defaults`), so what a
section accepts is found in one place. References to other sections are checked here only when
the section needs them to build itself (profile -> operator, account -> profile, max_parts ->
gateway); the rest is `checks.py`.
"""

from __future__ import annotations

import os
from dataclasses import MISSING, fields
from decimal import Decimal
from pathlib import Path
from typing import Any, Mapping

from smscore.config.convert import (
    _DIGITS,
    _DOMAIN,
    _NONEMPTY,
    _WORD,
    _api_key,
    _boolean,
    _callback_statuses,
    _duration,
    _integer,
    _list,
    _listen,
    _money,
    _password,
    _prefix_table,
    _processes,
    _sender,
    _string,
    _template,
    _url,
)
from smscore.config.table import _REQUIRED, _quote, _show, _Table
from smscore.config.values import (
    AccountConfig,
    AccountSmppConfig,
    GatewayConfig,
    KeySet,
    KeywordConfig,
    OperatorConfig,
    ProfileConfig,
    PushConfig,
    ShortcodeConfig,
    SmppServerConfig,
    StoreConfig,
)

SMPP_PORT = 2775
MAX_SENDERS = 5
#: Placeholders a reply template may use ({account} only in a shortcode's stop_reply).
MO_PLACEHOLDERS = ("text", "payload", "from", "keyword")
_SMPP_ONLY = ("host", "port", "tls")
_SIMULATOR_ONLY = ("unreachable_prefixes", "receipt_delay", "message_id_format", "throttle_tps")


def _defaults(cls: type) -> dict[str, Any]:
    """The field defaults of a section dataclass: the one place defaults are written."""
    return {
        f.name: f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]
        for f in fields(cls)
        if f.default is not MISSING or f.default_factory is not MISSING
    }


def read_gateway(t: _Table) -> GatewayConfig:
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


def read_store(t: _Table, folder: Path) -> StoreConfig:
    d = _defaults(StoreConfig)
    url = t.get("url", _string(), d["url"])
    sqlite_path = None
    if url.startswith("sqlite:"):
        if not url.startswith("sqlite:///") or url == "sqlite:///":
            t.error("url", f'must be "sqlite:///relative/path" or "sqlite:////absolute/path", '
                           f"got {_show(url)}")
        else:
            written = Path(url[len("sqlite:///"):])
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


def read_smpp_server(t: _Table, folder: Path) -> SmppServerConfig:
    """[smpp_server] (SPEC §13): at least one listener; TLS needs its certificate and key files."""
    d = _defaults(SmppServerConfig)
    listen = t.get("listen", _listen, None)
    tls_listen = t.get("tls_listen", _listen, None)
    paths = {}
    for key in ("tls_cert", "tls_key"):
        written = t.get(key, _string(allow_empty=False), None)
        if written is None:
            paths[key] = None
            continue
        path = Path(os.path.normpath(folder / written))
        if not os.access(path, os.R_OK):
            t.error(key, f"cannot read {_quote(str(path))}")
        paths[key] = path
    if "listen" not in t.data and "tls_listen" not in t.data:
        t.error("listen", "is required (or tls_listen): the address ESMEs bind to")
    if tls_listen is not None and (paths["tls_cert"] is None or paths["tls_key"] is None):
        t.error("tls_listen", "needs tls_cert and tls_key (PEM files)")
    server = SmppServerConfig(
        listen=listen, tls_listen=tls_listen, tls_cert=paths["tls_cert"], tls_key=paths["tls_key"],
        enquire_link=t.get("enquire_link", _duration(), d["enquire_link"]),
        window=t.get("window", _integer(1, 10000), d["window"]),
    )
    t.finish()
    return server


def read_account_smpp(t: _Table) -> AccountSmppConfig:
    """[accounts.NAME.smpp]: an ESME's credentials (SMPP 3.4 sizes: system_id 15, password 8)."""
    d = _defaults(AccountSmppConfig)
    smpp = AccountSmppConfig(
        system_id=t.get("system_id", _string(allow_empty=False, max_length=15)) or "",
        password=t.get("password", _password(8)) or "",
        max_binds=t.get("max_binds", _integer(1, 1000), d["max_binds"]),
    )
    t.finish()
    return smpp


def read_push(t: _Table) -> PushConfig:
    d = _defaults(PushConfig)
    push = PushConfig(
        timeout=t.get("timeout", _duration(), d["timeout"]),
        retry_for=t.get("retry_for", _duration(allow_zero=True), d["retry_for"]),
    )
    t.finish()
    return push


def read_operator(name: str, t: _Table) -> OperatorConfig:
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


def read_profile(name: str, t: _Table, operators: Mapping[str, OperatorConfig]
                 ) -> ProfileConfig:
    names = t.get("operators", _list(_NONEMPTY, unique=True, non_empty=True)) or ()
    for index, operator in enumerate(names):
        if operator not in operators:
            t.error(f"operators[{index}]", f"unknown operator {_quote(operator)}")
    t.finish()
    return ProfileConfig(name=name, operators=names)


def read_shortcodes(tables: list[_Table]) -> list[ShortcodeConfig]:
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


def _keyword_url(value: Any) -> str:
    """A push target: an http(s) URL, or "smpp" (the account's bound ESMEs, SPEC §13)."""
    return "smpp" if value == "smpp" else _url(value)


def read_keyword(t: _Table) -> KeywordConfig:
    template = _template(MO_PLACEHOLDERS)
    keyword = KeywordConfig(
        shortcode=t.get("shortcode", _DIGITS) or "",
        keyword=t.get("keyword", _WORD) or "",
        aliases=t.get("aliases", _list(_WORD, unique=True, casefold=True), ()),
        account=t.get("account", _NONEMPTY) or "",
        url=t.get("url", _keyword_url, None),
        price=t.get("price", _money, Decimal(0)),
        unavailable_reply=t.get("unavailable_reply", template, None),
        reply=t.get("reply", template, None),
    )
    if keyword.url is not None and keyword.reply is not None:
        t.error("reply", "cannot be combined with url (a pushed MO is answered by the backend)")
    t.finish()
    return keyword


def read_account(name: str, t: _Table, gateway: GatewayConfig,
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
        smpp=_nested(t, "smpp", read_account_smpp),
    )
    t.finish()
    return account


def _nested(t: _Table, key: str, read):
    """A table inside a table (``[accounts.NAME.smpp]``) through ``read``, or None when absent."""
    value = t.get(key, lambda v: v, None)
    if value is None:
        return None
    if not isinstance(value, dict):
        t.error(key, f"must be a table, got {_show(value)}")
        return None
    return read(_Table(t.errors, t.key_path(key), value))

