"""The GenAI semantic-convention histograms (probes/genai.py): names, labels, cumulative buckets."""

from __future__ import annotations

from probes.base import ProbeResult
from probes.genai import DURATION, DURATION_BUCKETS, TOKENS, GenAiMetrics


def test_histograms_are_cumulative_with_prometheus_bucket_labels():
    m = GenAiMetrics()
    m.record(operation="chat", provider="anthropic", model="claude-3-5-haiku-20241022", seconds=0.05,
             input_tokens=8, output_tokens=1)
    m.record(operation="chat", provider="anthropic", model="claude-3-5-haiku-20241022", seconds=3.0,
             input_tokens=8, output_tokens=1)
    m.record(operation="chat", provider="anthropic", model="claude-3-5-haiku-20241022", seconds=0.2,
             error_type="529")
    result = ProbeResult(True)
    m.emit(result)
    ok = {"gen_ai_operation_name": "chat", "gen_ai_provider_name": "anthropic",
          "gen_ai_request_model": "claude-3-5-haiku-20241022"}
    buckets = {s.labels["le"]: s.value for s in result.samples
               if s.name == f"{DURATION}_bucket" and "error_type" not in s.labels}
    assert len(buckets) == len(DURATION_BUCKETS) + 1
    assert buckets["0.01"] == 0 and buckets["0.08"] == 1 and buckets["5.12"] == 2 and buckets["+Inf"] == 2
    sums = {(s.name, tuple(sorted(s.labels.items()))): s.value for s in result.samples if s.name.endswith("_sum")}
    assert sums[(f"{DURATION}_sum", tuple(sorted(ok.items())))] == 3.05
    assert sums[(f"{TOKENS}_sum", tuple(sorted({**ok, "gen_ai_token_type": "input"}.items())))] == 16
    failed = [s for s in result.samples if s.name == f"{DURATION}_count" and s.labels.get("error_type") == "529"]
    assert [s.value for s in failed] == [1]
    tokens = {s.labels["le"]: s.value for s in result.samples
              if s.name == f"{TOKENS}_bucket" and s.labels["gen_ai_token_type"] == "output"}
    assert tokens["1.0"] == 2 and tokens["4.0"] == 2 and tokens["+Inf"] == 2
