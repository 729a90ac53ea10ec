"""The configuration refused: each kind of error names its key path, every error is reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from smscore.config import ConfigError, load_config
from tests.config_rig import BASE, MO, SMPP, errors_of, parse


# --- errors: each kind names its key path -------------------------------------------------------


ERROR_CASES = {
    "wrong integer": (
        "[operators.telia]" + SMPP + 'window = "ten"',
        'operators.telia.window: must be an integer >= 1, got "ten"',
    ),
    "bool is not an integer": (
        "[operators.telia]" + SMPP + "binds = true",
        "operators.telia.binds: must be an integer from 1 to 1000, got true",
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
        "accounts.acme.secret: is required: pushes to this account (callback_url, callback_hosts or a "
        "keyword url) are signed with it",
    ),
    "request callback hosts without a secret": (
        '[accounts.acme]\ncallback_hosts = ["hooks.acme.example"]',
        "accounts.acme.secret: is required: pushes to this account (callback_url, callback_hosts or a "
        "keyword url) are signed with it",
    ),
    "bad url": (
        '[accounts.acme]\nsecret = "s"\ncallback_url = "ftp://acme.example"',
        'accounts.acme.callback_url: must be an http:// or https:// URL, got "ftp://acme.example"',
    ),
    "url with credentials, not shown": (
        '[accounts.acme]\nsecret = "s"\ncallback_url = "ftp://u:hunter2@acme.example/a"',
        'accounts.acme.callback_url: must be an http:// or https:// URL, got "ftp://***@acme.example/a"',
    ),
    "a balance past what a JSON number carries to the cent": (
        '[accounts.acme]\nbalance = "1e400"',
        'accounts.acme.balance: must be an amount from 0 to 1000000000000 (a number or a decimal string), '
        'got "1e400"',
    ),
    "bad choice": (
        '[accounts.acme]\nbilling = "credit"',
        'accounts.acme.billing: must be one of "prepaid", "postpaid", got "credit"',
    ),
    "negative price": (
        '[accounts.acme]\nprices = { "46" = -1, "default" = 0.8 }',
        "accounts.acme.prices.46: must be an amount from 0 to 1000000000000 (a number or a decimal string), got -1",
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
        'accounts.acme.callback_url: must not contain user-info (user:password@), got "https://***@hooks.example/cb"',
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
        '[accounts.acme]\nsecret = "s"\ncallback_hosts = ["https://hooks.example"]',
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
    # bounds where a value made the node misbehave (docs/configuration.md names each)
    "retention past year 1 (every purge failed)": (
        "[gateway]\nretention_days = 999999",
        "gateway.retention_days: must be an integer from 1 to 36500, got 999999",
    ),
    "lease of 1ms (renewed without a pause)": (
        '[gateway]\nlease = "1ms"',
        'gateway.lease: must be at least "1s" (a node renews its leases every third of it), got "1ms"',
    ),
    "a million binds (the node never finished starting)": (
        "[operators.telia]" + SMPP + "binds = 1000000",
        "operators.telia.binds: must be an integer from 1 to 1000, got 1000000",
    ),
    "an integer past 64 bits (the API cannot write it)": (
        "[accounts.acme]\ndaily_volume_limit = 9223372036854775808",
        "accounts.acme.daily_volume_limit: must be an integer from 1 to 9223372036854775807 (64 bits), "
        "got 9223372036854775808",
    ),
    "a rate past a float (every request failed)": (
        "[accounts.acme]\ntps = 1" + "0" * 400,
        "accounts.acme.tps: must be an integer from 0 to 9223372036854775807 (64 bits), got 1" + "0" * 400,
    ),
    "a duration past 100 years": (
        '[push]\nretry_for = "36501d"',
        'push.retry_for: must be at most "36500d" (100 years), got "36501d"',
    ),
    "a duration past a float": (
        '[gateway]\nreceipt_timeout = "1' + "0" * 400 + 'd"',
        'gateway.receipt_timeout: must be at most "36500d" (100 years), got "1' + "0" * 400 + 'd"',
    ),
}


def test_the_bounds_themselves_are_accepted() -> None:
    config = parse('[gateway]\nretention_days = 36500\nlease = "1s"\nreceipt_timeout = "36500d"\n'
                   "max_backlog = 9223372036854775807\n[operators.telia]" + SMPP + "binds = 1000\n" + BASE)
    assert (config.gateway.retention_days, config.gateway.lease) == (36500, 1.0)
    assert config.gateway.receipt_timeout == 36500 * 86400 and config.gateway.max_backlog == 2**63 - 1
    assert config.operators["telia"].binds == 1000


def test_callback_hosts_default_to_the_accounts_own_urls_hosts() -> None:
    config = parse(BASE + """
[accounts.acme]
secret = "s"
callback_url = "https://Hooks.Example.com:8443/status"
[[shortcodes]]
number = "72550"
[accounts.beta]
callback_hosts = ["*.beta.example", "10.1.2.3"]
secret = "beta-secret"
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


@pytest.mark.parametrize("listeners, expected", [
    ('[http]\nlisten = "127.0.0.1:8080"\n[metrics]\nlisten = "127.0.0.1:8080"',
     ["metrics.listen: the same address as http.listen (127.0.0.1:8080)"]),
    ('[metrics]\nlisten = "127.0.0.1:8080"',  # [http] listen's default
     ["metrics.listen: the same address as http.listen (127.0.0.1:8080)"]),
    ('[http]\nlisten = "[::1]:9000"\n[metrics]\nlisten = "[0:0::1]:9000"',
     ["metrics.listen: the same address as http.listen ([::1]:9000)"]),
    ('[http]\nlisten = "0.0.0.0:8080"\n[smpp_server]\nlisten = "127.0.0.1:8080"',
     ["smpp_server.listen: 127.0.0.1:8080 takes the port of http.listen (0.0.0.0:8080): 0.0.0.0 listens on "
      "every address of the machine"]),
    ('[metrics]\nlisten = "[::]:8080"',
     ["metrics.listen: [::]:8080 takes the port of http.listen (127.0.0.1:8080): :: listens on every address "
      "of the machine"]),
    ('[metrics]\nlisten = "127.0.0.1:2775"\n[smpp_server]\nlisten = "127.0.0.1:2775"\n[http]\nlisten = "0.0.0.0:2775"',
     ["metrics.listen: 127.0.0.1:2775 takes the port of http.listen (0.0.0.0:2775): 0.0.0.0 listens on every "
      "address of the machine",
      "smpp_server.listen: 127.0.0.1:2775 takes the port of http.listen (0.0.0.0:2775): 0.0.0.0 listens on every "
      "address of the machine"]),
    ('[http]\nlisten = "127.0.0.1:70000"\n[metrics]\nlisten = "127.0.0.1:8080"',  # 8080: http's stand-in
     ['http.listen: port must be from 0 to 65535, got "127.0.0.1:70000"']),
])
def test_two_listeners_on_one_address_are_an_error_on_the_later_key(listeners: str, expected: list[str]) -> None:
    assert errors_of(listeners + "\n" + BASE) == expected


def test_listeners_apart_or_on_port_0_are_accepted() -> None:
    config = parse('[http]\nlisten = "127.0.0.1:0"\n[metrics]\nlisten = "0.0.0.0:0"\n'
                   '[smpp_server]\nlisten = "127.0.0.2:8080"\n' + BASE)
    assert (config.http.listen.port, config.metrics.listen.port) == (0, 0)
    assert parse('[http]\nlisten = "127.0.0.1:8080"\n[metrics]\nlisten = "[::1]:8080"\n' + BASE)


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
