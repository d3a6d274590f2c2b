"""Certificates made in the test with ``cryptography``: a CA, intermediates, leaves, self-signed."""

from __future__ import annotations

import ipaddress
import ssl
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass
class Issued:
    """A certificate and its key."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        return self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def issue(cn: str, *, issuer: Issued | None = None, ca: bool = False, days: float = 90,
          sans: list[str] | None = None, not_before_days: float = -1) -> Issued:
    """Issue a certificate valid from ``now + not_before_days`` to ``now + days``.

    ``issuer=None`` makes it self-signed. ``sans`` entries that parse as IP addresses become
    IP SANs, the others DNS SANs.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(issuer.cert.subject if issuer else _name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + timedelta(days=not_before_days))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                          data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                          encipher_only=False, decipher_only=False), critical=True)
    else:
        builder = builder.add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                                        critical=False)
    if sans:
        entries: list[x509.GeneralName] = []
        for s in sans:
            try:
                entries.append(x509.IPAddress(ipaddress.ip_address(s)))
            except ValueError:
                entries.append(x509.DNSName(s))
        builder = builder.add_extension(x509.SubjectAlternativeName(entries), critical=False)
    signer = issuer.key if issuer else key
    return Issued(builder.sign(signer, hashes.SHA256()), key)


def server_context(tmp: Path, leaf: Issued, *chain: Issued) -> ssl.SSLContext:
    """A server SSLContext presenting ``leaf`` followed by ``chain`` (intermediates)."""
    cert_file = tmp / f"{leaf.cert.serial_number}.pem"
    key_file = tmp / f"{leaf.cert.serial_number}.key"
    cert_file.write_bytes(leaf.pem() + b"".join(c.pem() for c in chain))
    key_file.write_bytes(leaf.key_pem())
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_file, key_file)
    return ctx


def write_ca(tmp: Path, ca: Issued) -> str:
    """Write ``ca`` as a PEM file and return its path (for ``ca_file``)."""
    path = tmp / f"ca-{ca.cert.serial_number}.pem"
    path.write_bytes(ca.pem())
    return str(path)
