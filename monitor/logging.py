"""JSON-lines logging with bound context and secret redaction.

One line per record::

    {"ts": "2026-11-29T14:45:01.123Z", "level": "INFO", "logger": "monitor.probes",
     "message": "probe failed", "probe": "api", "target": "http://127.0.0.1:8000/health"}

``ts`` is ISO 8601 UTC with milliseconds. Context comes from ``extra=`` and from :func:`bind`
(an adapter carrying fixed context, bound once per component — the Alertmanager / Prometheus
group-logger habit). An exception is one ``"exc"`` string. Every registered secret value is
replaced, anywhere in the line, by its prefix (:func:`model.secrets.redact`).

Usage::

    setup_logging("INFO", secrets=secret_values(config))
    log = bind(logging.getLogger("monitor.probes"), probe="api", target=url)
    log.warning("probe failed", extra={"error": reason})
    add_secrets(secret_values(new_config))      # after a reload
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Iterable, Mapping, MutableMapping
from datetime import datetime, timezone
from typing import Any, TextIO

from monitor.config.secrets import MIN_SECRET_LENGTH
from model.secrets import redact

__all__ = ["setup_logging", "bind", "BoundLogger", "add_secrets", "JsonFormatter", "RedactingFilter",
           "Redactor", "FailureLog"]

# Attributes every LogRecord has; anything else on a record is context from ``extra=``.
_RESERVED = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class Redactor:
    """A thread-safe set of secret values and the replacement of each by its prefix."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._pairs: list[tuple[str, str]] = []
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        """Register more secret values (shorter than 4 characters are ignored)."""
        with self._lock:
            known = {s for s, _ in self._pairs}
            pairs = list(self._pairs)
            for s in secrets:
                if not isinstance(s, str) or len(s) < MIN_SECRET_LENGTH or s in known:
                    continue
                known.add(s)
                pairs.append((s, redact(s)))
                # The JSON-escaped form too, for secrets with quotes, backslashes or non-ASCII.
                escaped = json.dumps(s)[1:-1]
                if escaped != s:
                    pairs.append((escaped, redact(s)))
            # Longest first, so a secret containing another is replaced whole.
            pairs.sort(key=lambda p: -len(p[0]))
            self._pairs = pairs

    def __call__(self, text: str) -> str:
        """Return ``text`` with every registered secret replaced by its prefix."""
        for secret, shown in self._pairs:
            if secret in text:
                text = text.replace(secret, shown)
        return text

    def scrub(self, value: Any) -> Any:
        """Redact strings inside ``value`` (str, or dict / list / tuple of them); other types as-is."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, Mapping):
            return {k: self.scrub(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(self.scrub(v) for v in value)
        return value


#: The process-wide redactor used by :func:`setup_logging` and :func:`add_secrets`.
_REDACTOR = Redactor()


def add_secrets(values: Iterable[str]) -> None:
    """Register more secret values for redaction at runtime (e.g. after a config reload)."""
    _REDACTOR.add(values)


class RedactingFilter(logging.Filter):
    """Rewrite each record so no registered secret survives in its message, args, context or exc.

    Attached to the handler, so records of every logger that reach it are covered.
    """

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact ``record`` in place (message, args, exception text, context); always keep it."""
        r = self.redactor
        record.msg = r(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = r(record.exc_text)
        if record.stack_info:
            record.stack_info = r(record.stack_info)
        for key, value in list(vars(record).items()):
            if key not in _RESERVED:
                setattr(record, key, r.scrub(value if isinstance(value, (str, Mapping, list, tuple))
                                             else _jsonable(value)))
        return True


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    return str(value)


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON object: ts, level, logger, message, context..., exc.

    :param redactor: applied to the finished line as a last guard (``None`` for none).
    """

    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__()
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        """Return ``record`` as one JSON line (UTC ``ts`` in ms, level, logger, message, context, exc), redacted."""
        ts = datetime.fromtimestamp(record.created, tz=timezone.utc)
        out: dict[str, Any] = {
            "ts": ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RESERVED and key not in out:
                out[key] = _jsonable(value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            out["exc"] = record.exc_text
        if record.stack_info:
            out["stack"] = record.stack_info
        line = json.dumps(out, ensure_ascii=False, default=str)
        return self.redactor(line) if self.redactor else line


class BoundLogger(logging.LoggerAdapter):
    """A logger carrying fixed context, merged under each call's own ``extra=`` (which wins).

    Example::

        log = bind(logging.getLogger("monitor.notify"), receiver="ops", integration="slack[0]")
        log.info("sent", extra={"alerts": 3})
        log.bind(group="api").warning("retrying")
    """

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        """Merge the bound context under the call's own ``extra`` (the call's keys win)."""
        kwargs["extra"] = {**(self.extra or {}), **(kwargs.get("extra") or {})}
        return msg, kwargs

    def bind(self, **context: Any) -> BoundLogger:
        """Return a new adapter with more context on the same logger."""
        return BoundLogger(self.logger, {**(self.extra or {}), **context})


def bind(logger: logging.Logger | BoundLogger, **context: Any) -> BoundLogger:
    """Return ``logger`` with ``context`` added to every line it writes."""
    if isinstance(logger, BoundLogger):
        return logger.bind(**context)
    return BoundLogger(logger, context)


_HANDLER_FLAG = "_codebook_monitor_handler"


#: Third-party loggers kept at WARNING unless the daemon runs at DEBUG.
NOISY_LOGGERS = ("apscheduler", "httpx", "httpcore", "uvicorn", "uvicorn.error", "asyncio", "pinecone", "openai")


def setup_logging(level: str | int = "INFO", stream: TextIO | None = None,
                  secrets: Iterable[str] = ()) -> logging.Handler:
    """Send every log record to ``stream`` as JSON lines, with secrets redacted.

    Replaces a handler installed by an earlier call (so it is safe to call again, e.g. in tests
    or on reload); other handlers on the root logger are left alone.

    :param level: root level name (``DEBUG``, ``INFO``, ...) or number.
    :param stream: where lines go (default ``sys.stderr`` at call time).
    :param secrets: values to redact (more via :func:`add_secrets`).
    :return: the installed handler.
    """
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, _HANDLER_FLAG, False):
            root.removeHandler(h)
    _REDACTOR.add(secrets)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    setattr(handler, _HANDLER_FLAG, True)
    handler.addFilter(RedactingFilter(_REDACTOR))
    handler.setFormatter(JsonFormatter(_REDACTOR))
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    # Libraries that log every job run or request at INFO would drown the daemon's own lines;
    # they speak up at WARNING, or at DEBUG when the daemon runs at DEBUG.
    quiet = logging.DEBUG if root.level <= logging.DEBUG else logging.WARNING
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(quiet)
    return handler


class FailureLog:
    """Decide when a repeating failure is logged: when it starts, then at most once every ``every``
    seconds while it lasts, and once when it ends — not at every probe run or scrape (issue 16:
    "probe failed" every 5 s for the whole of a fault).

    :param every: seconds between two reminders of one ongoing failure (default 5 minutes).
    :param clock: seconds (monotonic); injected by tests.

    Usage (one per component; ``key`` names what fails, e.g. the probe)::

        failures = FailureLog()
        if (n := failures.failed("api", now)) is not None:
            log.warning("probe failed" if n == 1 else "probe still failing", extra={"failures": n})
        if (n := failures.recovered("api", now)) is not None:
            log.info("probe recovered", extra={"failures": n})
    """

    def __init__(self, every: float = 300.0, clock: Any = None) -> None:
        self.every = every
        self.clock = clock or time.monotonic
        self._state: dict[str, tuple[int, float]] = {}  # key -> (failures in a row, last logged at)

    def failed(self, key: str, now: float | None = None) -> int | None:
        """Count a failure of ``key``; return the failures in a row when it should be logged now
        (the first one, or the first after ``every`` seconds), else ``None``."""
        now = self.clock() if now is None else now
        count, logged = self._state.get(key, (0, 0.0))
        count += 1
        if count == 1 or now - logged >= self.every:
            self._state[key] = (count, now)
            return count
        self._state[key] = (count, logged)
        return None

    def recovered(self, key: str, now: float | None = None) -> int | None:
        """Note a success of ``key``; return the failures in a row it ends (log it), or ``None``
        when ``key`` was not failing."""
        state = self._state.pop(key, None)
        return None if state is None else state[0]

    def forget(self, key: str) -> None:
        """Drop ``key`` (its probe or target was removed)."""
        self._state.pop(key, None)
