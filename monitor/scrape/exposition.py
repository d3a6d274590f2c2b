"""Parse the Prometheus text exposition format (and OpenMetrics) into samples, strictly, as a scrape does.

:class:`ExpositionParser` takes the body incrementally (:meth:`~ExpositionParser.feed` the bytes as
they arrive, :meth:`~ExpositionParser.parse` a slice of lines), so the scraper
(:mod:`monitor.scrape.scraper`) can give the event loop back between slices;
:func:`parse_exposition` is the same parser over a whole body, without limits.

As in Prometheus, the first line that breaks the format fails the whole parse:
:class:`ExpositionError` (``"line N: reason"``), and the scrape with it (``up`` 0, nothing stored).
Line rules are :mod:`monitor.scrape.lines`; across lines, per metric family, the checks of
prometheus/common ``expfmt`` (which Prometheus's own scrape parser does not make; the issue asks
for them): a second ``# TYPE`` for a name, or a ``# TYPE`` after samples of that family; a second
``# HELP`` (or ``# UNIT``). OpenMetrics also must end with ``# EOF`` with nothing after it, and
allows no other comments.

Each family's ``TYPE``, ``HELP`` and ``UNIT`` are kept (:meth:`ExpositionParser.metadata`, served by
``/api/v1/metadata``). Families are tracked up to :data:`MAX_FAMILIES` per exposition; past that,
new names are neither checked across lines nor kept (every line is still checked).

Label values are normalised as Prometheus 3 does on ingest (:func:`normalize_float_labels`,
:func:`format_float_label`).
"""

from __future__ import annotations

import codecs
import math
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

from monitor.scrape.lines import LineError, parse_meta_line, parse_sample_line

__all__ = ["ExposedSample", "ExpositionError", "ExpositionParser", "FamilyMetadata", "MAX_FAMILIES",
           "format_float_label", "is_openmetrics", "normalize_float_labels", "parse_exposition"]

#: ``(name, labels, value, timestamp_ms or None)`` as exposed (names kept exactly).
ExposedSample = tuple[str, dict[str, str], float, "int | None"]
#: Metric families tracked per exposition (metadata and the across-line checks).
MAX_FAMILIES = 100_000
#: Sample-name suffixes of a family of each type (``name`` itself always belongs).
_SUFFIXES: dict[str, tuple[str, ...]] = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
    "summary": ("_sum", "_count", "_created"),
    "info": ("_info",),
}


class ExpositionError(ValueError):
    r"""An exposition breaks the format; ``str(e)`` is ``"line N: reason"``.

    :ivar line: the line's number (1-based; for a missing ``# EOF``, the line after the last).
    :ivar reason: what is wrong, e.g. ``invalid escape sequence '\t' in value of label "a"``.
    """

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.reason = reason


@dataclass(slots=True)
class FamilyMetadata:
    """What an exposition says of one metric family (the name of its ``# TYPE``/``# HELP`` line).

    :ivar type: ``counter``, ``gauge``, ``histogram``, ``summary``, ... or ``None`` (no ``# TYPE``).
    :ivar help: the unescaped ``# HELP`` text, or ``None``.
    :ivar unit: the ``# UNIT`` (OpenMetrics), or ``None``.
    :ivar sampled: samples of the family were seen.
    """

    type: str | None = None
    help: str | None = None
    unit: str | None = None
    sampled: bool = False

    def api(self) -> dict[str, str]:
        """Return ``{"type", "help", "unit"}`` as Prometheus's metadata API (``untyped`` is ``unknown``)."""
        kind = self.type if self.type not in (None, "untyped") else "unknown"
        return {"type": kind or "unknown", "help": self.help or "", "unit": self.unit or ""}


def is_openmetrics(content_type: str | None) -> bool:
    """Whether a response's ``Content-Type`` is OpenMetrics (``application/openmetrics-text``)."""
    return bool(content_type) and content_type.lower().startswith(  # type: ignore[union-attr]
        "application/openmetrics-text")


class ExpositionParser:
    r"""Parse an exposition incrementally: :meth:`feed` bytes as they arrive, :meth:`parse` a slice.

    Lines end at ``\n`` (a ``\r`` before it is dropped). Only the lines of the chunks fed and not
    yet parsed, one unfinished line, and the families' metadata (at most :data:`MAX_FAMILIES`)
    are held.

    :param openmetrics: the body is OpenMetrics: its types, ``# UNIT``, ``# EOF``, exemplars (checked
        for their opening ``{``, then dropped) and timestamps in seconds.
    :param encoding: the body's charset (UTF-8 when unknown); undecodable bytes fail the line they
        are in (``invalid UTF-8``).

    Usage::

        parser = ExpositionParser()
        async for chunk in body:
            parser.feed(chunk)
            while parser.pending:
                for name, labels, value, ts in parser.parse(500):   # raises ExpositionError
                    ...
        parser.feed(b"", final=True)   # the last line may lack its newline
        ...                            # parse the rest: an OpenMetrics body without # EOF fails there
        parser.metadata()              # {family: FamilyMetadata} of the families with TYPE/HELP/UNIT
    """

    def __init__(self, *, openmetrics: bool = False, encoding: str = "utf-8") -> None:
        try:
            decoder = codecs.getincrementaldecoder(encoding)
        except LookupError:
            decoder = codecs.getincrementaldecoder("utf-8")
        self._decoder = decoder(errors="surrogateescape")
        self.openmetrics = openmetrics
        self._tail: list[str] = []  # pieces of the unfinished last line
        self._lines: deque[str] = deque()
        self._final = False
        self._eof_line = 0  # OpenMetrics: the line of ``# EOF``
        self._families: dict[str, FamilyMetadata] = {}
        self._current: tuple[str, FamilyMetadata] | None = None  # the family of the last metadata line
        #: Lines taken so far (the number of the last line parsed).
        self.line_no = 0
        #: The error that failed the parse, once it has.
        self.error: ExpositionError | None = None

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
        if final:
            self._final = True
            if self._tail:
                self._lines.append("".join(self._tail))
                self._tail = []

    def metadata(self) -> dict[str, FamilyMetadata]:
        """Return the families that had a ``# TYPE``, ``# HELP`` or ``# UNIT`` line, by that line's name."""
        return {name: f for name, f in self._families.items()
                if f.type is not None or f.help is not None or f.unit is not None}

    def parse(self, max_lines: int) -> Iterator[ExposedSample]:
        """Parse up to ``max_lines`` pending lines, yielding their samples in order.

        Once the body is complete (``feed(..., final=True)``) and every line parsed, the end of the
        document is checked too (OpenMetrics: ``# EOF``).

        :raises ExpositionError: at the first line that breaks the format (everything before it
            has been yielded); again at every later call.
        """
        if self.error is not None:
            raise self.error
        lines, om = self._lines, self.openmetrics
        try:
            for _ in range(min(max_lines, len(lines))):
                line = lines.popleft()
                self.line_no += 1
                if line.endswith("\r"):
                    line = line[:-1]
                if self._eof_line:
                    if line:
                        raise LineError("unexpected data after # EOF")
                    continue
                stripped = line.lstrip(" \t")
                if not stripped:
                    continue
                if stripped[0] == "#":
                    meta = parse_meta_line(line, om)
                    if meta is not None:
                        self._meta(*meta)
                    continue
                sample = parse_sample_line(line, om)
                self._sampled(sample[0])
                yield sample
            if self._final and not lines and om and not self._eof_line:
                raise LineError("data does not end with # EOF")
        except LineError as e:
            at_end = str(e) == "data does not end with # EOF"
            self.error = ExpositionError(self.line_no + 1 if at_end else self.line_no, str(e))
            lines.clear()
            raise self.error from None

    def close(self) -> None:
        """Check the end of a complete body (fed with ``final=True`` and parsed): OpenMetrics must end
        with ``# EOF``.

        :raises ExpositionError: ``line N+1: data does not end with # EOF``, or an earlier error.
        """
        for _ in self.parse(0):
            pass

    def _family(self, name: str) -> FamilyMetadata | None:
        fam = self._families.get(name)
        if fam is None and len(self._families) < MAX_FAMILIES:
            fam = self._families[name] = FamilyMetadata()
        return fam

    def _meta(self, keyword: str, name: str, text: str) -> None:
        if keyword == "EOF":
            self._eof_line = self.line_no
            return
        fam = self._family(name)
        if fam is None:
            return
        if keyword == "TYPE":
            if fam.type is not None or fam.sampled:
                raise LineError(f'second TYPE line for metric name "{name}", or TYPE reported after samples')
            fam.type = text
        elif keyword == "HELP":
            if fam.help is not None:
                raise LineError(f'second HELP line for metric name "{name}"')
            fam.help = text
        else:
            if fam.unit is not None:
                raise LineError(f'second UNIT line for metric name "{name}"')
            fam.unit = text
        self._current = (name, fam)

    def _sampled(self, name: str) -> None:
        """Mark the family of a sample named ``name`` as having samples (``TYPE`` must come first)."""
        cur = self._current
        if cur is not None:
            fname, current = cur
            if name == fname or (name.startswith(fname)
                                 and name[len(fname):] in _SUFFIXES.get(current.type or "", ())):
                current.sampled = True
                return
        fam = self._families.get(name)
        if fam is None:
            for suffix in ("_total", "_bucket", "_sum", "_count", "_created", "_gsum", "_gcount", "_info"):
                if name.endswith(suffix):
                    base = self._families.get(name[: -len(suffix)])
                    if base is not None and suffix in _SUFFIXES.get(base.type or "", ()):
                        fam = base
                    break
        if fam is None:
            fam = self._family(name)
            if fam is None:
                return
        fam.sampled = True
        self._current = None


def parse_exposition(text: str, content_type: str | None = None) -> list[ExposedSample]:
    """Parse a whole exposition strictly: the same parser as a scrape (:class:`ExpositionParser`),
    in one go and without limits.

    :param text: the response body.
    :param content_type: the response's ``Content-Type``, or ``None`` for text format
        (``application/openmetrics-text`` selects OpenMetrics).
    :return: the samples as ``(name, labels, value, timestamp_ms|None)`` in exposition order.
    :raises ExpositionError: at the first line that breaks the format (``"line N: reason"``).
    """
    parser = ExpositionParser(openmetrics=is_openmetrics(content_type))
    parser.feed(text, final=True)
    samples = list(parser.parse(parser.pending))
    parser.close()
    return samples


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
