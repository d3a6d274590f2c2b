"""The shared retry helper: status classes, Retry-After, backoff with full jitter, redaction."""

from __future__ import annotations

import pytest

from monitor.errors import NotifyError
from monitor.notify.retry import Backoff, check_status, parse_retry_after, redact, trim, url_secrets


@pytest.mark.parametrize("status, retryable", [(400, False), (401, False), (403, False), (404, False),
                                               (422, False), (429, True), (500, True), (502, True), (503, True)])
def test_status_classes(status, retryable):
    with pytest.raises(NotifyError) as info:
        check_status(status, b"x" * 1000, {"retry-after": "12"}, what="t")
    assert info.value.retryable is retryable
    assert info.value.retry_after == (12.0 if retryable else None)
    assert len(str(info.value)) < 320 and "(1000 chars)" in str(info.value)


@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_2xx_is_done(status):
    check_status(status, b"", {}, what="t")


def test_retry_after_forms():
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == pytest.approx(10.0)
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412490.0) == 0.0  # in the past
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_backoff_equal_jitter_and_cap():
    b = Backoff(base=2, cap=60, rng=lambda: 0.999999)
    assert [round(b.ceiling(n)) for n in range(7)] == [2, 4, 8, 16, 32, 60, 60]
    assert Backoff(base=2, cap=60, rng=lambda: 0.0).delay(5) == 30.0  # half the ceiling at least
    assert b.delay(3) == pytest.approx(16, rel=1e-3)
    assert b.delay(3, retry_after=120) == 120  # the server's word wins, even past the cap
    assert Backoff().ceiling(10_000) == 20  # a recovered vendor is retried within 30 s


def test_redact_shows_a_prefix_at_most():
    text = redact("token xoxb-1234567890abcdef failed; short pw1 too", ["xoxb-1234567890abcdef", "pw1", None, ""])
    assert text == "token xoxb... failed; short *** too"


def test_url_secrets_cover_echoed_parts():
    parts = url_secrets("https://user:pa55word@hooks.example/services/T000/B000/XXXXXXXXXXXXXXXX"
                        "?token=abcdefabcdefabcdef")
    text = redact("POST /services/T000/B000/XXXXXXXXXXXXXXXX?token=abcdefabcdefabcdef; "
                  "token=abcdefabcdefabcdef pa55word", parts)
    assert "XXXXXXXXXXXXXXXX" not in text and "abcdefabcdefabcdef" not in text and "pa55word" not in text


def test_trim():
    assert trim("a\n  b") == "a b" and trim("x" * 300).endswith("... (300 chars)")
