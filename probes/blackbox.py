"""blackbox_exporter-compatible probe samples: HTTP phases, TLS chains, certificate info.

Names, labels and values follow blackbox_exporter's http prober (``prober/http.go``,
``prober/tls.go``, ``prober/utils.go``; compared against the real binary by
``tests/probes/test_probe_blackbox_compat.py``), so dashboards and rules written for it work:

- ``probe_http_duration_seconds{phase}``: seconds per phase, summed over redirects, every phase
  present (``0`` when it did not happen): ``resolve`` (name resolution), ``connect`` (TCP),
  ``tls`` (the handshake), ``processing`` (connection ready to first response byte: sending the
  request and the server's work), ``transfer`` (first byte to the end of the body; the last
  response only, as redirect bodies are not read);
- ``probe_http_status_code``, ``probe_http_content_length`` (``Content-Length``, ``-1`` when
  absent), ``probe_http_uncompressed_body_length``, ``probe_http_redirects``, ``probe_http_ssl``
  (the last response came over TLS), ``probe_http_version`` (``1.1``),
  ``probe_failed_due_to_regex``, ``probe_http_last_modified_timestamp_seconds`` (when the header
  parses);
- ``probe_ip_protocol`` (4 or 6), ``probe_ip_addr_hash`` (FNV-1a 32 of the address's bytes),
  ``probe_dns_lookup_time_seconds``: of the first request's connection;
- TLS (the last response's connection): ``probe_ssl_earliest_cert_expiry`` (presented chain),
  ``probe_ssl_last_chain_expiry_timestamp_seconds`` (the earliest ``notAfter`` of the chain that
  verified, root included; absent when none verified),
  ``probe_ssl_last_chain_info{fingerprint_sha256,subject,issuer,subjectalternative,serialnumber}``
  (its leaf), ``probe_tls_version_info{version}`` (``TLS 1.3``).

Ours beside them, keyed per certificate so an alert can name the one expiring:
``probe_tls_cert_expiry{position,serial,fingerprint_sha256,subject}`` (every presented
certificate), ``probe_tls_verified_cert_expiry{...}`` (every certificate of the verified chain)
and ``probe_tls_expiring_cert_info{position,subject,issuer,serialnumber,fingerprint_sha256}`` = 1
(the verified chain's certificate whose ``notAfter`` is ``probe_ssl_last_chain_expiry_timestamp_seconds``).

The verified chain. Go's ``crypto/tls`` hands blackbox_exporter the chains it verified; Python
3.11's ``ssl`` gives only the presented chain (``SSLObject.get_verified_chain`` arrives in 3.13).
So :func:`verified_chain` builds the path again with ``cryptography``'s X.509 verifier, from the
presented certificates to the roots of the same ``SSLContext``, for the same host name and time
(extension rules relaxed to what OpenSSL requires, so a private CA without key identifiers still
verifies). A path through a trusted root wins over an expired cross-signed certificate the
server also sends, as with OpenSSL's trusted-first search and Go's verifier. When OpenSSL verified
the connection but no path is found here (a policy difference), no verified chain is reported and
the presented chain stands in for expiry checks (the caller's choice; see ``probes.tls``).
"""

from __future__ import annotations

import functools
import ipaddress
import ssl
import warnings
from collections.abc import Sequence
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from probes.base import ProbeResult
from probes.transport import Hop

if TYPE_CHECKING:
    from cryptography import x509

#: HTTP phases in blackbox_exporter's order.
PHASES = ("resolve", "connect", "tls", "processing", "transfer")
#: OpenSSL's protocol names -> blackbox_exporter's ``probe_tls_version_info`` values (``getTLSVersion``).
_TLS_VERSIONS = {"TLSv1": "TLS 1.0", "TLSv1.1": "TLS 1.1", "TLSv1.2": "TLS 1.2", "TLSv1.3": "TLS 1.3"}


def tls_version_name(openssl_name: str) -> str:
    """Return blackbox_exporter's name of a TLS version: ``TLSv1.3`` -> ``TLS 1.3``; else ``unknown``."""
    return _TLS_VERSIONS.get(openssl_name, "unknown")


def ip_addr_hash(address: str) -> int:
    """Return the 32-bit FNV-1a hash of ``address``'s bytes (4 for IPv4, 16 for IPv6), as
    blackbox_exporter's ``probe_ip_addr_hash`` (``ipHash``)."""
    h = 0x811C9DC5
    for byte in ipaddress.ip_address(address.split("%")[0]).packed:
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return h


# --------------------------------------------------------------------------------------------
# Certificates
# --------------------------------------------------------------------------------------------

def _go_name(name: x509.Name) -> str:
    """Return ``name`` as Go's ``pkix.Name.String()`` writes it (RFC 4514 order and escaping, Go's
    attribute keywords: ``CN=leaf,O=Example Inc.,C=US``)."""
    from cryptography.x509.oid import NameOID

    return name.rfc4514_string({NameOID.SERIAL_NUMBER: "SERIALNUMBER", NameOID.POSTAL_CODE: "POSTALCODE"})


def not_after(cert: x509.Certificate) -> float:
    """Return the certificate's ``notAfter`` in Unix seconds."""
    return cert.not_valid_after_utc.timestamp()


def fingerprint(cert: x509.Certificate) -> str:
    """Return the SHA-256 of the certificate's DER, lowercase hex."""
    from cryptography.hazmat.primitives import hashes

    return cert.fingerprint(hashes.SHA256()).hex()


def cert_info_labels(cert: x509.Certificate) -> dict[str, str]:
    """Return ``probe_ssl_last_chain_info``'s labels for ``cert``: ``fingerprint_sha256``,
    ``subject``, ``issuer`` (Go's name format), ``subjectalternative`` (the DNS SANs, comma-joined,
    as Go's ``cert.DNSNames``), ``serialnumber`` (lowercase hex)."""
    from cryptography import x509

    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = san.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        dns = []
    return {"fingerprint_sha256": fingerprint(cert), "subject": _go_name(cert.subject),
            "issuer": _go_name(cert.issuer), "subjectalternative": ",".join(dns),
            "serialnumber": format(cert.serial_number, "x")}


@functools.lru_cache(maxsize=8)
def _store(roots: tuple[bytes, ...]) -> Any:
    from cryptography import x509
    from cryptography.utils import CryptographyDeprecationWarning
    from cryptography.x509.verification import Store

    certs = []
    with warnings.catch_warnings():  # old roots with a non-positive serial still anchor paths, as in OpenSSL
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        for der in roots:
            try:
                certs.append(x509.load_der_x509_certificate(der))
            except ValueError:  # a root cryptography cannot parse cannot anchor a path here
                continue
    return Store(certs) if certs else None


def trust_store(ctx: ssl.SSLContext) -> Any:
    """Return a ``cryptography`` ``Store`` of ``ctx``'s trusted roots (``None`` when it has none).

    The roots are the certificates ``ctx`` loaded from a CA file (``get_ca_certs``); a context that
    only names a CA directory (loaded lazily by OpenSSL) falls back to the default CA file's.
    Stores are cached by their roots.
    """
    roots = ctx.get_ca_certs(binary_form=True)
    if not roots:
        cafile = ssl.get_default_verify_paths().cafile
        if cafile:
            probe_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            try:
                probe_ctx.load_verify_locations(cafile=cafile)
            except (OSError, ssl.SSLError):
                return None
            roots = probe_ctx.get_ca_certs(binary_form=True)
    return _store(tuple(roots))


def verified_chain(chain: Sequence[x509.Certificate], store: Any, hostname: str,
                   now: float) -> list[x509.Certificate] | None:
    """Return the chain that verifies ``chain[0]`` for ``hostname`` at ``now`` (Unix seconds), leaf
    first and trusted root last, built from ``chain[1:]`` and ``store``'s roots; ``None`` when no
    path verifies (see the module docstring)."""
    if not chain or store is None:
        return None
    from cryptography.x509 import verification as v

    host = hostname.rstrip(".").strip("[]")
    try:
        subject: Any = v.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        subject = v.DNSName(host)
    from cryptography import x509

    # what OpenSSL requires of a private CA, not the Web PKI's key identifiers and key usages:
    # CAs say they are CAs, a server certificate names its host in a SAN (as Go requires too)
    ca_policy = v.ExtensionPolicy.permit_all().require_present(x509.BasicConstraints, v.Criticality.AGNOSTIC, None)
    ee_policy = v.ExtensionPolicy.permit_all().require_present(
        x509.SubjectAlternativeName, v.Criticality.AGNOSTIC, None)
    builder = (v.PolicyBuilder().store(store).time(datetime.fromtimestamp(now, timezone.utc))
               .extension_policies(ca_policy=ca_policy, ee_policy=ee_policy))
    try:
        return list(builder.build_server_verifier(subject).verify(chain[0], list(chain[1:])))
    except (v.VerificationError, ValueError):
        return None


def _position(i: int, n: int) -> str:
    return "leaf" if i == 0 else "root" if i == n - 1 and n > 1 else "intermediate"


def add_tls_samples(result: ProbeResult, chain: Sequence[x509.Certificate],
                    verified: Sequence[x509.Certificate] | None, tls_version: str, *, summary: bool = True,
                    seen: set[tuple[str, str]] | None = None, **labels: str) -> None:
    """Add the TLS samples of one connection (see the module docstring) to ``result``.

    :param chain: the presented certificates, leaf first (at least one).
    :param verified: the verified chain, leaf first and root last; ``None`` when none verified.
    :param tls_version: OpenSSL's protocol name (``TLSv1.3``); ``""`` adds no version sample.
    :param summary: add the connection-wide families too (``probe_ssl_earliest_cert_expiry``,
        ``probe_ssl_last_chain_*``, ``probe_tls_version_info``, ``probe_tls_expiring_cert_info``):
        true for the one connection they describe (a redirect's last), false for the others,
        which add only the per-certificate families.
    :param seen: ``(family, fingerprint)`` pairs already added (shared across the connections of
        one run, so a certificate served on two hops is one series); updated.
    :param labels: extra labels on the per-certificate families (the api probe's ``server_name``).
    """
    seen = set() if seen is None else seen
    if summary:
        result.add("probe_ssl_earliest_cert_expiry", min(not_after(c) for c in chain))
        if tls_version:
            result.add("probe_tls_version_info", 1, version=tls_version_name(tls_version))
    for i, cert in enumerate(chain):
        fp = fingerprint(cert)
        if ("presented", fp) in seen:  # a server may send one certificate twice: one series
            continue
        seen.add(("presented", fp))
        result.add("probe_tls_cert_expiry", not_after(cert), position="leaf" if i == 0 else "intermediate",
                   serial=format(cert.serial_number, "x"), fingerprint_sha256=fp,
                   subject=cert.subject.rfc4514_string(), **labels)
    if not verified:
        return
    n = len(verified)
    for i, cert in enumerate(verified):
        fp = fingerprint(cert)
        if ("verified", fp) in seen:
            continue
        seen.add(("verified", fp))
        result.add("probe_tls_verified_cert_expiry", not_after(cert), position=_position(i, n),
                   serial=format(cert.serial_number, "x"), fingerprint_sha256=fp,
                   subject=cert.subject.rfc4514_string(), **labels)
    if not summary:
        return
    earliest = min(verified, key=not_after)
    result.add("probe_ssl_last_chain_expiry_timestamp_seconds", not_after(earliest))
    result.add("probe_ssl_last_chain_info", 1, **cert_info_labels(verified[0]))
    info = cert_info_labels(earliest)
    result.add("probe_tls_expiring_cert_info", 1, position=_position(verified.index(earliest), n),
               subject=info["subject"], issuer=info["issuer"], serialnumber=info["serialnumber"],
               fingerprint_sha256=info["fingerprint_sha256"], **labels)


#: Help texts of the families this module adds (merged into the probes' ``METRICS``).
TLS_METRICS = {
    "probe_ssl_earliest_cert_expiry": "Unix seconds of the earliest notAfter in the presented chain, "
                                      "intermediates included.",
    "probe_ssl_last_chain_expiry_timestamp_seconds": "Unix seconds of the earliest notAfter in the chain that "
                                                     "verified, root included.",
    "probe_ssl_last_chain_info": "Leaf certificate of the verified chain: fingerprint, subject, issuer, DNS SANs, "
                                 "serial as labels; value 1.",
    "probe_tls_version_info": "Negotiated TLS version as a label (TLS 1.3); value 1.",
    "probe_tls_cert_expiry": "Unix seconds of each presented certificate's notAfter, keyed by position, serial, "
                             "SHA-256 fingerprint and subject.",
    "probe_tls_verified_cert_expiry": "Unix seconds of each verified-chain certificate's notAfter, keyed by "
                                      "position (leaf, intermediate, root), serial, fingerprint and subject.",
    "probe_tls_expiring_cert_info": "The verified-chain certificate expiring first: position, subject, issuer, "
                                    "serial, fingerprint as labels; value 1.",
}

HTTP_METRICS = {
    "probe_http_duration_seconds": "Duration of the HTTP request by phase, summed over all redirects, in seconds.",
    "probe_http_content_length": "Content-Length of the last response (-1 when absent).",
    "probe_http_uncompressed_body_length": "Bytes of the last response's decoded body.",
    "probe_http_redirects": "The number of redirects followed.",
    "probe_http_ssl": "Whether the last response came over TLS (1) or not (0).",
    "probe_http_version": "HTTP version of the last response (1.1).",
    "probe_failed_due_to_regex": "Whether the probe failed because a body or header regular expression did not hold.",
    "probe_http_last_modified_timestamp_seconds": "The last response's Last-Modified header in Unix seconds.",
    "probe_ip_protocol": "IP protocol of the first connection (4 or 6).",
    "probe_ip_addr_hash": "FNV-1a 32-bit hash of the first connection's IP address bytes.",
    "probe_dns_lookup_time_seconds": "Seconds the first name resolution took.",
}


# --------------------------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------------------------

def phase_seconds(hops: Sequence[Hop]) -> dict[str, float]:
    """Return seconds per phase summed over ``hops`` (see the module docstring); every phase present."""
    out = dict.fromkeys(PHASES, 0.0)
    for hop in hops:
        if hop.resolved is None:
            continue
        out["resolve"] += hop.resolved - hop.start
        if hop.connected is None:
            continue
        out["connect"] += hop.connected - hop.resolved
        ready = hop.connected
        if hop.tls_start is not None and hop.tls_done is not None:
            out["tls"] += hop.tls_done - hop.tls_start
            ready = hop.tls_done
        if hop.first_byte is None:
            continue
        out["processing"] += hop.first_byte - ready
        if hop.end is not None:
            out["transfer"] += hop.end - hop.first_byte
    return {k: max(v, 0.0) for k, v in out.items()}


def add_http_samples(result: ProbeResult, hops: Sequence[Hop], *, http_version: str, headers: Any,
                     body_length: int, redirects: int, ssl: bool, regex_failed: bool = False) -> None:
    """Add the HTTP samples of one probe request and its redirects (module docstring) to ``result``.

    :param hops: the request's trace (first request first); may be empty (another transport).
    :param http_version: the last response's version (``HTTP/1.1``).
    :param headers: the last response's headers (a mapping with case-insensitive ``get``).
    :param body_length: bytes of the last response's decoded body read.
    """
    for phase, seconds in phase_seconds(hops).items():
        result.add("probe_http_duration_seconds", seconds, phase=phase)
    declared = str(headers.get("content-length", "")).strip()
    result.add("probe_http_content_length", int(declared) if declared.isdigit() else -1)
    result.add("probe_http_uncompressed_body_length", body_length)
    result.add("probe_http_redirects", redirects)
    result.add("probe_http_ssl", 1 if ssl else 0)
    try:
        result.add("probe_http_version", float(http_version.removeprefix("HTTP/")))
    except ValueError:
        result.add("probe_http_version", 0)
    result.add("probe_failed_due_to_regex", 1 if regex_failed else 0)
    modified = headers.get("last-modified")
    if modified:
        try:
            result.add("probe_http_last_modified_timestamp_seconds", parsedate_to_datetime(modified).timestamp())
        except (TypeError, ValueError):
            pass
    first = hops[0] if hops else None
    if first is not None and first.address is not None:
        import socket

        result.add("probe_ip_protocol", 6 if first.address[1] == socket.AF_INET6 else 4)
        result.add("probe_ip_addr_hash", ip_addr_hash(first.address[0]))
    if first is not None and first.resolved is not None:
        result.add("probe_dns_lookup_time_seconds", max(first.resolved - first.start, 0.0))
