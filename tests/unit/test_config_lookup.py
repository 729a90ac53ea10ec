"""[lookup] and operators' `networks` (issue 14): the section's defaults, each bad value named by its
key path, the networks a look-up needs from every operator a profile offers."""

from __future__ import annotations

from decimal import Decimal

import pytest

from smscore.config.values import LookupConfig
from tests.config_rig import errors_of, parse


URL = "http://127.0.0.1:9000/lookup?msisdn={number}"

BASE = """
[operators.cheap]
type = "simulated"
networks = ["24001"]

[operators.dear]
type = "simulated"
networks = ["*"]

[operators.spare]
type = "simulated"

[profiles.standard]
operators = ["cheap", "dear"]
"""


def lookup(**keys: str) -> str:
    lines = [f"{k} = {v}" for k, v in ({"url": f'"{URL}"'} | keys).items()]
    return BASE + "\n[lookup]\n" + "\n".join(lines) + "\n"


def test_no_section_means_no_look_ups_and_networks_default_empty() -> None:
    config = parse(BASE)
    assert config.lookup is None
    assert config.operators["spare"].networks == ()


def test_the_section_with_its_defaults() -> None:
    config = parse(lookup())
    assert config.lookup == LookupConfig(url=URL, cost=Decimal(0), cache=7 * 86400.0, cache_size=100_000,
                                         timeout=2.0)
    assert config.operators["cheap"].networks == ("24001",)
    assert config.operators["dear"].networks == ("*",)


def test_every_key_written() -> None:
    config = parse(lookup(url='"https://hlr.example/v1/{number}?key=abc"', cost='"0.004"', cache='"36h"',
                          cache_size="1", timeout='"250ms"'))
    assert config.lookup == LookupConfig(url="https://hlr.example/v1/{number}?key=abc", cost=Decimal("0.004"),
                                         cache=36 * 3600.0, cache_size=1, timeout=0.25)


@pytest.mark.parametrize("keys", [
    {"cost": "0"}, {"cost": "0.01"}, {"cache": '"0s"'}, {"cache_size": "10000000"}, {"timeout": '"60s"'},
    {"timeout": '"1ms"'}, {"url": '"http://[::1]:9000/hlr/{number}"'},
])
def test_edge_values_are_accepted(keys: dict[str, str]) -> None:
    parse(lookup(**keys))


ERRORS = {
    "url missing": (BASE + "\n[lookup]\ncost = 0.01\n", "lookup.url: is required"),
    "url not http": (lookup(url='"ftp://hlr.example/{number}"'),
                     "lookup.url: must be an http:// or https:// URL"),
    "url not a string": (lookup(url="42"), "lookup.url: must be an http:// or https:// URL"),
    "url without the placeholder": (lookup(url='"http://hlr.example/lookup?msisdn="'),
                                    "lookup.url: must contain {number} exactly once"),
    "url with it twice": (lookup(url='"http://hlr.example/{number}?n={number}"'),
                          "lookup.url: must contain {number} exactly once"),
    "url with it in the host": (lookup(url='"http://{number}.hlr.example/lookup"'),
                                "lookup.url: must name a valid host"),
    "url with it in the fragment": (lookup(url='"http://hlr.example/lookup#{number}"'),
                                    "lookup.url: must have {number} in its path or query"),
    "url with user-info": (lookup(url='"http://user:pw@hlr.example/{number}"'),
                           "lookup.url: must not contain user-info"),
    "negative cost": (lookup(cost="-0.01"), "lookup.cost: must be an amount from 0 to"),
    "cost not a number": (lookup(cost='"cheap"'), "lookup.cost: must be an amount from 0 to"),
    "cache without unit": (lookup(cache="3600"), "lookup.cache: a duration needs a unit"),
    "cache_size zero": (lookup(cache_size="0"), "lookup.cache_size: must be an integer from 1 to 10000000"),
    "cache_size too big": (lookup(cache_size="10000001"),
                           "lookup.cache_size: must be an integer from 1 to 10000000"),
    "cache_size not an integer": (lookup(cache_size='"big"'), "lookup.cache_size: must be an integer"),
    "timeout zero": (lookup(timeout='"0s"'), "lookup.timeout: must be longer than zero"),
    "timeout over a minute": (lookup(timeout='"61s"'), "lookup.timeout: must be at most 60s"),
    "timeout without unit": (lookup(timeout="2"), "lookup.timeout: a duration needs a unit"),
    "unknown key": (lookup(cache_ttl='"1d"'), 'lookup.cache_ttl: unknown key (did you mean "cache"?)'),
    "not a table": ('lookup = "http://hlr.example/{number}"\n' + BASE, "lookup: must be a table"),
}


@pytest.mark.parametrize("case", ERRORS, ids=list(ERRORS))
def test_each_bad_value_names_its_key_path(case: str) -> None:
    text, expected = ERRORS[case]
    errors = errors_of(text)
    assert len(errors) == 1, errors
    assert errors[0].startswith(expected), errors


NETWORK_ERRORS = {
    "not an array": ('"24001"', "operators.spare.networks: must be an array"),
    "empty entry": ('[""]', "operators.spare.networks[0]: must be 1-32 letters, digits"),
    "a space": ('["240 01"]', "operators.spare.networks[0]: must be 1-32 letters, digits"),
    "too long": ('["' + "9" * 33 + '"]', "operators.spare.networks[0]: must be 1-32 letters, digits"),
    "a wildcard pattern": ('["240*"]', "operators.spare.networks[0]: must be 1-32 letters, digits"),
    "not a string": ("[24001]", "operators.spare.networks[0]: must be a string"),
    "a repeat": ('["24001", "24002", "24001"]', 'operators.spare.networks[2]: duplicate "24001"'),
}


@pytest.mark.parametrize("case", NETWORK_ERRORS, ids=list(NETWORK_ERRORS))
def test_each_bad_network_names_its_entry(case: str) -> None:
    written, expected = NETWORK_ERRORS[case]
    text = BASE.replace('[operators.spare]\ntype = "simulated"\n',
                        f'[operators.spare]\ntype = "simulated"\nnetworks = {written}\n')
    errors = errors_of(text)
    assert len(errors) == 1, errors
    assert errors[0].startswith(expected), errors


def test_network_names_as_services_write_them() -> None:
    text = BASE.replace('networks = ["24001"]', 'networks = ["24001", "310-260", "tele2.se", "NET_A", "' + "9" * 32 + '"]')
    assert parse(text).operators["cheap"].networks == ("24001", "310-260", "tele2.se", "NET_A", "9" * 32)


def test_networks_apply_to_real_smscs_too() -> None:
    text = BASE.replace('[operators.spare]\ntype = "simulated"\n', """[operators.spare]
host = "smsc.example"
system_id = "acme"
password = "secret"
networks = ["24007"]
""")
    assert parse(text).operators["spare"].networks == ("24007",)


def test_with_look_ups_every_operator_a_profile_offers_needs_networks() -> None:
    text = lookup().replace('operators = ["cheap", "dear"]', 'operators = ["cheap", "dear", "spare"]')
    assert errors_of(text) == [
        "operators.spare.networks: is required with [lookup]: look-ups need the networks each operator "
        'reaches ("*" for every network)'
    ]


def test_with_look_ups_an_empty_networks_is_refused() -> None:
    text = lookup().replace('networks = ["24001"]', "networks = []")
    [error] = errors_of(text)
    assert error.startswith("operators.cheap.networks: must not be empty with [lookup]")


def test_an_operator_no_profile_offers_needs_no_networks() -> None:
    assert parse(lookup()).operators["spare"].networks == ()  # "spare" is in no profile


def test_without_look_ups_networks_are_not_required() -> None:
    text = BASE.replace('networks = ["24001"]\n', "").replace('networks = ["*"]\n', "")
    assert parse(text).operators["cheap"].networks == ()


def test_a_bad_networks_value_is_reported_once_not_also_as_missing() -> None:
    text = lookup().replace('networks = ["24001"]', 'networks = "24001"')
    assert errors_of(text) == ['operators.cheap.networks: must be an array, got "24001"']


def test_networks_and_cost_change_no_bind_settings() -> None:
    before = parse(BASE).operators["cheap"]
    after = parse(BASE.replace('networks = ["24001"]', 'networks = ["24001", "24002"]')).operators["cheap"]
    assert after != before
    assert after.bind_settings() == before.bind_settings()


def test_the_section_is_frozen() -> None:
    config = parse(lookup())
    with pytest.raises(AttributeError):
        config.lookup.cost = Decimal(1)  # type: ignore[misc]
