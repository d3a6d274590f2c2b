"""The ``tls`` probe: the certificate chain a TLS server presents, and whether it is trustworthy.

One run connects to ``host:port`` with SNI ``server_name`` (default ``host``) and a verifying
context (the system trust store, or only ``ca_file`` when set; hostname checking is done
separately, below). If verification fails the reason is kept and the probe reconnects without
verification to still read the chain. The presented chain (leaf first, intermediates as sent)
comes from ``SSLObject.get_unverified_chain()`` (public in Python 3.13, the private
``_sslobj.get_unverified_chain()`` in 3.10–3.12); when neither exists only the leaf is read.
Certificates are parsed with ``cryptography``.

Exported, after blackbox_exporter ``prober/tls.go`` (names and values as it writes them; see
``probes.blackbox``):

- ``probe_ssl_earliest_cert_expiry``: Unix seconds of the earliest ``notAfter`` in the
  presented chain, intermediates included (an intermediate may expire before the leaf);
- ``probe_ssl_last_chain_expiry_timestamp_seconds``: the earliest ``notAfter`` of the chain that
  verified (leaf to trusted root, built with ``cryptography`` from the presented certificates and
  the trusted roots, as Go's verified chains); ``probe_ssl_last_chain_info{fingerprint_sha256,
  subject,issuer,subjectalternative,serialnumber}`` = 1 for its leaf; both absent when no chain
  verified;
- ``probe_tls_version_info{version}`` = 1, ``version`` as blackbox_exporter writes it (``TLS 1.3``);
- ``probe_ssl_leaf_cert_expiry``: the leaf's own ``notAfter``;
- ``probe_ssl_remaining_seconds``: seconds from now to the earliest expiry of the verified chain
  (of the presented chain when none verified; negative when expired). It replaces
  ``probe_ssl_days_left``, whose unit promtool's lint rejects: days are ``/ 86400`` of it;
- ``probe_tls_chain_verified``, ``probe_tls_hostname_match`` (1/0);
- ``probe_tls_cert_info{subject,issuer,sans,serial}`` = 1 for the leaf (RFC 4514 names,
  SANs comma-separated);
- ``probe_tls_cert_expiry{position,serial,fingerprint_sha256,subject}``: Unix seconds of each
  presented certificate's ``notAfter``, one series per certificate (``position`` ``leaf`` or
  ``intermediate``; serial in hex; the SHA-256 of its DER). Keyed by the certificate, it lets an
  alert follow one certificate while a CDN rolling out a renewal serves old and new by turns (the
  label-less ``probe_ssl_earliest_cert_expiry`` then jumps between the two);
- ``probe_tls_verified_cert_expiry{position,serial,fingerprint_sha256,subject}``: the same for
  each certificate of the verified chain (``position`` ``leaf``, ``intermediate`` or ``root``),
  what the certificate alert watches: an expired cross-signed certificate the server still sends
  is not in it when another path to a trusted root verifies, and neither fails the probe nor
  fires the alert; ``probe_tls_expiring_cert_info{position,subject,issuer,serialnumber,
  fingerprint_sha256}`` = 1 names the verified chain's certificate expiring first.

Hostname matching follows RFC 6125 §6.4 as OpenSSL's ``X509_check_host`` does by default in
Python: DNS SANs, a ``*`` wildcard only as the whole left-most label matching exactly one
label; an IP address only matches an IP SAN; the subject CN is used only when the certificate
has no DNS or IP SAN at all. Success needs a completed handshake, a verified chain, a hostname
match and an unexpired chain (the verified chain; the presented one when none verified) — unless
``insecure_skip_verify`` is set, when only the handshake and the expiry count.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import ssl
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import httpx
from pydantic import Field

from probes.base import ProbeResult, ProbeSettings, one_line
from probes.blackbox import TLS_METRICS, add_tls_samples, not_after, trust_store, verified_chain
from probes.transport import presented_chain

__all__ = ["TlsProbe", "TlsSettings", "hostname_matches", "presented_chain"]

if TYPE_CHECKING:
    from cryptography import x509

# ``cryptography.x509`` is imported where a certificate is parsed, not here: it is ~8 MiB of the
# daemon's memory, which a daemon without a tls probe need not hold.


def hostname_matches(cert: x509.Certificate, hostname: str) -> bool:
    """Return whether ``cert`` is valid for ``hostname`` (DNS name or IP address); see module docstring."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    host = hostname.rstrip(".").lower()
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        ip = None
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns_names = [n.lower().rstrip(".") for n in san.get_values_for_type(x509.DNSName)]
        ips = san.get_values_for_type(x509.IPAddress)
    except x509.ExtensionNotFound:
        dns_names, ips = [], []
    if ip is not None:
        return ip in ips
    if not dns_names and not ips:
        dns_names = [str(a.value).lower() for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    return any(_dns_match(pattern, host) for pattern in dns_names)


def _dns_match(pattern: str, host: str) -> bool:
    if pattern == host:
        return True
    if not pattern.startswith("*."):
        return False
    suffix = pattern[2:]
    label, _, rest = host.partition(".")
    # the wildcard stands for one whole label, and never for a top-level domain's sibling
    return bool(label) and rest == suffix and "." in suffix


def _sans(cert: x509.Certificate) -> list[str]:
    from cryptography import x509

    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [*san.get_values_for_type(x509.DNSName), *(str(i) for i in san.get_values_for_type(x509.IPAddress))]


class TlsSettings(ProbeSettings):
    """Settings of the ``tls`` probe.

    Example::

        - name: api-cert
          kind: tls
          host: api.codebook.example
          port: 443

    :ivar host: host name or IP address to connect to.
    :ivar port: TCP port (default 443).
    :ivar server_name: SNI and hostname to check (default ``host``; SNI is not sent for an IP).
    :ivar ca_file: PEM file of trusted CAs replacing the system trust store.
    :ivar insecure_skip_verify: do not count chain and hostname failures (still exported).
    """

    kind: Literal["tls"] = "tls"
    host: str = Field(min_length=1)
    port: int = Field(default=443, ge=1, le=65535)
    server_name: str | None = None
    ca_file: str | None = None
    insecure_skip_verify: bool = False

    def target(self) -> str:
        """Return ``host:port``."""
        return f"{self.host}:{self.port}"


class TlsProbe:
    """Read and judge the certificate chain of one TLS endpoint.

    :param clock: returns Unix seconds (injected by tests; default ``time.time``).
    """

    kind: ClassVar[str] = "tls"
    Settings: ClassVar[type[ProbeSettings]] = TlsSettings
    METRICS: ClassVar[dict[str, str]] = {
        **TLS_METRICS,
        "probe_ssl_leaf_cert_expiry": "Unix seconds of the leaf certificate's notAfter.",
        "probe_ssl_remaining_seconds": "Seconds until the earliest certificate of the verified chain (the presented "
                                       "chain when none verified) expires; negative when expired.",
        "probe_tls_chain_verified": "Whether the presented chain verifies against the trust store or ca_file.",
        "probe_tls_hostname_match": "Whether the leaf certificate is valid for the checked host name.",
        "probe_tls_cert_info": "Leaf certificate subject, issuer, SANs and serial as labels; value 1.",
        "probe_tls_chain_certs": "Number of certificates the server presented.",
    }

    def __init__(self, settings: TlsSettings, *, http_client: httpx.AsyncClient | None = None,
                 clock: Any = time.time) -> None:
        self.settings = settings
        self._clock = clock

    def _context(self, verify: bool) -> ssl.SSLContext:
        if not verify:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            return ctx
        ctx = ssl.create_default_context(cafile=self.settings.ca_file) if self.settings.ca_file \
            else ssl.create_default_context()
        ctx.check_hostname = False  # judged separately so both facts are exported
        return ctx

    async def _handshake(self, ctx: ssl.SSLContext) -> tuple[list[bytes], str]:
        s = self.settings
        name = s.server_name or s.host
        reader, writer = await asyncio.open_connection(
            s.host, s.port, ssl=ctx, server_hostname=name, ssl_handshake_timeout=s.timeout)
        try:
            sslobj = writer.get_extra_info("ssl_object")
            return presented_chain(sslobj), sslobj.version() or ""
        finally:
            writer.close()
            try:
                await asyncio.wait_for(writer.wait_closed(), 1.0)
            except (OSError, ssl.SSLError, asyncio.TimeoutError):
                pass

    async def run(self) -> ProbeResult:
        """Handshake, read the chain, export expiry/verification/hostname figures."""
        s = self.settings
        name = s.server_name or s.host
        if s.ca_file and not os.path.isfile(s.ca_file):
            return ProbeResult(False, error=f"ca_file {s.ca_file}: no such file")
        verify_error: str | None = None
        verifying = self._context(True)
        try:
            try:
                ders, version = await self._handshake(verifying)
            except ssl.SSLCertVerificationError as exc:
                verify_error = exc.verify_message or one_line(str(exc))
                ders, version = await self._handshake(self._context(False))
        except ssl.SSLError as exc:
            reason = (exc.reason or str(exc)).replace("_", " ").lower()
            raise ConnectionError(f"TLS handshake with {s.target()} failed: {one_line(reason)}") from None
        except OSError as exc:
            raise ConnectionError(f"cannot connect to {s.target()}: {one_line(exc.strerror or str(exc))}") from None
        if not ders:
            return ProbeResult(False, error="server presented no certificate")
        from cryptography import x509

        chain = [x509.load_der_x509_certificate(d) for d in ders]
        leaf = chain[0]
        now = self._clock()
        matched = hostname_matches(leaf, name)
        verified = verify_error is None
        good = verified_chain(chain, trust_store(verifying), name, now) if verified and matched else None
        judged = good or chain  # the chain whose expiry counts: the verified one when there is one
        expiring = min(judged, key=not_after)
        earliest = not_after(expiring)
        days_left = (earliest - now) / 86400

        result = ProbeResult(True)
        if verified and matched and good is None:
            result.logs.append("the chain verified with OpenSSL but no path was rebuilt with cryptography: "
                               "expiry judged on the presented chain")
        add_tls_samples(result, chain, good, version)
        result.add("probe_ssl_leaf_cert_expiry", not_after(leaf))
        result.add("probe_ssl_remaining_seconds", earliest - now)
        result.add("probe_tls_chain_verified", 1 if verified else 0)
        result.add("probe_tls_hostname_match", 1 if matched else 0)
        result.add("probe_tls_chain_certs", len(chain))
        result.add("probe_tls_cert_info", 1, subject=leaf.subject.rfc4514_string(),
                   issuer=leaf.issuer.rfc4514_string(), sans=",".join(_sans(leaf)),
                   serial=format(leaf.serial_number, "x"))
        result.details.update(
            days_left=round(days_left, 1),
            expires=datetime.fromtimestamp(earliest, timezone.utc).strftime("%Y-%m-%d"),
            subject=leaf.subject.rfc4514_string(), verified=verified, hostname_match=matched)
        if expiring != leaf:
            result.details["earliest"] = expiring.subject.rfc4514_string()

        problems = []
        if earliest <= now:
            problems.append(f"certificate expired ({expiring.subject.rfc4514_string()})")
        if not s.insecure_skip_verify:
            if not verified:
                problems.append(f"chain not verified: {verify_error}")
            if not matched:
                sans = ",".join(_sans(leaf)) or "no SAN"
                problems.append(f"hostname {name!r} does not match the certificate ({sans})")
        if problems:
            result.success = False
            result.error = one_line("; ".join(problems), 400)
        return result

    async def close(self) -> None:
        """Nothing to release: each run opens and closes its own connection."""
