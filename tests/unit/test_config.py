"""The configuration: the shipped files load, SPEC §11 defaults, what a loaded config promises
(frozen, equal for the same file, edge values). Errors: test_config_errors.py; values (store URL,
listen addresses, keys, prefix tables, durations): test_config_values.py; the SMPP server:
test_config_smpp_server.py."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from pathlib import Path

import pytest

from smscore.config import SmppServerConfig, ListenAddress, PrefixTable, load_config
from tests.config_rig import BASE, REPO, parse


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
