"""Console sessions: who is logged in, signed cookies, CSRF tokens and password checks.

The session is one cookie, :data:`COOKIE` — a JSON object signed and timestamped with
``itsdangerous`` (HMAC-SHA1 over the key derived from ``console.session_key``), ``HttpOnly``,
``SameSite=Lax``, ``Secure`` when the request came over HTTPS, expiring after
``console.session_ttl``. It holds:

* ``c`` — the CSRF token (32 random bytes, URL-safe base64), present from the first page on, so
  the login form is protected too; every form sends it back as the ``csrf`` field and
  :func:`check_csrf` compares the two in constant time;
* once logged in, ``u`` (username or API token name), ``k`` (``user`` or ``token``) and ``d``
  (a digest of the password hash or of the token): the user is looked up in the running
  configuration (then among the users kept in the state store, :mod:`monitor.store.users`,
  cached for :data:`STORED_USERS_TTL` seconds) on every request, so removing a user, changing a
  password or rotating a token ends their sessions, and their role is always the configured one.

Roles map onto the API's scopes (:data:`monitor.config.console.ROLE_SCOPES`); an API token's
role is the highest its scopes give (``admin`` > ``ack`` = responder > ``read`` = viewer).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import math
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from monitor.api.deps import ApiSettings, Secret
from monitor.config.console import ROLE_SCOPES

#: The session cookie's name.
COOKIE = "cbm_session"


log = logging.getLogger("monitor.api")

#: Seconds the users kept in the state store are cached (a removed user's sessions end within this).
STORED_USERS_TTL = 5.0

_hasher = PasswordHasher()
# verified against when the username is unknown, so the answer takes as long as for a known one
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


class ConsoleUserEntry(Protocol):
    """One ``console.users[]`` entry (:class:`monitor.config.console.ConsoleUser`)."""

    @property
    def username(self) -> str:
        """The login name."""
        ...

    @property
    def password_hash(self) -> Secret:
        """The argon2 hash."""
        ...

    @property
    def role(self) -> str:
        """``viewer``, ``responder`` or ``admin``."""
        ...


class ConsoleSettings(Protocol):
    """The ``console:`` section (:class:`monitor.config.console.ConsoleConfig`)."""

    @property
    def users(self) -> Sequence[ConsoleUserEntry]:
        """Who may log in with a password."""
        ...

    @property
    def session_key(self) -> Secret | None:
        """Signs the cookies (``None``: the per-process random key)."""
        ...

    @property
    def session_ttl(self) -> float:
        """Seconds a session lasts."""
        ...


@dataclass(frozen=True)
class _Hash:
    value: str

    def get_secret_value(self) -> str:
        return self.value


@dataclass(frozen=True)
class StoredUser:
    """A console user kept in the state store (:mod:`monitor.store.users`)."""

    username: str
    password_hash: Secret
    role: str


@dataclass(frozen=True)
class NoConsoleSettings:
    """``console:`` with nothing configured: no users, a per-process key, 12 h sessions."""

    users: Sequence[ConsoleUserEntry] = ()
    session_key: Secret | None = None
    session_ttl: float = 43200.0


@dataclass(frozen=True)
class Viewer:
    """Who looks at a console page.

    :ivar name: username or token name (the audit actor); ``""`` when not logged in.
    :ivar role: ``viewer``, ``responder``, ``admin``; ``""`` when not logged in.
    :ivar scopes: the API scopes the role holds.
    :ivar csrf: the session's CSRF token (every form carries it).
    """

    name: str
    role: str
    scopes: frozenset[str]
    csrf: str

    @property
    def logged_in(self) -> bool:
        """Whether someone is logged in."""
        return bool(self.name)

    def can(self, scope: str) -> bool:
        """Whether the role holds ``scope`` (``read``, ``ack``, ``admin``)."""
        return scope in self.scopes


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogateescape")).hexdigest()[:32]


def role_of_scopes(scopes: frozenset[str]) -> str:
    """Return the console role an API token's scopes give (``""``: none, e.g. ``intake`` only)."""
    if "admin" in scopes:
        return "admin"
    if "ack" in scopes:
        return "responder"
    return "viewer" if "read" in scopes else ""


class Sessions:
    """Sign, read and check console sessions against the running settings.

    :param console: returns the running ``console:`` settings.
    :param api: returns the running ``api:`` settings (tokens log in too).
    :param stored: reads the users kept in the state store (``{username: {"password_hash", "role"}}``),
        or ``None``; read at most every :data:`STORED_USERS_TTL` seconds (:meth:`refresh`).
    """

    def __init__(self, console: Any, api: Any,
                 stored: Callable[[], Awaitable[dict[str, dict[str, Any]]]] | None = None) -> None:
        self._console = console
        self._api = api
        self._stored = stored
        self._stored_users: dict[str, StoredUser] = {}
        self._stored_at = -math.inf
        self._random_key = secrets.token_bytes(32)
        # argon2 takes ~50 ms of CPU per check, off the event loop; at most two at once, so a
        # flood of logins cannot take the process's cores from probing and delivery.
        self._verify_slots = asyncio.Semaphore(2)

    def settings(self) -> ConsoleSettings:
        """Return the running ``console:`` settings."""
        s: ConsoleSettings = self._console()
        return s

    def _serializer(self) -> URLSafeTimedSerializer:
        key = self.settings().session_key
        secret: bytes = self._random_key if key is None else key.get_secret_value().encode()
        return URLSafeTimedSerializer(secret, salt="codebook-monitor console session")

    def read(self, request: Request) -> dict[str, Any]:
        """Return the session of ``request`` (``{}`` when absent, forged or expired)."""
        raw = request.cookies.get(COOKIE)
        if not raw or len(raw) > 4096:
            return {}
        try:
            data = self._serializer().loads(raw, max_age=int(self.settings().session_ttl))
        except (BadSignature, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def viewer(self, request: Request) -> Viewer:
        """Return who is logged in on ``request`` (remembered on ``request.state.console_viewer``)."""
        cached: Viewer | None = getattr(request.state, "console_viewer", None)
        if cached is not None:
            return cached
        data = self.read(request)
        csrf = data.get("c") if isinstance(data.get("c"), str) else ""
        name, role = "", ""
        if data.get("k") == "user":
            user = self._user(str(data.get("u", "")))
            if user is not None and hmac.compare_digest(_digest(user.password_hash.get_secret_value()),
                                                        str(data.get("d", ""))):
                name, role = user.username, user.role
        elif data.get("k") == "token":
            api: ApiSettings = self._api()
            for t in api.tokens:
                if t.name == data.get("u") and hmac.compare_digest(_digest(t.token.get_secret_value()),
                                                                   str(data.get("d", ""))):
                    name, role = t.name, role_of_scopes(frozenset(t.scopes))
        viewer = Viewer(name if role else "", role, ROLE_SCOPES.get(role, frozenset()), str(csrf))
        request.state.console_viewer = viewer
        return viewer

    def _user(self, username: str) -> ConsoleUserEntry | None:
        found = next((u for u in self.settings().users if u.username == username), None)
        return found if found is not None else self._stored_users.get(username)

    async def refresh(self) -> None:
        """Re-read the users kept in the state store when the cached ones are older than
        :data:`STORED_USERS_TTL` seconds; on a store failure keep the cached ones (logged)."""
        if self._stored is None or time.monotonic() - self._stored_at < STORED_USERS_TTL:
            return
        self._stored_at = time.monotonic()  # claimed: concurrent requests do not read again
        try:
            rows = await self._stored()
        except Exception as exc:  # noqa: BLE001 - the console keeps serving with the users it knows
            log.warning("console users unreadable from the state store", extra={"error": str(exc)})
            return
        self._stored_users = {name: StoredUser(name, _Hash(str(row["password_hash"])), str(row["role"]))
                              for name, row in rows.items()}

    def write(self, response: Response, request: Request, data: dict[str, Any]) -> None:
        """Set the signed session cookie holding ``data`` on ``response``."""
        response.set_cookie(COOKIE, self._serializer().dumps(data), max_age=int(self.settings().session_ttl),
                            path="/ui", httponly=True, samesite="lax", secure=request.url.scheme == "https")

    def csrf_token(self, request: Request) -> tuple[str, bool]:
        """Return the session's CSRF token and ``False``, or a new token and ``True`` when the request
        has no session (the caller then starts an anonymous one holding it: :meth:`write`)."""
        token = self.read(request).get("c")
        if isinstance(token, str) and token:
            return token, False
        return secrets.token_urlsafe(32), True

    async def login_password(self, username: str, password: str) -> dict[str, Any] | None:
        """Return the session data for a correct username and password, else ``None``.

        The argon2 check runs in a worker thread, at most two at a time; an unknown username is
        checked against a dummy hash, so both answers take as long.
        """
        await self.refresh()
        user = self._user(username)
        stored = user.password_hash.get_secret_value() if user is not None else _DUMMY_HASH
        async with self._verify_slots:
            ok = await asyncio.to_thread(_verify, stored, password)
        if user is None or not ok:
            return None
        return {"u": user.username, "k": "user", "d": _digest(stored), "c": secrets.token_urlsafe(32)}

    def login_token(self, token: str) -> dict[str, Any] | None:
        """Return the session data for an accepted API token with a console role, else ``None``."""
        api: ApiSettings = self._api()
        digest = hashlib.sha256(token.strip().encode("utf-8", "surrogateescape")).digest()
        found = None
        for t in api.tokens:  # compare against all: no early exit on a match
            if hmac.compare_digest(hashlib.sha256(t.token.get_secret_value().encode()).digest(), digest):
                found = t
        if found is None or not role_of_scopes(frozenset(found.scopes)):
            return None
        return {"u": found.name, "k": "token", "d": _digest(found.token.get_secret_value()),
                "c": secrets.token_urlsafe(32)}


def _verify(stored: str, password: str) -> bool:
    try:
        return bool(_hasher.verify(stored, password))
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def hash_password(password: str) -> str:
    """Return the argon2id hash of ``password`` (what ``console.users[].password_hash`` holds)."""
    return _hasher.hash(password)


def check_csrf(viewer: Viewer, sent: object) -> bool:
    """Whether a form's ``csrf`` field equals the session's token (constant-time; a missing one never does)."""
    return bool(viewer.csrf) and isinstance(sent, str) and hmac.compare_digest(viewer.csrf.encode(), sent.encode())


__all__ = ["COOKIE", "ConsoleSettings", "NoConsoleSettings", "ROLE_SCOPES", "STORED_USERS_TTL", "Sessions",
           "StoredUser", "Viewer", "check_csrf", "hash_password", "role_of_scopes"]
