"""The configuration: the shipped files load, SPEC §11 defaults, each error names its key path."""

from __future__ import annotations

import dataclasses
import hashlib
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smscore.config import (
    SmppServerConfig,
    Config,
    ConfigError,
    KeySet,
    ListenAddress,
    PrefixTable,
    hash_api_key,
    load_config,
    parse_config,
)
from smscore.durations import DurationError, parse_duration
from tests.certs import TestCA

REPO = Path(__file__).resolve().parents[2]

# The smallest valid file; error cases append to it.
BASE = """
[operators.sim]
type = "simulated"

[profiles.standard]
operators = ["sim"]
"""

SMPP = """
type = "smpp"
host = "smsc.example"
system_id = "acme"
password = "secret"
"""

MO = """
[accounts.acme]
api_keys = ["acme-key"]

[[shortcodes]]
number = "72550"
"""


def parse(text: str, folder: Path = Path("/etc/smsgw")) -> Config:
    return parse_config(text, path=folder / "gateway.toml")


def errors_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse(text)
    assert str(caught.value) == "\n".join(caught.value.errors)
    return caught.value.errors


# --- the shipped files --------------------------------------------------------------------------


def test_shipped_gateway_toml_loads() -> None:
    config = load_config(REPO / "etc" / "gateway.toml")

    assert config.path == REPO / "etc" / "gateway.toml"
    assert config.store.url == "sqlite:///../var/smsgw.db"
    assert config.store.sqlite_path == REPO / "var" / "smsgw.db"
    assert config.http.listen == ListenAddress("127.0.0.1", 8080)
    assert config.metrics.listen == ListenAddress("127.0.0.1", 9100)
    assert config.is_admin_key("ops-secret") is True
    assert list(config.operators) == ["sim_a", "sim_b"]
    sim_a, sim_b = config.operators["sim_a"], config.operators["sim_b"]
    assert (sim_a.type, sim_b.type) == ("simulated", "simulated")
    assert sim_a.cost.lookup("46701234567") == Decimal("0.10")
    assert sim_b.cost.lookup("46701234567") == Decimal("0.20")
    assert sim_a.unreachable_prefixes == ("4670999",)
    assert sim_b.unreachable_prefixes == ()
    assert (sim_a.receipt_delay, sim_b.receipt_delay) == (0.2, 0.2)
    assert config.profiles["standard"].operators == ("sim_a", "sim_b")
    assert config.profiles["best"].operators == ("sim_a", "sim_b")
    demo = config.account_for_key("demo-key")
    assert demo is config.accounts["demo"]
    assert demo.senders == ("DEMO", "72550")
    assert demo.billing == "postpaid"
    assert list(config.shortcodes) == ["72550"]
    (keyword,) = config.keywords
    assert (keyword.shortcode, keyword.keyword, keyword.account) == ("72550", "DEMO", "demo")
    assert keyword.reply == "You said: {payload}"
    assert keyword.url is None


def test_shipped_example_loads_with_every_spec_value() -> None:
    config = load_config(REPO / "etc" / "gateway.example.toml")
    assert config.smpp_server == SmppServerConfig(listen=ListenAddress("127.0.0.1", 2775), enquire_link=30.0,
                                                  window=100)
    acme_smpp = config.accounts["acme"].smpp
    assert (acme_smpp.system_id, acme_smpp.password, acme_smpp.max_binds) == ("acme", "s3cret", 4)

    g = config.gateway
    assert (g.node, g.default_sender, g.max_parts_cap, g.retention_days) == ("gw1", "SMSGW", 3, 60)
    assert (g.receipt_timeout, g.reply_profile, g.lease) == (259200.0, "standard", 30.0)
    assert config.store.sqlite_path == REPO / "etc" / "smsgw.db"
    assert (config.push.timeout, config.push.retry_for) == (10.0, 86400.0)
    telia = config.operators["telia"]
    assert (telia.type, telia.host, telia.port, telia.tls) == ("smpp", "smsc.example", 2775, False)
    assert (telia.system_id, telia.password, telia.system_type) == ("acme", "secret", "")
    assert (telia.bind, telia.binds, telia.window, telia.tps) == ("transceiver", 2, 10, 100)
    assert (telia.enquire_link, telia.receipt_id_format) == (30.0, "auto")
    assert (telia.latin1, telia.packed_gsm) == (False, False)
    assert telia.cost == PrefixTable.flat(Decimal("0.25"))
    acme = config.accounts["acme"]
    assert config.account_for_key("test") is acme  # sha256("test") in the file
    assert acme.senders == ("ACME", "4670111111", "72550")
    assert (acme.default_sender, acme.profile, acme.max_parts) == ("ACME", "standard", 3)
    assert (acme.billing, acme.balance) == ("prepaid", Decimal("1000.0"))
    assert acme.prices.lookup("46701234567") == Decimal("0.50")
    assert acme.prices.lookup("4712345678") == Decimal("0.80")
    assert acme.callback_url == "https://acme.example/sms/status"
    assert (acme.callback_statuses, acme.callback_batch, acme.callback_linger) == ("final", 100, 0.2)
    assert acme.secret == "change-me"
    assert acme.approved_domains == ("acme.example",)
    assert (acme.daily_volume_limit, acme.tps) == (10000, 50)
    shortcode = config.shortcodes["72550"]
    assert shortcode.stop_words == ("STOP", "STOPP")
    assert shortcode.monthly_cap_per_phone == Decimal(2000)
    assert shortcode.cap_reply == "Monthly limit reached."
    pizza, demo = config.keywords
    assert (pizza.keyword, pizza.aliases, pizza.account, pizza.price) == (
        "PIZZA", ("PIZA",), "acme", Decimal(10))
    assert pizza.url == "https://acme.example/sms/mo"
    assert pizza.unavailable_reply == (
        "Service not available. Contact the owner of this SMS service.")
    assert (demo.keyword, demo.reply) == ("DEMO", "You said: {payload}")


# --- defaults (SPEC §11 and docs/configuration.md) ----------------------------------------------


DEFAULTS = """
[operators.telia]
host = "smsc.example"
system_id = "acme"
password = "secret"

[operators.sim]
type = "simulated"

[profiles.zeta]
operators = ["telia"]

[profiles.alpha]
operators = ["sim", "telia"]

[accounts.acme]
api_keys = ["acme-key"]

[[shortcodes]]
number = "72550"

[[keywords]]
shortcode = "72550"
keyword = "PIZZA"
account = "acme"
"""


def test_defaults() -> None:
    config = parse(DEFAULTS)

    g = config.gateway
    assert (g.node, g.default_sender, g.max_parts_cap) == ("gw1", "SMSGW", 3)
    assert (g.retention_days, g.receipt_timeout, g.lease) == (60, 72 * 3600.0, 30.0)
    assert g.reply_profile == "zeta"  # the first profile in the file, not alphabetical
    assert config.store.url == "sqlite:///smsgw.db"
    assert config.store.sqlite_path == Path("/etc/smsgw/smsgw.db")
    assert config.store.auto_upgrade is True
    assert config.http.listen == ListenAddress("127.0.0.1", 8080)
    assert config.metrics.listen == ListenAddress("127.0.0.1", 9100)
    assert len(config.admin.api_keys) == 0
    assert (config.push.timeout, config.push.retry_for) == (10.0, 86400.0)

    telia = config.operators["telia"]
    assert (telia.type, telia.port, telia.tls, telia.system_type) == ("smpp", 2775, False, "")
    assert (telia.bind, telia.binds, telia.window, telia.tps) == ("transceiver", 1, 10, 0)
    assert (telia.enquire_link, telia.receipt_id_format) == (30.0, "auto")
    assert (telia.latin1, telia.packed_gsm) == (False, False)
    assert telia.cost.lookup("46701234567") == Decimal(0)
    sim = config.operators["sim"]
    assert (sim.host, sim.port, sim.system_id, sim.password) == (None, None, "", "")
    assert (sim.bind, sim.binds, sim.window, sim.tps, sim.enquire_link) == (
        "transceiver", 1, 10, 0, 30.0)
    assert (sim.receipt_id_format, sim.latin1, sim.packed_gsm) == ("auto", False, False)
    assert (sim.unreachable_prefixes, sim.receipt_delay) == ((), 1.0)
    assert (sim.message_id_format, sim.throttle_tps) == ("hex", 0)

    acme = config.accounts["acme"]
    assert (acme.profile, acme.max_parts, acme.billing, acme.tps) == ("zeta", 3, "postpaid", 0)
    assert (acme.senders, acme.default_sender, acme.balance) == ((), None, Decimal(0))
    assert acme.prices.lookup("46701234567") == Decimal(0)
    assert (acme.callback_url, acme.secret, acme.approved_domains) == (None, None, ())
    assert acme.daily_volume_limit is None
    assert (acme.callback_statuses, acme.callback_batch, acme.callback_linger) == ("all", 1, 0.2)

    shortcode = config.shortcodes["72550"]
    assert (shortcode.unknown_keyword_reply, shortcode.stop_words) == (None, ("STOP",))
    assert shortcode.stop_reply == "You will get no more messages from {account}."
    assert shortcode.monthly_cap_per_phone is None
    assert shortcode.cap_reply == "Monthly limit reached."
    (keyword,) = config.keywords
    assert (keyword.aliases, keyword.url, keyword.price) == ((), None, Decimal(0))
    assert (keyword.unavailable_reply, keyword.reply) == (None, None)


def test_account_max_parts_defaults_to_the_cap() -> None:
    config = parse("[gateway]\nmax_parts_cap = 5\n" + BASE
                   + "[accounts.a]\n[accounts.b]\nmax_parts = 2\n")

    assert config.accounts["a"].max_parts == 5
    assert config.accounts["b"].max_parts == 2


# --- errors: each kind names its key path -------------------------------------------------------


ERROR_CASES = {
    "wrong integer": (
        "[operators.telia]" + SMPP + 'window = "ten"',
        'operators.telia.window: must be an integer >= 1, got "ten"',
    ),
    "bool is not an integer": (
        "[operators.telia]" + SMPP + "binds = true",
        "operators.telia.binds: must be an integer >= 1, got true",
    ),
    "typo in a key": (
        "[operators.telia]" + SMPP + "prot = 2776",
        'operators.telia.prot: unknown key (did you mean "port"?)',
    ),
    "unknown key without a near miss": (
        "[http]\nlisten = \"127.0.0.1:8080\"\nzzz = 1",
        "http.zzz: unknown key",
    ),
    "unknown section": (
        '[gatway]\nnode = "gw2"',
        'gatway: unknown key (did you mean "gateway"?)',
    ),
    "unknown key in an array of tables": (
        MO + 'stop_word = ["STOP"]',
        'shortcodes[0].stop_word: unknown key (did you mean "stop_words"?)',
    ),
    "unknown operator in a profile": (
        '[profiles.p2]\noperators = ["sim", "nope"]',
        'profiles.p2.operators[1]: unknown operator "nope"',
    ),
    "empty profile": (
        "[profiles.p2]\noperators = []",
        "profiles.p2.operators: must not be empty",
    ),
    "unknown profile in an account": (
        '[accounts.acme]\nprofile = "x"',
        'accounts.acme.profile: unknown profile "x"',
    ),
    "unknown reply profile": (
        '[gateway]\nreply_profile = "x"',
        'gateway.reply_profile: unknown profile "x"',
    ),
    "account max_parts above the cap": (
        "[accounts.acme]\nmax_parts = 5",
        "accounts.acme.max_parts: 5 is above gateway.max_parts_cap (3)",
    ),
    "unknown account in a keyword": (
        MO + '[[keywords]]\nshortcode = "72550"\nkeyword = "A"\naccount = "x"',
        'keywords[0].account: unknown account "x"',
    ),
    "unknown shortcode in a keyword": (
        MO + '[[keywords]]\nshortcode = "72550"\nkeyword = "A"\naccount = "acme"\n'
        '[[keywords]]\nshortcode = "99"\nkeyword = "B"\naccount = "acme"',
        'keywords[1].shortcode: unknown shortcode "99"',
    ),
    "duplicate keyword, other case": (
        MO + '[[keywords]]\nshortcode = "72550"\nkeyword = "DEMO"\naccount = "acme"\n'
        '[[keywords]]\nshortcode = "72550"\nkeyword = "demo"\naccount = "acme"',
        'keywords[1].keyword: "demo" is already used on shortcode 72550 by keywords[0]',
    ),
    "alias that is another keyword": (
        MO + '[[keywords]]\nshortcode = "72550"\nkeyword = "PIZZA"\naccount = "acme"\n'
        '[[keywords]]\nshortcode = "72550"\nkeyword = "PASTA"\naliases = ["Pizza"]\n'
        'account = "acme"',
        'keywords[1].aliases[0]: "Pizza" is already used on shortcode 72550 by keywords[0]',
    ),
    "keyword that is a stop word": (
        MO + '[[keywords]]\nshortcode = "72550"\nkeyword = "stop"\naccount = "acme"',
        'keywords[0].keyword: "stop" is a stop word of shortcode 72550',
    ),
    "keyword with two words": (
        MO + '[[keywords]]\nshortcode = "72550"\nkeyword = "TWO WORDS"\naccount = "acme"',
        'keywords[0].keyword: must be one word without spaces, got "TWO WORDS"',
    ),
    "url and reply together": (
        '[accounts.acme]\nsecret = "s"\n[[shortcodes]]\nnumber = "72550"\n'
        '[[keywords]]\nshortcode = "72550"\nkeyword = "A"\naccount = "acme"\n'
        'url = "https://acme.example/mo"\nreply = "Thanks"',
        "keywords[0].reply: cannot be combined with url (a pushed MO is answered by the backend)",
    ),
    "unknown placeholder": (
        MO + '[[keywords]]\nshortcode = "72550"\nkeyword = "A"\naccount = "acme"\n'
        'reply = "Hi {name}"',
        "keywords[0].reply: unknown placeholder {name}; use {text}, {payload}, {from}, {keyword}",
    ),
    "duration without a unit": (
        "[gateway]\nlease = 30",
        'gateway.lease: a duration needs a unit (ms, s, m, h, d), e.g. "30s", got 30',
    ),
    "duration with a space": (
        '[push]\ntimeout = "10 s"',
        'push.timeout: must be a number and a unit (ms, s, m, h, d) such as "30s" or "1.5s", '
        'without spaces or sign, got "10 s"',
    ),
    "zero duration": (
        '[gateway]\nreceipt_timeout = "0s"',
        'gateway.receipt_timeout: must be longer than zero, got "0s"',
    ),
    "listen without a port": (
        '[http]\nlisten = "localhost"',
        'http.listen: must be "host:port" such as "127.0.0.1:8080", got "localhost"',
    ),
    "listen port out of range": (
        '[metrics]\nlisten = "127.0.0.1:70000"',
        'metrics.listen: port must be from 0 to 65535, got "127.0.0.1:70000"',
    ),
    "store url scheme": (
        '[store]\nurl = "mysql://db/smsgw"',
        'store.url: must start with "sqlite:///" or "postgresql://", got "mysql://db/smsgw"',
    ),
    "sqlite url with two slashes": (
        '[store]\nurl = "sqlite://smsgw.db"',
        'store.url: must be "sqlite:///relative/path" or "sqlite:////absolute/path", '
        'got "sqlite://smsgw.db"',
    ),
    "wrong bool": (
        '[store]\nauto_upgrade = "yes"',
        'store.auto_upgrade: must be true or false, got "yes"',
    ),
    "more than five senders": (
        '[accounts.acme]\nsenders = ["A", "B", "C", "D", "E", "F"]',
        "accounts.acme.senders: must have at most 5 entries, got 6",
    ),
    "alphanumeric sender too long": (
        '[accounts.acme]\nsenders = ["OK", "ACMECORPORATE"]',
        "accounts.acme.senders[1]: 'ACMECORPORATE' is not a valid sender: it has 13 characters; "
        "an alphanumeric sender has at most 11",
    ),
    "numeric sender too long": (
        '[accounts.acme]\nsenders = ["4670123456789012"]',
        "accounts.acme.senders[0]: '4670123456789012' is not a valid sender: it has 16 digits; "
        "a numeric sender has at most 15",
    ),
    "sender with a space": (
        '[gateway]\ndefault_sender = "SMS GW"',
        "gateway.default_sender: 'SMS GW' is not a valid sender: only letters A-Z, a-z and "
        "digits are allowed (a numeric sender may start with '+')",
    ),
    "default sender outside the senders": (
        '[accounts.acme]\nsenders = ["ACME"]\ndefault_sender = "OTHER"',
        'accounts.acme.default_sender: "OTHER" is not one of the account\'s senders',
    ),
    "shortcode sender without a keyword": (
        '[accounts.acme]\nsenders = ["72550"]\n[[shortcodes]]\nnumber = "72550"',
        "accounts.acme.senders[0]: shortcode 72550 has no keyword of this account",
    ),
    "push target without a secret": (
        '[accounts.acme]\ncallback_url = "https://acme.example/status"',
        "accounts.acme.secret: is required: pushes to this account (callback_url or a keyword "
        "url) are signed with it",
    ),
    "bad url": (
        '[accounts.acme]\nsecret = "s"\ncallback_url = "ftp://acme.example"',
        'accounts.acme.callback_url: must be an http:// or https:// URL, got "ftp://acme.example"',
    ),
    "bad choice": (
        '[accounts.acme]\nbilling = "credit"',
        'accounts.acme.billing: must be one of "prepaid", "postpaid", got "credit"',
    ),
    "negative price": (
        '[accounts.acme]\nprices = { "46" = -1, "default" = 0.8 }',
        "accounts.acme.prices.46: must be an amount >= 0 (a number or a decimal string), got -1",
    ),
    "prefix that is not digits": (
        "[operators.telia]" + SMPP + 'cost = { "46x" = 0.2 }',
        'operators.telia.cost.46x: must be a prefix of digits or "default"',
    ),
    "unknown type reports only the type": (
        '[operators.x]\ntype = "smsc"\nreceipt_delay = "1s"',
        'operators.x.type: must be one of "smpp", "simulated", got "smsc"',
    ),
    "smpp operator without a host": (
        '[operators.telia]\nsystem_id = "a"\npassword = "b"',
        "operators.telia.host: is required",
    ),
    "simulator knob on an smpp operator": (
        "[operators.telia]" + SMPP + 'receipt_delay = "1s"',
        'operators.telia.receipt_delay: only for type = "simulated"',
    ),
    "smpp key on a simulated operator": (
        '[operators.sim2]\ntype = "simulated"\nhost = "smsc.example"',
        'operators.sim2.host: only for type = "smpp"',
    ),
    "password longer than SMPP allows": (
        "[operators.telia]\nhost = \"h\"\nsystem_id = \"a\"\npassword = \"123456789\"",
        "operators.telia.password: must be at most 8 characters (SMPP 3.4), got 9",
    ),
    "bad operator name": (
        '[operators."tel ia"]\ntype = "simulated"',
        "operators.tel ia: a name must be 1-64 letters, digits, '_' or '-'",
    ),
    "section of the wrong type": (
        'http = "127.0.0.1:8080"',
        'http: must be a table, got "127.0.0.1:8080"',
    ),
    "key used by two accounts (plain and hashed)": (
        '[accounts.a]\napi_keys = ["test"]\n[accounts.b]\napi_keys = '
        '["sha256:9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08"]',
        'accounts.b.api_keys[0]: is also an API key of account "a"',
    ),
    "admin key that is an account key": (
        '[admin]\napi_keys = ["k"]\n[accounts.a]\napi_keys = ["k"]',
        'admin.api_keys[0]: is also an API key of account "a"',
    ),
    "same sender with and without +": (
        '[accounts.acme]\nsenders = ["4670111111", "+4670111111"]',
        'accounts.acme.senders[1]: duplicate "+4670111111"',
    ),
    "same key twice in one account": (
        '[accounts.a]\napi_keys = ["k", "k"]',
        "accounts.a.api_keys[1]: duplicate of [0]",
    ),
    "malformed hashed key": (
        '[accounts.a]\napi_keys = ["sha256:abc"]',
        'accounts.a.api_keys[0]: must be "sha256:" and 64 hex digits, or a plain key',
    ),
    "duplicate shortcode": (
        '[[shortcodes]]\nnumber = "72550"\n[[shortcodes]]\nnumber = "72550"',
        "shortcodes[1].number: shortcode 72550 is already configured",
    ),
    "shortcode given as a number": (
        "[[shortcodes]]\nnumber = 72550",
        "shortcodes[0].number: must be a string, got 72550",
    ),
    "callback statuses neither all, final nor a list": (
        '[accounts.acme]\ncallback_statuses = "delivered"',
        'accounts.acme.callback_statuses: must be "all", "final" or an array of statuses, got "delivered"',
    ),
    "callback statuses listing what is no status": (
        '[accounts.acme]\ncallback_statuses = ["submitted", "sent"]',
        'accounts.acme.callback_statuses[1]: must be one of "scheduled", "pending_approval", "paused", '
        '"queued", "submitted", "buffered", "delivered", "failed", "expired", "unknown", "stopped", '
        '"rejected", got "sent"',
    ),
    "callback statuses listing one twice": (
        '[accounts.acme]\ncallback_statuses = ["failed", "failed"]',
        'accounts.acme.callback_statuses[1]: duplicate "failed"',
    ),
    "callback batch above 1000": (
        "[accounts.acme]\ncallback_batch = 1001",
        "accounts.acme.callback_batch: must be an integer from 1 to 1000, got 1001",
    ),
    "callback batch of 0": (
        "[accounts.acme]\ncallback_batch = 0",
        "accounts.acme.callback_batch: must be an integer from 1 to 1000, got 0",
    ),
    "callback linger without a unit": (
        '[accounts.acme]\ncallback_linger = "200"',
        'accounts.acme.callback_linger: a duration needs a unit (ms, s, m, h, d), e.g. "200s", got "200"',
    ),
    "callback url with user-info": (
        '[accounts.acme]\nsecret = "s"\ncallback_url = "https://u:pw@hooks.example/cb"',
        'accounts.acme.callback_url: must not contain user-info (user:password@), got "https://u:pw@hooks.example/cb"',
    ),
    "callback url without a host": (
        '[accounts.acme]\nsecret = "s"\ncallback_url = "http:///cb"',
        'accounts.acme.callback_url: must name a valid host (a DNS name or an IP address), got "http:///cb"',
    ),
    "callback url over 2048 characters": (
        '[accounts.acme]\nsecret = "s"\ncallback_url = "https://hooks.example/' + "a" * 2048 + '"',
        "accounts.acme.callback_url: must be at most 2048 characters, got 2070",
    ),
    "callback host that is a URL": (
        '[accounts.acme]\ncallback_hosts = ["https://hooks.example"]',
        'accounts.acme.callback_hosts[0]: must be a host name, an IP address or *.domain, got "https://hooks.example"',
    ),
    "allow_networks with host bits": (
        '[push]\nallow_networks = ["10.0.0.1/8"]',
        'push.allow_networks[0]: must be a network in CIDR form such as "10.0.0.0/8", got "10.0.0.1/8"',
    ),
    "max_backlog of 0": (
        "[gateway]\nmax_backlog = 0",
        "gateway.max_backlog: must be an integer >= 1, got 0",
    ),
}


def test_callback_hosts_default_to_the_accounts_own_urls_hosts() -> None:
    config = parse(BASE + """
[accounts.acme]
secret = "s"
callback_url = "https://Hooks.Example.com:8443/status"
[[shortcodes]]
number = "72550"
[accounts.beta]
callback_hosts = ["*.beta.example", "10.1.2.3"]
[accounts.gamma]
[[keywords]]
shortcode = "72550"
keyword = "PIZZA"
account = "acme"
url = "https://mo.example.net/in"
""")
    assert config.accounts["acme"].callback_hosts == ("hooks.example.com", "mo.example.net")
    assert config.accounts["beta"].callback_hosts == ("*.beta.example", "10.1.2.3")
    assert config.accounts["gamma"].callback_hosts == ()
    assert config.gateway.max_backlog == 1_000_000 and config.push.allow_networks == ()


@pytest.mark.parametrize("case", ERROR_CASES, ids=list(ERROR_CASES))
def test_each_error_names_its_key_path(case: str) -> None:
    extra, expected = ERROR_CASES[case]
    assert errors_of(extra + "\n" + BASE) == [expected]


def test_every_error_is_reported_not_just_the_first() -> None:
    text = """
[gateway]
lease = "30"
max_parts_cap = 0

[operators.telia]
type = "smpp"
host = "smsc.example"
system_id = "acme"
password = "secret"
windw = 5

[profiles.standard]
operators = ["telia", "nope"]

[accounts.acme]
profile = "gold"
senders = ["A B"]
"""
    assert errors_of(text) == [
        'gateway.max_parts_cap: must be an integer from 1 to 255, got 0',
        'gateway.lease: a duration needs a unit (ms, s, m, h, d), e.g. "30s", got "30"',
        'operators.telia.windw: unknown key (did you mean "window"?)',
        'profiles.standard.operators[1]: unknown operator "nope"',
        "accounts.acme.senders[0]: 'A B' is not a valid sender: only letters A-Z, a-z and digits "
        "are allowed (a numeric sender may start with '+')",
        'accounts.acme.profile: unknown profile "gold"',
    ]


def test_operators_and_profiles_are_required() -> None:
    assert errors_of("") == [
        "operators: at least one [operators.NAME] is required",
        "profiles: at least one [profiles.NAME] is required",
    ]


def test_toml_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text('[gateway]\nnode = "gw1"\nlease = \n', encoding="utf-8")

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    (error,) = caught.value.errors
    assert error.startswith(f"{path}: invalid TOML: ")
    assert "line 3" in error


def test_missing_file_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert caught.value.errors == [f"{path}: cannot read the file: No such file or directory"]


# --- store url, listen, keys --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "sqlite_path"),
    [
        ("sqlite:///smsgw.db", Path("/srv/gw/etc/smsgw.db")),
        ("sqlite:///../var/smsgw.db", Path("/srv/gw/var/smsgw.db")),
        ("sqlite:///data/gw.db", Path("/srv/gw/etc/data/gw.db")),
        ("sqlite:////var/lib/smsgw/gw.db", Path("/var/lib/smsgw/gw.db")),
        ("postgresql://smsgw@127.0.0.1:5432/smsgw", None),
        ("postgres://smsgw@db/smsgw", None),
    ],
)
def test_store_url_resolution(url: str, sqlite_path: Path | None) -> None:
    config = parse(f'[store]\nurl = "{url}"\n' + BASE, folder=Path("/srv/gw/etc"))

    assert config.store.url == url
    assert config.store.sqlite_path == sqlite_path
    assert config.store.backend == ("postgresql" if sqlite_path is None else "sqlite")


def test_relative_sqlite_path_follows_the_file_not_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "gw.toml").write_text('[store]\nurl = "sqlite:///x.db"\n' + BASE)
    monkeypatch.chdir(tmp_path)

    config = load_config("etc/gw.toml")

    assert config.path == tmp_path / "etc" / "gw.toml"
    assert config.store.sqlite_path == tmp_path / "etc" / "x.db"


def test_store_url_password_is_redacted_for_logs() -> None:
    config = parse('[store]\nurl = "postgresql://smsgw:hunter2@db:5432/smsgw"\n' + BASE)

    assert config.store.redacted_url == "postgresql://smsgw:***@db:5432/smsgw"
    assert "hunter2" not in repr(config.store)


@pytest.mark.parametrize(
    ("written", "address", "endpoint"),
    [
        ("127.0.0.1:8080", ListenAddress("127.0.0.1", 8080), "tcp:port=8080:interface=127.0.0.1"),
        ("0.0.0.0:0", ListenAddress("0.0.0.0", 0), "tcp:port=0:interface=0.0.0.0"),
        ("localhost:9100", ListenAddress("localhost", 9100), "tcp:port=9100:interface=localhost"),
        ("[::1]:8080", ListenAddress("::1", 8080), r"tcp6:port=8080:interface=\:\:1"),
    ],
)
def test_listen_addresses(written: str, address: ListenAddress, endpoint: str) -> None:
    config = parse(f'[http]\nlisten = "{written}"\n' + BASE)

    assert config.http.listen == address
    assert str(config.http.listen) == written
    assert config.http.listen.endpoint() == endpoint


def test_api_key_lookup_plain_and_hashed() -> None:
    hashed = "sha256:" + hashlib.sha256(b"acme-key").hexdigest()
    config = parse(BASE + f'[accounts.acme]\napi_keys = ["{hashed}", "second"]\n'
                   '[accounts.demo]\napi_keys = ["demo-key"]\n'
                   '[admin]\napi_keys = ["ops-secret"]\n')

    assert config.account_for_key("acme-key") is config.accounts["acme"]
    assert config.account_for_key("second") is config.accounts["acme"]
    assert config.account_for_key("demo-key") is config.accounts["demo"]
    assert config.account_for_key("demo-key ") is None
    assert config.account_for_key(hashed) is None  # the hash itself is not a key
    assert config.account_for_key("ops-secret") is None
    assert config.is_admin_key("ops-secret") is True
    assert config.is_admin_key("demo-key") is False
    assert hash_api_key("acme-key") == hashed


def test_keyset_matches_and_keeps_no_plain_key() -> None:
    keys = KeySet(frozenset({hashlib.sha256(b"k1").hexdigest()}))

    assert keys.matches("k1") is True
    assert keys.matches("k2") is False
    assert KeySet().matches("k1") is False
    config = parse(BASE + '[accounts.a]\napi_keys = ["plain-secret"]\n')
    assert "plain-secret" not in repr(config)


def test_secrets_stay_out_of_repr() -> None:
    config = load_config(REPO / "etc" / "gateway.example.toml")

    assert "secret" not in repr(config.operators["telia"]).replace("system_id", "")
    assert "change-me" not in repr(config.accounts["acme"])


# --- PrefixTable --------------------------------------------------------------------------------


def test_prefix_table_longest_prefix_wins_then_default() -> None:
    config = parse(BASE + '[accounts.a]\nprices = { "46" = 0.25, "4670" = 0.20, '
                   '"467099" = "0.15", "default" = 0.40 }\n')
    prices = config.accounts["a"].prices

    assert prices.lookup("46709912345") == Decimal("0.15")
    assert prices.lookup("46701234567") == Decimal("0.20")
    assert prices.lookup("46812345678") == Decimal("0.25")
    assert prices.lookup("4712345678") == Decimal("0.40")
    assert prices.lookup("46") == Decimal("0.25")
    assert prices.lookup("4") == Decimal("0.40")


def test_prefix_table_without_default_gives_none() -> None:
    table = PrefixTable((("46", Decimal("0.25")),))

    assert table.lookup("46701234567") == Decimal("0.25")
    assert table.lookup("4712345678") is None


def test_money_is_exact_decimal() -> None:
    config = parse(BASE.replace('type = "simulated"', 'type = "simulated"\ncost = 0.1')
                   + '[accounts.a]\nbalance = "1000.10"\n')

    assert config.operators["sim"].cost.lookup("46") == Decimal("0.1")
    assert config.accounts["a"].balance == Decimal("1000.10")


def test_prefix_tables_compare_by_content_not_order() -> None:
    a = PrefixTable((("46", Decimal(1)), ("47", Decimal(2))), Decimal(3))
    b = PrefixTable((("47", Decimal(2)), ("46", Decimal(1))), Decimal(3))

    assert a == b
    assert hash(a) == hash(b)


@given(
    st.dictionaries(st.text("0123456789", min_size=1, max_size=6),
                    st.integers(0, 1000).map(Decimal), max_size=8),
    st.text("0123456789", min_size=1, max_size=12),
)
def test_prefix_table_matches_brute_force(prefixes: dict[str, Decimal], msisdn: str) -> None:
    table = PrefixTable(tuple(prefixes.items()), Decimal(-1))
    matching = [p for p in prefixes if msisdn.startswith(p)]
    expected = prefixes[max(matching, key=len)] if matching else Decimal(-1)

    assert table.lookup(msisdn) == expected


# --- durations ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("200ms", 0.2), ("1.1ms", 0.0011), ("0s", 0.0), ("30s", 30.0), ("1.5s", 1.5),
     ("10m", 600.0), ("90m", 5400.0), ("72h", 259200.0), ("0.5h", 1800.0), ("1d", 86400.0)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (30, 'a duration needs a unit (ms, s, m, h, d), e.g. "30s"'),
        ("30", 'a duration needs a unit (ms, s, m, h, d), e.g. "30s"'),
        (1.5, 'a duration needs a unit (ms, s, m, h, d), e.g. "1.5s"'),
        (-5, "must not be negative"),
        ("1h30m", 'must be a number and a unit (ms, s, m, h, d) such as "30s" or "1.5s", '
                  "without spaces or sign"),
        ("30S", 'must be a number and a unit (ms, s, m, h, d) such as "30s" or "1.5s", '
                "without spaces or sign"),
        ("-1s", 'must be a number and a unit (ms, s, m, h, d) such as "30s" or "1.5s", '
                "without spaces or sign"),
        (True, 'must be a duration such as "30s" (units ms, s, m, h, d)'),
    ],
)
def test_bad_durations(value: object, message: str) -> None:
    with pytest.raises(DurationError) as caught:
        parse_duration(value)

    assert str(caught.value) == message


# --- immutability and reload support ------------------------------------------------------------


def test_config_is_frozen_and_read_only() -> None:
    config = parse(BASE)

    with pytest.raises(dataclasses.FrozenInstanceError):
        config.gateway.node = "gw2"  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.operators["x"] = config.operators["sim"]  # type: ignore[index]


def test_same_file_gives_equal_configs() -> None:
    assert parse(DEFAULTS) == parse(DEFAULTS)


def test_bind_settings_ignore_cost_only() -> None:
    before = parse(BASE).operators["sim"]
    cheaper = parse(BASE.replace('type = "simulated"', 'type = "simulated"\ncost = 0.05'))
    wider = parse(BASE.replace('type = "simulated"', 'type = "simulated"\nwindow = 20'))

    assert cheaper.operators["sim"] != before
    assert cheaper.operators["sim"].bind_settings() == before.bind_settings()
    assert wider.operators["sim"].bind_settings() != before.bind_settings()


def test_numeric_senders_are_kept_as_they_go_out() -> None:
    config = parse(BASE + '[accounts.a]\nsenders = ["+4670111111", "ACME"]\n'
                   'default_sender = "4670111111"\n')

    assert config.accounts["a"].senders == ("4670111111", "ACME")
    assert config.accounts["a"].default_sender == "4670111111"


def test_documented_edge_values_are_accepted() -> None:
    config = parse(BASE + """
[profiles.best]
operators = ["sim"]

[gateway]
reply_profile = "best"
default_sender = "4670111111"

[push]
retry_for = "0s"

[operators.sim2]
type = "simulated"
receipt_delay = "0s"
system_id = "gw"
password = "pw"

[accounts.acme]
approved_domains = ["Acme.Example"]
prices = "0.35"

[[shortcodes]]
number = "0072550"
stop_words = []
""")

    assert config.gateway.reply_profile == "best"
    assert config.gateway.default_sender == "4670111111"
    assert config.push.retry_for == 0.0
    sim2 = config.operators["sim2"]
    assert (sim2.receipt_delay, sim2.system_id, sim2.password) == (0.0, "gw", "pw")
    assert config.accounts["acme"].approved_domains == ("acme.example",)
    assert config.accounts["acme"].default_sender is None  # as written; the API falls back
    assert config.accounts["acme"].prices == PrefixTable.flat(Decimal("0.35"))
    assert config.shortcodes["0072550"].stop_words == ()


@pytest.mark.parametrize("written, kept", [
    ('"all"', "all"),
    ('"final"', "final"),
    ('["delivered", "submitted", "failed"]', "submitted,delivered,failed"),  # SPEC §5 order
    ("[]", ""),  # none: no status callback at all (balance notices still go)
])
def test_callback_statuses_are_kept_as_one_selection(written: str, kept: str) -> None:
    config = parse(BASE + f"[accounts.acme]\ncallback_statuses = {written}\n"
                   'callback_batch = 1000\ncallback_linger = "0ms"\n')
    acme = config.accounts["acme"]
    assert (acme.callback_statuses, acme.callback_batch, acme.callback_linger) == (kept, 1000, 0.0)


# --- the SMPP server for customers' ESMEs (SPEC §13) ---------------------------------------------

SMPP_SERVER = BASE + """
[smpp_server]
listen = "0.0.0.0:2775"
enquire_link = "20s"
window = 50

[accounts.acme]
api_keys = ["acme-key"]

[accounts.acme.smpp]
system_id = "acme"
password = "s3cret"
max_binds = 2
"""


def test_smpp_server_and_an_accounts_esme_credentials() -> None:
    config = parse(SMPP_SERVER)
    server = config.smpp_server
    assert (server.listen, server.tls_listen, server.enquire_link, server.window) == (
        ListenAddress("0.0.0.0", 2775), None, 20.0, 50)
    smpp = config.accounts["acme"].smpp
    assert (smpp.system_id, smpp.password, smpp.max_binds) == ("acme", "s3cret", 2)
    assert "s3cret" not in repr(smpp)


def test_no_smpp_server_section_means_none() -> None:
    config = parse(BASE)
    assert config.smpp_server is None
    assert parse(BASE + MO).accounts["acme"].smpp is None


def test_smpp_credentials_are_checked_without_showing_the_password() -> None:
    text = SMPP_SERVER.replace('password = "s3cret"', 'password = "much-too-long"')
    errors = errors_of(text.replace('system_id = "acme"', 'system_id = "a-system-id-of-20-chr"'))
    assert errors == [
        'accounts.acme.smpp.system_id: must be at most 15 characters, got "a-system-id-of-20-chr"',
        "accounts.acme.smpp.password: must be at most 8 characters (SMPP 3.4), got 13",
    ]
    assert errors_of(SMPP_SERVER.replace('password = "s3cret"\n', "")) == [
        "accounts.acme.smpp.password: is required"]


def test_a_system_id_names_one_account_and_credentials_need_a_listener() -> None:
    twice = SMPP_SERVER + """
[accounts.globex]
api_keys = ["globex-key"]
[accounts.globex.smpp]
system_id = "acme"
password = "pw"
"""
    assert errors_of(twice) == ['accounts.globex.smpp.system_id: "acme" is already the system_id of account acme']
    without = SMPP_SERVER.replace('[smpp_server]\nlisten = "0.0.0.0:2775"\nenquire_link = "20s"\nwindow = 50\n', "")
    assert errors_of(without) == ["accounts.acme.smpp: needs an [smpp_server] section to bind to"]


def test_tls_listener_needs_readable_certificate_and_key(tmp_path) -> None:
    text = BASE + '[smpp_server]\ntls_listen = "127.0.0.1:3550"\n'
    assert errors_of(text) == ["smpp_server.tls_listen: needs tls_cert and tls_key (PEM files)"]
    cert, key = TestCA(tmp_path).issue("gateway", ip="127.0.0.1")
    with_files = text + f'tls_cert = "{cert.name}"\ntls_key = "missing.key"\n'
    with pytest.raises(ConfigError) as caught:
        parse(with_files, folder=tmp_path)
    assert caught.value.errors[0].startswith(f'smpp_server.tls_key: cannot read "{tmp_path / "missing.key"}"')
    config = parse(text + f'tls_cert = "{cert.name}"\ntls_key = "{key.name}"\n', folder=tmp_path)
    assert config.smpp_server.tls_cert == cert and config.smpp_server.listen is None
    assert errors_of(BASE + "[smpp_server]\nwindow = 5\n") == [
        "smpp_server.listen: is required (or tls_listen): the address ESMEs bind to"]


@pytest.mark.parametrize("section", ["http", "smpp_server"])
def test_a_tls_key_others_may_read_or_without_its_certificate_is_refused(tmp_path, section) -> None:
    cert, key = TestCA(tmp_path).issue("gateway", ip="127.0.0.1")
    head = BASE + f'[{section}]\nlisten = "127.0.0.1:0"\n'
    assert parse(head + f'tls_cert = "{cert.name}"\ntls_key = "{key.name}"\n', folder=tmp_path)
    key.chmod(0o644)
    with pytest.raises(ConfigError) as caught:
        parse(head + f'tls_cert = "{cert.name}"\ntls_key = "{key.name}"\n', folder=tmp_path)
    assert caught.value.errors == [f'{section}.tls_key: "{key}" may be read by group or others (mode 644): '
                                   "it must be readable by the gateway only, chmod 600 it"]
    with pytest.raises(ConfigError) as caught:
        parse(head + f'tls_cert = "{cert.name}"\n', folder=tmp_path)
    assert caught.value.errors[0].startswith(f"{section}.tls_key: is required with tls_cert")


def test_a_keyword_may_push_to_the_accounts_esmes_when_it_has_credentials() -> None:
    keyword = '\n[[shortcodes]]\nnumber = "72550"\n[[keywords]]\nshortcode = "72550"\nkeyword = "ACME"\naccount = "acme"\nurl = "smpp"\n'
    config = parse(SMPP_SERVER + keyword)  # no secret needed: nothing is signed over SMPP
    assert config.keywords[0].url == "smpp"
    without = SMPP_SERVER.replace('[accounts.acme.smpp]\nsystem_id = "acme"\npassword = "s3cret"\nmax_binds = 2\n', "")
    assert errors_of(without + keyword) == [
        'keywords[0].url: "smpp" needs [accounts.acme.smpp]: the account\'s ESMEs get the MO']
    assert errors_of(SMPP_SERVER + keyword.replace('url = "smpp"', 'url = "smtp"')) == [
        'keywords[0].url: must be an http:// or https:// URL, got "smtp"']
