"""The ``backup`` probe: age, size and count of the newest backup in each configured place.

The operations guide sets an RPO of 24 hours and an RTO of 4 hours, with daily database
backups, weekly Pinecone backups and a monthly test restore. This probe reads, per configured
*source* (its ``name`` becomes the ``backup`` label: ``database``, ``pinecone``...):

- a local or mounted **folder**: the regular files directly in ``path`` whose name matches
  ``pattern`` (``fnmatch`` glob, e.g. ``codebook-*.sql.gz``); time is the file's modification
  time, size its ``st_size``. ``os.scandir`` runs in a worker thread, so a hung network mount
  cannot block the event loop;
- an **S3-compatible bucket**: ``ListObjectsV2`` under ``prefix`` through aiobotocore (the
  optional extra ``codebook-monitor[s3]``), keys whose last path segment matches ``pattern``;
  time is the object's ``LastModified``, size its ``Size``. ``endpoint_url`` points it at MinIO,
  Ceph, R2 or any S3-compatible store; without keys botocore's default credential chain applies.

Samples, each labelled ``backup`` (the source name) and ``source`` (``folder`` or ``s3``):
``probe_backups`` (matching backups), and when there is one
``probe_backup_newest_timestamp_seconds`` (Unix seconds), ``probe_backup_newest_age_seconds``
(now minus that) and ``probe_backup_newest_size_bytes``. The probe succeeds when every source
could be listed; an empty source is a success with count 0 (the rules alert on it).

Test restores: when the daemon injects ``restore_log`` (an async callable returning
``{kind: {"at": unix seconds, "duration": seconds}}``, the drills recorded by ``codebook-monitor
backup record-restore``), the probe also exports ``probe_backup_restore_last_timestamp_seconds``
and ``probe_backup_restore_duration_seconds`` labelled ``backup`` (the drill's kind), which the shipped rules compare
with the month and the RTO.
"""

from __future__ import annotations

import asyncio
import fnmatch
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from probes.base import HttpUrl, ProbeResult, ProbeSettings, one_line

#: The injected reader of recorded restore drills: ``{kind: {"at": seconds, "duration": seconds}}``.
RestoreLog = Callable[[], Awaitable[dict[str, dict[str, float]]]]


class S3Location(BaseModel):
    """Where backups lie in an S3-compatible bucket.

    :ivar bucket: the bucket name.
    :ivar prefix: key prefix to list under (``pinecone/``); empty lists the whole bucket.
    :ivar endpoint_url: the S3 API endpoint (MinIO, R2, a local test server); AWS's when absent.
    :ivar region: the signing region (default ``us-east-1``).
    :ivar access_key_id: / :ivar secret_access_key: static keys; both or neither (then
        botocore's default chain: environment, shared config, instance role).
    """

    model_config = ConfigDict(extra="forbid")

    bucket: str = Field(min_length=1)
    prefix: str = ""
    endpoint_url: HttpUrl | None = None
    region: str = "us-east-1"
    access_key_id: SecretStr | None = None
    secret_access_key: SecretStr | None = None

    @model_validator(mode="after")
    def _keys_pair(self) -> "S3Location":
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ValueError("access_key_id and secret_access_key go together: give both or neither")
        return self


class BackupSource(BaseModel):
    """One place backups of one kind are written to: exactly one of ``path`` and ``s3``.

    :ivar name: the ``backup`` label (``database``, ``pinecone``; the shipped rules use these two).
    :ivar path: a local or mounted folder (relative paths: to the config file's folder).
    :ivar s3: an S3-compatible bucket listing (:class:`S3Location`).
    :ivar pattern: ``fnmatch`` glob on the file name (the key's last segment for S3), default ``*``.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    path: str | None = None
    s3: S3Location | None = None
    pattern: str = "*"

    @model_validator(mode="after")
    def _one_place(self) -> "BackupSource":
        if (self.path is None) == (self.s3 is None):
            raise ValueError("give exactly one of path and s3")
        return self


class BackupSettings(ProbeSettings):
    """Settings of the ``backup`` probe.

    Example::

        - name: backups
          kind: backup
          interval: 5m
          timeout: 30s
          sources:
            - name: database
              path: /var/backups/postgres
              pattern: "codebook-*.sql.gz"
            - name: pinecone
              s3: {bucket: codebook-backups, prefix: pinecone/, region: eu-central-1}
              pattern: "*.tar.gz"

    :ivar sources: the places to read (:class:`BackupSource`), names unique.
    """

    kind: Literal["backup"] = "backup"
    sources: list[BackupSource] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> "BackupSettings":
        names = [s.name for s in self.sources]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"source names must be unique: {', '.join(dup)}")
        return self

    def target(self) -> str:
        """Return the source names, comma-separated."""
        return ",".join(s.name for s in self.sources)


@dataclass(frozen=True, slots=True)
class Listing:
    """What one source holds: matching backups, the newest one's time (Unix seconds) and size (bytes)."""

    count: int
    newest_at: float | None = None
    newest_size: int = 0

    @classmethod
    def of(cls, items: list[tuple[float, int]]) -> "Listing":
        """Build from ``[(unix seconds, bytes), ...]``."""
        if not items:
            return cls(0)
        at, size = max(items)
        return cls(len(items), at, size)


def list_folder(path: str, pattern: str) -> Listing:
    """List the regular files directly in ``path`` whose name matches ``pattern``.

    :raises OSError: the folder cannot be read (missing, permission, stale mount).
    """
    items = []
    with os.scandir(path) as it:
        for entry in it:
            if fnmatch.fnmatchcase(entry.name, pattern) and entry.is_file(follow_symlinks=True):
                st = entry.stat(follow_symlinks=True)
                items.append((st.st_mtime, st.st_size))
    return Listing.of(items)


async def list_s3(loc: S3Location, pattern: str) -> Listing:
    """List ``loc`` with ``ListObjectsV2`` (paginated) through aiobotocore.

    :raises RuntimeError: aiobotocore is not installed (``pip install 'codebook-monitor[s3]'``).
    :raises botocore.exceptions.BotoCoreError | botocore.exceptions.ClientError: the listing failed.
    """
    try:
        from aiobotocore.session import get_session
    except ImportError:  # the optional extra
        raise RuntimeError("S3 sources need aiobotocore: pip install 'codebook-monitor[s3]'") from None
    kw: dict[str, Any] = {"region_name": loc.region}
    if loc.endpoint_url:
        kw["endpoint_url"] = loc.endpoint_url
    if loc.access_key_id is not None and loc.secret_access_key is not None:
        kw["aws_access_key_id"] = loc.access_key_id.get_secret_value()
        kw["aws_secret_access_key"] = loc.secret_access_key.get_secret_value()
    items = []
    async with get_session().create_client("s3", **kw) as client:
        paginator = client.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=loc.bucket, Prefix=loc.prefix):
            for obj in page.get("Contents", []):
                if fnmatch.fnmatchcase(obj["Key"].rsplit("/", 1)[-1], pattern):
                    items.append((obj["LastModified"].timestamp(), int(obj["Size"])))
    return Listing.of(items)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return one_line(str(exc) or type(exc).__name__)


class BackupProbe:
    """Read the newest backup of every configured source (see the module docstring)."""

    kind: ClassVar[str] = "backup"
    Settings: ClassVar[type[ProbeSettings]] = BackupSettings
    METRICS: ClassVar[dict[str, str]] = {
        "probe_backups": "Backups found in the source (files matching the pattern).",
        "probe_backup_newest_timestamp_seconds": "Unix time the newest backup was written (modification time).",
        "probe_backup_newest_age_seconds": "Seconds since the newest backup was written.",
        "probe_backup_newest_size_bytes": "Size of the newest backup in bytes.",
        "probe_backup_restore_last_timestamp_seconds": "Unix time of the last recorded test restore of this kind.",
        "probe_backup_restore_duration_seconds": "Seconds the last recorded test restore of this kind took.",
    }

    def __init__(self, settings: BackupSettings, *, http_client: httpx.AsyncClient | None = None,
                 restore_log: RestoreLog | None = None, clock: Callable[[], float] = time.time,
                 **_: Any) -> None:
        self.settings = settings
        self.restore_log = restore_log
        self.clock = clock

    async def _list(self, source: BackupSource) -> Listing:
        if source.path is not None:
            return await asyncio.to_thread(list_folder, source.path, source.pattern)
        assert source.s3 is not None  # validated: exactly one of path and s3
        return await list_s3(source.s3, source.pattern)

    async def run(self) -> ProbeResult:
        """List every source; one that cannot be listed fails the probe, the others still export."""
        result = ProbeResult(True)
        failed = []
        for source in self.settings.sources:
            where = "folder" if source.path is not None else "s3"
            try:
                listing = await self._list(source)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any listing error is this source's failure reason
                failed.append(f"{source.name}: {_reason(exc)}")
                continue
            labels = {"backup": source.name, "source": where}
            result.add("probe_backups", listing.count, **labels)
            if listing.newest_at is None:
                result.details[source.name] = "no backup"
                continue
            age = max(0.0, self.clock() - listing.newest_at)
            result.add("probe_backup_newest_timestamp_seconds", listing.newest_at, **labels)
            result.add("probe_backup_newest_age_seconds", age, **labels)
            result.add("probe_backup_newest_size_bytes", listing.newest_size, **labels)
            plural = "" if listing.count == 1 else "s"
            result.details[source.name] = f"{listing.count} backup{plural}, newest {age / 3600:.1f} h old"
        if self.restore_log is not None:
            try:
                drills = await self.restore_log()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the store being down must not hide the backup figures
                result.logs.append(f"cannot read recorded restores: {_reason(exc)}")
                drills = {}
            for kind, drill in sorted(drills.items()):
                result.add("probe_backup_restore_last_timestamp_seconds", drill["at"], backup=kind)
                result.add("probe_backup_restore_duration_seconds", drill["duration"], backup=kind)
        if failed:
            result.success = False
            result.error = "cannot list " + "; ".join(failed)
        return result

    async def close(self) -> None:
        """Nothing to release (each run opens and closes its own S3 client)."""
