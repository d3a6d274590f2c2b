"""A scrape's limits: Prometheus ``scrape_config``'s ``body_size_limit``, ``sample_limit``,
``label_limit``, ``label_name_length_limit`` and ``label_value_length_limit``.

Past one, the whole scrape fails, ``up`` 0 with the reason, and nothing of it is stored
(:class:`~monitor.scrape.scraper.Scraper`: it stops reading at ``body_size_limit``
(:class:`probes.base.BodyTooLarge`) and parsing at the first sample past ``sample_limit``; the
label limits are checked here, :meth:`ScrapeLimits.check_labels`).
"""

from __future__ import annotations

from dataclasses import dataclass

from model.labels import Labels

__all__ = ["ScrapeLimitExceeded", "ScrapeLimits"]


@dataclass(frozen=True, slots=True)
class ScrapeLimits:
    """Per-target limits, Prometheus ``scrape_config`` names and semantics; ``0`` means no limit.

    Exceeding any fails the whole scrape (``up`` 0, nothing stored, the reason in the result).

    :ivar body_size_limit: bytes of the uncompressed body; reading stops there.
    :ivar sample_limit: samples in one scrape; parsing stops at the next.
    :ivar label_limit: labels of one series, ``__name__`` and target labels included.
    :ivar label_name_length_limit: characters of a label name.
    :ivar label_value_length_limit: characters of a label value.
    """

    body_size_limit: int = 0
    sample_limit: int = 0
    label_limit: int = 0
    label_name_length_limit: int = 0
    label_value_length_limit: int = 0

    def check_labels(self, lbl: Labels) -> None:
        """Apply the label limits to a stored label set, as Prometheus ``verifyLabelLimits``.

        :raises ScrapeLimitExceeded: with Prometheus's message for the limit passed.
        """
        if self.label_limit and len(lbl) > self.label_limit:
            raise ScrapeLimitExceeded("label_limit", f"label_limit exceeded (metric: {lbl.name[:50]}, "
                                                     f"number of labels: {len(lbl)}, limit: {self.label_limit})")
        name_max, value_max = self.label_name_length_limit, self.label_value_length_limit
        if not (name_max or value_max):
            return
        for k, v in lbl:
            if name_max and len(k) > name_max:
                raise ScrapeLimitExceeded(
                    "label_name_length_limit",
                    f"label_name_length_limit exceeded (metric: {lbl.name[:50]}, label name: {k[:50]}, "
                    f"length: {len(k)}, limit: {name_max})")
            if value_max and len(v) > value_max:
                raise ScrapeLimitExceeded(
                    "label_value_length_limit",
                    f"label_value_length_limit exceeded (metric: {lbl.name[:50]}, label name: {k[:50]}, "
                    f"value: {v[:50]!r}, length: {len(v)}, limit: {value_max})")


class ScrapeLimitExceeded(Exception):
    """A scrape passed one of its :class:`ScrapeLimits`.

    :ivar limit: the setting's name (``sample_limit``, ``label_limit``, ...).
    """

    def __init__(self, limit: str, message: str) -> None:
        super().__init__(message)
        self.limit = limit
