r"""PromQL's regular expressions: Go (RE2) syntax, fully anchored, matched in linear time.

Label matchers (``=~``, ``!~``) compile through :class:`model.matchers.Matcher`; ``label_replace``
compiles here. Both use :func:`model.regex.anchored` — ``^(?s:<pattern>)$`` on ``google-re2``,
as Prometheus 3 does with Go's ``regexp`` (``model/labels/regexp.go``, ``promql/functions.go``
``funcLabelReplace``) — so Go syntax (``\z``, ``[[:alpha:]]``, ``a(?i)b``, ``(?U)``) needs no
translation, and no pattern can backtrack catastrophically: ``(a+)+$`` against a 40-character
``"aaaa…!"`` takes microseconds, where Python's ``re`` held the event loop for minutes.
"""

from __future__ import annotations

from model.regex import Regex, RegexError, RegexMatch, anchored, expand
from monitor.errors import QueryError

__all__ = ["Regex", "RegexMatch", "compile_anchored", "expand"]


def compile_anchored(pattern: str, fn: str) -> Regex:
    """Compile a function's regex argument (``^(?s:pattern)$``).

    :param fn: the function, for the message (``label_replace``).
    :raises QueryError: ``invalid regular expression in label_replace(): <pattern>``
        (Prometheus's message).
    """
    try:
        return anchored(pattern)
    except RegexError:
        raise QueryError(f"invalid regular expression in {fn}(): {pattern}") from None
