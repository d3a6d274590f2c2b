"""Per-series retention and resolution: which series keep samples longer, and how coarsely.

A :class:`RetentionRule` matches series by a selector (``{__name__=~"slo:.*"}``) and gives them a
retention (seconds) and a resolution (seconds; ``0`` keeps every sample). A series takes the
first rule that matches its labels when it is created, else the store's default retention at
full resolution. Changed rules apply to series created after the change (a restart re-creates
every series, so then to all). The store applies the resolution at append time: within one resolution step
(aligned to multiples of the step since the Unix epoch, as Thanos's downsampling is) a newer
sample *replaces* the step's last one, so a series holds one sample per step — the last value,
which is the right aggregate for gauges such as recording-rule results — and its latest sample
is always the freshest value (instant queries and alerts see no delay).

Why last value rather than averages: the series SLOs keep (Sloth's ``slo:sli_error:ratio_rate5m``
and friends) are already windowed ratios; a period SLI is ``sum_over_time`` / ``count_over_time``
of them, which one evenly spaced sample per step keeps unbiased.

Usage::

    rules = [RetentionRule.parse('{__name__=~"slo:.*"}', retention=35 * 86400, resolution=60)]
    policy = RetentionPolicy(rules)
    policy.for_labels(Labels.of(__name__="slo:objective:ratio"))   # (3024000000, 60000) ms
    policy.for_labels(Labels.of(__name__="up"))                    # (DEFAULT_KEEP, 0)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from model.labels import Labels
from model.matchers import Matcher, matches_all, parse_matchers

__all__ = ["DEFAULT_KEEP", "DEFAULT_RETENTION_RULES", "RetentionPolicy", "RetentionRule"]

#: The retention of a series no rule matches: the store's default (``retention_seconds``).
DEFAULT_KEEP = -1


@dataclass(frozen=True)
class RetentionRule:
    """Series matching ``matchers`` keep ``retention`` seconds of samples, one per ``resolution``.

    :ivar matchers: every one must match (a missing label has the value ``""``).
    :ivar retention: seconds, > 0.
    :ivar resolution: seconds between kept samples; ``0`` keeps every sample.
    """

    matchers: tuple[Matcher, ...]
    retention: float
    resolution: float = 0.0

    @classmethod
    def parse(cls, selector: str, retention: float, resolution: float = 0.0) -> RetentionRule:
        """Build a rule from a series selector such as ``{__name__=~"slo:.*"}``.

        :raises ValueError: the selector does not parse, selects nothing in particular (``{}``),
            or the resolution is negative or longer than the retention.
        """
        matchers = tuple(parse_matchers(selector))
        if not matchers or all(m.matches("") for m in matchers):
            raise ValueError(f"selector {selector!r} must have a matcher that does not match the empty string")
        if retention <= 0:
            raise ValueError("retention must be positive")
        if resolution < 0 or resolution > retention:
            raise ValueError(f"resolution {resolution:g}s must be between 0 and the retention ({retention:g}s)")
        return cls(matchers, float(retention), float(resolution))


#: The series SLOs need (Sloth-compatible ``slo:*`` recording rules): 35 days at one sample a minute,
#: enough for a 30-day window plus a margin for a restart or a late report.
DEFAULT_RETENTION_RULES: tuple[tuple[str, float, float], ...] = (('{__name__=~"slo:.*"}', 35 * 86400.0, 60.0),)


class RetentionPolicy:
    """Resolve a new series' retention and resolution from the rules (first match wins).

    :param rules: checked in order.
    """

    def __init__(self, rules: Sequence[RetentionRule] = ()) -> None:
        self.rules = tuple(rules)

    def for_labels(self, labels: Labels) -> tuple[int, int]:
        """Return ``(retention_ms, resolution_ms)`` for a series with ``labels``: the first matching
        rule's, else ``(DEFAULT_KEEP, 0)`` (the store's default retention, every sample)."""
        for r in self.rules:
            if matches_all(r.matchers, labels):
                return int(r.retention * 1000), int(r.resolution * 1000)
        return DEFAULT_KEEP, 0
