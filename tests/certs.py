"""Certificates for TLS tests, made on the spot with ``cryptography``: a CA that signs a server's
certificate (for an IP address) or a client's, written as PEM files, keys readable by their owner
only (as the gateway wants its ``tls_key``, SPEC §15)."""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def write_key(key, path: Path, password: bytes | None = None) -> Path:
    """``key`` as PKCS#8 PEM at ``path`` (encrypted with ``password`` when given), mode 0600."""
    encryption = (serialization.BestAvailableEncryption(password) if password
                  else serialization.NoEncryption())
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       encryption))
    path.chmod(0o600)
    return path


class TestCA:
    """A certificate authority in ``folder``: ``path`` is its certificate (the bundle a peer
    trusts); ``issue`` writes certificates it signs."""

    __test__ = False  # not a test class, whatever pytest thinks of the name

    def __init__(self, folder: Path, name: str = "ca") -> None:
        self.folder = folder
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.cert = self._sign(_name(f"smsgw test {name}"), self.key.public_key(), ca=True)
        self.path = folder / f"{name}.pem"
        self.path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def _sign(self, subject: x509.Name, public_key, *, ca: bool = False, ip: str | None = None):
        now = datetime.datetime.now(datetime.UTC)
        builder = (x509.CertificateBuilder().subject_name(subject)
                   .issuer_name(subject if ca else self.cert.subject)
                   .public_key(public_key).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if ip is not None:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]), critical=False)
        return builder.sign(self.key, hashes.SHA256())

    def issue(self, name: str, ip: str | None = None) -> tuple[Path, Path]:
        """A certificate for ``name`` (and the address ``ip``, for a server) and its key:
        the PEM files ``<name>.pem`` and ``<name>.key``."""
        key = ec.generate_private_key(ec.SECP256R1())
        cert = self._sign(_name(name), key.public_key(), ip=ip)
        cert_path = self.folder / f"{name}.pem"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return cert_path, write_key(key, self.folder / f"{name}.key")
