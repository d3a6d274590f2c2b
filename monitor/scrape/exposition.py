"""Parse the Prometheus text exposition format (and OpenMetrics) into samples, as a scrape does.

:class:`ExpositionParser` takes the body incrementally (:meth:`~ExpositionParser.feed` the bytes as
they arrive, :meth:`~ExpositionParser.parse` a slice of lines), so the scraper
(:mod:`monitor.scrape.scraper`) can give the event loop back between slices;
:func:`parse_exposition` is the same parser over a whole body, without limits.

Unlike Prometheus, a malformed exposition line does not fail the parse: every good line is kept,
each bad one is counted (:attr:`ExpositionParser.malformed`) and described with its line number
(:attr:`ExpositionParser.errors`). OpenMetrics is read line by line like the text format
(exemplars dropped, timestamps in seconds); its document-level checks (``# EOF``, family order)
are not made.

Label values are normalised as Prometheus 3 does on ingest (:func:`normalize_float_labels`,
:func:`format_float_label`).
"""

from __future__ import annotations

import codecs
import math
from collections import deque
from collections.abc import Iterator
from decimal import Decimal

from prometheus_client.parser import text_fd_to_metric_families

__all__ = ["ExposedSample", "ExpositionParser", "format_float_label", "is_openmetrics", "normalize_float_labels",
           "parse_exposition"]

#: ``(name, labels, value, timestamp_ms or None)`` as exposed (names kept exactly).
ExposedSample = tuple[str, dict[str, str], float, "int | None"]
_MAX_LINE_IN_ERROR = 120
#: Malformed lines described in full per scrape (all are counted); the rest only counted.
_MAX_ERRORS_KEPT = 100


def _trim(line: str, limit: int = _MAX_LINE_IN_ERROR) -> str:
    line = line.strip()
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _to_ms(ts: object, scale: int = 1000) -> int | None:
    """Convert a parser timestamp (seconds, float or ``Timestamp``) to int milliseconds."""
    if ts is None:
        return None
    return int(round(float(ts) * scale))  # type: ignore[arg-type]


def is_openmetrics(content_type: str | None) -> bool:
    """Whether a response's ``Content-Type`` is OpenMetrics (``application/openmetrics-text``)."""
    return bool(content_type) and content_type.lower().startswith(  # type: ignore[union-attr]
        "application/openmetrics-text")


class ExpositionParser:
    r"""Parse an exposition incrementally: :meth:`feed` bytes as they arrive, :meth:`parse` a slice.

    Sample lines are parsed one at a time with ``prometheus_client.parser`` (its ``# HELP``/
    ``# TYPE`` handling is skipped so sample names stay exactly as exposed: it would rename a
    counter ``foo`` to ``foo_total``). Lines end at ``\n`` (a ``\r`` before it is dropped).
    Only the lines of the chunks fed and not yet parsed, and one unfinished line, are held.

    :param openmetrics: the body is OpenMetrics: exemplars are cut off and timestamps are read
        as seconds rather than milliseconds.
    :param encoding: the body's charset (UTF-8 when unknown); undecodable bytes are replaced.

    Usage::

        parser = ExpositionParser()
        async for chunk in body:
            parser.feed(chunk)
            while parser.pending:
                for name, labels, value, ts in parser.parse(500):
                    ...
        parser.feed(b"", final=True)   # the last line may lack its newline
        ...
    """

    def __init__(self, *, openmetrics: bool = False, encoding: str = "utf-8") -> None:
        try:
            decoder = codecs.getincrementaldecoder(encoding)
        except LookupError:
            decoder = codecs.getincrementaldecoder("utf-8")
        self._decoder = decoder(errors="replace")
        self.openmetrics = openmetrics
        self._ts_scale = 1_000_000 if openmetrics else 1000  # the text parser divides by 1000
        self._tail: list[str] = []  # pieces of the unfinished last line
        self._lines: deque[str] = deque()
        #: Lines taken so far (the number of the last line parsed).
        self.line_no = 0
        #: Malformed lines so far.
        self.malformed = 0
        #: ``"line N: <reason>: <trimmed line>"`` for the first malformed lines.
        self.errors: list[str] = []

    @property
    def pending(self) -> int:
        """Complete lines fed and not parsed yet."""
        return len(self._lines)

    def feed(self, data: bytes | str, final: bool = False) -> None:
        """Add the next part of the body; ``final`` marks its end (an unfinished line is complete)."""
        text = data if isinstance(data, str) else self._decoder.decode(data, final)
        parts = text.split("\n")
        if len(parts) > 1:
            first = "".join(self._tail) + parts[0] if self._tail else parts[0]
            self._tail = []
            self._lines.append(first)
            self._lines.extend(parts[1:-1])
        if parts[-1] and len(parts) > 1:
            self._tail = [parts[-1]]
        elif parts[-1]:
            self._tail.append(parts[-1])
        if final and self._tail:
            self._lines.append("".join(self._tail))
            self._tail = []

    def parse(self, max_lines: int) -> Iterator[ExposedSample]:
        """Parse up to ``max_lines`` pending lines, yielding their samples in order.

        A bad line is counted in :attr:`malformed` (and described in :attr:`errors`) and skipped.
        """
        lines = self._lines
        taken = 0
        current = ""

        def feed() -> Iterator[str]:
            nonlocal taken, current
            while taken < max_lines and lines:
                line = lines.popleft()
                taken += 1
                self.line_no += 1
                if line.endswith("\r"):
                    line = line[:-1]
                stripped = line.strip()
                if not stripped or stripped[0] == "#":
                    continue
                if self.openmetrics and " # {" in line:
                    line = line[: line.rfind(" # {")]
                current = line
                yield line

        while True:
            try:
                # Without comment lines every sample is yielded as soon as its line is parsed,
                # so on an exception everything before the bad line has been yielded.
                for fam in text_fd_to_metric_families(feed()):  # type: ignore[arg-type]
                    for s in fam.samples:
                        yield s.name, s.labels, float(s.value), _to_ms(s.timestamp, self._ts_scale)
                return
            except Exception as e:  # noqa: BLE001 - the parser raises ValueError and others
                self.malformed += 1
                if len(self.errors) < _MAX_ERRORS_KEPT:
                    reason = str(e).split(":", 1)[0] or type(e).__name__
                    self.errors.append(f"line {self.line_no}: {reason}: {_trim(current)}")


def parse_exposition(text: str, content_type: str | None = None
                     ) -> tuple[list[ExposedSample], list[str]]:
    """Parse a whole exposition, keeping every good sample line and reporting every bad one.

    The same parser as a scrape (:class:`ExpositionParser`), in one go and without limits.

    :param text: the response body.
    :param content_type: the response's ``Content-Type``, or ``None`` for text format
        (``application/openmetrics-text`` selects OpenMetrics).
    :return: ``(samples, errors)``: samples as ``(name, labels, value, timestamp_ms|None)``
        in exposition order; errors as ``"line N: <reason>: <trimmed line>"``, one per bad line
        (the first 100).
    """
    parser = ExpositionParser(openmetrics=is_openmetrics(content_type))
    parser.feed(text, final=True)
    samples = list(parser.parse(parser.pending))
    return samples, parser.errors


def normalize_float_labels(name: str, labels: dict[str, str]) -> None:
    """Rewrite ``le`` (of ``*_bucket`` series) and ``quantile`` values in float form, in place,
    as Prometheus 3 does on ingest (``normalizeFloatsInLabelValues``: ``le="1"`` is stored as
    ``le="1.0"``, ``quantile="0.50"`` as ``"0.5"``). Prometheus keys this on the family's TYPE,
    which the text parser here does not pass on, so the series name and label decide."""
    for key in ("le", "quantile"):
        v = labels.get(key)
        if v is None or (key == "le" and not name.endswith("_bucket")):
            continue
        try:
            f = float(v)
        except ValueError:
            continue
        labels[key] = format_float_label(f)


def format_float_label(f: float) -> str:
    """``formatOpenMetricsFloat``: Go's shortest ``%g`` (exponent form from 1e+06 and below
    1e-04), with ``.0`` added when neither ``.`` nor ``e`` is in it: ``1.0``, ``0.25``,
    ``123456.0``, ``1e+06``, ``1e-05``, ``+Inf``, ``NaN``."""
    if f != f:
        return "NaN"
    if f in (math.inf, -math.inf):
        return "+Inf" if f > 0 else "-Inf"
    if f == 0:
        return "0.0"
    sign, digit_tuple, exp = Decimal(repr(f)).as_tuple()
    assert isinstance(exp, int)  # a finite number
    digits = "".join(map(str, digit_tuple)).rstrip("0") or "0"
    exp += len(digit_tuple) - len(digits)
    point = len(digits) + exp  # digits before the decimal point
    x = point - 1
    if x < -4 or x >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        text = f"{mantissa}e{'-' if x < 0 else '+'}{abs(x):02d}"
    elif point <= 0:
        text = "0." + "0" * -point + digits
    elif point >= len(digits):
        text = digits + "0" * (point - len(digits))
    else:
        text = digits[:point] + "." + digits[point:]
    if "." not in text and "e" not in text:
        text += ".0"
    return ("-" if sign else "") + text
