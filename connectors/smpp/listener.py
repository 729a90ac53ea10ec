"""Opening the SMPP server's listener, plain or TLS, from a "host:port" address."""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.internet.endpoints import quoteStringArgument, serverFromString

__all__ = ["listen"]


def _host_port(address) -> tuple[str, int]:
    """("host", port) of "host:port", "[v6]:port" or anything with ``host`` and ``port``."""
    if not isinstance(address, str):
        return address.host, int(address.port)
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"listen address must be HOST:PORT, not {address!r}")
    return host.removeprefix("[").removesuffix("]"), int(port)


def listen(reactor, factory, listen: str, tls_cert=None, tls_key=None) -> Deferred:
    """Listen on ``listen`` ("host:port", port 0 = any free one, or a config ``ListenAddress``)
    with ``factory``; TLS when ``tls_cert`` and ``tls_key`` (PEM file paths) are given. Fires
    with the listening port (``getHost().port`` is the actual port)."""
    host, port = _host_port(listen)
    if (tls_cert is None) != (tls_key is None):
        raise ValueError("TLS needs both tls_cert and tls_key")
    description = f"tcp:port={port}:interface={quoteStringArgument(host)}"
    if tls_cert is not None:
        description = (f"ssl:port={port}:interface={quoteStringArgument(host)}"
                       f":privateKey={quoteStringArgument(str(tls_key))}"
                       f":certKey={quoteStringArgument(str(tls_cert))}")
    return serverFromString(reactor, description).listen(factory)
