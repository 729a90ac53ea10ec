"""Cross-section checks: the references and uniqueness rules that need every section built.

Why: a keyword names an account and a shortcode, an account's sender may be a shortcode, an API
key must belong to one account only; none of this can be decided while one section is read, so
it is checked once, here, after all of them are, with each error on the key path that is wrong.
"""

from __future__ import annotations

import ipaddress
from typing import Mapping

from smscore.config.convert import _api_key, _secret
from smscore.config.table import _Invalid, _quote, _Table
from smscore.config.values import (
    AccountConfig,
    KeywordConfig,
    ListenAddress,
    LookupConfig,
    OperatorConfig,
    ProfileConfig,
    ShortcodeConfig,
    SmppServerConfig,
)


def check_keywords(keywords: list[KeywordConfig], tables: list[_Table],
                   accounts: Mapping[str, AccountConfig],
                   shortcodes: list[ShortcodeConfig]) -> None:
    by_number = {s.number: s for s in shortcodes}
    used: dict[tuple[str, str], str] = {}  # (shortcode, word) -> where it was first used
    for index, (keyword, t) in enumerate(zip(keywords, tables)):
        if keyword.account and keyword.account not in accounts:
            t.error("account", f"unknown account {_quote(keyword.account)}")
        elif keyword.url == "smpp" and keyword.account and accounts[keyword.account].smpp is None:
            t.error("url", f'"smpp" needs [accounts.{keyword.account}.smpp]: the account\'s ESMEs get the MO')
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


def check_accounts(accounts: Mapping[str, AccountConfig], tables: Mapping[str, _Table],
                   keywords: list[KeywordConfig], shortcodes: list[ShortcodeConfig]) -> None:
    numbers = {s.number for s in shortcodes}
    for name, account in accounts.items():
        t = tables[name]
        own = [k for k in keywords if k.account == name]
        for index, sender in enumerate(account.senders):
            if sender in numbers and not any(k.shortcode == sender for k in own):
                t.error(f"senders[{index}]",
                        f"shortcode {sender} has no keyword of this account")
        # a secret written but unreadable ("env:NAME" unset, a bad "file:") is reported where it is
        # read: "is required" besides would send the reader to add a key that is there
        # callback_hosts written: its requests may name a callback_url of their own, pushed too
        if (account.secret is None and "secret" not in t.data
                and (account.callback_url or "callback_hosts" in t.data
                     or any(k.url and k.url != "smpp" for k in own))):
            t.error("secret", "is required: pushes to this account (callback_url, callback_hosts or a "
                              "keyword url) are signed with it")


def check_keys(accounts: Mapping[str, _Table], admin: _Table) -> None:
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
    """(index, digest) of each valid entry of the table's api_keys, secrets resolved (the rest
    are reported where the keys are read)."""
    raw = table.data.get("api_keys")
    key = _secret(_api_key, table.sources)
    result = []
    for index, value in enumerate(raw if isinstance(raw, list) else []):
        try:
            result.append((index, key(value)))
        except _Invalid:
            pass
    return result


def check_smpp_accounts(accounts: Mapping[str, AccountConfig], tables: Mapping[str, _Table],
                        server: SmppServerConfig | None) -> None:
    """An ESME's system_id names one account; credentials need a listener to bind to (SPEC §13)."""
    seen: dict[str, str] = {}
    for name, account in accounts.items():
        if account.smpp is None:
            continue
        t = tables[name]
        if server is None:
            t.error("smpp", "needs an [smpp_server] section to bind to")
        system_id = account.smpp.system_id
        if not system_id:
            continue
        if system_id in seen:
            t.error("smpp.system_id", f"{_quote(system_id)} is already the system_id of account {seen[system_id]}")
        else:
            seen[system_id] = name


def check_lookup_networks(lookup: LookupConfig | None, operators: Mapping[str, OperatorConfig],
                          tables: Mapping[str, _Table], profiles: Mapping[str, ProfileConfig]) -> None:
    """With [lookup], every operator a profile offers names the networks it reaches: an answer
    (a network) means nothing for an operator that names none (issue 14)."""
    if lookup is None:
        return
    used = {name for profile in profiles.values() for name in profile.operators}
    why = 'look-ups need the networks each operator reaches ("*" for every network)'
    for name, operator in operators.items():
        if name not in used or operator.networks:
            continue
        written = tables[name].data.get("networks")
        if written is None:
            tables[name].error("networks", f"is required with [lookup]: {why}")
        elif written == []:
            tables[name].error("networks", f"must not be empty with [lookup]: {why}")
        # else: an invalid value, already reported where it was read


def check_listeners(listeners: list[tuple[str, ListenAddress | None]], errors: list[str]) -> None:
    """No two listeners of the node on one address, each later one an error naming the earlier.

    Why: ``run`` would fail on the second with "address in use", which reads as another gateway
    holding the port; check-config must find it first, on its key (SPEC §3). The same port on the
    same host collides, and so does a wildcard host (0.0.0.0, ::: every address of the machine)
    with any host on its port; port 0 (any free port) never does. ``listeners`` are (key path,
    address or None when not configured) in the file's order; a key already in ``errors`` is left
    out, as its address is a stand-in for the one written."""
    seen: list[tuple[str, ListenAddress]] = []
    for key, address in listeners:
        if address is None or address.port == 0 or any(e.startswith(f"{key}:") for e in errors):
            continue
        clash = next(((k, a) for k, a in seen if _same_port(a, address)), None)
        if clash is None:
            seen.append((key, address))
            continue
        other, earlier = clash
        if _host(earlier.host) == _host(address.host):
            errors.append(f"{key}: the same address as {other} ({earlier})")
        else:
            wildcard = earlier if _is_wildcard(earlier.host) else address
            errors.append(f"{key}: {address} takes the port of {other} ({earlier}): {wildcard.host} "
                          f"listens on every address of the machine")


def _same_port(a: ListenAddress, b: ListenAddress) -> bool:
    """Whether listeners at ``a`` and ``b`` want the same socket address (``check_listeners``)."""
    return a.port == b.port and (_host(a.host) == _host(b.host) or _is_wildcard(a.host) or _is_wildcard(b.host))


def _host(host: str) -> str:
    """A host as one spelling: an IP address in its compressed form ("::0" is "::"), a name in
    lower case (names are not resolved: "localhost" and "127.0.0.1" stay apart)."""
    try:
        return ipaddress.ip_address(host).compressed
    except ValueError:
        return host.lower()


def _is_wildcard(host: str) -> bool:
    return _host(host) in ("0.0.0.0", "::")
