"""policies.callback_urls: which URLs a customer may name and which addresses a push may reach."""

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies.callback_urls import (
    MAX_URL_LENGTH,
    address_problem,
    default_hosts,
    host_allowed,
    host_of,
    host_pattern_problem,
    url_problem,
)

NETS = (ipaddress.ip_network("127.0.0.0/8"),)


@pytest.mark.parametrize("url", [
    "http://example.com/cb", "https://EXAMPLE.com:8443/a?b=c", "http://93.184.216.34/x",
    "http://[2001:db8::1]:8080/x", "http://127.0.0.1:9000/", "https://a-b.example.co.uk./",
])
def test_good_urls_pass(url):
    assert url_problem(url) is None


@pytest.mark.parametrize("url, why", [
    ("ftp://example.com/", "http:// or https://"),
    ("example.com/cb", "http:// or https://"),
    ("http://u:p@example.com/x", "user-info"),
    ("http://@example.com/x", "user-info"),
    ("http:///x", "valid host"),
    ("http://exa mple.com/", "spaces"),
    ("http://example.com\r\nX-Evil: 1/", "control"),
    ("http://example.com:99999/", "port"),
    ("http://example.com:0/", "port 0"),
    ("http://-bad-.example.com/", "valid host"),
    ("http://exa_mple.com/", "valid host"),
    ("http://" + "a" * (MAX_URL_LENGTH) + ".com/", f"at most {MAX_URL_LENGTH}"),
    (42, "http:// or https://"),
    ("http://[::1/", "valid host"),
])
def test_bad_urls_are_refused_with_a_reason(url, why):
    problem = url_problem(url)
    assert problem is not None and why in problem


def test_host_of_normalises_case_ip_literals_and_the_root_dot():
    assert host_of("http://Example.COM./x") == "example.com"
    assert host_of("http://[2001:DB8::1]:80/") == "2001:db8::1"
    assert host_of("http://1.2.3/") is None  # all digits but not an address


@pytest.mark.parametrize("host, allowed", [
    ("hooks.example.com", True), ("HOOKS.example.com", True), ("api.example.com", True),
    ("deep.api.example.com", True), ("example.com", False), ("evilexample.com", False),
    ("other.org", False), ("2001:db8::1", True),
])
def test_host_allowed_exact_or_below_a_wildcard(host, allowed):
    patterns = ("hooks.example.com", "*.api.example.com", "*.example.com", "2001:DB8:0::1")
    patterns_without_root = patterns[:2] + patterns[3:]
    assert host_allowed(host.lower(), patterns) is allowed
    if host == "api.example.com":
        assert not host_allowed(host, patterns_without_root)  # "*.api.example.com" is below it only


def test_no_patterns_allow_nothing():
    assert not host_allowed("example.com", ())


@pytest.mark.parametrize("pattern, ok", [
    ("example.com", True), ("*.example.com", True), ("10.0.0.1", True), ("::1", True),
    ("", False), ("*", False), ("http://example.com", False), ("a b", False), ("ex*.com", False),
    ("[::1]", False), (3, False),
])
def test_host_patterns(pattern, ok):
    assert (host_pattern_problem(pattern) is None) is ok


def test_default_hosts_are_the_accounts_own_urls_hosts():
    assert default_hosts("https://A.example.com/cb", ["smpp", None, "http://b.example.com:81/mo",
                                                       "https://a.example.com/other"]) == \
        ("a.example.com", "b.example.com")
    assert default_hosts(None, []) == ()


@pytest.mark.parametrize("address", [
    "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "0.0.0.0", "224.0.0.1",
    "240.0.0.1", "100.64.0.1", "::1", "fe80::1", "fc00::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::",
    "192.0.2.1", "255.255.255.255",
])
def test_non_global_addresses_are_refused(address):
    problem = address_problem(address, 80, (), ())
    assert problem is not None and "allow_networks" in problem


def test_global_addresses_pass_and_allow_networks_open_a_private_one():
    assert address_problem("93.184.216.34", 443, (), ()) is None
    assert address_problem("2606:2800:220:1:248:1893:25c8:1946", 443, (), ()) is None
    assert address_problem("127.0.0.1", 9000, NETS, ()) is None
    assert address_problem("::ffff:127.0.0.1", 9000, NETS, ()) is None  # unwrapped, then allowed
    assert address_problem("10.0.0.1", 9000, NETS, ()) is not None


def test_the_gateways_own_listeners_are_refused_even_in_an_allowed_network():
    listeners = [("127.0.0.1", 8080), ("0.0.0.0", 9100), ("::", 2775)]
    assert "own listeners" in address_problem("127.0.0.1", 8080, NETS, listeners)
    assert "own listeners" in address_problem("127.0.0.1", 9100, NETS, listeners)
    assert "own listeners" in address_problem("::ffff:127.0.0.1", 8080, NETS, listeners)
    assert "own listeners" in address_problem("::1", 2775, (ipaddress.ip_network("::1/128"),), listeners)
    # a connection to the unspecified address goes to this host: every listener on its port
    unspecified = NETS + (ipaddress.ip_network("0.0.0.0/8"), ipaddress.ip_network("::/128"))
    assert "own listeners" in address_problem("0.0.0.0", 8080, unspecified, listeners)
    assert "own listeners" in address_problem("::", 8080, unspecified, listeners)
    assert address_problem("0.0.0.0", 8081, unspecified, listeners) is None
    assert address_problem("127.0.0.1", 8081, NETS, listeners) is None
    assert address_problem("93.184.216.34", 8080, (), listeners) is None  # another machine's 8080


def test_not_an_address():
    assert "not an IP address" in address_problem("example.com", 80, (), ())


@given(st.text(max_size=300))
def test_any_text_gets_an_answer_and_accepted_urls_have_a_host(text):
    problem = url_problem(text)
    if problem is None:
        assert host_of(text) is not None
