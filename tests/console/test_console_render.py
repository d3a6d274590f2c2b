"""The console's pure helpers: SVG pictures, number and time formatting, redirects, silence matchers."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

from model.matchers import parse_matchers
from monitor.api.console.pages import safe_next, silence_matchers
from monitor.api.console.render import bar, detail, line_chart, number, sparkline, when


def test_sparkline_is_svg_with_failures_marked_and_gaps_skipped():
    svg = ET.fromstring(str(sparkline([0.1, None, 0.3, math.nan, 0.2], [False, False, True, False, False],
                                      label='probe "a"<b>')))
    assert svg.tag.endswith("svg") and svg.get("aria-label") == 'probe "a"<b>'
    [line] = [e for e in svg if e.tag.endswith("polyline")]
    assert len(line.get("points").split()) == 3
    assert len([e for e in svg if e.tag.endswith("circle")]) == 1
    empty = ET.fromstring(str(sparkline([])))
    assert [e.tag.split("}")[-1] for e in empty] == ["line"]


def test_bar_clips_and_colours():
    assert 'class="ok"' in bar(0.9) and 'class="warn"' in bar(0.3) and 'class="bad"' in bar(-2)
    assert 'width="160"' in bar(5.0).split("</rect>")[0] and ET.fromstring(str(bar(None)))


def test_line_chart_escapes_labels_and_breaks_at_gaps():
    series = [('up{job="<script>"}', [(0, 1.0), (1000, math.nan), (2000, 2.0), (3000, 3.0)])]
    text = str(line_chart(series, 0, 3000))
    svg = ET.fromstring(text)
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert len([e for e in svg.iter() if e.tag.endswith("polyline")]) == 1  # the run after the gap
    assert len([e for e in svg.iter() if e.tag.endswith("circle")]) == 1  # the lone point before it
    ET.fromstring(str(line_chart([], 0, 1000)))  # no data: still a picture


def test_formatting():
    assert number("0.45576779894") == "0.4558" and number("456.43166") == "456.4" and number("x") == "x"
    assert number("NaN") == "nan" and number(0) == "0"
    assert when(0) == "1970-01-01 00:00:00 UTC" and when("2026-12-05T02:58:12.000Z") == "2026-12-05 02:58:12 UTC"
    assert detail("ack_deadline", 0.0) == "1970-01-01 00:00:00 UTC" and detail("priority", "P0") == "P0"
    assert detail("recipient", "pdkeyalice0000000000000000000001") == "pdkeya…"
    assert detail("recipient", "alice@example.com") == "alice@example.com" and detail("recipient", "#ops") == "#ops"


def test_safe_next_stays_in_the_console():
    assert safe_next("/ui/alerts/abc") == "/ui/alerts/abc"
    for bad in ("//evil.example/", "https://evil.example/", "/ui//evil", "/api/v2/alerts", "", None, "/ui/\\x"):
        assert safe_next(bad) == "/ui/"


def test_silence_matchers_parse_back_to_the_labels():
    labels = {"alertname": "X", "path": 'a"b\\c', "multi": "line\nbreak"}
    parsed = parse_matchers(silence_matchers(labels))
    assert {m.name: m.value for m in parsed} == labels
