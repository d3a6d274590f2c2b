"""Pictures and templates of the console: server-rendered SVG sparklines and graphs, Jinja2 pages.

Every SVG is built here from numbers (no user text reaches it unescaped: labels go through
:func:`markupsafe.escape`); pages are Jinja2 templates under ``templates/`` with autoescaping on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup, escape

#: Line colours of the query graph's series (colour-blind-safe Okabe-Ito palette).
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")


def _num(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".")


def sparkline(values: Sequence[float | None], bad: Sequence[bool] = (), width: int = 120, height: int = 28,
              label: str = "") -> Markup:
    """Return an inline SVG line of ``values`` (oldest first); ``bad[i]`` marks a red dot (a failure).

    :param values: e.g. probe latencies in seconds; ``None`` is a gap.
    :param label: the picture's accessible name (``aria-label``).
    """
    pts = [(i, v) for i, v in enumerate(values) if v is not None and math.isfinite(v)]
    head = (f'<svg class="spark" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
            f'aria-label="{escape(label)}">')
    if not pts:
        return Markup(head + f'<line x1="0" y1="{height - 2}" x2="{width}" y2="{height - 2}" class="none"/></svg>')
    top = max(v for _, v in pts) or 1.0
    n = max(len(values) - 1, 1)

    def xy(i: int, v: float) -> tuple[float, float]:
        return 2 + i * (width - 4) / n, height - 2 - (v / top) * (height - 4)

    line = " ".join(f"{_num(x)},{_num(y)}" for x, y in (xy(i, v) for i, v in pts))
    dots = "".join(f'<circle cx="{_num(xy(i, v)[0])}" cy="{_num(xy(i, v)[1])}" r="2" class="bad"/>'
                   for i, v in pts if i < len(bad) and bad[i])
    return Markup(f'{head}<polyline points="{line}" class="line"/>{dots}</svg>')


def bar(ratio: float | None, width: int = 160, height: int = 12, label: str = "") -> Markup:
    """Return an SVG bar filled to ``ratio`` (0..1; clipped), green over 50%, amber over 20%, else red."""
    r = 0.0 if ratio is None or not math.isfinite(ratio) else min(max(ratio, 0.0), 1.0)
    cls = "ok" if r > 0.5 else "warn" if r > 0.2 else "bad"
    return Markup(f'<svg class="bar" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
                  f'aria-label="{escape(label)}"><rect width="{width}" height="{height}" class="track"/>'
                  f'<rect width="{_num(r * width)}" height="{height}" class="{cls}"/></svg>')


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    return [first + k * step for k in range(int((hi - first) / step) + 1)]


def _fmt_value(v: float) -> str:
    a = abs(v)
    if a >= 1e6 or (0 < a < 1e-3):
        return f"{v:.2g}"
    return f"{v:.3g}"


def line_chart(series: Sequence[tuple[str, Sequence[tuple[int, float]]]], start_ms: int, end_ms: int,
               width: int = 800, height: int = 280) -> Markup:
    """Return an SVG graph of ``series`` (``[(label, [(t_ms, value), ...])]``) from ``start_ms`` to ``end_ms``,
    with value and UTC time axes; series past the palette reuse its colours, non-finite points are gaps."""
    left, right, top, bottom = 56, 10, 10, 24
    pw, ph = width - left - right, height - top - bottom
    vals = [v for _, pts in series for _, v in pts if math.isfinite(v)]
    lo, hi = (min(vals), max(vals)) if vals else (0.0, 1.0)
    if lo == hi:
        lo, hi = lo - 1, hi + 1
    span = max(end_ms - start_ms, 1)
    out = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="query graph">']
    for v in _ticks(lo, hi):
        y = top + ph - (v - lo) / (hi - lo) * ph
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{_num(y)}" y2="{_num(y)}" class="grid"/>'
                   f'<text x="{left - 4}" y="{_num(y + 4)}" class="ylab">{escape(_fmt_value(v))}</text>')
    for k in range(5):
        t = start_ms + span * k / 4
        x = left + pw * k / 4
        stamp = datetime.fromtimestamp(t / 1000, timezone.utc).strftime("%H:%M")
        anchor = "start" if k == 0 else "end" if k == 4 else "middle"
        out.append(f'<text x="{_num(x)}" y="{height - 6}" class="xlab" text-anchor="{anchor}">{stamp}</text>')
    for idx, (label, pts) in enumerate(series):
        colour = PALETTE[idx % len(PALETTE)]
        runs: list[list[str]] = [[]]
        for t, v in pts:
            if not math.isfinite(v):
                runs.append([])
                continue
            x = left + (t - start_ms) / span * pw
            y = top + ph - (v - lo) / (hi - lo) * ph
            runs[-1].append(f"{_num(x)},{_num(y)}")
        for run in runs:
            if len(run) == 1:
                cx, cy = run[0].split(",")
                out.append(f'<circle cx="{cx}" cy="{cy}" r="2" fill="{colour}"><title>{escape(label)}</title></circle>')
            elif run:
                out.append(f'<polyline points="{" ".join(run)}" stroke="{colour}" class="series">'
                           f'<title>{escape(label)}</title></polyline>')
    out.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" class="frame"/></svg>')
    return Markup("".join(out))


def number(value: Any) -> str:
    """Return a sample value as text with at most 4 significant digits (``0.4559``, ``456.4``, ``1.2e+06``);
    anything not a number as given."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(v) or v == 0:
        return str(v) if not math.isfinite(v) else "0"
    return f"{v:.4g}"


def detail(key: str, value: Any) -> str:
    """Return a timeline detail value for people: ``*_at`` / ``*_deadline`` Unix times as UTC times; a
    ``recipient`` that is neither an address nor a channel (a PagerDuty routing key, a webhook URL) as its
    first 6 characters only, as the logs show secrets."""
    if (key.endswith("_at") or key.endswith("deadline")) and isinstance(value, (int, float)):
        return when(value)
    text = str(value)
    if key == "recipient" and "@" not in text and not text.startswith(("#", "U", "C", "D")) and len(text) > 6:
        return text[:6] + "…"
    return text


def when(ts: Any) -> str:
    """Return a Unix-seconds time or an RFC 3339 string as ``YYYY-MM-DD HH:MM:SS UTC`` (``""`` for none)."""
    if ts in (None, ""):
        return ""
    if isinstance(ts, str):
        try:
            dt = datetime.fromisoformat(ts.replace("Z", "+00:00"))
        except ValueError:
            return ts
    else:
        dt = datetime.fromtimestamp(float(ts), timezone.utc)
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def ago(seconds: float) -> str:
    """Return a duration in seconds as ``3d 4h``, ``5m 2s`` or ``12s``."""
    s = int(max(seconds, 0))
    for unit, size, sub, subsize in (("d", 86400, "h", 3600), ("h", 3600, "m", 60), ("m", 60, "s", 1)):
        if s >= size:
            rest = (s % size) // subsize
            return f"{s // size}{unit}" + (f" {rest}{sub}" if rest else "")
    return f"{s}s"


def environment() -> Environment:
    """Return the console's Jinja2 environment (templates under ``templates/``, autoescaped)."""
    env = Environment(loader=PackageLoader("monitor.api.console", "templates"),
                      autoescape=select_autoescape(default=True, default_for_string=True), trim_blocks=True,
                      lstrip_blocks=True)
    env.filters.update(when=when, ago=ago, number=number)
    env.globals.update(detail=detail)
    env.globals.update(sparkline=sparkline, bar=bar)
    return env


__all__ = ["PALETTE", "ago", "bar", "detail", "environment", "line_chart", "number", "sparkline", "when"]
