"""Pydantic validation errors in our words, at the key they are about (used by the loader).

- :func:`normalise_loc` — drop the tags pydantic adds to an error's ``loc`` for unions, giving the
  data path the loader maps to ``file:line:col``;
- :func:`humanise` — one error as the line printed after the key path, e.g.
  ``expected a duration such as 30s, got "-5"`` or ``must be at least 1, got "0"``;
- :func:`show` — a value as such messages quote it (never a secret's value).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import SecretStr

from monitor.config.validation import Loc

__all__ = ["MISSING", "humanise", "normalise_loc", "show"]

#: The value at a path that does not exist in the data.
MISSING = object()


def normalise_loc(loc: Loc, data: Any) -> tuple[Loc, Any]:
    """Drop the tags pydantic inserts into ``loc`` for unions; return the data path and its value.

    A discriminated union adds the tag (``("probes", 2, "api", "interval")``); a plain union adds
    the member's name (``"int"``, ``"ReceiverConfig"``). A string part that is not a key of the
    mapping at hand, and is not the last part, or that follows a list or scalar, is such a tag.
    """
    cur: Any = data
    out: list[int | str] = []
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        if part == "[key]":
            continue
        if isinstance(cur, dict):
            if part in cur:
                out.append(part)
                cur = cur[part]
                continue
            if not last and isinstance(part, str):
                continue
            out.append(part)
            cur = MISSING
        elif isinstance(cur, list):
            if isinstance(part, int) and 0 <= part < len(cur):
                out.append(part)
                cur = cur[part]
            elif isinstance(part, str):
                continue
            else:
                out.append(part)
                cur = MISSING
        elif cur is MISSING:
            out.append(part)
        elif isinstance(part, str):
            continue  # a scalar has no keys: a union member tag
        else:
            out.append(part)
            cur = MISSING
    return tuple(out), cur


def show(value: Any) -> str:
    """Return ``value`` as a message quotes it: ``"15 s"``, ``a mapping``, ``nothing``, ``a secret``."""
    if value is MISSING or value is None:
        return "nothing"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return '"true"' if value else '"false"'
    if isinstance(value, SecretStr):
        return "a secret"
    return f'"{value}"'


_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer", "int_parsing": "an integer", "int_from_float": "an integer",
    "float_type": "a number", "float_parsing": "a number",
    "bool_type": "true or false", "bool_parsing": "true or false",
    "dict_type": "a mapping", "model_type": "a mapping", "model_attributes_type": "a mapping",
    "list_type": "a list", "tuple_type": "a list", "set_type": "a list",
}
_BOUNDS = {"greater_than": ("gt", "greater than"), "greater_than_equal": ("ge", "at least"),
           "less_than": ("lt", "less than"), "less_than_equal": ("le", "at most")}


def humanise(err: Mapping[str, Any], raw: Any) -> str:
    """Turn one pydantic error into our wording (see the module docstring)."""
    kind = err["type"]
    ctx = err.get("ctx") or {}
    msg = str(err.get("msg", ""))
    if kind == "missing":
        return "field required"
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, got {show(raw)}"
    if kind in ("value_error", "assertion_error"):
        if "error" in ctx:
            return str(ctx["error"])
        return re.sub(r"^(Value error|Assertion failed), ", "", msg)
    if kind == "literal_error":
        return f"expected {ctx.get('expected', 'one of the allowed values')}, got {show(raw)}"
    if kind in _BOUNDS:
        key, words = _BOUNDS[kind]
        return f"must be {words} {ctx.get(key)}, got {show(raw)}"
    if kind == "string_pattern_mismatch":
        return f"expected text matching {ctx.get('pattern')}, got {show(raw)}"
    if kind == "enum":
        return f"expected {ctx.get('expected', 'one of the allowed values')}, got {show(raw)}"
    if kind in ("string_too_short", "too_short") and ctx.get("min_length") == 1:
        return "must not be empty"
    if kind == "union_tag_invalid":
        return (f"unknown {ctx.get('discriminator', 'kind').strip(chr(39))} \"{ctx.get('tag')}\" "
                f"(expected one of {ctx.get('expected_tags')})")
    if kind == "union_tag_not_found":
        return f"field required: {ctx.get('discriminator', 'kind').strip(chr(39))}"
    # Our own (located_error) and anything else: pydantic's text, lower-cased to match ours.
    if msg[:1].isupper() and not msg[1:2].isupper():
        return msg[:1].lower() + msg[1:]
    return msg
