"""Who may act through the API: bearer tokens and Slack request signatures.

Bearer tokens (``Authorization: Bearer <token>``, from ``api.tokens``) are kept only as SHA-256
digests, computed when the configuration is (re)loaded, and compared with
:func:`hmac.compare_digest` against every configured digest.

Slack requests are verified with the app's signing secret: ``v0=`` + hex HMAC-SHA256 of
``v0:{X-Slack-Request-Timestamp}:{raw body}``
(https://api.slack.com/authentication/verifying-requests-from-slack); timestamps more than
:data:`SLACK_MAX_AGE` seconds from now are rejected, and so is a signature seen before (replay).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable, Iterable

from starlette.requests import Request

from monitor.api.bodies import ApiError, client_host
from monitor.api.deps import ApiSettings, NamedToken

log = logging.getLogger("monitor.api")

#: Slack requests older (or newer) than this many seconds are rejected (Slack's recommendation).
SLACK_MAX_AGE = 300.0


class TokenAuth:
    """Bearer-token check against SHA-256 digests of the configured tokens.

    >>> from types import SimpleNamespace as NS
    >>> auth = TokenAuth([NS(name="alice", token=NS(get_secret_value=lambda: "s3cret-token"))])
    >>> auth.check("Bearer s3cret-token"), auth.check("Bearer nope"), auth.check(None)
    ('alice', None, None)
    """

    def __init__(self, tokens: Iterable[NamedToken]) -> None:
        self._digests = [(hashlib.sha256(t.token.get_secret_value().encode()).digest(), t.name) for t in tokens]

    def check(self, header: str | None) -> str | None:
        """Return the token name for an ``Authorization`` header value, or ``None``."""
        if not header:
            return None
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            return None
        digest = hashlib.sha256(value.strip().encode()).digest()
        found = None
        for d, name in self._digests:  # compare against all: no early exit on a match
            if hmac.compare_digest(d, digest):
                found = name
        return found


class SlackVerifier:
    """Verify Slack request signatures and reject replays (in-memory, per process).

    :param secret: the app's signing secret.
    :param max_age: seconds a timestamp may differ from now.
    """

    def __init__(self, secret: str, max_age: float = SLACK_MAX_AGE) -> None:
        self._secret = secret.encode()
        self.max_age = max_age
        self._seen: dict[str, float] = {}

    def sign(self, timestamp: str, body: bytes) -> str:
        """Return ``v0=<hex>`` for ``timestamp`` and ``body`` (what Slack sends)."""
        base = b"v0:" + timestamp.encode() + b":" + body
        return "v0=" + hmac.new(self._secret, base, hashlib.sha256).hexdigest()

    def verify(self, timestamp: str | None, signature: str | None, body: bytes, now: float) -> str:
        """Return ``""`` when valid, else the reason (``missing``, ``stale``, ``bad signature``, ``replay``)."""
        if not timestamp or not signature:
            return "missing signature headers"
        try:
            ts = float(timestamp)
        except ValueError:
            return "bad timestamp"
        if abs(now - ts) > self.max_age:
            return "stale timestamp"
        if not hmac.compare_digest(self.sign(timestamp, body).encode(), signature.encode()):
            return "bad signature"
        for sig, seen_at in list(self._seen.items()):
            if seen_at < now - 2 * self.max_age:
                del self._seen[sig]
        if signature in self._seen:
            return "replayed request"
        self._seen[signature] = now
        return ""


class Credentials:
    """The API's credentials, read through ``settings`` on every request so a reload applies.

    The token digests are rebuilt when the settings object changes (a reload); the Slack
    verifier - and with it the replay memory - when the signing secret changes.

    :param settings: returns the running ``api:`` settings.
    """

    def __init__(self, settings: Callable[[], ApiSettings]) -> None:
        self._settings = settings
        self._auth: TokenAuth | None = None
        self._auth_for: ApiSettings | None = None
        self._slack: SlackVerifier | None = None
        self._slack_digest: bytes | None = None

    def tokens(self) -> TokenAuth:
        """Return the bearer-token check for the running settings."""
        cfg = self._settings()
        if self._auth is None or self._auth_for is not cfg:
            self._auth, self._auth_for = TokenAuth(cfg.tokens), cfg
        return self._auth

    def slack(self) -> SlackVerifier | None:
        """Return the Slack verifier, or ``None`` when ``api.slack_signing_secret`` is not set."""
        secret = self._settings().slack_signing_secret
        if secret is None:
            return None
        value = secret.get_secret_value()
        digest = hashlib.sha256(value.encode()).digest()
        if self._slack is None or self._slack_digest != digest:
            self._slack, self._slack_digest = SlackVerifier(value), digest
        return self._slack

    def link_key(self) -> str | None:
        """Return the key signing ``/ack/{token}`` links, or ``None`` when ``api.link_key`` is not set."""
        key = self._settings().link_key
        return None if key is None else key.get_secret_value()


def credentials_of(request: Request) -> Credentials:
    """Return the :class:`Credentials` of the app serving ``request`` (built by ``create_app``)."""
    creds: Credentials = request.app.state.credentials
    return creds


def bearer_actor(request: Request) -> str:
    """Return the name of the token ``request`` carries.

    :raises ApiError: 401 with ``WWW-Authenticate`` when the token is missing or not accepted
        (logged as a WARNING with the client address and path).
    """
    actor = credentials_of(request).tokens().check(request.headers.get("authorization"))
    if actor is None:
        log.warning("API request rejected: missing or invalid bearer token",
                    extra={"client": client_host(request), "path": request.url.path})
        raise ApiError(401, "missing or invalid bearer token", {"WWW-Authenticate": 'Bearer realm="monitor"'})
    return actor

