"""Create the sample backend's tables and fill them with a realistic month of data.

Usage::

    python -m examples.seed [--dsn DSN] [--schema NAME] [--pending-jobs N]

The DSN defaults to ``$DATABASE_URL``, else ``postgresql://postgres@127.0.0.1:5432/test``.
Re-running is safe: the tables are created if missing, emptied and refilled in one transaction.

What the data shows once the probes read it:

- quotas this calendar month (UTC): ``acme`` at 85% of its monthly token quota (the 80% quota
  warning fires), ``globex`` at 40%, ``initech`` at 10%; a little usage last month that must
  not count;
- each ``llm_usage`` row split into ``input_tokens`` / ``output_tokens`` (chat models 80/20,
  embeddings all input) with its ``operation`` (``embed_codebook``, ``refactor_codebook``,
  ``generate_recommendations``), so the cost probe prices it: about $24 this month at the demo's
  list prices, whatever the day (the month's usage is a fixed share of each quota);
- a job queue with a few pending jobs, the oldest two hours old (``--pending-jobs 150`` makes
  the queue-depth warning fire), some running, done and failed;
- two weeks of codebooks, uploaded items, refactor operations and recommendations (some
  accepted, some rejected, some undecided), with activity in the last hour and the last day.

The daemon's ``demo`` command calls :func:`seed` directly.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import math
import os
import random
import sys
from pathlib import Path

import asyncpg

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/test"
SCHEMA_SQL = Path(__file__).with_name("schema.sql")

CLIENTS = (
    # id, name, monthly token quota, share of the quota used this month
    ("acme", "Acme Research", 10_000_000, 0.85),
    ("globex", "Globex Insights", 5_000_000, 0.40),
    ("initech", "Initech Labs", 2_000_000, 0.10),
)
CODEBOOKS_PER_DAY = {"acme": 3, "globex": 2, "initech": 1}
RECOMMENDATIONS_PER_DAY = {"acme": 24, "globex": 14, "initech": 6}
MODELS = (("gpt-4o", 0.5), ("gpt-4o-mini", 0.35), ("text-embedding-3-small", 0.15))
#: Share of a chat completion's tokens that are output tokens (embeddings have none).
OUTPUT_SHARE = 0.2
CHAT_OPERATIONS = ("refactor_codebook", "generate_recommendations")
JOB_KINDS = ("embed_codebook", "refactor_codebook", "generate_recommendations")
TABLES = ("recommendations", "refactor_operations", "codebook_items", "codebooks", "llm_usage", "jobs", "clients")
HISTORY_DAYS = 14


def quote_ident(name: str) -> str:
    """Quote a PostgreSQL identifier (schema name)."""
    return '"' + name.replace('"', '""') + '"'


def default_dsn() -> str:
    """Return ``$DATABASE_URL`` or the local ``test`` database."""
    return os.environ.get("DATABASE_URL") or DEFAULT_DSN


def month_start(now: dt.datetime) -> dt.datetime:
    """Return the first instant of ``now``'s calendar month in UTC."""
    now = now.astimezone(dt.timezone.utc)
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _split(total: int, weights: list[float]) -> list[int]:
    """Split ``total`` into integers proportional to ``weights`` that add up exactly."""
    scale = total / sum(weights)
    parts = [int(w * scale) for w in weights]
    parts[-1] += total - sum(parts)
    return parts


def usage_row(client_id: str, tokens: int, model: str, at: dt.datetime, i: int) -> tuple:
    """Return one ``llm_usage`` row ``(client_id, tokens, model, created_at, input_tokens,
    output_tokens, operation)``: embeddings are all input tokens of ``embed_codebook``; chat models
    give :data:`OUTPUT_SHARE` of the tokens to output, the operation alternating with ``i``."""
    if model.startswith("text-embedding"):
        return (client_id, tokens, model, at, tokens, 0, "embed_codebook")
    output = round(tokens * OUTPUT_SHARE)
    return (client_id, tokens, model, at, tokens - output, output, CHAT_OPERATIONS[i % len(CHAT_OPERATIONS)])


def build_llm_usage(rng: random.Random, now: dt.datetime) -> list[tuple]:
    """Return ``llm_usage`` rows (:func:`usage_row`): this month's exact share of each quota, plus
    some last month.

    Rows are spread evenly (with jitter) from the start of the month to ``now``, at most 30
    minutes apart, so the last hour and the last day always hold some usage.
    """
    start = month_start(now)
    span = (now - start).total_seconds()
    count = max(48, math.ceil(span / 1800))
    models, model_weights = zip(*MODELS)
    rows = []
    for client_id, _, quota, used in CLIENTS:
        tokens = _split(round(quota * used), [rng.uniform(0.5, 1.5) for _ in range(count)])
        for i, amount in enumerate(tokens):
            at = start + dt.timedelta(seconds=span * (i + rng.uniform(0.1, 0.9)) / count)
            rows.append(usage_row(client_id, amount, rng.choices(models, model_weights)[0], at, i))
        for i in range(30):  # last month: must not count towards this month's quota
            at = start - dt.timedelta(seconds=rng.uniform(60, 10 * 86400))
            rows.append(usage_row(client_id, rng.randint(10_000, 200_000), rng.choices(models, model_weights)[0],
                                  at, i))
    return rows


def build_jobs(rng: random.Random, now: dt.datetime, pending: int) -> list[tuple]:
    """Return ``jobs`` rows: ``pending`` waiting (the oldest two hours old), running, done, failed."""
    rows = []
    for i in range(pending):
        age = 7200 if i == 0 else rng.uniform(5, 600)
        rows.append((rng.choice(JOB_KINDS), "pending", now - dt.timedelta(seconds=age), None, None))
    for _ in range(2):
        created = now - dt.timedelta(seconds=rng.uniform(60, 300))
        rows.append((rng.choice(JOB_KINDS), "running", created, created + dt.timedelta(seconds=20), None))
    for status, count in (("done", 200), ("failed", 4)):
        for _ in range(count):
            created = now - dt.timedelta(seconds=rng.uniform(600, HISTORY_DAYS * 86400))
            started = created + dt.timedelta(seconds=rng.uniform(1, 30))
            rows.append((rng.choice(JOB_KINDS), status, created, started,
                         started + dt.timedelta(seconds=rng.uniform(2, 240))))
    return rows


def _within(rng: random.Random, start: dt.datetime, now: dt.datetime, max_seconds: float) -> dt.datetime:
    """Return a random instant after ``start``, at most ``max_seconds`` later and never after ``now``."""
    limit = min(max_seconds, (now - start).total_seconds())
    return start + dt.timedelta(seconds=rng.uniform(0, max(limit, 0)))


def build_activity(rng: random.Random, now: dt.datetime) -> dict[str, list[tuple]]:
    """Return codebooks, items, refactor operations and recommendations over the last two weeks.

    Codebook ids are assigned here (1, 2, ...) so child rows can reference them; the day
    ``0`` covers the last 24 hours and holds at least one codebook per client.
    """
    codebooks, items, operations, recommendations = [], [], [], []
    for client_id, *_ in CLIENTS:
        for day in range(HISTORY_DAYS):
            n = max(1 if day == 0 else 0, CODEBOOKS_PER_DAY[client_id] + rng.randint(-1, 1))
            for _ in range(n):
                created = now - dt.timedelta(days=day, seconds=rng.uniform(300, 86100))
                codebook_id = len(codebooks) + 1
                codebooks.append((codebook_id, client_id, f"{client_id}-interviews-{codebook_id}", created))
                for _ in range(rng.randint(5, 40)):
                    items.append((codebook_id, _within(rng, created, now, 3 * 3600)))
                for _ in range(rng.randint(0, 3)):
                    op_created = _within(rng, created, now, 6 * 3600)
                    status = rng.choices(("completed", "failed", "running", "pending"), (80, 5, 5, 10))[0]
                    completed = None
                    if status in ("completed", "failed"):
                        completed = _within(rng, op_created, now, 15 * 60)
                    operations.append((codebook_id, status, op_created, completed))
            for _ in range(max(1, RECOMMENDATIONS_PER_DAY[client_id] + rng.randint(-3, 3))):
                created = now - dt.timedelta(days=day, seconds=rng.uniform(60, 86340))
                accepted = rng.choices((True, False, None), (55, 25, 20))[0]
                recommendations.append((client_id, accepted, created))
    return {"codebooks": codebooks, "codebook_items": items,
            "refactor_operations": operations, "recommendations": recommendations}


async def seed(dsn: str | None = None, schema: str | None = None, *, pending_jobs: int = 5,
               now: dt.datetime | None = None, rng_seed: int = 42) -> dict[str, int]:
    """Create the tables (``schema.sql``) and replace their contents with the sample month.

    :param dsn: PostgreSQL DSN (default :func:`default_dsn`).
    :param schema: schema to create and fill (created if missing), or None for the
        connection's default search_path (usually ``public``).
    :param pending_jobs: number of pending jobs (the oldest is two hours old); > 100 makes
        the job-queue warning fire.
    :param now: the instant the data is built around (default: the current time, UTC).
    :param rng_seed: seed of the data's randomness (same seed and ``now``, same data).
    :return: rows inserted per table.
    :raises asyncpg.PostgresError: the database refused a statement (nothing is changed).
    """
    if pending_jobs < 0:
        raise ValueError(f"pending_jobs must be >= 0, got {pending_jobs}")
    now = (now or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc)
    rng = random.Random(rng_seed)
    settings = {"search_path": quote_ident(schema)} if schema else None
    conn = await asyncpg.connect(dsn or default_dsn(), server_settings=settings, timeout=10)
    try:
        async with conn.transaction():
            if schema:
                await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}")
            await conn.execute(SCHEMA_SQL.read_text())
            await conn.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
            data = {
                "clients": [(cid, name, quota) for cid, name, quota, _ in CLIENTS],
                "llm_usage": build_llm_usage(rng, now),
                "jobs": build_jobs(rng, now, pending_jobs),
                **build_activity(rng, now),
            }
            columns = {
                "clients": ("id", "name", "monthly_token_quota"),
                "llm_usage": ("client_id", "tokens", "model", "created_at", "input_tokens", "output_tokens", "operation"),
                "jobs": ("kind", "status", "created_at", "started_at", "finished_at"),
                "codebooks": ("id", "client_id", "name", "created_at"),
                "codebook_items": ("codebook_id", "created_at"),
                "refactor_operations": ("codebook_id", "status", "created_at", "completed_at"),
                "recommendations": ("client_id", "accepted", "created_at"),
            }
            for table, rows in data.items():
                if rows:
                    await conn.copy_records_to_table(table, records=rows, columns=columns[table],
                                                     schema_name=schema)
            # codebooks got explicit ids: move the sequence past them.
            await conn.execute("SELECT setval(pg_get_serial_sequence('codebooks', 'id'), "
                               "(SELECT coalesce(max(id), 0) + 1 FROM codebooks), false)")
    finally:
        await conn.close()
    return {table: len(rows) for table, rows in data.items()}


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m examples.seed [--dsn DSN] [--schema NAME]``; return the exit code."""
    parser = argparse.ArgumentParser(prog="python -m examples.seed", description=__doc__.split("\n")[0])
    parser.add_argument("--dsn", default=default_dsn(),
                        help="PostgreSQL DSN (default $DATABASE_URL, else %(default)s)")
    parser.add_argument("--schema", default=None, help="schema to create and fill (default: search_path)")
    parser.add_argument("--pending-jobs", type=int, default=5, help="pending jobs to create (default 5)")
    args = parser.parse_args(argv)
    if args.pending_jobs < 0:
        parser.error("--pending-jobs must be >= 0")
    try:
        counts = asyncio.run(seed(args.dsn, args.schema, pending_jobs=args.pending_jobs))
    except (OSError, asyncpg.PostgresError, asyncio.TimeoutError) as exc:
        print(f"seed failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    where = f"schema {args.schema}" if args.schema else "the default schema"
    print(f"seeded {where}: " + ", ".join(f"{table} {n}" for table, n in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
