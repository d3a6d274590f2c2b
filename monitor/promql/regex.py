r"""Go RE2 regular-expression syntax translated to Python's ``re``.

PromQL regular expressions (label matchers ``=~``/``!~``, ``label_replace``) are Go
``regexp`` (RE2) patterns, fully anchored by the caller. Most of them are valid Python patterns
with the same meaning; :func:`go_regex` rewrites the RE2 features Python's ``re`` lacks or reads
differently. Callers compile a pattern as written first and translate only when Python rejects
it (``nodes._matcher``, ``functions._compile_regex``).

Sources: Go ``regexp/syntax`` (flag groups scoped to the enclosing group, ``\z``, POSIX
classes ``[[:alpha:]]``, the ``U`` ungreedy flag) and Python ``re`` (global inline flags only
at the start of a pattern).
"""

from __future__ import annotations

import re

_POSIX = {"alnum": "0-9A-Za-z", "alpha": "A-Za-z", "ascii": "\\x00-\\x7F", "blank": "\\t ",
          "cntrl": "\\x00-\\x1F\\x7F", "digit": "0-9", "graph": "!-~", "lower": "a-z",
          "print": " -~", "punct": "!-/:-@[-`{-~", "space": "\\t\\n\\v\\f\\r ", "upper": "A-Z",
          "word": "0-9A-Za-z_", "xdigit": "0-9A-Fa-f"}


def go_regex(pattern: str) -> str:
    r"""Translate the RE2 (Go) regex features Python's ``re`` lacks: inline flags in the middle
    of a pattern (``a(?i)b`` -> ``a(?i:b)``, scoped to the enclosing group), ``\z`` and POSIX
    classes (``[[:alpha:]]``)."""
    out: list[str] = []
    pending: list[list[str]] = [[]]  # scoped-flag groups open, per group depth
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\" and i + 1 < n:
            out.append("\\Z" if pattern[i + 1] == "z" else pattern[i:i + 2])
            i += 2
        elif c == "[":
            j = i + 1
            if j < n and pattern[j] == "^":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            buf = [pattern[i:j]]
            while j < n and pattern[j] != "]":
                if pattern[j] == "\\" and j + 1 < n:
                    buf.append(pattern[j:j + 2])
                    j += 2
                elif pattern.startswith("[:", j) and ":]" in pattern[j:]:
                    end = pattern.index(":]", j)
                    name = pattern[j + 2:end]
                    buf.append(_POSIX.get(name, pattern[j:end + 2]))
                    j = end + 2
                else:
                    buf.append(pattern[j])
                    j += 1
            out.append("".join(buf) + ("]" if j < n else ""))
            i = j + 1
        elif c == "(":
            m = re.match(r"\(\?([imsU-]+)\)", pattern[i:])
            if m and (i > 0 or "-" in m.group(1) or "U" in m.group(1)):
                flags = m.group(1).replace("U", "")
                if flags and flags != "-":
                    out.append(f"(?{flags}:")
                    pending[-1].append(flags)
                i += m.end()
            else:
                out.append(c)
                pending.append([])
                i += 1
        elif c == ")":
            out.append(")" * len(pending.pop()) if len(pending) > 1 else "")
            out.append(")")
            i += 1
        elif c == "|" and pending[-1]:
            # Go scopes a flag to the rest of its alternative: close, then reopen after "|".
            out.append(")" * len(pending[-1]) + "|" + "".join(f"(?{f}:" for f in pending[-1]))
            i += 1
        else:
            out.append(c)
            i += 1
    out.append(")" * len(pending[0]))
    return "".join(out)
