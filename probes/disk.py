"""The ``disk`` probe: free space of configured filesystem paths (``os.statvfs``).

Per path: ``probe_disk_free_bytes`` is the space available to an unprivileged user
(``f_bavail * f_frsize``, node_exporter's ``node_filesystem_avail_bytes``),
``probe_disk_total_bytes`` the filesystem size (``f_blocks * f_frsize``,
``node_filesystem_size_bytes``), ``probe_disk_free_ratio`` their quotient (0..1). The probe
succeeds when every path could be read; thresholds belong to alert rules. ``statvfs`` runs in a
worker thread so a hung network mount cannot block the event loop.
"""

from __future__ import annotations

import asyncio
import os
from typing import ClassVar, Literal

import httpx
from pydantic import Field

from probes.base import ProbeResult, ProbeSettings, one_line


class DiskSettings(ProbeSettings):
    """Settings of the ``disk`` probe.

    Example::

        - name: disk
          kind: disk
          paths: [/, /var/lib/postgresql]

    :ivar paths: filesystem paths to measure (any path on the filesystem of interest).
    """

    kind: Literal["disk"] = "disk"
    paths: list[str] = Field(min_length=1)

    def target(self) -> str:
        """Return the paths, comma-separated."""
        return ",".join(self.paths)


class DiskProbe:
    """Measure free space of each configured path."""

    kind: ClassVar[str] = "disk"
    Settings: ClassVar[type[ProbeSettings]] = DiskSettings
    METRICS: ClassVar[dict[str, str]] = {
        "probe_disk_free_ratio": "Bytes available to unprivileged users over the filesystem size, 0..1.",
        "probe_disk_free_bytes": "Bytes available to unprivileged users on the path's filesystem.",
        "probe_disk_total_bytes": "Size of the path's filesystem in bytes.",
    }

    def __init__(self, settings: DiskSettings, *, http_client: httpx.AsyncClient | None = None) -> None:
        self.settings = settings

    async def run(self) -> ProbeResult:
        """Call ``statvfs`` on every path; a path that cannot be read fails the probe, the others still export."""
        result = ProbeResult(True)
        failed = []
        for path in self.settings.paths:
            try:
                st = await asyncio.to_thread(os.statvfs, path)
            except OSError as exc:
                failed.append(f"{path}: {one_line(exc.strerror or str(exc))}")
                continue
            total = st.f_blocks * st.f_frsize
            free = st.f_bavail * st.f_frsize
            ratio = free / total if total else 0.0
            result.add("probe_disk_free_ratio", ratio, path=path)
            result.add("probe_disk_free_bytes", free, path=path)
            result.add("probe_disk_total_bytes", total, path=path)
            result.details[path] = f"{ratio:.0%} free"
        if failed:
            result.success = False
            result.error = "cannot read " + "; ".join(failed)
        return result

    async def close(self) -> None:
        """Nothing to release."""
