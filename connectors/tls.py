"""TLS files, read in one place: CA bundles, certificates with their keys, and a server's options.

Why: the API listener, the SMPP server and operator links all take PEM files from the config
(SPEC §13, §15), and ``smsgw check-config`` must accept exactly the files they can load. So the
files are read and checked here only, and ``PemError`` says which file ("ca", "cert" or "key") is
wrong without ever showing a key.
"""

from __future__ import annotations

from os import PathLike

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from OpenSSL import crypto
from twisted.internet.ssl import (
    Certificate,
    CertificateOptions,
    KeyPair,
    PrivateCertificate,
    trustRootFromCertificates,
)

__all__ = ["PemError", "load_ca_bundle", "load_certificate", "server_options"]


class PemError(ValueError):
    """A TLS file that cannot be used; ``which`` says which one: "ca", "cert" or "key"."""

    def __init__(self, which: str, message: str) -> None:
        super().__init__(message)
        self.which = which


def _read(which: str, path: str | PathLike[str]) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise PemError(which, f'cannot read "{path}": {exc.strerror or exc}') from None


def _certificates(which: str, path: str | PathLike[str]) -> list[x509.Certificate]:
    data = _read(which, path)
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError:
        raise PemError(which, f'"{path}" holds no PEM certificate') from None


def load_ca_bundle(path: str | PathLike[str]):
    """The CAs of the PEM bundle at ``path``; PemError when it cannot be read or holds none."""
    return trustRootFromCertificates(
        [Certificate(crypto.X509.from_cryptography(c)) for c in _certificates("ca", path)])


def load_certificate(cert_path: str | PathLike[str], key_path: str | PathLike[str]
                     ) -> tuple[PrivateCertificate, list]:
    """A certificate (the first of ``cert_path``, with its unencrypted key from ``key_path``) and
    the chain after it (the rest of ``cert_path``, sent along so the peer can reach its CA). PemError when a file cannot be read, is not PEM, the key is encrypted, or the
    key is not the certificate's. The message never shows the key."""
    first, *chain = _certificates("cert", cert_path)
    data = _read("key", key_path)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise PemError("key", f'"{key_path}" is encrypted: the gateway needs the key unencrypted') from None
    except ValueError:
        raise PemError("key", f'"{key_path}" holds no PEM private key') from None
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(*spki) != first.public_key().public_bytes(*spki):
        raise PemError("key", f'"{key_path}" is not the key of the certificate in "{cert_path}"')
    certificate = PrivateCertificate.fromCertificateAndKeyPair(
        Certificate(crypto.X509.from_cryptography(first)),
        KeyPair(crypto.PKey.from_cryptography_key(key)))
    return certificate, [crypto.X509.from_cryptography(c) for c in chain]


def server_options(cert_path: str | PathLike[str], key_path: str | PathLike[str],
                   protocols: list[bytes] | None = None) -> CertificateOptions:
    """A TLS server's options: the certificate, its key and the chain after it (PemError as above).

    ``protocols``: the ALPN protocols offered (``[b"http/1.1"]`` for the HTTP API). Without them a
    client that sends the ALPN extension (curl, browsers, Python's default HTTPS context) gets the
    handshake refused with an internal-error alert: Twisted's TLS wrapper answers ALPN only when it
    has protocols to choose from."""
    certificate, chain = load_certificate(cert_path, key_path)
    extra = {"acceptableProtocols": protocols} if protocols else {}
    return CertificateOptions(privateKey=certificate.privateKey.original, certificate=certificate.original,
                              extraCertChain=chain, **extra)
