"""Regular expressions and matcher parsing finish in linear time on hostile input."""

from __future__ import annotations

import time

from model.matchers import Matcher, parse_matcher

BOUND_S = 5.0


def test_matcher_parsing_is_linear_in_whitespace():
    r"""The old ``\s*(.*?)\s*$`` tail took 1.2 s for 16,000 inner spaces (quadratic)."""
    text = "a=x" + " " * 60_000 + "y"
    t0 = time.perf_counter()
    assert parse_matcher(text) == Matcher("a", "=", "x" + " " * 60_000 + "y")
    assert time.perf_counter() - t0 < BOUND_S
    assert parse_matcher('  a =~ "b|c"  ') == Matcher("a", "=~", "b|c")
