"""Where the gateway may push (SPEC §15): which URLs a customer may name, which addresses it connects to.

Why: a push is a signed POST the gateway sends, and retries for a day, to a URL a customer chose. Left
unchecked that is a request forgery service: the gateway's own admin API, a cloud's metadata address
or anything on the carrier's private network would get it. Three rules, each a pure function here:

- ``url_problem``: the URL's shape (http or https, at most 2,048 characters, a valid host, no
  user-info, no spaces or control characters).
- ``host_allowed``: a request's ``callback_url`` names one of the account's ``callback_hosts``
  (exact names compared case-insensitively, any port; ``*.example.com`` for its subdomains);
  ``default_hosts`` gives an account's list when its config names none.
- ``address_problem``: the address actually connected to is globally routable (IPv4-mapped IPv6
  unwrapped), unless ``[push] allow_networks`` lists its network; a gateway listener is refused
  always, whatever the networks allow.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

__all__ = ["MAX_URL_LENGTH", "address_problem", "default_hosts", "host_allowed", "host_of",
           "host_pattern_problem", "url_problem"]

MAX_URL_LENGTH = 2048
_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_NAME = re.compile(rf"{_LABEL}(\.{_LABEL})*\.?")
_FORBIDDEN = re.compile(r"[\x00-\x20\x7f\\]")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def url_problem(url: object) -> str | None:
    """Why ``url`` cannot be a push target, or None when it can."""
    if not isinstance(url, str):
        return "must be an http:// or https:// URL"
    if len(url) > MAX_URL_LENGTH:
        return f"must be at most {MAX_URL_LENGTH} characters, got {len(url)}"
    if _FORBIDDEN.search(url):
        return "must not contain spaces, control characters or backslashes"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "must be an http:// or https:// URL with a valid host and port"
    if parts.scheme.lower() not in ("http", "https"):
        return "must be an http:// or https:// URL"
    if "@" in parts.netloc:
        return "must not contain user-info (user:password@)"
    if port == 0:
        return "must not name port 0"
    if host_of(url) is None:
        return "must name a valid host (a DNS name or an IP address)"
    return None


def host_of(url: str) -> str | None:
    """The URL's host, lower-cased (an IP literal without brackets), or None when it is not valid."""
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    if not host:
        return None
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    host = host.lower()
    return host.rstrip(".") if _NAME.fullmatch(host) and not host.replace(".", "").isdigit() else None


def host_pattern_problem(pattern: object) -> str | None:
    """Why ``pattern`` cannot be a ``callback_hosts`` entry (a host, an IP, or ``*.`` + a domain)."""
    if isinstance(pattern, str) and pattern:
        name = pattern[2:] if pattern.startswith("*.") else pattern
        if "[" not in name and "]" not in name and host_of(f"http://{_bracketed(name)}/") is not None:
            return None
    return "must be a host name, an IP address or *.domain"


def _bracketed(name: str) -> str:
    return f"[{name}]" if ":" in name else name


def host_allowed(host: str, patterns: Iterable[str]) -> bool:
    """``host`` (from ``host_of``) is one of ``patterns``: exactly, or below a ``*.`` domain."""
    for pattern in patterns:
        pattern = pattern.lower().rstrip(".")
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]) and len(host) > len(pattern) - 1:
                return True
        elif host == pattern or (":" in pattern and _same_ip(host, pattern)):
            return True
    return False


def _same_ip(a: str, b: str) -> bool:
    try:
        return ipaddress.ip_address(a) == ipaddress.ip_address(b)
    except ValueError:
        return False


def default_hosts(callback_url: str | None, keyword_urls: Iterable[str | None]) -> tuple[str, ...]:
    """An account's ``callback_hosts`` when its config names none: the hosts of its own
    ``callback_url`` and its keywords' URLs (so an account with neither may name no host)."""
    hosts: list[str] = []
    for url in (callback_url, *keyword_urls):
        host = host_of(url) if url and url != "smpp" else None
        if host is not None and host not in hosts:
            hosts.append(host)
    return tuple(hosts)


def address_problem(address: str, port: int, allow_networks: Iterable[Network],
                    listeners: Iterable[tuple[str, int]]) -> str | None:
    """Why the gateway must not connect to ``address``:``port``, or None when it may.

    ``listeners`` are the gateway's own (host, port) listen addresses; a listener on an unspecified
    host (0.0.0.0, ::) is every local address on its port.
    """
    try:
        ip: Address = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return f"{address!r} is not an IP address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for host, listen_port in listeners:
        if listen_port == port and _listener_covers(host, ip):
            return f"{ip}:{port} is one of the gateway's own listeners"
    if any(ip.version == net.version and ip in net for net in allow_networks):
        return None
    if ip.is_unspecified or ip.is_loopback or ip.is_link_local or ip.is_private or ip.is_multicast \
            or ip.is_reserved or not ip.is_global:
        return f"{ip} is not a globally routable address (allow its network in [push] allow_networks)"
    return None


def _listener_covers(host: str, ip: Address) -> bool:
    """A listener on ``host`` is reached at ``ip``: the same address, or any loopback or unspecified
    one for a listener on every address (its other local addresses are private, refused anyway
    unless ``allow_networks`` lists them). A connection to the unspecified address (0.0.0.0, ::)
    goes to this host, so it reaches every listener on its port, whatever its address."""
    if ip.is_unspecified:
        return True
    try:
        listen = ipaddress.ip_address(host)
    except ValueError:
        return host == "localhost" and ip.is_loopback
    if isinstance(listen, ipaddress.IPv6Address) and listen.ipv4_mapped is not None:
        listen = listen.ipv4_mapped
    if listen.is_unspecified:
        return ip.is_loopback or ip.is_unspecified
    return listen == ip
