"""Secrets in the config (SPEC §15): "env:NAME", "file:PATH" and "raw:..." resolved at load, and
no secret value in any error, whether it was written in the file or read from elsewhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from smscore.config import Config, ConfigError, load_config, parse_config
from tests.config_rig import BASE


FOLDER = Path("/etc/smsgw")

#: one file with every secret key, each a placeholder for what a test writes there
EVERY_SECRET = """
[store]
url = "{url}"

[admin]
api_keys = ["{admin_key}"]

[operators.telia]
host = "smsc.example"
system_id = "acme"
password = "{operator_password}"

[operators.sim]
type = "simulated"

[profiles.standard]
operators = ["sim"]

[smpp_server]
listen = "127.0.0.1:0"

[accounts.acme]
api_keys = ["{account_key}"]
secret = "{account_secret}"

[accounts.acme.smpp]
system_id = "acme"
password = "{esme_password}"
"""

PLAIN = dict(url="postgresql://gw:dbpass@db/smsgw", admin_key="ops-key", operator_password="smscpw",
             account_key="acme-key", account_secret="hmac-key", esme_password="esmepw")


def parse(text: str, environ: dict[str, str] | None = None, folder: Path = FOLDER) -> Config:
    return parse_config(text, path=folder / "gateway.toml", environ=environ or {})


def errors_of(text: str, environ: dict[str, str] | None = None, folder: Path = FOLDER) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse(text, environ, folder)
    return caught.value.errors


def secrets_of(config: Config) -> dict[str, object]:
    """What each secret key of EVERY_SECRET became (API keys as the account/admin they open)."""
    acme = config.accounts["acme"]
    return dict(
        url=config.store.url,
        admin_key=config.is_admin_key(PLAIN["admin_key"]),
        operator_password=config.operators["telia"].password,
        account_key=config.account_for_key(PLAIN["account_key"]) is acme,
        account_secret=acme.secret,
        esme_password=acme.smpp.password,
    )


EXPECTED = dict(PLAIN, admin_key=True, account_key=True)


# --- where a secret comes from ------------------------------------------------------------------


def test_plain_values_are_used_as_written() -> None:
    assert secrets_of(parse(EVERY_SECRET.format(**PLAIN))) == EXPECTED


def test_every_secret_key_reads_env() -> None:
    environ = {f"SMSGW_{key.upper()}": value for key, value in PLAIN.items()}
    written = {key: f"env:SMSGW_{key.upper()}" for key in PLAIN}

    assert secrets_of(parse(EVERY_SECRET.format(**written), environ)) == EXPECTED


def test_every_secret_key_reads_a_file_relative_to_the_config_folder(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    for key, value in PLAIN.items():
        (tmp_path / "secrets" / key).write_text(value + "\n", encoding="utf-8")
    written = {key: f"file:secrets/{key}" for key in PLAIN}

    assert secrets_of(parse(EVERY_SECRET.format(**written), folder=tmp_path)) == EXPECTED


def test_file_paths_may_be_absolute_and_lose_one_trailing_newline_only(tmp_path: Path) -> None:
    (tmp_path / "lf").write_text("pw\n\n", encoding="utf-8")
    (tmp_path / "crlf").write_bytes(b"pw\r\n")
    text = BASE + f'[accounts.a]\nsecret = "file:{tmp_path}/lf"\n[accounts.b]\nsecret = "file:{tmp_path}/crlf"\n'

    config = parse(text, folder=Path("/elsewhere"))

    assert (config.accounts["a"].secret, config.accounts["b"].secret) == ("pw\n", "pw")


def test_raw_keeps_a_value_that_starts_like_a_prefix() -> None:
    text = BASE + '[accounts.a]\nsecret = "raw:env:NOT_READ"\napi_keys = ["raw:file:k"]\n'

    config = parse(text)

    assert config.accounts["a"].secret == "env:NOT_READ"
    assert config.account_for_key("file:k") is config.accounts["a"]


def test_keys_that_hold_no_secret_keep_a_prefix_as_text() -> None:
    config = parse(BASE + '[[shortcodes]]\nnumber = "72550"\nunknown_keyword_reply = "env:HOME"\n',
                   {"HOME": "/root"})

    assert config.shortcodes["72550"].unknown_keyword_reply == "env:HOME"


def test_load_config_reads_this_process_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMSGW_TEST_SECRET", "from-env")
    path = tmp_path / "gateway.toml"
    path.write_text(BASE + '[accounts.a]\nsecret = "env:SMSGW_TEST_SECRET"\n', encoding="utf-8")

    assert load_config(path).accounts["a"].secret == "from-env"


# --- when it cannot be read: the key, the variable or the path, never a value ------------------


@pytest.mark.parametrize(
    ("written", "environ", "expected"),
    [
        ("env:SMSGW_PW", {}, "operators.telia.password: environment variable SMSGW_PW is not set"),
        ("env:SMSGW_PW", {"SMSGW_PW": ""}, "operators.telia.password: environment variable SMSGW_PW is empty"),
        ("env:", {}, 'operators.telia.password: "env:" must be followed by the name of an environment variable'),
        ("file:missing", {}, 'operators.telia.password: cannot read "/etc/smsgw/missing": No such file or directory'),
        ("file:", {}, 'operators.telia.password: "file:" must be followed by the path of a file'),
    ],
    ids=["unset", "empty", "no name", "missing file", "no path"],
)
def test_a_secret_that_cannot_be_read_is_one_error_naming_key_and_source(
    written: str, environ: dict[str, str], expected: str
) -> None:
    text = f'[operators.telia]\nhost = "h"\nsystem_id = "a"\npassword = "{written}"\n' + BASE

    assert errors_of(text, environ) == [expected]


@pytest.mark.parametrize("written", ["env:AUDIT_SECRET_X", "file:missing", ""])
def test_a_push_secret_written_but_unreadable_is_one_error_not_also_required(written: str) -> None:
    text = BASE + f'[accounts.demo]\ncallback_url = "https://demo.example/status"\nsecret = "{written}"\n'

    (error,) = errors_of(text)
    assert error.startswith("accounts.demo.secret: ") and "is required" not in error
    assert errors_of(BASE + '[accounts.demo]\ncallback_url = "https://demo.example/status"\n') == [
        "accounts.demo.secret: is required: pushes to this account (callback_url, callback_hosts or a keyword url) "
        "are signed with it"]


def test_an_empty_or_unreadable_file_is_named_by_its_path(tmp_path: Path) -> None:
    (tmp_path / "empty").write_text("\n", encoding="utf-8")
    (tmp_path / "binary").write_bytes(b"\xff\xfe")
    text = BASE + '[accounts.a]\nsecret = "file:empty"\n[accounts.b]\nsecret = "file:binary"\n'

    assert errors_of(text, folder=tmp_path) == [
        f'accounts.a.secret: file "{tmp_path}/empty" is empty',
        f'accounts.b.secret: cannot read "{tmp_path}/binary": not UTF-8 text',
    ]


def test_an_api_key_that_cannot_be_read_is_named_by_its_entry() -> None:
    text = BASE + '[admin]\napi_keys = ["ok", "env:SMSGW_MISSING"]\n'

    assert errors_of(text) == ["admin.api_keys[1]: environment variable SMSGW_MISSING is not set"]


# --- a wrong secret: the error says what is wrong, never the value ------------------------------

SECRET = "Hunter2Secret9"
URL = f"mysql://gw:{SECRET}@db/smsgw"


@pytest.mark.parametrize("source", ["plain", "env"])
@pytest.mark.parametrize(
    ("section", "value", "expected"),
    [
        ('[operators.telia]\nhost = "h"\nsystem_id = "a"\npassword = "{}"\n', SECRET,
         "operators.telia.password: must be at most 8 characters (SMPP 3.4), got 14"),
        ('[smpp_server]\nlisten = "127.0.0.1:0"\n[accounts.a.smpp]\nsystem_id = "a"\npassword = "{}"\n', SECRET,
         "accounts.a.smpp.password: must be at most 8 characters (SMPP 3.4), got 14"),
        ('[accounts.a]\napi_keys = ["{0}", "{0}"]\n', SECRET, "accounts.a.api_keys[1]: duplicate of [0]"),
        ('[admin]\napi_keys = ["x", "{0}", "{0}"]\n', SECRET, "admin.api_keys[2]: duplicate of [1]"),
        ('[admin]\napi_keys = ["{0}"]\n[accounts.a]\napi_keys = ["{0}"]\n', SECRET,
         'admin.api_keys[0]: is also an API key of account "a"'),
        ('[accounts.a]\napi_keys = ["{0}"]\n[accounts.b]\napi_keys = ["{0}"]\n', SECRET,
         'accounts.b.api_keys[0]: is also an API key of account "a"'),
        ('[store]\nurl = "{}"\n', URL,
         'store.url: must start with "sqlite:///" or "postgresql://", got "mysql://gw:***@db/smsgw"'),
        ('[store]\nurl = "{}"\n', f"sqlite://gw:{SECRET}@db/smsgw",
         'store.url: must be "sqlite:///relative/path" or "sqlite:////absolute/path", '
         'got "sqlite://gw:***@db/smsgw"'),
    ],
    ids=["operator password", "esme password", "account key twice", "admin key twice",
         "admin key of an account", "key of two accounts", "store url scheme", "sqlite url"],
)
def test_a_wrong_secret_is_reported_without_its_value(section: str, value: str, expected: str,
                                                      source: str) -> None:
    written, environ = (value, {}) if source == "plain" else ("env:SMSGW_SECRET", {"SMSGW_SECRET": value})

    with pytest.raises(ConfigError) as caught:
        parse(section.format(written) + BASE, environ)

    assert caught.value.errors == [expected]
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize("section", [
    '[accounts.a]\nsecret = 1234567890\n',
    '[accounts.a]\napi_keys = [1234567890]\n',
    '[accounts.a]\napi_keys = "1234567890"\n',
    '[admin]\napi_keys = "1234567890"\n',
    '[admin]\napi_keys = 1234567890\n',
    '[operators.telia]\nhost = "h"\nsystem_id = "a"\npassword = 1234567890\n',
])
def test_a_secret_of_the_wrong_type_is_not_shown_either(section: str) -> None:
    errors = errors_of(section + BASE)

    assert len(errors) == 1 and "must be a" in errors[0]
    assert "1234567890" not in errors[0]


@pytest.mark.parametrize("url, secret", [
    ("postgresql://u:pa/ss@db/x", "pa/ss"), ("postgresql://u:p@ss@db:5432/x?sslmode=require", "p@ss"),
    ("postgresql://db/x?user=u&password=sec3t&x=1", "sec3t"), ("postgresql://u:plain@db/x", "plain"),
])
def test_the_redacted_store_url_hides_any_password(url, secret):
    from smscore.config.values import StoreConfig

    shown = StoreConfig(url=url).redacted_url
    assert secret not in shown and "***" in shown and shown.startswith("postgresql://")


# --- a PostgreSQL URL libpq would refuse: check-config says so, never with the password ---------

PG_HINT = 'in a password, write "%" as %25, "/" as %2F and "@" as %40'


def store_url_errors(url: str, source: str, folder: Path) -> list[str]:
    """The errors of a config whose [store] url is `url`, written as it is, as "env:" or "file:"."""
    if source == "env":
        return errors_of(BASE + '[store]\nurl = "env:SMSGW_STORE_URL"\n', {"SMSGW_STORE_URL": url})
    if source == "file":
        (folder / "store_url").write_text(url + "\n", encoding="utf-8")
        return errors_of(BASE + '[store]\nurl = "file:store_url"\n', folder=folder)
    return errors_of(BASE + f'[store]\nurl = "{url}"\n')


@pytest.mark.parametrize("source", ["plain", "env", "file"])
@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (f"postgresql://pguser:{SECRET}@db.example:notaport/smsgw",
         'store.url: port must be a number from 1 to 65535, got "notaport" in '
         '"postgresql://pguser:***@db.example:notaport/smsgw"'),
        (f"postgresql://pguser:{SECRET}@db.example:65536/smsgw",
         'store.url: port must be a number from 1 to 65535, got "65536" in '
         '"postgresql://pguser:***@db.example:65536/smsgw"'),
        (f"postgresql://pguser:{SECRET}@db.example:0/smsgw",
         'store.url: port must be a number from 1 to 65535, got "0" in '
         '"postgresql://pguser:***@db.example:0/smsgw"'),
        (f"postgresql://pguser:{SECRET}@db1:5432,db2:x/smsgw",
         'store.url: port must be a number from 1 to 65535, got "x" in '
         '"postgresql://pguser:***@db1:5432,db2:x/smsgw"'),
        (f"postgresql://pguser:{SECRET}@db/smsgw?port=5_432",
         'store.url: port must be a number from 1 to 65535, got "5_432" in '
         '"postgresql://pguser:***@db/smsgw?port=5_432"'),
        (f"postgresql://pguser:{SECRET}@db/smsgw?connect_timeout=ten",
         'store.url: connect_timeout must be an integer, got "ten" in '
         '"postgresql://pguser:***@db/smsgw?connect_timeout=ten"'),
        (f"postgresql://pguser:{SECRET}@db/smsgw?sslmod=require",
         'store.url: is not a URL libpq can read: invalid URI query parameter: "sslmod", got '
         '"postgresql://pguser:***@db/smsgw?sslmod=require"'),
        (f"postgresql://pguser:{SECRET}@db/smsgw?sslmode",
         'store.url: is not a URL libpq can read: missing key/value separator "=" in URI query '
         'parameter: "sslmode", got "postgresql://pguser:***@db/smsgw?sslmode"'),
        (f"postgresql://pguser:{SECRET}@[::1/smsgw",
         'store.url: is not a URL libpq can read: end of string reached when looking for matching "]" '
         'in IPv6 host address in URI: "postgresql://pguser:***@[::1/smsgw"'),
        # libpq quotes the token it cannot decode: here the password, so only the *** part is named
        (f"postgresql://pguser:{SECRET}%zz@db/smsgw",
         f'store.url: libpq cannot read the part shown as *** ({PG_HINT}), got "postgresql://pguser:***@db/smsgw"'),
        (f"postgresql://db/smsgw?user=pguser&password={SECRET}%zz",
         f'store.url: libpq cannot read the part shown as *** ({PG_HINT}), got '
         '"postgresql://db/smsgw?user=pguser&password=***"'),
        # an unescaped "/" ends the user-info for libpq: it reads host "pguser" and the password as port
        (f"postgresql://pguser:{SECRET}/x@db/smsgw",
         f"store.url: port must be a number from 1 to 65535, got a value from the part shown as *** "
         f'({PG_HINT}) in "postgresql://pguser:***@db/smsgw"'),
    ],
    ids=["port not a number", "port above 65535", "port 0", "second host's port", "port with _",
         "connect_timeout", "unknown query parameter", "parameter without =", "unclosed IPv6 host",
         "bad % in password", "bad % in password parameter", "/ in password"],
)
def test_a_postgresql_url_libpq_would_refuse_is_one_error_without_the_password(
    url: str, expected: str, source: str, tmp_path: Path
) -> None:
    errors = store_url_errors(url, source, tmp_path)

    assert errors == [expected]
    assert SECRET not in "\n".join(errors)


@pytest.mark.parametrize("source", ["plain", "env", "file"])
@pytest.mark.parametrize("url", [
    "postgresql://u:p@127.0.0.1:5432/db?sslmode=require",
    "postgresql://smsgw@/db?host=/tmp/pg",
    "postgres://gw:pw@db1:5432,db2/smsgw?connect_timeout=10&target_session_attrs=read-write",
    "postgresql://gw:p%40ss%2Fw@db:+05432/smsgw?keepalives=1&port=6432",
    # the redacted form of this one would not parse ("@" in the query): only the URL itself counts
    "postgresql://db:5432/smsgw?application_name=gw@node1",
])
def test_a_postgresql_url_libpq_reads_is_accepted(url: str, source: str, tmp_path: Path) -> None:
    if source == "env":
        config = parse(BASE + '[store]\nurl = "env:SMSGW_STORE_URL"\n', {"SMSGW_STORE_URL": url})
    elif source == "file":
        (tmp_path / "store_url").write_text(url + "\n", encoding="utf-8")
        config = parse(BASE + '[store]\nurl = "file:store_url"\n', folder=tmp_path)
    else:
        config = parse(BASE + f'[store]\nurl = "{url}"\n')

    assert (config.store.url, config.store.backend) == (url, "postgresql")


def test_the_api_address_is_read_from_the_http_section_alone(tmp_path: Path) -> None:
    """The commands that call a running gateway read [http] only: a secret from an environment
    variable the caller's shell lacks, or a key file it may not read, is the gateway's business."""
    from smscore.config import ListenAddress, api_address

    (tmp_path / "gw.toml").write_text(
        '[http]\nlisten = "127.0.0.1:8443"\ntls_cert = "tls/api.pem"\ntls_key = "tls/api.key"\n'
        '[accounts.a]\nsecret = "env:SMSGW_UNSET_FOR_THIS_TEST"\n[operators.x]\ntype = "bogus"\n')
    assert api_address(tmp_path / "gw.toml") == (ListenAddress("127.0.0.1", 8443), tmp_path / "tls" / "api.pem")
    (tmp_path / "plain.toml").write_text("[gateway]\nnode = 'x'\n")
    assert api_address(tmp_path / "plain.toml") == (ListenAddress("127.0.0.1", 8080), None)
    (tmp_path / "bad.toml").write_text('[http]\nlisten = "nowhere"\n')
    with pytest.raises(ConfigError) as caught:
        api_address(tmp_path / "bad.toml")
    assert caught.value.errors[0].startswith("http.listen: must be")
