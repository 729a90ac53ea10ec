"""The approval and billing policies."""

from decimal import Decimal as D

import pytest

from policies.approval import link_hosts, over_daily_volume, unapproved_links
from policies.billing import charge_for, notices


@pytest.mark.parametrize("text, hosts", [
    ("see https://acme.example/offer now", ["acme.example"]),
    ("http://Shop.ACME.example:8080/x and www.evil.example", ["shop.acme.example", "www.evil.example"]),
    ("go to bit.ly/abc", ["bit.ly"]),
    ("no links here. Really.", []),
    ("mail me at bob@acme.example", []),
    ("version 1.5 costs 2.50", []),
    ("no dot at all", []),
    ("http://intranet/offer: a host without a dot", ["intranet"]),
])
def test_link_hosts(text, hosts):
    assert link_hosts(text) == hosts


def test_unapproved_links():
    assert unapproved_links("https://shop.acme.example/a", ["acme.example"]) == []
    assert unapproved_links("https://acme.example.evil.com/a", ["acme.example"]) == ["acme.example.evil.com"]
    assert unapproved_links("https://acme.example", []) == ["acme.example"]
    assert unapproved_links("no dot at all", []) == []
    assert unapproved_links("http://intranet/offer", ["acme.example"]) == ["intranet"]  # "://" without a "."


def test_over_daily_volume():
    assert over_daily_volume(0, 5, None) == 0
    assert over_daily_volume(8, 5, 10) == 3
    assert over_daily_volume(10, 5, 10) == 5
    assert over_daily_volume(2, 5, 10) == 0


@pytest.mark.parametrize("before, after, crossed", [
    (D(2500), D(1500), [D(2000)]),
    (D(1000), D(999), []),  # 1000 was reached before: not crossed again
    (D(1001), D(999), [D(1000)]),
    (D(1003), D(1000), [D(1000)]),  # landing on a multiple reaches it (as 501 -> 500 does)
    (D(2001), D(2000), [D(2000)]),
    (D(1999), D(2000), [D(2000)]),  # rising onto it too
    (D(2000), D(2001), []),
    (D(2599), D(-101), [D(2000), D(1000), D(500), D(100)]),  # 0 is no threshold
    (D(-1500), D(1000), [D(1000)]),
    (D("1000.5"), D("999.5"), [D(1000)]),
    (D(3500), D(1000), [D(3000), D(2000), D(1000)]),
    (D(600), D(90), [D(500), D(100)]),
    (D(501), D(500), [D(500)]),
    (D(90), D(1100), [D(1000)]),
    (D(5), D(5), []),
])
def test_notices(before, after, crossed):
    assert notices(before, after) == crossed


def test_charge_for():
    assert charge_for(D("0.50"), 3) == D("1.50")
    assert charge_for(None, 1) is None
