"""``codebook-monitor backup record-restore|restores``: record a test restore, list the recorded ones.

The drill's result goes to the state store ``monitor.yaml`` names (``state:``), as the last
restore of its kind plus an audit entry (:mod:`monitor.store.restores`); the running daemon's
``backup`` probe exports it at its next run.

Example::

    codebook-monitor backup record-restore --duration 47m --kind database --note "restored to staging"
    codebook-monitor backup restores
"""

from __future__ import annotations

import asyncio
import getpass
import sys
import time
from datetime import datetime, timezone
from typing import Any

from model.duration import parse_duration
from monitor.config.loader import load_config_reporting
from monitor.store import open_store
from monitor.store.restores import read_restores, record_restore

__all__ = ["add_parser"]

#: The guide's recovery time objective (seconds): a longer drill is reported (and alerted on).
RTO_SECONDS = 4 * 3600.0

#: The kinds the shipped rules alert on, accepted when the config has no ``backup`` probe.
SHIPPED_KINDS = ("database", "pinecone")


def known_kinds(config: Any) -> list[str]:
    """Return the restore kinds ``--kind`` accepts: the source names of the config's ``backup`` probes.

    A config without a ``backup`` probe accepts the kinds of the shipped rules
    (:data:`SHIPPED_KINDS`), so a drill can be recorded before the probe is set up.

    :param config: a validated :class:`~monitor.config.model.Config`.
    :return: sorted names.
    """
    names = {s.name for p in config.probes if getattr(p, "kind", None) == "backup" for s in p.sources}
    return sorted(names or SHIPPED_KINDS)


def add_parser(sub: Any) -> None:
    """Add ``backup record-restore`` and ``backup restores`` to the ``codebook-monitor`` parser.

    :param sub: the top-level ``add_subparsers()`` object of ``monitor.cli``.
    """
    s = sub.add_parser("backup", help="record test restores (restore drills) of the backups")
    cmds = s.add_subparsers(dest="backup_cmd", required=True)
    r = cmds.add_parser("record-restore", help="store a test restore's duration (state store, audited)")
    r.add_argument("--config", "-c", default="monitor.yaml")
    r.add_argument("--duration", required=True, help="how long the restore took: 47m, 1h30m")
    r.add_argument("--kind", default="database",
                   help="what was restored: a source name of a backup probe; database (default), pinecone")
    r.add_argument("--at", type=float, default=None, help="Unix seconds the drill ended (default: now)")
    r.add_argument("--actor", default=None, help="who ran the drill, for the audit log (default: the OS user)")
    r.add_argument("--note", default="", help="free text kept with the record")
    r.set_defaults(func=_cmd_record)
    ls = cmds.add_parser("restores", help="print the last recorded test restore of each kind")
    ls.add_argument("--config", "-c", default="monitor.yaml")
    ls.set_defaults(func=_cmd_list)


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.2f} h"


def _cmd_record(args: Any) -> int:
    config = load_config_reporting(args.config)
    if config is None:
        return 1
    kinds = known_kinds(config)
    if args.kind not in kinds:
        raise ValueError(f'unknown --kind "{args.kind}"; known kinds: {", ".join(kinds)} '
                         "(the source names of the config's backup probes)")
    duration = parse_duration(args.duration, numbers=False)
    at = time.time() if args.at is None else args.at
    actor = args.actor or getpass.getuser()

    async def go() -> dict[str, Any]:
        store = await open_store(config.state)
        try:
            return await record_restore(store, args.kind, duration, at, actor=actor, note=args.note)
        finally:
            await store.close()

    entry = asyncio.run(go())
    verdict = "within" if entry["duration"] <= RTO_SECONDS else "OVER"
    print(f"recorded {args.kind} test restore: {_hours(entry['duration'])} ({verdict} the 4 h RTO), "
          f"at {datetime.fromtimestamp(at, timezone.utc):%Y-%m-%d %H:%M UTC}, by {actor}")
    return 0


def _cmd_list(args: Any) -> int:
    config = load_config_reporting(args.config)
    if config is None:
        return 1

    async def go() -> dict[str, dict[str, float]]:
        store = await open_store(config.state)
        try:
            return await read_restores(store)
        finally:
            await store.close()

    drills = asyncio.run(go())
    if not drills:
        print("no test restore recorded", file=sys.stderr)
        return 0
    for kind, d in sorted(drills.items()):
        print(f"{kind:<12} {datetime.fromtimestamp(d['at'], timezone.utc):%Y-%m-%d %H:%M UTC}  "
              f"{_hours(d['duration'])}{'  (over the 4 h RTO)' if d['duration'] > RTO_SECONDS else ''}")
    return 0
