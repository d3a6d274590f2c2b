"""Where a rule manager keeps its alerts' state across restarts: the protocol and two small stores.

The SQL state store (:mod:`monitor.store`) implements the protocol too; these two serve tests and
a daemon running without a database. Times are float Unix seconds.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

__all__ = ["AlertStateStore", "MemoryAlertStateStore", "JsonFileAlertStateStore"]


class AlertStateStore(Protocol):
    """Where active alert states are persisted across restarts (the SQL store implements it too).

    Rows: ``{"key": "<file>|<group>|<alertname>|<fingerprint>", "active_at": float seconds,
    "fired_at": float | None, "state": "pending" | "firing", "labels": {name: value},
    "seen_at": float seconds, "annotations": {name: value}, "value": float?}`` (the last three
    are extra keys: stores keep them as they went in).
    """

    async def load_rule_alerts(self) -> list[dict[str, Any]]:
        """Return every saved row."""
        ...

    async def save_rule_alerts(self, rows: list[dict[str, Any]]) -> None:
        """Replace the saved rows with ``rows`` (the complete current set)."""
        ...


class MemoryAlertStateStore:
    """An :class:`AlertStateStore` in memory (tests; a restart in the same process)."""

    def __init__(self, rows: Iterable[dict[str, Any]] = ()) -> None:
        self.rows: list[dict[str, Any]] = [dict(r) for r in rows]
        self.saves = 0

    async def load_rule_alerts(self) -> list[dict[str, Any]]:
        """Return copies of the saved rows."""
        return [dict(r) for r in self.rows]

    async def save_rule_alerts(self, rows: list[dict[str, Any]]) -> None:
        """Replace the saved rows with copies of ``rows`` and count the save."""
        self.rows = [dict(r) for r in rows]
        self.saves += 1


class JsonFileAlertStateStore:
    """An :class:`AlertStateStore` in a JSON file, replaced atomically (running without a database).

    :param path: the file; a missing file means no saved state.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    async def load_rule_alerts(self) -> list[dict[str, Any]]:
        """Return the rows under ``rule_alerts`` in the file (none when it is missing)."""
        def _read() -> list[dict[str, Any]]:
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
            except FileNotFoundError:
                return []
            return list(data.get("rule_alerts", []))

        return await asyncio.to_thread(_read)

    async def save_rule_alerts(self, rows: list[dict[str, Any]]) -> None:
        """Write ``rows`` to a temporary file and rename it over the file (atomic replace)."""
        def _write() -> None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(self.path.name + ".tmp")
            tmp.write_text(json.dumps({"rule_alerts": rows}, sort_keys=True), encoding="utf-8")
            os.replace(tmp, self.path)

        await asyncio.to_thread(_write)
