r"""Signed, expiring acknowledge/resolve links for pages and emails.

:class:`LinkBuilder` puts them into the messages about one alert (``ack_url``/``resolve_url``
under ``<external_url>/ack/<token>``, valid for ``api.link_ttl`` seconds); :func:`verify` checks
a token when the link is followed.

A token is ``<fingerprint>.<action>.<expires_at>.<signature>`` where ``signature`` is the hex
HMAC-SHA256 (RFC 2104) of ``"v1\\n<fingerprint>\\n<action>\\n<expires_at>"`` under a secret
key, and ``expires_at`` is integer unix seconds. Verification recomputes the MAC and compares
in constant time (:func:`hmac.compare_digest`) before looking at the expiry, so a forged
token learns nothing about timing.

>>> url = make_link("https://mon.example/api/v1/links", "a1b2", "ack", 2000000000, b"k")
>>> token = url.split("token=")[1]
>>> verify(token, now=1999999999, key=b"k")
('a1b2', 'ack')
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from monitor.errors import MonitorError

ACTIONS = ("ack", "resolve", "unack")


class InvalidLinkError(MonitorError, ValueError):
    """A link token is malformed, forged or expired (the message says which, no more)."""


def _key(key: bytes | str) -> bytes:
    return key.encode() if isinstance(key, str) else key


def sign(fingerprint: str, action: str, expires_at: int, key: bytes | str) -> str:
    """Return the hex HMAC-SHA256 signature of one (fingerprint, action, expiry)."""
    msg = f"v1\n{fingerprint}\n{action}\n{int(expires_at)}".encode()
    return hmac.new(_key(key), msg, hashlib.sha256).hexdigest()


def make_token(fingerprint: str, action: str, expires_at: float, key: bytes | str) -> str:
    """Return the token for ``action`` on ``fingerprint`` valid until ``expires_at`` (unix s)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    if not fingerprint or "." in fingerprint:
        raise ValueError("fingerprint must be non-empty and contain no '.'")
    exp = int(expires_at)
    return f"{fingerprint}.{action}.{exp}.{sign(fingerprint, action, exp, key)}"


def make_link(base_url: str, fingerprint: str, action: str, expires_at: float, key: bytes | str) -> str:
    """Return ``base_url`` with ``token=<token>`` appended as a query parameter.

    :param base_url: the API endpoint that accepts link tokens (the API module decides it).
    :param fingerprint: the alert fingerprint.
    :param action: ``ack``, ``resolve`` or ``unack``.
    :param expires_at: unix seconds after which the link is refused.
    :param key: the signing key (a secret from config).
    """
    sep = "&" if "?" in base_url else "?"
    return base_url + sep + urlencode({"token": make_token(fingerprint, action, expires_at, key)},
                                      quote_via=quote)


def verify(token: str, now: float, key: bytes | str) -> tuple[str, str]:
    """Check ``token`` and return ``(fingerprint, action)``.

    :param token: the token from the link.
    :param now: the current time, unix seconds.
    :param key: the signing key.
    :raises InvalidLinkError: malformed, bad signature, or expired (``now > expires_at``).
    """
    parts = token.split(".")
    if len(parts) != 4 or not parts[2].isdigit():
        raise InvalidLinkError("malformed link token")
    fingerprint, action, exp, sig = parts
    expected = sign(fingerprint, action, int(exp), key)
    if not hmac.compare_digest(expected.encode(), sig.encode()):
        raise InvalidLinkError("bad link signature")
    if action not in ACTIONS:
        raise InvalidLinkError("unknown link action")
    if now > int(exp):
        raise InvalidLinkError("link expired")
    return fingerprint, action


@dataclass(frozen=True)
class LinkBuilder:
    """The links of messages about one alert.

    :param external_url: this daemon's external URL (``server.external_url``).
    :param key: the signing key (``api.link_key``); ``""``: no signed links.
    :param ttl: seconds a link stays valid (``api.link_ttl``).
    :param clock: Unix-seconds clock (expiry = now + ``ttl``).

    >>> LinkBuilder("https://mon.example").message_kw("a1b2")
    {'external_url': 'https://mon.example'}
    """

    external_url: str
    key: str = ""
    ttl: float = 86400.0
    clock: Callable[[], float] = time.time

    @classmethod
    def from_config(cls, config: Any, clock: Callable[[], float] = time.time) -> "LinkBuilder":
        """Build from the whole ``Config`` (``server.external_url``, ``api.link_key``, ``api.link_ttl``)."""
        key = getattr(config.api, "link_key", None)
        return cls(config.server.external_url, key.get_secret_value() if key is not None else "",
                   float(getattr(config.api, "link_ttl", 86400.0)), clock)

    def message_kw(self, fingerprint: str) -> dict[str, str]:
        """``Message.build`` keywords for a message about ``fingerprint``: ``external_url``, and
        ``ack_url``/``resolve_url`` when a key is configured."""
        kw = {"external_url": self.external_url}
        if self.key:
            exp = self.clock() + self.ttl
            kw["ack_url"] = f"{self.external_url}/ack/{make_token(fingerprint, 'ack', exp, self.key)}"
            kw["resolve_url"] = f"{self.external_url}/ack/{make_token(fingerprint, 'resolve', exp, self.key)}"
        return kw
