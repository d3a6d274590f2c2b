"""Console users kept in the state store (beside those of ``console.users`` in the config), audited.

``codebook-monitor console user add|remove|list`` manage them; the console reads them (through
:class:`~monitor.api.deps.ConsoleDeps`, at most every few seconds) so that replicas sharing a
PostgreSQL store share their users, and a user can be added or removed without a reload. A user
in the config file wins over a stored one of the same name.

The kv value under :data:`USERS_KEY` is ``{username: {"password_hash": "$argon2id$...", "role":
"viewer"|"responder"|"admin", "updated_at": unix seconds, "by": actor}}``; every change is also an
audit entry (action ``console.user_add`` / ``console.user_remove``, target ``console-user:<name>``)
without the hash.
"""

from __future__ import annotations

import re
from typing import Any

from monitor.config.console import ROLE_SCOPES

__all__ = ["USERS_KEY", "put_user", "read_users", "remove_user"]

#: The store kv key of the console users.
USERS_KEY = "console:users"

_USERNAME = re.compile(r"[A-Za-z0-9_.@-]{1,128}")


async def put_user(store: Any, username: str, password_hash: str, role: str, at: float, *, actor: str,
                   source: str = "cli") -> None:
    """Add or replace console user ``username`` (an existing user's sessions end: the hash changed).

    :param store: an open state store. :param at: Unix seconds.
    :raises ValueError: a bad username (``[A-Za-z0-9_.@-]``, 1-128), role or hash (not argon2).
    """
    if not _USERNAME.fullmatch(username):
        raise ValueError(f"username {username!r}: use letters, digits and _ . @ - (at most 128)")
    if role not in ROLE_SCOPES:
        raise ValueError(f"role {role!r}: expected one of {', '.join(ROLE_SCOPES)}")
    if not password_hash.startswith("$argon2"):
        raise ValueError("password_hash: expected an argon2 hash")
    async with store.transaction():
        users = await _users(store)
        replaced = username in users
        users[username] = {"password_hash": password_hash, "role": role, "updated_at": float(at), "by": actor}
        await store.kv_set(USERS_KEY, users, at)
        await store.audit(actor, "console.user_add", at, target=f"console-user:{username}", source=source,
                          detail={"role": role, "replaced": replaced})


async def remove_user(store: Any, username: str, at: float, *, actor: str, source: str = "cli") -> bool:
    """Remove console user ``username`` (their sessions end); return whether there was one."""
    async with store.transaction():
        users = await _users(store)
        if users.pop(username, None) is None:
            return False
        await store.kv_set(USERS_KEY, users, at)
        await store.audit(actor, "console.user_remove", at, target=f"console-user:{username}", source=source)
    return True


async def read_users(store: Any) -> dict[str, dict[str, Any]]:
    """Return ``{username: {"password_hash", "role", "updated_at", "by"}}`` (well-formed entries only)."""
    return {k: v for k, v in (await _users(store)).items()
            if isinstance(v.get("password_hash"), str) and v.get("role") in ROLE_SCOPES}


async def _users(store: Any) -> dict[str, dict[str, Any]]:
    current = await store.kv_get(USERS_KEY)
    if not isinstance(current, dict):
        return {}
    return {str(k): dict(v) for k, v in current.items() if isinstance(v, dict)}
