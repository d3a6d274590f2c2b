"""The ``backup`` probe against a real folder, a real local S3 server (moto's, through aiobotocore),
the ``backup record-restore`` command on the real PostgreSQL and SQLite state stores, and the
real daemon exporting the figures."""

from __future__ import annotations

import asyncio
import os
import time

import pytest
from pydantic import ValidationError

from monitor.cli import main
from monitor.store.restores import RESTORES_KEY, read_restores
from probes.backup import BackupProbe, BackupSettings
from probes.base import run_probe
from tests.support.daemon_helpers import eventually, metric_values, run_daemon, write_config


def _values(result, name, **labels):
    return [s.value for s in result.samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]


def _backups(folder, *, fresh_age=3600.0, old_age=3 * 86400.0):
    """A fresh and an old dump (sizes 300 and 100 bytes) and a file that does not match."""
    folder.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for name, size, age in (("codebook-new.sql.gz", 300, fresh_age), ("codebook-old.sql.gz", 100, old_age),
                            ("notes.txt", 5, 0.0)):
        p = folder / name
        p.write_bytes(b"x" * size)
        os.utime(p, (now - age, now - age))
    (folder / "codebook-dir.sql.gz").mkdir()  # a folder that matches is no backup
    return now


async def test_folder_newest_age_size_and_count(tmp_path):
    _backups(tmp_path / "db")
    s = BackupSettings(name="backups", sources=[{"name": "database", "path": str(tmp_path / "db"),
                                                 "pattern": "codebook-*.sql.gz"}])
    r = await run_probe(BackupProbe(s), 5)
    assert r.success, r.error
    labels = {"backup": "database", "source": "folder"}
    assert _values(r, "probe_backups", **labels) == [2]
    assert _values(r, "probe_backup_newest_size_bytes", **labels) == [300]
    (age,) = _values(r, "probe_backup_newest_age_seconds", **labels)
    assert 3590 < age < 3700
    (ts,) = _values(r, "probe_backup_newest_timestamp_seconds", **labels)
    assert abs(ts - os.stat(tmp_path / "db" / "codebook-new.sql.gz").st_mtime) < 1e-3
    assert r.details["database"] == "2 backups, newest 1.0 h old"


async def test_empty_folder_counts_zero_and_a_missing_one_fails_alone(tmp_path):
    (tmp_path / "empty").mkdir()
    s = BackupSettings(name="backups", sources=[
        {"name": "database", "path": str(tmp_path / "empty")},
        {"name": "pinecone", "path": str(tmp_path / "nowhere")}])
    r = await run_probe(BackupProbe(s), 5)
    assert not r.success
    assert r.error == "cannot list pinecone: No such file or directory"
    assert _values(r, "probe_backups", backup="database") == [0]
    assert _values(r, "probe_backup_newest_age_seconds") == []
    assert _values(r, "probe_backups", backup="pinecone") == []


def test_settings_need_exactly_one_place_and_unique_names():
    with pytest.raises(ValidationError, match="exactly one of path and s3"):
        BackupSettings(name="b", sources=[{"name": "database"}])
    with pytest.raises(ValidationError, match="exactly one of path and s3"):
        BackupSettings(name="b", sources=[{"name": "database", "path": "/x", "s3": {"bucket": "b"}}])
    with pytest.raises(ValidationError, match="source names must be unique: database"):
        BackupSettings(name="b", sources=[{"name": "database", "path": "/x"}, {"name": "database", "path": "/y"}])
    with pytest.raises(ValidationError, match="give both or neither"):
        BackupSettings(name="b", sources=[{"name": "p", "s3": {"bucket": "b", "access_key_id": "k"}}])


async def test_restore_log_is_exported_by_kind(tmp_path):
    (tmp_path / "db").mkdir()

    async def drills():
        return {"database": {"at": 1_700_000_000.0, "duration": 2820.0}}

    s = BackupSettings(name="backups", sources=[{"name": "database", "path": str(tmp_path / "db")}])
    r = await run_probe(BackupProbe(s, restore_log=drills), 5)
    assert _values(r, "probe_backup_restore_last_timestamp_seconds", backup="database") == [1_700_000_000.0]
    assert _values(r, "probe_backup_restore_duration_seconds", backup="database") == [2820.0]

    async def broken():
        raise OSError("store down")

    r = await run_probe(BackupProbe(s, restore_log=broken), 5)
    assert r.success and _values(r, "probe_backups") == [0]
    assert r.logs == ["cannot read recorded restores: store down"]


# -- S3: moto's server on 127.0.0.1, listed through aiobotocore --------------------------------

@pytest.fixture(scope="module")
def s3_server():
    server_mod = pytest.importorskip("moto.server")
    pytest.importorskip("aiobotocore")
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


async def _put(url, bucket, objects):
    from aiobotocore.session import get_session

    async with get_session().create_client("s3", endpoint_url=url, region_name="us-east-1",
                                           aws_access_key_id="test", aws_secret_access_key="test") as c:
        await c.create_bucket(Bucket=bucket)
        for key, size in objects:
            await c.put_object(Bucket=bucket, Key=key, Body=b"x" * size)


async def test_s3_listing_through_a_local_s3_server(s3_server):
    await _put(s3_server, "codebook-backups", [("pinecone/export-1.tar.gz", 10), ("pinecone/export-2.tar.gz", 20),
                                               ("pinecone/readme.txt", 1), ("db/dump.sql.gz", 99)])
    s = BackupSettings(name="backups", sources=[{
        "name": "pinecone", "pattern": "*.tar.gz",
        "s3": {"bucket": "codebook-backups", "prefix": "pinecone/", "endpoint_url": s3_server,
               "access_key_id": "test", "secret_access_key": "test"}}])
    r = await run_probe(BackupProbe(s), 10)
    assert r.success, r.error
    assert _values(r, "probe_backups", backup="pinecone", source="s3") == [2]
    assert _values(r, "probe_backup_newest_size_bytes", backup="pinecone") in ([20], [10])  # same-second uploads
    (age,) = _values(r, "probe_backup_newest_age_seconds", backup="pinecone")
    assert 0 <= age < 120


async def test_s3_missing_bucket_fails_with_the_service_error_and_no_secret(s3_server):
    s = BackupSettings(name="backups", sources=[{
        "name": "database", "s3": {"bucket": "no-such-bucket", "endpoint_url": s3_server,
                                   "access_key_id": "test", "secret_access_key": "s3cr3t-value"}}])
    r = await run_probe(BackupProbe(s), 10)
    assert not r.success
    assert r.error.startswith("cannot list database: ") and "NoSuchBucket" in r.error
    assert "s3cr3t-value" not in r.error


# -- record-restore on the real state stores, and the daemon exporting it ----------------------

def _state_config(tmp_path, pg=None):
    state = (f"state:\n  backend: postgres\n  dsn: {pg[0]}\n  schema: {pg[1]}\n" if pg
             else f"state:\n  backend: sqlite\n  path: {tmp_path / 'state.db'}\n")
    cfg = tmp_path / "monitor.yaml"
    cfg.write_text(state)
    return cfg


async def _stored(cfg):
    from monitor.config.loader import load_config
    from monitor.store import open_store

    store = await open_store(load_config(cfg).state)
    try:
        return await read_restores(store), await store.kv_get(RESTORES_KEY), await store.list_audit(limit=10)
    finally:
        await store.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_record_restore_stores_and_audits_the_drill(backend, tmp_path, request, capsys):
    pg = request.getfixturevalue("pg_schema") if backend == "postgres" else None
    cfg = _state_config(tmp_path, pg)
    assert main(["backup", "record-restore", "--config", str(cfg), "--duration", "47m", "--at", "1764900000",
                 "--actor", "alice", "--note", "restored to staging"]) == 0
    out = capsys.readouterr().out
    assert out == ("recorded database test restore: 0.78 h (within the 4 h RTO), at 2025-12-05 02:00 UTC, "
                   "by alice\n")
    assert main(["backup", "record-restore", "--config", str(cfg), "--duration", "4h30m", "--kind", "pinecone",
                 "--at", "1764903600", "--actor", "bob"]) == 0
    assert "OVER the 4 h RTO" in capsys.readouterr().out
    drills, raw, audit = asyncio.run(_stored(cfg))
    assert drills == {"database": {"at": 1764900000.0, "duration": 2820.0},
                      "pinecone": {"at": 1764903600.0, "duration": 16200.0}}
    assert raw["database"]["actor"] == "alice" and raw["database"]["note"] == "restored to staging"
    entries = [(a["actor"], a["action"], a["target"]) for a in audit]
    assert entries[:2] == [("bob", "backup.record_restore", "backup:pinecone"),
                           ("alice", "backup.record_restore", "backup:database")]
    assert main(["backup", "restores", "--config", str(cfg)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "database     2025-12-05 02:00 UTC  0.78 h",
        "pinecone     2025-12-05 03:00 UTC  4.50 h  (over the 4 h RTO)"]


def test_record_restore_rejects_a_bad_duration(tmp_path, capsys):
    cfg = _state_config(tmp_path)
    assert main(["backup", "record-restore", "--config", str(cfg), "--duration", "soon"]) == 1
    assert 'expected a duration such as 30s, got "soon"' in capsys.readouterr().err


async def test_the_daemon_exports_backup_figures_and_recorded_restores(tmp_path):
    _backups(tmp_path / "backups", fresh_age=2 * 3600, old_age=30 * 3600)
    cfg = write_config(tmp_path, """
        probes:
          - name: backups
            kind: backup
            interval: 1s
            timeout: 1s
            sources:
              - name: database
                path: backups          # relative: to the config file's folder
                pattern: "codebook-*.sql.gz"
        """)
    await asyncio.to_thread(main, ["backup", "record-restore", "--config", str(cfg), "--duration", "47m",
                                   "--actor", "alice"])
    async with run_daemon(cfg) as d:
        async def figures():
            text = await d.metrics()
            dur = metric_values(text, "probe_backup_restore_duration_seconds", backup="database")
            return text if dur else None

        text = await eventually(figures, timeout=30, what="the backup probe's figures")
        assert metric_values(text, "probe_backups", backup="database", source="folder") == [2.0]
        (age,) = metric_values(text, "probe_backup_newest_age_seconds", backup="database")
        assert 7190 < age < 7300
        assert metric_values(text, "probe_backup_restore_duration_seconds", backup="database") == [2820.0]


async def test_the_demo_backup_folder_reads_as_documented(tmp_path):
    from examples.backups import make_demo_backups

    make_demo_backups(tmp_path / "b")
    make_demo_backups(tmp_path / "b")  # a second demo run replaces the files, it does not add to them
    s = BackupSettings(name="backups", sources=[
        {"name": "database", "path": str(tmp_path / "b"), "pattern": "codebook-db-*.sql.gz"},
        {"name": "pinecone", "path": str(tmp_path / "b"), "pattern": "pinecone-*.tar.gz"}])
    r = await run_probe(BackupProbe(s), 5)
    assert r.details == {"database": "2 backups, newest 2.0 h old", "pinecone": "1 backup, newest 72.0 h old"}


def test_record_restore_rejects_an_unknown_kind_listing_the_known_ones(tmp_path, capsys):
    cfg = _state_config(tmp_path)
    assert main(["backup", "record-restore", "--config", str(cfg), "--duration", "47m", "--kind", "nosuch"]) == 1
    assert ('unknown --kind "nosuch"; known kinds: database, pinecone'
            in capsys.readouterr().err)
    cfg.write_text(cfg.read_text() + f"""probes:
  - name: backups
    kind: backup
    sources:
      - {{name: vectors, path: {tmp_path}}}
""")
    assert main(["backup", "record-restore", "--config", str(cfg), "--duration", "47m", "--kind", "pinecone"]) == 1
    assert "known kinds: vectors (the source names of the config's backup probes)" in capsys.readouterr().err
    assert main(["backup", "record-restore", "--config", str(cfg), "--duration", "47m", "--kind", "vectors"]) == 0
