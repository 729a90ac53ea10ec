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
from urllib.parse import urlsplit

from connectors.http_client import target as http_target
from connectors.tls import PemError, load_ca_bundle, load_certificate
from smscore.config.convert import (
    _DIGITS,
    _DOMAIN,
    _NONEMPTY,
    _WORD,
    _api_keys,
    _boolean,
    _callback_statuses,
    _duration,
    _host_pattern,
    _integer,
    _list,
    _listen,
    _money,
    _network,
    _password,
    _prefix_table,
    _processes,
    _secret,
    _sender,
    _smsc_address,
    _string,
    _template,
    _url,
    _validity,
)
from smscore.config.store_url import postgresql_url_problem
from smscore.config.table import _REQUIRED, _Invalid, _quote, _show, _Table
from smscore.config.values import (
    AccountConfig,
    AccountSmppConfig,
    GatewayConfig,
    HttpConfig,
    KeySet,
    KeywordConfig,
    LookupConfig,
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
#: Keys of a real SMSC: where it is, how to reach it and the SMPP fields it asks for (SPEC §15).
_SMPP_ONLY = ("host", "port", "hosts", "tls", "tls_ca", "tls_cert", "tls_key", "address_range",
              "service_type", "source_ton", "source_npi", "dest_ton", "dest_npi", "validity")
_TON_NPI = ("source_ton", "source_npi", "dest_ton", "dest_npi")
_SIMULATOR_ONLY = ("unreachable_prefixes", "receipt_delay", "message_id_format", "throttle_tps")
#: Where a look-up URL takes the number ([lookup] url).
LOOKUP_PLACEHOLDER = "{number}"
#: The longest a look-up may wait for its answer ([lookup] timeout): a message waits with it.
MAX_LOOKUP_TIMEOUT = 60.0
#: The longest retention ([gateway] retention_days), 100 years: the hourly purge counts back from
#: now, and 999999 days went before year 1, so every purge failed and nothing was ever cleaned.
MAX_RETENTION_DAYS = 36500
#: The shortest lease ([gateway] lease): a node renews its leases and its heartbeat every third of
#: it, so "1ms" kept it writing to the store without a pause, and a lease shorter than a store round
#: trip runs out before it is renewed (another node takes the work over while this one sends it).
MIN_LEASE = 1.0
#: The most sessions of one operator ([operators.NAME] binds): a node opens them all at start, and a
#: million never let it finish starting.
MAX_BINDS = 1000


def _defaults(cls: type) -> dict[str, Any]:
    """The field defaults of a section dataclass: the one place defaults are written."""
    return {
        f.name: f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]
        for f in fields(cls)
        if f.default is not MISSING or f.default_factory is not MISSING
    }


def _lease(value: Any) -> float:
    """[gateway] lease: a duration of at least ``MIN_LEASE``."""
    seconds = _duration()(value)
    if seconds < MIN_LEASE:
        raise _Invalid(f'must be at least "{MIN_LEASE:g}s" (a node renews its leases every third of it), '
                       f"got {_show(value)}")
    return seconds


def read_gateway(t: _Table) -> GatewayConfig:
    d = _defaults(GatewayConfig)
    gateway = GatewayConfig(
        node=t.get("node", _string(pattern=r"[A-Za-z0-9_.-]{1,64}",
                                   what="1-64 letters, digits, '.', '_' or '-'"), d["node"]),
        default_sender=t.get("default_sender", _sender, d["default_sender"]),
        max_parts_cap=t.get("max_parts_cap", _integer(1, 255), d["max_parts_cap"]),
        retention_days=t.get("retention_days", _integer(1, MAX_RETENTION_DAYS), d["retention_days"]),
        receipt_timeout=t.get("receipt_timeout", _duration(), d["receipt_timeout"]),
        reply_profile=t.get("reply_profile", _NONEMPTY, d["reply_profile"]),
        lease=t.get("lease", _lease, d["lease"]),
        processes=t.get("processes", _processes, d["processes"]),
        max_backlog=t.get("max_backlog", _integer(1), d["max_backlog"]),
    )
    t.finish()
    return gateway


def read_store(t: _Table, folder: Path) -> StoreConfig:
    d = _defaults(StoreConfig)
    url = t.get("url", _secret(_string(), t.sources), d["url"])
    shown = _show(StoreConfig(url=url).redacted_url)  # the password never (SPEC §15)
    sqlite_path = None
    if url.startswith("sqlite:"):
        if not url.startswith("sqlite:///") or url == "sqlite:///":
            t.error("url", f'must be "sqlite:///relative/path" or "sqlite:////absolute/path", '
                           f"got {shown}")
        else:
            written = Path(url[len("sqlite:///"):])
            sqlite_path = Path(os.path.normpath(folder / written))
    elif not url.startswith(("postgresql://", "postgres://")):
        t.error("url", f'must start with "sqlite:///" or "postgresql://", got {shown}')
    else:
        problem = postgresql_url_problem(url)
        if problem is not None:
            t.error("url", problem)
    store = StoreConfig(
        url=url,
        sqlite_path=sqlite_path,
        auto_upgrade=t.get("auto_upgrade", _boolean, d["auto_upgrade"]),
    )
    t.finish()
    return store


def read_smpp_server(t: _Table) -> SmppServerConfig:
    """[smpp_server] (SPEC §13): at least one listener; TLS needs its certificate and key files."""
    d = _defaults(SmppServerConfig)
    listen = t.get("listen", _listen, None)
    tls_listen = t.get("tls_listen", _listen, None)
    cert, key = _key_pair(t, "TLS")
    if "listen" not in t.data and "tls_listen" not in t.data:
        t.error("listen", "is required (or tls_listen): the address ESMEs bind to")
    if tls_listen is not None and cert is None:
        t.error("tls_listen", "needs tls_cert and tls_key (PEM files)")
    server = SmppServerConfig(
        listen=listen, tls_listen=tls_listen, tls_cert=cert, tls_key=key,
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
        password=t.get("password", _secret(_password(8), t.sources)) or "",
        max_binds=t.get("max_binds", _integer(1, 1000), d["max_binds"]),
    )
    t.finish()
    return smpp


def read_push(t: _Table) -> PushConfig:
    d = _defaults(PushConfig)
    push = PushConfig(
        timeout=t.get("timeout", _duration(), d["timeout"]),
        retry_for=t.get("retry_for", _duration(allow_zero=True), d["retry_for"]),
        allow_networks=t.get("allow_networks", _list(_network, unique=True), d["allow_networks"]),
    )
    t.finish()
    return push


def _lookup_url(value: Any) -> str:
    """[lookup] url: an http(s) URL (``_url``'s rules) with ``{number}`` exactly once, in its path or
    query, that the look-up connector can request (``connectors.http_client.target``)."""
    url = _url(value)
    count = url.count(LOOKUP_PLACEHOLDER)
    if count != 1:
        found = "none" if count == 0 else f"{count}"
        raise _Invalid(f"must contain {LOOKUP_PLACEHOLDER} exactly once (where the number goes), "
                       f"found {found} in {_show(url)}")
    parts = urlsplit(url)
    if LOOKUP_PLACEHOLDER not in parts.path + parts.query:
        raise _Invalid(f"must have {LOOKUP_PLACEHOLDER} in its path or query, got {_show(url)}")
    if http_target(url.replace(LOOKUP_PLACEHOLDER, "0")) is None:
        raise _Invalid(f"is not a URL the look-up can request, got {_show(url)}")
    return url


def _lookup_timeout(value: Any) -> float:
    """[lookup] timeout: a duration above zero and at most ``MAX_LOOKUP_TIMEOUT``."""
    seconds = _duration()(value)
    if seconds > MAX_LOOKUP_TIMEOUT:
        raise _Invalid(f"must be at most {MAX_LOOKUP_TIMEOUT:g}s (a message waits for the answer), "
                       f"got {_show(value)}")
    return seconds


def read_lookup(t: _Table) -> LookupConfig:
    """[lookup] (issue 14): the HLR/MNP look-up service, its price and how long answers are kept."""
    d = _defaults(LookupConfig)
    lookup = LookupConfig(
        url=t.get("url", _lookup_url) or "",
        cost=t.get("cost", _money, d["cost"]),
        cache=t.get("cache", _duration(allow_zero=True), d["cache"]),
        cache_size=t.get("cache_size", _integer(1, 10_000_000), d["cache_size"]),
        timeout=t.get("timeout", _lookup_timeout, d["timeout"]),
    )
    t.finish()
    return lookup


#: An operator's ``networks`` entry: a network as the look-up service names it, or "*" (every one).
_NETWORK_NAME = _string(pattern=r"[A-Za-z0-9._-]{1,32}|\*",
                        what='1-32 letters, digits, ".", "_" or "-" (a network such as "24001"), or "*"')


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
        hosts = _smsc_addresses(t)
        tls = t.get("tls", _boolean, d["tls"])
        carrier = _carrier_fields(t, d) | _tls_files(t, tls)
        credential = _REQUIRED
    else:
        t.reject(_SMPP_ONLY, 'only for type = "smpp"')
        hosts, tls, carrier, credential = (), False, {}, ""
    host, port = hosts[0] if hosts else (None, None)
    session = dict(
        system_id=t.get("system_id", _string(max_length=15), credential),
        password=t.get("password", _secret(_password(8, allow_empty=True), t.sources), credential),
        system_type=t.get("system_type", _string(max_length=12), d["system_type"]),
        bind=t.get("bind", _string(choices=("transceiver", "transmitter+receiver")), d["bind"]),
        binds=t.get("binds", _integer(1, MAX_BINDS), d["binds"]),
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
        networks=t.get("networks", _list(_NETWORK_NAME, unique=True), d["networks"]),
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
    return OperatorConfig(name=name, type=kind, host=host, port=port, hosts=hosts, tls=tls,
                          **session, **simulator, **carrier)


def _smsc_addresses(t: _Table) -> tuple[tuple[str, int], ...]:
    """Where the SMSC is: host and port, or ``hosts``, every address tried in turn; not both,
    so no reader has to guess where host:port would go among the alternates."""
    if "hosts" not in t.data:
        host = t.get("host", _string(pattern=r"\S+", what="a host name or address"))
        port = t.get("port", _integer(1, 65535), SMPP_PORT)
        t.known.append("hosts")
        return ((host, port),) if host is not None else ()
    for key in ("host", "port"):
        t.known.append(key)
        if key in t.data:
            t.error(key, "cannot be combined with hosts: list every address in hosts")
    return t.get("hosts", _list(_smsc_address, unique=True, non_empty=True)) or ()


def _carrier_fields(t: _Table, d: dict[str, Any]) -> dict[str, Any]:
    """The SMPP fields an operator asks for (SPEC §15), sizes as SMPP 3.4 allows them; a TON or
    NPI left out is chosen per message, as without it."""
    asked = dict(
        address_range=t.get("address_range", _string(max_length=40), d["address_range"]),
        service_type=t.get("service_type", _string(max_length=5), d["service_type"]),
        validity=t.get("validity", _validity, d["validity"]),
    )
    return asked | {key: t.get(key, _integer(0, 255), d[key]) for key in _TON_NPI}


def _tls_files(t: _Table, tls: bool) -> dict[str, Path | None]:
    """tls_ca, tls_cert and tls_key of an operator (SPEC §15): only with tls = true, a certificate
    with its key (``_key_pair``); the CA bundle loaded as the link will load it."""
    written = t.get("tls_ca", _string(allow_empty=False), None)
    ca = None if written is None else Path(os.path.normpath(t.sources.folder / written))
    if not tls:
        cert, key = (t.get(k, _string(allow_empty=False), None) for k in ("tls_cert", "tls_key"))
        for name, path in (("tls_ca", ca), ("tls_cert", cert), ("tls_key", key)):
            if path is not None:
                t.error(name, "needs tls = true")
        return {"tls_ca": None, "tls_cert": None, "tls_key": None}
    if ca is not None:
        _loads(t, load_ca_bundle, ca)
    cert, key = _key_pair(t, "a client certificate")
    return {"tls_ca": ca, "tls_cert": cert, "tls_key": key}


def _key_pair(t: _Table, what: str) -> tuple[Path | None, Path | None]:
    """``tls_cert`` and ``tls_key`` (SPEC §13, §15): paths from the file's folder, both or neither,
    loaded as the listener or link will load them (so a pair the check passes is one they can
    use), the key readable by the gateway only."""
    cert, key = (None if w is None else Path(os.path.normpath(t.sources.folder / w))
                 for w in (t.get(k, _string(allow_empty=False), None) for k in ("tls_cert", "tls_key")))
    if (cert is None) != (key is None):
        missing, given = ("tls_key", "tls_cert") if key is None else ("tls_cert", "tls_key")
        t.error(missing, f"is required with {given}: {what} needs both")
        return None, None
    if key is not None:
        mode = key.stat().st_mode & 0o777 if key.exists() else 0
        if mode & 0o077:
            t.error("tls_key", f"{_quote(str(key))} may be read by group or others (mode {mode:o}): "
                               "it must be readable by the gateway only, chmod 600 it")
        _loads(t, load_certificate, cert, key)
    return cert, key


def read_http(t: _Table) -> HttpConfig:
    """[http]: the API's listener, HTTPS with ``tls_cert`` and ``tls_key`` (SPEC §15), its access log."""
    listen = t.get("listen", _listen, HttpConfig().listen)
    cert, key = _key_pair(t, "HTTPS")
    access_log = t.get("access_log", _boolean, HttpConfig().access_log)
    t.finish()
    return HttpConfig(listen=listen, tls_cert=cert, tls_key=key, access_log=access_log)


def _loads(t: _Table, load, *paths: Path) -> None:
    """Load TLS files as the link does; what fails is reported on the key of the file at fault."""
    try:
        load(*paths)
    except PemError as exc:
        t.error(f"tls_{exc.which}", str(exc))


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
    keys = t.get("api_keys", _api_keys(t.sources), ())
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
        callback_hosts=t.get("callback_hosts", _list(_host_pattern, unique=True, casefold=True), None),
        callback_statuses=t.get("callback_statuses", _callback_statuses, d["callback_statuses"]),
        callback_batch=t.get("callback_batch", _integer(1, 1000), d["callback_batch"]),
        callback_linger=t.get("callback_linger", _duration(allow_zero=True), d["callback_linger"]),
        secret=t.get("secret", _secret(_password(), t.sources), None),
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
    return read(t.child(key, value))

