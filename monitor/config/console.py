"""``console:`` — who may log in to the web console (``/ui/``) and how its sessions are signed.

Usage::

    console:
      session_key: ${CONSOLE_SESSION_KEY}     # or session_key_file; default: a random key per process
      session_ttl: 12h
      users:
        - {username: alice, password_hash: "$argon2id$v=19$m=65536,t=3,p=4$...", role: responder}
        - {username: bob, password_hash_file: /etc/monitor/bob.hash, role: viewer}

Passwords are stored only as argon2 hashes (``codebook-monitor console hash-password`` prints
one); API tokens (``api.tokens``) log in too, with the role their scopes give. Roles map onto the
API's scopes (:mod:`monitor.api.access`): ``viewer`` -> ``read``; ``responder`` -> ``read``,
``ack``; ``admin`` -> ``read``, ``ack``, ``admin``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator

from model.duration import PositiveDuration
from monitor.config.validation import Section, unique_by

ConsoleRole = Literal["viewer", "responder", "admin"]

#: The API scopes each console role holds.
ROLE_SCOPES: dict[str, frozenset[str]] = {
    "viewer": frozenset({"read"}),
    "responder": frozenset({"read", "ack"}),
    "admin": frozenset({"read", "ack", "admin"}),
}


class ConsoleUser(Section):
    """One console user.

    :ivar username: the login name and the actor in the audit log; unique.
    :ivar password_hash: an argon2 hash (``$argon2id$...``), never the password itself
        (``password_hash`` or ``password_hash_file``, or ``${ENV}``).
    :ivar role: ``viewer`` (default), ``responder`` or ``admin``.
    """

    username: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.@-]+$")
    password_hash: SecretStr
    role: ConsoleRole = "viewer"

    @field_validator("password_hash")
    @classmethod
    def _argon2(cls, v: SecretStr) -> SecretStr:
        if not v.get_secret_value().startswith("$argon2"):
            raise ValueError("expected an argon2 hash ($argon2id$...; codebook-monitor console hash-password "
                             "prints one), not a password")
        return v


class ConsoleConfig(Section):
    """``console:`` — the web console's users and sessions.

    :ivar users: who may log in with a password (usernames unique); API tokens log in too.
    :ivar session_key: signs the session cookies; without it a random key is drawn at start, so a
        restart logs everyone out (and replicas do not share sessions).
    :ivar session_ttl: how long a session lasts after login (seconds; default 12h).
    """

    users: Annotated[list[ConsoleUser], unique_by("username", "console username")] = Field(default_factory=list)
    session_key: SecretStr | None = None
    session_ttl: PositiveDuration = 43200.0


__all__ = ["ConsoleConfig", "ConsoleRole", "ConsoleUser", "ROLE_SCOPES"]
