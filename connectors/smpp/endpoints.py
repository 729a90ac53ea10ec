"""Where an operator's SMSC is and how a session reaches it: its addresses in turn, plain or TLS.

Why this module exists: an operator may give several addresses for one SMSC account (``hosts``,
SPEC §15) and may want its certificate checked against its own CA and the gateway to show a
client certificate (``tls_ca``, ``tls_cert``/``tls_key``). Neither fits a Twisted endpoint
string (``tls:``'s ``trustRoots`` is a folder, not a bundle), so the link builds its endpoints
from the parts here. The PEM files are read by ``connectors.tls`` only: the config check calls it
too, so a file the check accepted is one the link can load.

Theory of operation: ``ClientService`` calls its endpoint's ``connect`` once per attempt, so an
``Alternates`` endpoint that hands each call to the next address tries the addresses in turn on
every (re)connect, starting with the first; it remembers which address it tried last, so that a
failed attempt is logged with the address that failed. TLS wraps each address's TCP endpoint with
``optionsForClientTLS(host, ...)``: the SMSC's certificate must name the address connected to,
and chain to ``tls_ca`` when given (else to the platform's trust store, as before). A handshake
that fails ends the connection with OpenSSL's error (or service_identity's, for a certificate that
names another host); ``tls_failure`` turns either into the words ops read in the log.
"""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike

from OpenSSL import SSL
from service_identity import VerificationError
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.internet.ssl import optionsForClientTLS
from twisted.python.failure import Failure
from zope.interface import implementer

from connectors.tls import load_ca_bundle, load_certificate

__all__ = ["Alternates", "ClientTls", "NotingFailures", "tls_failure"]


@implementer(IStreamClientEndpoint)
class Alternates:
    """Endpoints tried in turn: each ``connect`` goes to the one after the last one tried.

    ``endpoints`` are (address, endpoint) pairs; ``tried`` is the address (``host:port``) of the
    last one tried (None before the first)."""

    def __init__(self, endpoints: Sequence[tuple[str, IStreamClientEndpoint]]) -> None:
        self._endpoints = list(endpoints)
        self._next = 0
        self.tried: str | None = None

    def connect(self, factory) -> Deferred:
        self.tried, endpoint = self._endpoints[self._next]
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


def tls_failure(failure: Failure) -> str | None:
    """What TLS said when it ended a connection (``failure``, as the protocol's ``connectionLost``
    got it), or None when it is no TLS error: OpenSSL's reasons ("certificate verify failed",
    "tlsv13 alert certificate required"), or, for a certificate that does not name the address
    connected to, that (Twisted checks it with service_identity)."""
    if failure.check(VerificationError):
        return "certificate verify failed: the certificate does not name the host connected to"
    if not failure.check(SSL.Error):
        return None
    args = failure.value.args
    errors = args[0] if args and isinstance(args[0], list) else []
    reasons = [e[-1] for e in errors if isinstance(e, tuple) and e and e[-1]]
    return ", ".join(dict.fromkeys(reasons)) or str(failure.value) or "TLS error"
