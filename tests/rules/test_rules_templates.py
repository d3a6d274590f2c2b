"""Templates: Go-template syntax translated to Jinja2, and Prometheus's function outputs.

Expected strings are Prometheus's (``template/template_test.go`` and Go ``fmt`` behaviour).
"""

from __future__ import annotations

import pytest

from monitor.errors import RuleError
from monitor.rules.templates import (
    TemplateSample,
    check_template,
    expand,
    go_sprintf,
    humanize,
    humanize1024,
    humanize_duration,
    humanize_percentage,
    humanize_timestamp,
    render_template,
)

SAMPLES = [TemplateSample({"__name__": "up", "instance": "a:9090", "job": "api"}, 1.0),
           TemplateSample({"__name__": "up", "instance": "b:9090", "job": "api"}, 0.0)]


def render(text: str, value: float = 0.1234, labels: dict | None = None) -> str:
    return render_template(text, labels=labels if labels is not None else {"instance": "a:9090", "job": "api"},
                           value=value, external_labels={"env": "prod"}, external_url="http://mon",
                           query=lambda q: list(SAMPLES) if q == "up" else [])


@pytest.mark.parametrize("value, want", [
    (0, "0"), (1, "1"), (12.5, "12.5"), (1234, "1.234k"), (1234567, "1.235M"), (1e12, "1T"),
    (0.5, "500m"), (0.001234, "1.234m"), (1.5e-6, "1.5u"), (-1234, "-1.234k"),
    (float("inf"), "+Inf"), (float("-inf"), "-Inf"), (float("nan"), "NaN"), ("1e3", "1k"),
])
def test_humanize(value, want):
    assert humanize(value) == want


@pytest.mark.parametrize("value, want", [
    (0, "0"), (1, "1"), (1023, "1023"), (1024, "1ki"), (1048576, "1Mi"), (1.5 * 2**30, "1.5Gi"),
    (float("inf"), "+Inf"),
])
def test_humanize1024(value, want):
    assert humanize1024(value) == want


@pytest.mark.parametrize("value, want", [
    (0, "0s"), (0.1, "100ms"), (0.0001, "100us"), (1, "1s"), (1.5, "1.5s"), (59.9, "59.9s"),
    (60, "1m 0s"), (3600, "1h 0m 0s"), (93784, "1d 2h 3m 4s"), (-93784, "-1d 2h 3m 4s"),
    (2591340, "29d 23h 49m 0s"), (float("nan"), "NaN"),
])
def test_humanize_duration(value, want):
    assert humanize_duration(value) == want


@pytest.mark.parametrize("value, want", [
    (0, "0%"), (0.06, "6%"), (0.1234, "12.34%"), (1, "100%"), (0.123456, "12.35%"), (2.5, "250%"),
])
def test_humanize_percentage(value, want):
    assert humanize_percentage(value) == want


@pytest.mark.parametrize("value, want", [
    (0, "1970-01-01 00:00:00 +0000 UTC"), (1.5, "1970-01-01 00:00:01.5 +0000 UTC"),
    (1435065584.128, "2015-06-23 13:19:44.128 +0000 UTC"), (float("inf"), "+Inf"),
])
def test_humanize_timestamp(value, want):
    assert humanize_timestamp(value) == want


@pytest.mark.parametrize("fmt, args, want", [
    ("%.2f", (0.1234,), "0.12"), ("%d", (3,), "3"), ("%d", (1.5,), "%!d(float64=1.5)"),
    ("%s=%v", ("a", 1e6), "a=1e+06"), ("%5.1f|", (2.25,), "  2.2|"), ("%q", ("x",), '"x"'),
    ("%v", (float("inf"),), "+Inf"), ("%g", (100000.0,), "100000"), ("%g", (1234567.0,), "1.234567e+06"),
    ("%v %v", (1,), "1 %!v(MISSING)"), ("100%%", (), "100%"),
])
def test_printf_matches_go(fmt, args, want):
    assert go_sprintf(fmt, *args) == want


@pytest.mark.parametrize("text, want", [
    ("{{ $value }}", "0.1234"),
    ("{{ .Value }}", "0.1234"),
    ("{{ $labels.instance }} of {{ .Labels.job }}", "a:9090 of api"),
    ("{{ $labels.missing }}", "<no value>"),
    ("{{ $externalLabels.env }}", "prod"),
    ("{{ .ExternalURL }}", "http://mon"),
    ("{{ $value | humanizePercentage }}", "12.34%"),
    ('{{ printf "%.1f" $value }}', "0.1"),
    ("{{ humanize 1234567 }}", "1.235M"),
    ('{{ "api" | toUpper }} {{ "API" | toLower }} {{ title "hello world" }}', "API api Hello World"),
    ("{{ if gt $value 0.5 }}high{{ else }}low{{ end }}", "low"),
    ("{{ if gt $value 0.5 }}high{{ else if gt $value 0.1 }}mid{{ else }}low{{ end }}", "mid"),
    ("{{ if and (gt $value 0.1) (lt $value 0.2) }}in{{ end }}", "in"),
    ('{{ range query "up" }}{{ .Labels.instance }}={{ .Value }} {{ end }}', "a:9090=1 b:9090=0 "),
    ('{{ range $i, $s := query "up" }}{{ $i }}:{{ $s.Value }} {{ end }}', "0:1 1:0 "),
    ('{{ with query "up" }}{{ . | first | value }}{{ end }}', "1"),
    ('{{ with query "up" }}{{ . | first | label "instance" }}{{ end }}', "a:9090"),
    ('{{ with query "nothing" }}some{{ else }}none{{ end }}', "none"),
    ('{{ range query "nothing" }}x{{ else }}empty{{ end }}', "empty"),
    ('{{ $x := printf "%s!" $labels.job }}{{ $x }}', "api!"),
    ("a {{- ` b ` -}} c", "a b c"),
    ("{{/* a comment */}}plain", "plain"),
    ("braces {not a template} %} #}", "braces {not a template} %} #}"),
    ('{{ reReplaceAll "(.*):.*" "$1" $labels.instance }}', "a"),
    ('{{ if match "^a" $labels.instance }}yes{{ end }}', "yes"),
    ("{{ 1000000.0 }} {{ 0.5 }} {{ 3 }} {{ true }}", "1e+06 0.5 3 true"),
    ("{{ $labels }}", "map[instance:a:9090 job:api]"),
])
def test_render(text, want):
    assert render(text) == want


def test_template_data_is_not_escaped():
    assert render("{{ $labels.x }}", labels={"x": "<b>&"}) == "<b>&"


@pytest.mark.parametrize("text, msg", [
    ("{{ nofunc $value }}", 'function "nofunc" not defined'),
    ("{{ $undefined }}", 'undefined variable "$undefined"'),
    ("{{ if true }}x", "unexpected EOF"),
    ("{{ end }}", "unexpected {{end}}"),
    ("{{ $value", "unclosed action"),
    ('{{ humanize "abc" }}', 'strconv.ParseFloat: parsing "abc": invalid syntax'),
    ("{{ define \"x\" }}{{ end }}", "not supported"),
])
def test_bad_templates_are_rule_errors(text, msg):
    with pytest.raises(RuleError, match="template: t: .*" + __import__("re").escape(msg)):
        check_template(text, name="t")


def test_expand_turns_runtime_errors_into_text_like_prometheus():
    out = expand('{{ query "nothing" | first | value }}', labels={}, value=1.0, query=lambda q: [])
    assert out == "<error expanding template: template: template: first() called on vector with no elements>"


def test_jinja_syntax_in_text_is_literal_and_internals_unreachable():
    # Text outside {{ }} is emitted as a constant: Jinja syntax in it is never executed.
    assert render("{% raw %}{# x #}{{ 1 }}") == "{% raw %}{# x #}1"
    # Field access only reads mapping keys and sample fields, never Python attributes.
    assert render("{{ .__class__ }}") == "<no value>"
    with pytest.raises(RuleError, match="can't evaluate field __class__"):
        check_template('{{ (query "x" | first).__class__ }}')
