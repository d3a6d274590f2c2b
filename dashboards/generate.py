"""Generate the Grafana dashboards in this folder with grafana-foundation-sdk.

Run ``python -m dashboards.generate`` from the repository root after changing a panel (the JSON
files are committed; ``tests/shipped/test_shipped_dashboards.py`` checks they match this
script). Every query names only metrics the daemon exports, the shipped recording rules
produce, the sample backend exposes, or the example SQL probe defines; the Prometheus datasource
is the ``${datasource}`` template variable, so the dashboards work on any Prometheus that
scrapes this daemon and the backend and loads rules/ (see ``codebook-monitor export
prometheus``).

This module holds the dashboards themselves; the panel, query and layout helpers they are built
with are in :mod:`dashboards.panels`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.models import dashboard as dm

from dashboards.panels import RATE, UP_DOWN, bars, build, label_var, st, tbl, ts

HERE = Path(__file__).resolve().parent
#: The daemon exports ``process_resident_memory_bytes`` (the Memory panel shows the resident set).
PROCESS_METRICS = True
#: The on-call gauge (``{schedule, person} 1``) the daemon exports; ``None`` shows the escalation
#: figures where "who is on call" would be.
ONCALL_METRIC: str | None = "monitor_oncall"

HTTP = 'http_requests_total{endpoint=~"$endpoint", client_id=~"$client_id"}'
HTTP_4XX = 'http_requests_total{status=~"4..", endpoint=~"$endpoint", client_id=~"$client_id"}'
BUCKET = 'http_request_duration_seconds_bucket{endpoint=~"$endpoint", client_id=~"$client_id"}'
EP = '{endpoint=~"$endpoint"}'
CL = '{client_id=~"$client_id"}'
PCT_WARN = [(None, "green"), (0.02, "orange"), (0.05, "red")]


def backend() -> dict[str, Any]:
    """Return the Codebook API dashboard: traffic, latency and errors, whole and by endpoint and client."""
    quantiles = [(f"histogram_quantile({q}, sum by (le) (rate({BUCKET}[{RATE}])))", f"p{int(q * 100)}")
                 for q in (0.5, 0.95, 0.99)]
    return build("codebook-backend", "Codebook · Backend",
                 "Requests per second, latency p50/p95/p99, 4xx and 5xx error rates of the Codebook API, "
                 "by endpoint and by client (recording rules in rules/recording.yaml).",
                 ["backend"], [
        ("Overview", [
            st("Requests per second", [(":http_requests:rate5m", "")], unit="reqps"),
            st("5xx error rate", [(":http_request_errors:ratio_rate5m", "")], unit="percentunit",
               thresholds=PCT_WARN, decimals=2),
            st("4xx error rate", [(f"sum(rate({HTTP_4XX}[5m])) / sum(rate({HTTP}[5m]))", "")],
               unit="percentunit", thresholds=[(None, "green"), (0.1, "orange")], decimals=2),
            st("Latency p95", [quantiles[1]], unit="s", thresholds=[(None, "green"), (2, "orange"), (5, "red")]),
        ]),
        ("Traffic", [
            ts("Requests per second", [(f"sum(rate({HTTP}[{RATE}]))", "all"),
                                       (f'sum by (status) (rate({HTTP}[{RATE}]))', "{{status}}")], unit="reqps"),
            ts("Requests per second by endpoint", [(f"endpoint:http_requests:rate5m{EP}", "{{endpoint}}")],
               unit="reqps", stack=True),
            ts("Requests per second by client", [(f"client_id:http_requests:rate5m{CL}", "{{client_id}}")],
               unit="reqps", stack=True),
            tbl("Requests by endpoint and client (last 24 h)",
                [(f"sum by (endpoint, client_id) (increase({HTTP}[1d]))", "")], w=12),
        ]),
        ("Latency", [
            ts("Latency p50 / p95 / p99", quantiles, unit="s", thresholds=[(None, "green"), (5, "red")],
               desc="All endpoints. The HighApiLatency alert pages at p95 > 5 s for 5 minutes."),
            ts("Latency p95 by endpoint", [(f"endpoint:http_request_duration_seconds:p95{EP}", "{{endpoint}}")],
               unit="s"),
            ts("Latency p50 / p99 by endpoint",
               [(f"endpoint:http_request_duration_seconds:p50{EP}", "{{endpoint}} p50"),
                (f"endpoint:http_request_duration_seconds:p99{EP}", "{{endpoint}} p99")], unit="s"),
            ts("Latency p50 / p95 / p99 by client",
               [(f"client_id:http_request_duration_seconds:p50{CL}", "{{client_id}} p50"),
                (f"client_id:http_request_duration_seconds:p95{CL}", "{{client_id}} p95"),
                (f"client_id:http_request_duration_seconds:p99{CL}", "{{client_id}} p99")], unit="s"),
        ]),
        ("Errors", [
            ts("Error rate (% 4xx and % 5xx)",
               [(f"sum(rate({HTTP_4XX}[{RATE}])) / sum(rate({HTTP}[{RATE}]))", "4xx"),
                (":http_request_errors:ratio_rate5m", "5xx")],
               unit="percentunit", thresholds=PCT_WARN, minimum=0,
               desc="5xx above 2% for 10 minutes warns, above 5% for 5 minutes pages."),
            ts("5xx error rate by endpoint", [(f"endpoint:http_request_errors:ratio_rate5m{EP}", "{{endpoint}}")],
               unit="percentunit", thresholds=PCT_WARN, minimum=0),
            ts("4xx error rate by endpoint",
               [(f"sum by (endpoint) (rate({HTTP_4XX}[{RATE}])) / sum by (endpoint) (rate({HTTP}[{RATE}]))",
                 "{{endpoint}}")], unit="percentunit", minimum=0),
            ts("5xx error rate by client", [(f"client_id:http_request_errors:ratio_rate5m{CL}", "{{client_id}}")],
               unit="percentunit", thresholds=PCT_WARN, minimum=0),
            ts("4xx error rate by client",
               [(f"sum by (client_id) (rate({HTTP_4XX}[{RATE}])) / sum by (client_id) (rate({HTTP}[{RATE}]))",
                 "{{client_id}}")], unit="percentunit", minimum=0),
        ]),
    ], variables=[label_var("endpoint", "Endpoint", "http_requests_total"),
                  label_var("client_id", "Client", "http_requests_total")])


def business() -> dict[str, Any]:
    """Return the business dashboard: the SQL probe's gauges, the backend's LLM counters, and the
    cost probe's spend with the llm probe's rate-limit headroom."""
    return build("codebook-business", "Codebook · Business",
                 "Codebooks, items, refactor operations and recommendations per day, recommendation "
                 "acceptance, LLM tokens per hour and per day (gauges of the sql probe in "
                 "examples/monitor.yaml, counters of the backend), LLM spend this month against the "
                 "budget (cost probe) and the provider's rate-limit headroom.", ["business"], [
        ("Last 24 hours", [
            st("Codebooks created", [("codebook_codebooks_created_24h", "")], w=4),
            st("Items uploaded", [("codebook_items_uploaded_24h", "")], w=4),
            st("Refactor operations", [("codebook_refactor_operations_completed_24h", "")], w=4),
            st("Recommendations", [("codebook_recommendations_generated_24h", "")], w=4),
            st("Acceptance rate", [("codebook_recommendation_acceptance_ratio", "")], unit="percentunit", w=4,
               thresholds=[(None, "red"), (0.3, "orange"), (0.5, "green")]),
            st("LLM tokens", [("sum(codebook_llm_tokens_24h)", "")], w=4),
        ]),
        ("Per day", [
            ts("Codebooks, items and refactor operations per day",
               [("codebook_codebooks_created_24h", "codebooks"), ("codebook_items_uploaded_24h", "items"),
                ("codebook_refactor_operations_completed_24h", "refactor operations")],
               desc="Rolling 24-hour counts, read from the database every minute."),
            ts("Recommendations per day and acceptance rate",
               [("codebook_recommendations_generated_24h", "recommendations"),
                ("codebook_recommendation_acceptance_ratio * 100", "accepted %")],
               desc="Acceptance: share of the recommendations decided in the last 24 hours that were accepted."),
        ]),
        ("LLM tokens", [
            ts("LLM tokens per hour by client", [("codebook_llm_tokens_1h", "{{client_id}}")], stack=True,
               desc="From the database (llm_usage), rolling hour."),
            ts("LLM tokens per day by client", [("codebook_llm_tokens_24h", "{{client_id}}")], stack=True,
               desc="From the database (llm_usage), rolling 24 hours."),
            ts("LLM tokens per hour (backend counter)",
               [("sum by (client_id) (increase(llm_tokens_total[1h]))", "{{client_id}}")], stack=True,
               desc="increase() of the backend's llm_tokens_total over the last hour."),
            ts("LLM API calls by status", [(f"sum by (status) (rate(llm_api_requests_total[{RATE}]))", "{{status}}")],
               unit="reqps", stack=True),
        ]),
        ("LLM spend (this month)", [
            st("Spend this month", [("sum(llm_spend_month_usd)", "")], unit="currencyUSD", w=6, decimals=2),
            st("Month-end forecast", [("sum(llm_spend_forecast_usd)", "")], unit="currencyUSD", w=6, decimals=2,
               desc="The month so far plus the last day's pace to the month's end (cost probe)."),
            st("Budget used", [("max(llm_spend_budget_used_ratio)", "")], unit="percentunit", w=6,
               thresholds=[(None, "green"), (0.8, "orange"), (1, "red")],
               desc="LLMMonthlySpendOverBudget warns from 80%, pages from 100%."),
            st("Forecast over budget", [("max(llm_spend_forecast_budget_ratio)", "")], unit="percentunit", w=6,
               thresholds=[(None, "green"), (1, "orange")], desc="LLMSpendForecastOverBudget warns above 100%."),
            bars("Spend by client and model", [("llm_spend_usd", "{{client_id}} {{model}}")], unit="currencyUSD",
                 desc="USD this calendar month (UTC) at the prices in the cost probe's config."),
            bars("Most expensive operations", [("llm_spend_operation_usd", "{{operation}}")], unit="currencyUSD",
                 desc="The cost probe's top_operations, USD this month."),
            ts("Spend and forecast over the month", [("sum(llm_spend_month_usd)", "spent"),
                                                      ("sum(llm_spend_forecast_usd)", "forecast"),
                                                      ("max(llm_spend_budget_usd)", "budget")],
               unit="currencyUSD", minimum=0),
            ts("Provider rate-limit headroom", [("probe_llm_ratelimit_remaining_ratio", "{{probe}} {{resource}}")],
               unit="percentunit", minimum=0, maximum=1, thresholds=[(None, "red"), (0.1, "orange"), (0.3, "green")],
               desc="Remaining over limit from the provider's rate-limit headers (llm probe, completion_model)."),
        ]),
    ])


DEP = 'kind=~"api|database|pinecone|llm"'


def dependencies() -> dict[str, Any]:
    """Return the dependencies dashboard: the backend's dependencies as the probes see them."""
    return build("codebook-dependencies", "Codebook · Dependencies",
                 "Probe success and latency per target (API, database, Pinecone, LLM), database connection "
                 "saturation, job queue, slow queries, TLS days left (leaf and chain), LLM token quota per client.",
                 ["dependencies", "probes"], [
        ("Probes", [
            st("Up", [(f"probe_success{{{DEP}}}", "{{kind}} {{probe}}")], w=24, h=4, mappings=UP_DOWN,
               thresholds=[(None, "red"), (1, "green")]),
            ts("Probe success (share of runs)",
               [(f"avg by (kind, probe) (avg_over_time(probe_success{{{DEP}}}[{RATE}]))", "{{kind}} {{probe}}")],
               unit="percentunit", minimum=0, maximum=1),
            ts("Probe duration", [(f"probe_duration_seconds{{{DEP}}}", "{{kind}} {{probe}}")], unit="s"),
            ts("Round trip per dependency",
               [("probe_api_request_duration_seconds", "api {{probe}} {{request}}"),
                ("probe_db_query_duration_seconds", "database {{probe}}"),
                ("probe_pinecone_request_duration_seconds", "pinecone {{probe}}"),
                ("probe_llm_request_duration_seconds", "llm {{probe}}")], unit="s"),
            tbl("Probe status", [(f"probe_success{{{DEP}}}", "")], w=12, h=8),
        ]),
        ("Database", [
            bars("Connection saturation", [("probe_db_connections_saturation_ratio", "{{probe}}")],
                 unit="percentunit", w=8, minimum=0, maximum=1,
                 thresholds=[(None, "green"), (0.8, "orange"), (0.95, "red")]),
            ts("Connections", [("probe_db_connections", "{{probe}} used"),
                               ("probe_db_max_connections", "{{probe}} max")], w=8),
            ts("Slow queries", [("probe_db_slow_queries", "{{probe}}")], w=8),
            ts("Job-queue depth", [("probe_db_job_queue_depth", "{{probe}}")],
               thresholds=[(None, "green"), (100, "red")], desc="JobQueueBacklog warns above 100."),
            ts("Oldest pending job age", [("probe_db_oldest_pending_job_age_seconds", "{{probe}}")], unit="s"),
        ]),
        ("TLS certificates", [
            bars("TLS days left (leaf and chain)",
                 [("(probe_ssl_leaf_cert_expiry - time()) / 86400", "{{target}} leaf"),
                  ("(probe_ssl_earliest_cert_expiry - time()) / 86400", "{{target}} chain")],
                 unit="d", thresholds=[(None, "red"), (7, "orange"), (30, "green")],
                 desc="Chain: the earliest expiry among the presented certificates. TLSCertificateExpiringSoon warns "
                      "under 30 days."),
            st("Chain verified", [("probe_tls_chain_verified", "{{target}}")], w=6, h=8, mappings=[
                dm.ValueMap(options={"0": dm.ValueMappingResult(text="NO", color="red"),
                                                       "1": dm.ValueMappingResult(text="YES", color="green")})],
               thresholds=[(None, "red"), (1, "green")]),
            st("Host name matches", [("probe_tls_hostname_match", "{{target}}")], w=6, h=8, mappings=[
                dm.ValueMap(options={"0": dm.ValueMappingResult(text="NO", color="red"),
                                                       "1": dm.ValueMappingResult(text="YES", color="green")})],
               thresholds=[(None, "red"), (1, "green")]),
        ]),
        ("LLM and capacity", [
            bars("LLM token quota used per client (this month)", [("llm_token_quota_used_ratio", "{{client_id}}")],
                 unit="percentunit", minimum=0, maximum=1,
                 thresholds=[(None, "green"), (0.8, "orange"), (1, "red")],
                 desc="LLMTokenQuotaHigh warns above 80%."),
            ts("LLM API error rate (backend)",
               [(f'sum(rate(llm_api_requests_total{{status!~"2.."}}[{RATE}])) '
                 f"/ sum(rate(llm_api_requests_total[{RATE}]))", "errors")],
               unit="percentunit", minimum=0, thresholds=[(None, "green"), (0.1, "red")]),
            st("LLM provider", [("probe_llm_up", "{{probe}}")], w=6, mappings=UP_DOWN,
               thresholds=[(None, "red"), (1, "green")]),
            st("Pinecone", [("probe_pinecone_up", "{{probe}}")], w=6, mappings=UP_DOWN,
               thresholds=[(None, "red"), (1, "green")]),
            ts("Disk space free", [("probe_disk_free_ratio", "{{path}}")], unit="percentunit", minimum=0,
               maximum=1, thresholds=[(None, "red"), (0.1, "green")]),
        ]),
    ])


def alerts(oncall_metric: str | None = None) -> dict[str, Any]:
    """Return the dashboard of alerts, notifications and escalation.

    :param oncall_metric: a gauge ``{schedule, person} 1`` naming who is on call, when the daemon
        exports one; without it the last row shows the escalation figures instead.
    """
    who: Any
    if oncall_metric:
        who = tbl("Who is on call", [(f"{oncall_metric} == 1", "")], w=12)
    else:
        who = tbl("Escalation figures (last 24 h)",
                  [("sum by (level, outcome) (increase(monitor_escalation_steps_total[1d]))", ""),
                   ("sum by (priority) (increase(monitor_sla_breaches_total[1d]))", "")], w=12,
                  desc="The daemon exports no on-call gauge: `codebook-monitor oncall` prints who is on call now.")
    mtta = "monitor_time_to_acknowledge_seconds"
    return build("codebook-alerts", "Codebook · Alerts and on-call",
                 "Firing alerts by severity, notifications by receiver and outcome, escalation steps by level, "
                 "time to acknowledge, SLA breaches.", ["alerts", "oncall"], [
        ("Alerts", [
            st("Critical firing", [('count(ALERTS{alertstate="firing", severity="critical"}) or vector(0)', "")],
               thresholds=[(None, "green"), (1, "red")], w=4),
            st("Warnings firing", [('count(ALERTS{alertstate="firing", severity="warning"}) or vector(0)', "")],
               thresholds=[(None, "green"), (1, "orange")], w=4),
            st("Pending", [('count(ALERTS{alertstate="pending"}) or vector(0)', "")], w=4),
            st("Escalating", [("monitor_escalations_active", "")], w=4, thresholds=[(None, "green"), (1, "orange")]),
            st("Muted", [("monitor_alerts_silenced", "silenced"), ("monitor_alerts_inhibited", "inhibited"),
                         ("monitor_alerts_muted", "maintenance")], w=8),
            ts("Firing alerts by severity", [('sum by (severity) (ALERTS{alertstate="firing"})', "{{severity}}")],
               stack=True),
            ts("Alerts received by source",
               [(f"sum by (source) (increase(monitor_alerts_received_total[{RATE}]))", "{{source}}")], bars=True,
               desc="rules: this daemon's rules; api / webhook: a Prometheus or Alertmanager sending to the intake."),
            tbl("Active alerts", [("ALERTS", "")], w=24),
        ]),
        ("Notifications", [
            ts("Notifications by receiver and outcome",
               [(f"sum by (receiver, outcome) (increase(monitor_notifications_total[{RATE}]))",
                 "{{receiver}} {{outcome}}")], stack=True, bars=True),
            ts("Notification latency p95 by receiver",
               [(f"histogram_quantile(0.95, sum by (receiver, le) "
                 f"(rate(monitor_notification_duration_seconds_bucket[{RATE}])))", "{{receiver}}")], unit="s"),
            ts("Outbox depth", [("monitor_outbox_depth", "pending")]),
            ts("Notifications queued by receiver",
               [(f"sum by (receiver) (increase(monitor_notifications_enqueued_total[{RATE}]))", "{{receiver}}")],
               bars=True),
        ]),
        ("Escalation", [
            ts("Escalation steps by level",
               [(f"sum by (level, outcome) (increase(monitor_escalation_steps_total[{RATE}]))",
                 "level {{level}} {{outcome}}")], stack=True, bars=True,
               desc="Level 1 is the primary on-call, then the secondary, the engineering manager, the CTO."),
            ts("Time to acknowledge (MTTA) by priority",
               [(f"histogram_quantile(0.5, sum by (priority, le) (rate({mtta}_bucket[1h])))", "{{priority}} p50"),
                (f"histogram_quantile(0.95, sum by (priority, le) (rate({mtta}_bucket[1h])))", "{{priority}} p95"),
                (f"sum by (priority) (rate({mtta}_sum[1h])) / sum by (priority) (rate({mtta}_count[1h]))",
                 "{{priority}} mean")], unit="s",
               thresholds=[(None, "green"), (900, "red")], desc="P0 must be acknowledged within 15 minutes."),
            ts("Acknowledgements by source",
               [(f"sum by (source) (increase(monitor_acknowledgements_total[{RATE}]))", "{{source}}")],
               stack=True, bars=True),
            ts("SLA breaches by priority",
               [(f"sum by (priority) (increase(monitor_sla_breaches_total[{RATE}]))", "{{priority}}")], bars=True,
               desc="Alerts still unresolved at their resolve deadline (P0 4 h, P1 24 h, P2 3 days)."),
            st("SLA breaches (24 h)", [("sum(increase(monitor_sla_breaches_total[1d]))", "")],
               thresholds=[(None, "green"), (1, "red")], w=12, h=8),
            who,
        ]),
    ])


def monitor_self(process_metrics: bool = False) -> dict[str, Any]:
    """Return the dashboard of the daemon's own health."""
    memory = [("monitor_tsdb_memory_bytes", "sample store (estimate)")]
    if process_metrics:
        memory.insert(0, ('process_resident_memory_bytes{job="codebook-monitor"}', "resident"))
    return build("codebook-monitor-self", "Codebook · The monitor itself",
                 "Probe runs and failures, scrapes, scheduler lag, rule evaluation, outbox depth, memory of "
                 "codebook-monitor.", ["monitor"], [
        ("Probes and scrapes", [
            ts("Probe runs by outcome",
               [(f"sum by (outcome) (rate(monitor_probe_runs_total[{RATE}]))", "{{outcome}}")], unit="ops",
               stack=True),
            ts("Probe failures by probe",
               [(f'sum by (probe) (increase(monitor_probe_runs_total{{outcome="failure"}}[{RATE}]))', "{{probe}}")],
               bars=True),
            ts("Probe duration p95 by kind",
               [(f"histogram_quantile(0.95, sum by (kind, le) (rate(monitor_probe_duration_seconds_bucket[{RATE}])))",
                 "{{kind}}")], unit="s",
               desc="Per probe kind; each probe's last run is probe_duration_seconds (Dependencies dashboard)."),
            ts("Scrapes by job and outcome",
               [(f"sum by (job, outcome) (rate(monitor_scrapes_total[{RATE}]))", "{{job}} {{outcome}}"),
                (f"sum by (job, reason) (rate(monitor_scrape_errors_total[{RATE}]))", "{{job}} error {{reason}}")],
               unit="ops"),
        ]),
        ("Scheduler and rules", [
            ts("Scheduler lag p50 / p99",
               [(f"histogram_quantile(0.5, sum by (le) (rate(monitor_scheduler_lag_seconds_bucket[{RATE}])))", "p50"),
                (f"histogram_quantile(0.99, sum by (le) (rate(monitor_scheduler_lag_seconds_bucket[{RATE}])))",
                 "p99")], unit="s", thresholds=[(None, "green"), (0.1, "orange")],
               desc="Delay between a job's scheduled time and its start (target p99 < 100 ms)."),
            ts("Missed and skipped runs",
               [(f"sum by (job) (increase(monitor_scheduler_missed_runs_total[{RATE}]))", "missed {{job}}"),
                (f"sum by (job) (increase(monitor_scheduler_skipped_overlapping_runs_total[{RATE}]))",
                 "skipped {{job}}")], bars=True),
            ts("Rule group evaluation duration", [("monitor_rule_group_last_duration_seconds", "{{rule_group}}")],
               unit="s"),
            ts("Rule evaluation failures",
               [(f"sum by (rule_group) (increase(monitor_rule_evaluation_failures_total[{RATE}]))",
                 "{{rule_group}}")], bars=True),
        ]),
        ("State", [
            ts("Outbox depth", [("monitor_outbox_depth", "pending notifications")], w=8),
            ts("Memory", memory, unit="bytes", w=8),
            ts("Sample store", [("monitor_tsdb_series", "series"), ("monitor_tsdb_samples", "samples")], w=8),
            st("Config reload", [("monitor_config_last_reload_successful", "config and rules")],
               mappings=[dm.ValueMap(options={
                   "0": dm.ValueMappingResult(text="FAILED", color="red"),
                   "1": dm.ValueMappingResult(text="OK", color="green")})],
               thresholds=[(None, "red"), (1, "green")], w=12),
            tbl("Version", [("monitor_build_info", "")], w=12, h=4),
        ]),
    ])


SLO = '{sloth_id=~"$sloth_id"}'
#: The windows of the default burn-rate tiers (monitor.slo.model.default_tiers), fastest first.
SLO_WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")


def slos() -> dict[str, Any]:
    """Return the SLOs dashboard: budget remaining, burn rate by window, SLI over time, budget burn-down.

    It reads the Sloth-compatible series generated from the SLO definitions (README "SLOs"), so it
    works on a real Prometheus that loads ``codebook-monitor slo generate``'s rule file too.
    """
    burn = [(f"slo:sli_error:ratio_rate{w}{SLO} / on(sloth_id) group_left slo:error_budget:ratio{SLO}",
             f"{{{{sloth_id}}}} {w}") for w in SLO_WINDOWS]
    return build("codebook-slos", "Codebook · SLOs",
                 "Service level objectives: error budget remaining over the period, burn rate by alert window "
                 "(1 = exactly on budget; the page tiers fire above 14.4x over 1h and 6x over 6h), the SLI "
                 "over time against its objective, and the budget burn-down.",
                 ["slo"], [
        ("Now", [
            st("Error budget remaining", [(f"slo:period_error_budget_remaining:ratio{SLO}", "{{sloth_id}}")],
               unit="percentunit", thresholds=[(None, "red"), (0.25, "orange"), (0.5, "green")], decimals=1,
               desc="Share of the period's error budget left (negative when overspent)."),
            st("Burn rate now (5m)", [(f"slo:current_burn_rate:ratio{SLO}", "{{sloth_id}}")], unit="suffix:x",
               thresholds=[(None, "green"), (1, "orange"), (14.4, "red")], decimals=2),
            st("SLI over the period",
               [(f"1 - slo:period_burn_rate:ratio{SLO} * on(sloth_id) group_left slo:error_budget:ratio{SLO}",
                 "{{sloth_id}}")], unit="percentunit", decimals=3),
            tbl("Burn-rate alerts firing", [('ALERTS{alertstate="firing", sloth_id=~"$sloth_id"}', "")], w=6, h=4,
                hide=("Time", "__name__", "Value", "alertstate", "sloth_service", "sloth_slo")),
        ]),
        ("Burn rate", [
            ts("Burn rate by window", burn, unit="suffix:x", w=24,
               thresholds=[(None, "green"), (1, "orange"), (6, "red"), (14.4, "dark-red")],
               desc="Error ratio over each alert window divided by the error budget."),
        ]),
        ("SLI and budget over time", [
            ts("SLI over time (1h) and objective",
               [(f"1 - slo:sli_error:ratio_rate1h{SLO}", "{{sloth_id}} 1h"),
                (f"slo:objective:ratio{SLO}", "{{sloth_id}} objective")], unit="percentunit"),
            ts("Budget burn-down", [(f"slo:period_error_budget_remaining:ratio{SLO}", "{{sloth_id}}")],
               unit="percentunit", thresholds=[(None, "red"), (0, "green")],
               desc="Error budget remaining over the period, as it was at each moment."),
        ]),
    ], variables=[label_var("sloth_id", "SLO", "sloth_slo_info")])


#: File name -> builder. The test regenerates each and compares with the committed file.
DASHBOARDS: dict[str, Callable[[], dict[str, Any]]] = {
    "backend.json": backend,
    "business.json": business,
    "dependencies.json": dependencies,
    "alerts.json": lambda: alerts(ONCALL_METRIC),
    "monitor.json": lambda: monitor_self(PROCESS_METRICS),
    "slos.json": slos,
}


def render(builder: Callable[[], dict[str, Any]]) -> str:
    """Return one dashboard as the committed JSON text."""
    return json.dumps(builder(), indent=2, sort_keys=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write every dashboard to ``dashboards/<name>.json``."""
    out = Path(argv[0]) if argv else HERE
    for name, builder in DASHBOARDS.items():
        (out / name).write_text(render(builder))
        print(f"wrote {out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
