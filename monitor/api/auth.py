"""Who may act through the API: bearer tokens with scopes, and Slack request signatures.

Bearer tokens (``Authorization: Bearer <token>``, from ``api.tokens``) are kept only as SHA-256
digests, computed when the configuration is (re)loaded, and compared with
:func:`hmac.compare_digest` against every configured digest. Each token carries a name (the
actor in the audit log and in logs) and scopes (:data:`SCOPES`); :func:`authorize` answers 401
for a missing or unknown token and 403 for a token without the scope a route needs (which route
needs which scope: :mod:`monitor.api.access`).

Slack requests are verified with the app's signing secret: ``v0=`` + hex HMAC-SHA256 of
``v0:{X-Slack-Request-Timestamp}:{raw body}``
(https://api.slack.com/authentication/verifying-requests-from-slack). The timestamp must be an
integer number of Unix seconds (``nan``, ``inf``, ``1e400`` are refused) within
:data:`SLACK_MAX_AGE` seconds of now; a signature seen before is a replay. Seen signatures are
claimed in the state store (:meth:`~monitor.store.base.Store.claim_once`), so a restart does not
forget them.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from starlette.requests import Request

from monitor.api.bodies import ApiError, client_host
from monitor.api.deps import ApiSettings, NamedToken

log = logging.getLogger("monitor.api")

#: Every scope a token may hold: ``read`` (views that need a token), ``ack`` (acknowledge,
#: unacknowledge, resolve, silences), ``admin`` (reload), ``intake`` (alerts from Prometheus).
SCOPES = ("read", "ack", "admin", "intake")

#: Slack requests older (or newer) than this many seconds are rejected (Slack's recommendation).
SLACK_MAX_AGE = 300.0

#: The claim namespace of seen Slack signatures in the state store.
SLACK_REPLAY_NAMESPACE = "slack-replay"

# Slack sends whole Unix seconds; anything else (floats, exponents, nan, inf) is refused.
_SLACK_TS = re.compile(r"[0-9]{1,12}")


@dataclass(frozen=True)
class Identity:
    """The holder of an accepted token.

    :ivar name: the token's name (``api.tokens[].name``): the actor in the audit log and logs.
    :ivar scopes: what it may do.
    """

    name: str
    scopes: frozenset[str]


class TokenAuth:
    """Bearer-token check against SHA-256 digests of the configured tokens.

    >>> from types import SimpleNamespace as NS
    >>> auth = TokenAuth([NS(name="alice", token=NS(get_secret_value=lambda: "s3cret-token"), scopes=["ack"])])
    >>> auth.check("Bearer s3cret-token"), auth.check("Bearer nope"), auth.check(None)
    (Identity(name='alice', scopes=frozenset({'ack'})), None, None)
    """

    def __init__(self, tokens: Iterable[NamedToken]) -> None:
        self._digests = [(hashlib.sha256(t.token.get_secret_value().encode()).digest(),
                          Identity(t.name, frozenset(t.scopes))) for t in tokens]

    def check(self, header: str | None) -> Identity | None:
        """Return who holds the token of an ``Authorization`` header value, or ``None``."""
        if not header:
            return None
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            return None
        digest = hashlib.sha256(value.strip().encode("utf-8", "surrogateescape")).digest()
        found = None
        for d, identity in self._digests:  # compare against all: no early exit on a match
            if hmac.compare_digest(d, digest):
                found = identity
        return found


class SlackVerifier:
    """Verify Slack request signatures and timestamps (replays: :meth:`Credentials.claims`).

    :param secret: the app's signing secret.
    :param max_age: seconds a timestamp may differ from now.
    """

    def __init__(self, secret: str, max_age: float = SLACK_MAX_AGE) -> None:
        self._secret = secret.encode()
        self.max_age = max_age

    @property
    def replay_ttl(self) -> float:
        """Seconds a seen signature must be remembered: a timestamp accepted now stays fresh
        for at most ``2 * max_age`` more seconds."""
        return 2 * self.max_age

    def sign(self, timestamp: str, body: bytes) -> str:
        """Return ``v0=<hex>`` for ``timestamp`` and ``body`` (what Slack sends)."""
        base = b"v0:" + timestamp.encode() + b":" + body
        return "v0=" + hmac.new(self._secret, base, hashlib.sha256).hexdigest()

    def verify(self, timestamp: str | None, signature: str | None, body: bytes, now: float) -> str:
        """Return ``""`` when the signature is valid and fresh, else the reason
        (``missing signature headers``, ``bad timestamp``, ``stale timestamp``, ``bad signature``)."""
        if not timestamp or not signature:
            return "missing signature headers"
        if not _SLACK_TS.fullmatch(timestamp):
            return "bad timestamp (expected whole Unix seconds)"
        if abs(now - int(timestamp)) > self.max_age:
            return "stale timestamp"
        if not hmac.compare_digest(self.sign(timestamp, body).encode(), signature.encode("utf-8", "replace")):
            return "bad signature"
        return ""


class MemoryClaims:
    """Keys claimed once, in this process only (used while no state store is open)."""

    def __init__(self) -> None:
        self._seen: dict[str, float] = {}

    async def claim_once(self, namespace: str, key: str, now: float, ttl: float) -> bool:
        """Return ``True`` the first time ``namespace:key`` is claimed within ``ttl`` seconds."""
        for k, at in list(self._seen.items()):
            if at <= now - ttl:
                del self._seen[k]
        full = f"{namespace}:{key}"
        if full in self._seen:
            return False
        self._seen[full] = now
        return True


class Credentials:
    """The API's credentials, read through ``settings`` on every request so a reload applies.

    The token digests are rebuilt when the settings object changes (a reload); the Slack
    verifier when the signing secret changes.

    :param settings: returns the running ``api:`` settings.
    """

    def __init__(self, settings: Callable[[], ApiSettings]) -> None:
        self.settings = settings
        self._auth: TokenAuth | None = None
        self._auth_for: ApiSettings | None = None
        self._slack: SlackVerifier | None = None
        self._slack_digest: bytes | None = None
        #: Replay memory used while the state store is not available.
        self.memory_claims = MemoryClaims()

    def tokens(self) -> TokenAuth:
        """Return the bearer-token check for the running settings."""
        cfg = self.settings()
        if self._auth is None or self._auth_for is not cfg:
            self._auth, self._auth_for = TokenAuth(cfg.tokens), cfg
        return self._auth

    def slack(self) -> SlackVerifier | None:
        """Return the Slack verifier, or ``None`` when ``api.slack_signing_secret`` is not set."""
        secret = self.settings().slack_signing_secret
        if secret is None:
            return None
        value = secret.get_secret_value()
        digest = hashlib.sha256(value.encode()).digest()
        if self._slack is None or self._slack_digest != digest:
            self._slack, self._slack_digest = SlackVerifier(value), digest
        return self._slack

    def link_key(self) -> str | None:
        """Return the key signing ``/ack/{token}`` links, or ``None`` when ``api.link_key`` is not set."""
        key = self.settings().link_key
        return None if key is None else key.get_secret_value()


def credentials_of(request: Request) -> Credentials:
    """Return the :class:`Credentials` of the app serving ``request`` (built by ``create_app``)."""
    creds: Credentials = request.app.state.credentials
    return creds


def authorize(request: Request, scope: str) -> Identity:
    """Check that ``request`` carries a token with ``scope``; remember who holds it on
    ``request.state.identity`` (read back by :func:`actor_of`).

    :raises ApiError: 401 with ``WWW-Authenticate`` when the token is missing or not accepted;
        403 naming the scope when the token lacks it (each logged as a WARNING with the client
        address, the path and, for 403, the token's name).
    """
    identity = credentials_of(request).tokens().check(request.headers.get("authorization"))
    where = {"client": client_host(request), "method": request.method, "path": request.url.path}
    if identity is None:
        log.warning("API request rejected: missing or invalid bearer token", extra=where)
        raise ApiError(401, "missing or invalid bearer token", {"WWW-Authenticate": 'Bearer realm="monitor"'})
    if scope not in identity.scopes:
        log.warning("API request rejected: token lacks the scope", extra={**where, "token": identity.name,
                                                                          "scope": scope})
        raise ApiError(403, f'token "{identity.name}" lacks the "{scope}" scope needed for '
                            f"{request.method} {request.url.path}",
                       {"WWW-Authenticate": f'Bearer realm="monitor", error="insufficient_scope", scope="{scope}"'})
    request.state.identity = identity
    return identity


def identity_of(request: Request) -> Identity | None:
    """Return who :func:`authorize` accepted for ``request``, or ``None`` (an open route)."""
    identity: Identity | None = getattr(request.state, "identity", None)
    return identity


def actor_of(request: Request) -> str:
    """Return the name of the token :func:`authorize` accepted for ``request``.

    :raises ApiError: 401 when the request was not authorised (a route declared without a token).
    """
    identity = identity_of(request)
    if identity is None:
        raise ApiError(401, "missing or invalid bearer token", {"WWW-Authenticate": 'Bearer realm="monitor"'})
    return identity.name

