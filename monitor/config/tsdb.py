"""``tsdb:`` of ``monitor.yaml``: the sample store's retention, its per-series retention rules,
and where it keeps its samples across restarts (:mod:`monitor.tsdb`).
"""

from __future__ import annotations

from pydantic import Field, model_validator

from model.duration import Duration, PositiveDuration, format_duration
from model.matchers import parse_matchers
from monitor.config.validation import Section, located_error

__all__ = ["RetentionRuleConfig", "TSDBConfig"]


class RetentionRuleConfig(Section):
    """``tsdb.retention_rules[]`` — a longer (or shorter) retention and a coarser resolution for
    the series a selector matches (``monitor.tsdb.retention``; the first matching rule wins).

    :ivar match: a series selector, ``{__name__=~"slo:.*"}`` (at least one matcher that does not
        match the empty string).
    :ivar retention: seconds of samples kept for those series.
    :ivar resolution: seconds per kept sample: within each step the last sample appended
        replaces the previous one (gauges, such as recording-rule results); ``0`` keeps every
        sample (default 0).
    """

    match: str
    retention: PositiveDuration
    resolution: Duration = 0.0

    @model_validator(mode="after")
    def _valid(self) -> RetentionRuleConfig:
        try:
            matchers = parse_matchers(self.match)
        except ValueError as e:
            raise located_error([(("match",), str(e))]) from None
        if not matchers or all(m.matches("") for m in matchers):
            raise located_error([(("match",), f"selector {self.match} must have a matcher that does not match "
                                              "the empty string")])
        if self.resolution > self.retention:
            raise located_error([(("resolution",), f"resolution {format_duration(self.resolution)} must not exceed "
                                                   f"retention {format_duration(self.retention)}")])
        return self


def _default_retention_rules() -> list[RetentionRuleConfig]:
    # The series SLOs read (Sloth-style slo:* recording rules): 35 days (a 30-day window and a
    # margin), one sample a minute.
    return [RetentionRuleConfig(match='{__name__=~"slo:.*"}', retention=35 * 86400.0, resolution=60.0)]


class TSDBConfig(Section):
    """``tsdb:`` — the sample store: retention, and where it keeps its samples across restarts.

    :ivar retention: seconds of samples kept for series no retention rule matches (default 2h = 7200).
    :ivar max_series: series cap; new series beyond it are rejected and counted (default 200000).
    :ivar path: directory of the write-ahead log and checkpoints, relative to the config file's
        directory (:meth:`~monitor.config.model.Config.resolved_tsdb_path`); ``None`` (the default) keeps samples in
        memory only, lost at a restart.
    :ivar sync_interval: seconds between WAL flushes (then fsynced off the event loop); a
        crash loses at most this much (default 1s).
    :ivar checkpoint_interval: seconds between checkpoints, which let the WAL segments before
        them be deleted (default 1h).
    :ivar retention_rules: per-series retention and resolution (:class:`RetentionRuleConfig`);
        default: ``slo:*`` series 35d at 1m. Setting the list replaces the default.
    """

    retention: PositiveDuration = 7200.0
    max_series: int = Field(200_000, gt=0)
    path: str | None = None
    sync_interval: PositiveDuration = 1.0
    checkpoint_interval: PositiveDuration = 3600.0
    retention_rules: list[RetentionRuleConfig] = Field(default_factory=_default_retention_rules)
