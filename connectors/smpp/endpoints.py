"""Where an operator's SMSC is and how a session reaches it: its addresses in turn, plain or TLS.

Why this module exists: an operator may give several addresses for one SMSC account (``hosts``,
SPEC §15) and may want its certificate checked against its own CA and the gateway to show a
client certificate (``tls_ca``, ``tls_cert``/``tls_key``). Neither fits a Twisted endpoint
string (``tls:``'s ``trustRoots`` is a folder, not a bundle), so the link builds its endpoints
from the parts here. The PEM files are read by ``connectors.tls`` only: the config check calls it
too, so a file the check accepted is one the link can load.

Theory of operation: ``ClientService`` calls its endpoint's ``connect`` once per attempt, so an
``Alternates`` endpoint that hands each call to the next address tries the addresses in turn on
every (re)connect, starting with the first. TLS wraps each address's TCP endpoint with
``optionsForClientTLS(host, ...)``: the SMSC's certificate must name the address connected to,
and chain to ``tls_ca`` when given (else to the platform's trust store, as before).
"""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.internet.ssl import optionsForClientTLS
from zope.interface import implementer

from connectors.tls import load_ca_bundle, load_certificate

__all__ = ["Alternates", "ClientTls", "NotingFailures"]


@implementer(IStreamClientEndpoint)
class Alternates:
    """Endpoints tried in turn: each ``connect`` goes to the one after the last one tried."""

    def __init__(self, endpoints: Sequence[IStreamClientEndpoint]) -> None:
        self._endpoints = list(endpoints)
        self._next = 0

    def connect(self, factory) -> Deferred:
        endpoint = self._endpoints[self._next]
        self._next = (self._next + 1) % len(self._endpoints)
        return endpoint.connect(factory)


@implementer(IStreamClientEndpoint)
class NotingFailures:
    """An endpoint that tells ``failed(failure)`` of each connect that fails, then fails as before.

    Why: ``ClientService`` retries a failed connect but keeps the reason to itself; ops want the
    last one (``GET /v1/admin/binds``, ``last_error``)."""

    def __init__(self, endpoint: IStreamClientEndpoint, failed) -> None:
        self._endpoint = endpoint
        self._failed = failed

    def connect(self, factory) -> Deferred:
        return self._endpoint.connect(factory).addErrback(self._note)

    def _note(self, failure):
        self._failed(failure)
        return failure


class ClientTls:
    """The TLS side of an operator's sessions, its files read once (``PemError`` as above)."""

    def __init__(self, ca: str | PathLike[str] | None = None, cert: str | PathLike[str] | None = None,
                 key: str | PathLike[str] | None = None) -> None:
        if (cert is None) != (key is None):
            raise ValueError("a client certificate needs both tls_cert and tls_key")
        self._trust = load_ca_bundle(ca) if ca is not None else None
        self._client, self._chain = load_certificate(cert, key) if cert is not None else (None, [])

    def creator(self, host: str):
        """The connection creator for ``host``: its certificate must name ``host``."""
        extra = {"extraCertChain": self._chain} if self._chain else None
        return optionsForClientTLS(host, trustRoot=self._trust, clientCertificate=self._client,
                                   extraCertificateOptions=extra)
