"""The exception tree of codebook-monitor.

One base, :class:`MonitorError`, and one family per part of the data flow. Vendor SDK
exceptions are translated into these at the module edge; messages never carry secrets
(a prefix at most, e.g. ``ck_live_1234...``).

Shape after httpx ``_exceptions.py`` and APScheduler ``_exceptions.py``.
"""

from __future__ import annotations


class MonitorError(Exception):
    """Base of every error raised by codebook-monitor."""


class ConfigError(MonitorError):
    """A configuration file is invalid.

    :param message: what is wrong, in one sentence.
    :param file: the file the error is in, or ``None``.
    :param line: 1-based line, or ``None`` when unknown.
    :param column: 1-based column, or ``None`` when unknown.
    :param path: the key path, e.g. ``probes[2].interval``.

    ``str(err)`` is ``file:line:col: path: message`` (parts that are unknown are left out).
    """

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 column: int | None = None, path: str = "") -> None:
        self.message = message
        self.file = file
        self.line = line
        self.column = column
        self.path = path
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = self.file
            if self.line is not None:
                where += f":{self.line}"
                if self.column is not None:
                    where += f":{self.column}"
            where += ": "
        path = f"{self.path}: " if self.path else ""
        return f"{where}{path}{self.message}"


class ConfigErrors(MonitorError):
    """Several configuration errors, all reported at once.

    :param errors: every :class:`ConfigError` found, in file order.
    """

    def __init__(self, errors: list[ConfigError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


class RuleError(MonitorError):
    """A rule file or rule expression is invalid, or a rule failed to evaluate."""


class QueryError(MonitorError):
    """A PromQL query could not be parsed or evaluated (bad syntax, bad types, too many series)."""


class ProbeError(MonitorError):
    """A probe could not be run (raised inside probes; the harness turns it into a failed result)."""


class StoreError(MonitorError):
    """The durable state store failed."""


class NotifyError(MonitorError):
    """A notification could not be delivered.

    :param message: what went wrong (status and a trimmed body; never a secret).
    :param retryable: ``True`` when a later attempt may succeed (5xx, 429, timeouts).
    :param retry_after: seconds the receiver asked us to wait (``Retry-After``), or ``None``.
    """

    def __init__(self, message: str, *, retryable: bool, retry_after: float | None = None) -> None:
        self.retryable = retryable
        self.retry_after = retry_after
        super().__init__(message)


class NotFoundError(MonitorError, LookupError):
    """A thing looked up by id does not exist.

    :param kind: what was looked up, e.g. ``alert``.
    :param ident: its id, e.g. a fingerprint.
    """

    def __init__(self, kind: str, ident: str) -> None:
        self.kind = kind
        self.ident = ident
        super().__init__(f"{kind} {ident!r} not found")
