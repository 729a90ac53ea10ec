"""Values of the configuration: the store URL, listen addresses, API keys, prefix tables (prices,
costs), durations."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smscore.config import KeySet, ListenAddress, PrefixTable, hash_api_key, load_config
from smscore.durations import DurationError, parse_duration
from tests.config_rig import BASE, REPO, parse


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
