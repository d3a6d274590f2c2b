"""The demo's backup folder: a fresh and an old database dump and a Pinecone export.

``make_demo_backups(folder)`` writes, with back-dated modification times:
``codebook-db-<date>.sql.gz`` 2 hours old (4 KiB) and 26 hours old (3 KiB), and
``pinecone-<date>.tar.gz`` 3 days old (8 KiB). The ``backups`` probe of examples/monitor.yaml
reads them: the database's newest backup is within the 24 h RPO, the Pinecone export within 8 days.
"""

from __future__ import annotations

import os
import time
from datetime import datetime, timezone
from pathlib import Path

#: (name prefix, suffix, age in seconds, size in bytes)
FILES = (("codebook-db-", ".sql.gz", 2 * 3600, 4096), ("codebook-db-", ".sql.gz", 26 * 3600, 3072),
         ("pinecone-", ".tar.gz", 3 * 86400, 8192))


def make_demo_backups(folder: str | os.PathLike[str], now: float | None = None) -> list[Path]:
    """Write the demo's backup files into ``folder`` (created; earlier demo files removed); return their paths."""
    now = time.time() if now is None else now
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    for prefix, suffix, _, _ in FILES:  # each demo run starts with the same three files
        for old in root.glob(f"{prefix}*{suffix}"):
            old.unlink()
    paths = []
    for prefix, suffix, age, size in FILES:
        at = now - age
        path = root / f"{prefix}{datetime.fromtimestamp(at, timezone.utc):%Y%m%dT%H%M}{suffix}"
        path.write_bytes(b"\0" * size)
        os.utime(path, (at, at))
        paths.append(path)
    return paths
