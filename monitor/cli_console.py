r"""``codebook-monitor console hash-password``: print the argon2 hash of a console user's password.

The password is read from the terminal (asked twice) or, when standard input is not a terminal,
from its first line — never from the command line, where ``ps`` and shell history would keep it.
Put the printed hash in ``console.users[].password_hash`` (or a file named by ``password_hash_file``).

Example::

    codebook-monitor console hash-password
    printf '%s\n' "$PASSWORD" | codebook-monitor console hash-password
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from monitor.api.console.session import hash_password

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


def cmd_hash_password(args: argparse.Namespace) -> int:
    """Print the argon2id hash of the password read; exit 1 when it is shorter than :data:`MIN_PASSWORD`
    characters or the two entries differ."""
    if sys.stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            print("codebook-monitor: error: the passwords differ", file=sys.stderr)
            return 1
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < MIN_PASSWORD:
        print(f"codebook-monitor: error: a console password needs at least {MIN_PASSWORD} characters",
              file=sys.stderr)
        return 1
    print(hash_password(password))
    return 0
