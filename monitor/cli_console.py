r"""``codebook-monitor console hash-password | user add | user remove | user list``: console users.

``hash-password`` prints the argon2 hash of a password for ``console.users[].password_hash`` (or
a file named by ``password_hash_file``); ``user add NAME --role ROLE`` keeps a user in the state
store ``monitor.yaml`` names (:mod:`monitor.store.users`; no reload needed, replicas sharing a
PostgreSQL store share it), ``user remove NAME`` removes one (their sessions end within seconds),
``user list`` lists both kinds. Every change is audited with the OS user as actor.

A password is read from the terminal (asked twice) or, when standard input is not a terminal,
from its first line — never from the command line, where ``ps`` and shell history would keep it.

Example::

    codebook-monitor console hash-password
    printf '%s\n' "$PASSWORD" | codebook-monitor console user add alice --role responder
    codebook-monitor console user list
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
import time
from datetime import datetime, timezone
from typing import Any

from monitor.api.console.session import hash_password
from monitor.config.loader import load_config_reporting
from monitor.store import open_store
from monitor.store.users import put_user, read_users, remove_user

__all__ = ["add_parser"]

#: The shortest password accepted (characters).
MIN_PASSWORD = 12


def add_parser(sub: Any) -> None:
    """Add ``console hash-password`` to the ``codebook-monitor`` parser.

    :param sub: the top-level ``add_subparsers()`` object of ``monitor.cli``.
    """
    s = sub.add_parser("console", help="web console tools")
    cmds = s.add_subparsers(dest="console_cmd", required=True)
    h = cmds.add_parser("hash-password", help="print the argon2 hash of a password (read from the terminal or stdin)")
    h.set_defaults(func=cmd_hash_password)
    u = cmds.add_parser("user", help="console users kept in the state store")
    ucmds = u.add_subparsers(dest="console_user_cmd", required=True)
    a = ucmds.add_parser("add", help="add (or replace) a user; the password is read from the terminal or stdin")
    a.add_argument("username")
    a.add_argument("--role", choices=("viewer", "responder", "admin"), default="viewer")
    a.add_argument("--config", "-c", default="monitor.yaml")
    a.set_defaults(func=cmd_user_add)
    r = ucmds.add_parser("remove", help="remove a user (their sessions end)")
    r.add_argument("username")
    r.add_argument("--config", "-c", default="monitor.yaml")
    r.set_defaults(func=cmd_user_remove)
    ls = ucmds.add_parser("list", help="list the users of the config file and of the state store")
    ls.add_argument("--config", "-c", default="monitor.yaml")
    ls.set_defaults(func=cmd_user_list)


def _password() -> str | None:
    """Return the password read (terminal: asked twice; else stdin's first line), or ``None`` (reported)."""
    if sys.stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            print("codebook-monitor: error: the passwords differ", file=sys.stderr)
            return None
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < MIN_PASSWORD:
        print(f"codebook-monitor: error: a console password needs at least {MIN_PASSWORD} characters",
              file=sys.stderr)
        return None
    return password


def cmd_hash_password(args: argparse.Namespace) -> int:
    """Print the argon2id hash of the password read; exit 1 when it is shorter than :data:`MIN_PASSWORD`
    characters or the two entries differ."""
    password = _password()
    if password is None:
        return 1
    print(hash_password(password))
    return 0


async def _with_store(config: Any, action: Any) -> Any:
    store = await open_store(config.state)
    try:
        return await action(store)
    finally:
        await store.close()


def cmd_user_add(args: argparse.Namespace) -> int:
    """Add or replace a console user in the state store (audited)."""
    config = load_config_reporting(args.config)
    if config is None:
        return 1
    password = _password()
    if password is None:
        return 1
    hashed = hash_password(password)
    actor = getpass.getuser()
    asyncio.run(_with_store(config, lambda store: put_user(store, args.username, hashed, args.role, time.time(),
                                                           actor=actor)))
    shadowed = any(u.username == args.username for u in config.console.users)
    print(f"console user {args.username} ({args.role}) stored" +
          (" — but console.users in the config has the same name, and wins" if shadowed else ""))
    return 0


def cmd_user_remove(args: argparse.Namespace) -> int:
    """Remove a console user from the state store (audited); exit 1 when there is none."""
    config = load_config_reporting(args.config)
    if config is None:
        return 1
    actor = getpass.getuser()
    removed = asyncio.run(_with_store(config, lambda store: remove_user(store, args.username, time.time(),
                                                                        actor=actor)))
    if not removed:
        print(f"codebook-monitor: error: no console user {args.username!r} in the state store", file=sys.stderr)
        return 1
    print(f"console user {args.username} removed")
    return 0


def cmd_user_list(args: argparse.Namespace) -> int:
    """Print the console users: those of the config file, then those of the state store."""
    config = load_config_reporting(args.config)
    if config is None:
        return 1
    stored = asyncio.run(_with_store(config, read_users))
    for u in config.console.users:
        print(f"{u.username:<24} {u.role:<10} config file")
    for name, row in sorted(stored.items()):
        when = datetime.fromtimestamp(float(row.get("updated_at", 0)), timezone.utc)
        print(f"{name:<24} {row['role']:<10} state store (by {row.get('by', '?')}, {when:%Y-%m-%d %H:%M} UTC)")
    return 0
