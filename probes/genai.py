"""OpenTelemetry GenAI client metrics under their Prometheus names, for probes that call an LLM.

Semantic conventions (``gen_ai.client.*``, status Development, semconv v1.36+,
https://opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-metrics/):

- ``gen_ai.client.operation.duration`` — histogram, unit ``s``, bucket boundaries
  ``[0.01, 0.02, 0.04, ..., 81.92]``; exported by the OpenTelemetry Prometheus exporter as
  ``gen_ai_client_operation_duration_seconds_{bucket,sum,count}`` (dots become underscores, the
  unit ``s`` becomes the ``_seconds`` suffix).
- ``gen_ai.client.token.usage`` — histogram, unit ``{token}`` (an annotation, so no suffix),
  bucket boundaries ``[1, 4, 16, ..., 67108864]``; exported as
  ``gen_ai_client_token_usage_{bucket,sum,count}``.

Attributes become labels the same way: ``gen_ai_operation_name`` (``chat``, ``embeddings``),
``gen_ai_provider_name`` (``openai``, ``anthropic``), ``gen_ai_request_model``,
``gen_ai_token_type`` (``input``, ``output``; token usage only) and ``error_type`` (duration of a
failed call only). The histograms are cumulative over the probe object's life (a config reload
starts them again, as a process restart would), so ``rate()`` and ``histogram_quantile()`` work
on them; the daemon's ``/metrics`` writes each as one ``histogram`` family (a probe lists them in
its ``HISTOGRAMS``), so ``promtool check metrics`` accepts the ``_bucket``/``_sum``/``_count`` names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from probes.base import ProbeResult

DURATION = "gen_ai_client_operation_duration_seconds"
TOKENS = "gen_ai_client_token_usage"
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)

#: The histogram families :class:`GenAiMetrics` emits, for a probe's ``HISTOGRAMS``.
HISTOGRAMS = frozenset({DURATION, TOKENS})

#: Help of every sample name :class:`GenAiMetrics` emits (and of its families), for a probe's ``METRICS``.
METRICS = {
    DURATION: "GenAI operation duration (OpenTelemetry gen_ai.client.operation.duration), in seconds.",
    TOKENS: "GenAI tokens used per operation (OpenTelemetry gen_ai.client.token.usage).",
    f"{DURATION}_bucket": "GenAI operation duration (OpenTelemetry gen_ai.client.operation.duration), cumulative "
                          "bucket counts.",
    f"{DURATION}_sum": "GenAI operation duration (gen_ai.client.operation.duration), sum of seconds.",
    f"{DURATION}_count": "GenAI operation duration (gen_ai.client.operation.duration), number of operations.",
    f"{TOKENS}_bucket": "GenAI tokens used per operation (OpenTelemetry gen_ai.client.token.usage), cumulative "
                        "bucket counts.",
    f"{TOKENS}_sum": "GenAI tokens used (gen_ai.client.token.usage), sum of tokens.",
    f"{TOKENS}_count": "GenAI token usage (gen_ai.client.token.usage), number of recordings.",
}

Key = tuple[tuple[str, str], ...]


class _Histogram:
    """One cumulative histogram per label set: bucket counts, sum and count."""

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.series: dict[Key, tuple[list[int], list[float]]] = {}  # key -> (bucket counts, [sum, count])

    def observe(self, value: float, labels: dict[str, str]) -> None:
        key = tuple(sorted(labels.items()))
        counts, totals = self.series.setdefault(key, ([0] * len(self.bounds), [0.0, 0.0]))
        for i, bound in enumerate(self.bounds):
            if value <= bound:
                counts[i] += 1
        totals[0] += value
        totals[1] += 1

    def emit(self, name: str, result: ProbeResult) -> None:
        for key, (counts, (total, count)) in self.series.items():
            labels = dict(key)
            for bound, n in zip(self.bounds, counts):
                result.add(f"{name}_bucket", n, **labels, le=_le(bound))
            result.add(f"{name}_bucket", count, **labels, le="+Inf")
            result.add(f"{name}_sum", total, **labels)
            result.add(f"{name}_count", count, **labels)


def _le(bound: float) -> str:
    """Format a bucket bound as Prometheus 3 does (``1.0``, ``0.01``)."""
    return repr(float(bound))


class GenAiMetrics:
    """The two GenAI client histograms of one probe; :meth:`emit` adds their samples to a result."""

    def __init__(self) -> None:
        self.duration = _Histogram(DURATION_BUCKETS)
        self.tokens = _Histogram(TOKEN_BUCKETS)

    def record(self, *, operation: str, provider: str, model: str, seconds: float,
               input_tokens: int | None = None, output_tokens: int | None = None,
               error_type: str | None = None) -> None:
        """Record one call: its duration, and the tokens it used when the answer said so.

        :param operation: ``gen_ai.operation.name`` (``chat``, ``embeddings``).
        :param provider: ``gen_ai.provider.name`` (``openai``, ``anthropic``).
        :param model: ``gen_ai.request.model``.
        :param error_type: ``error.type`` of a failed call (e.g. the HTTP status), else None.
        """
        base = {"gen_ai_operation_name": operation, "gen_ai_provider_name": provider, "gen_ai_request_model": model}
        self.duration.observe(seconds, {**base, "error_type": error_type} if error_type else base)
        for kind, n in (("input", input_tokens), ("output", output_tokens)):
            if n is not None:
                self.tokens.observe(float(n), {**base, "gen_ai_token_type": kind})

    def emit(self, result: ProbeResult) -> None:
        """Add every histogram series (``_bucket``, ``_sum``, ``_count``) to ``result``."""
        self.duration.emit(DURATION, result)
        self.tokens.emit(TOKENS, result)
