"""Make a local self-signed certificate for the demo's TLS endpoint.

The demo serves the sample backend over HTTPS with it, so the ``tls`` probe has a real
certificate to read. A self-signed certificate does not verify against the system trust store;
point the probe's CA file at the certificate itself (it is its own CA) to make it verify.

Example::

    cert, key = make_self_signed_cert(".demo-tls", hostname="localhost", days_valid=90)
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def make_self_signed_cert(directory: str | Path, hostname: str = "localhost", days_valid: int = 90,
                          *, reuse: bool = True) -> tuple[Path, Path]:
    """Write a self-signed certificate and its key (PEM) into ``directory``.

    The certificate names ``hostname``, ``localhost`` and ``127.0.0.1`` in its SANs and is a CA
    for itself (so a client can trust it as its own CA file).

    :param directory: folder for ``cert.pem`` and ``key.pem`` (created if missing).
    :param hostname: subject CN and first DNS SAN.
    :param days_valid: validity in days from now (e.g. 20 makes the 30-day expiry warning fire).
    :param reuse: keep an existing pair when it names ``hostname`` and expires at least one day
        later than ``days_valid - 1`` days from now; otherwise write a new one.
    :return: ``(cert_path, key_path)``.
    :raises ValueError: ``days_valid`` is not positive.
    """
    if days_valid <= 0:
        raise ValueError(f"days_valid must be > 0, got {days_valid}")
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    now = dt.datetime.now(dt.timezone.utc)
    if reuse and cert_path.exists() and key_path.exists():
        try:
            existing = x509.load_pem_x509_certificate(cert_path.read_bytes())
            cn = existing.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
            left = existing.not_valid_after_utc - now
            if cn == hostname and dt.timedelta(days=days_valid - 1) <= left <= dt.timedelta(days=days_valid):
                return cert_path, key_path
        except (ValueError, IndexError):
            pass
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, hostname),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Codebook monitor demo"),
    ])
    sans: list[x509.GeneralName] = [x509.DNSName(hostname)]
    if hostname != "localhost":
        sans.append(x509.DNSName("localhost"))
    sans.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days_valid))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path
