"""Signed, expiring acknowledge links."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from monitor.notify.links import InvalidLinkError, make_link, make_token, verify

KEY = b"link-signing-key-0123456789"


def token_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["token"][0]


def test_roundtrip():
    url = make_link("https://mon.example/api/v1/links", "3f2a9c0e11d4b7a1", "ack", 2_000_000_000, KEY)
    assert url.startswith("https://mon.example/api/v1/links?token=3f2a9c0e11d4b7a1.ack.2000000000.")
    assert verify(token_of(url), now=1_999_999_999, key=KEY) == ("3f2a9c0e11d4b7a1", "ack")
    assert "&token=" in make_link("https://mon.example/l?x=1", "fp", "resolve", 1, KEY)


@pytest.mark.parametrize("mutate, message", [
    (lambda t: t.replace(".ack.", ".resolve."), "bad link signature"),        # action swapped
    (lambda t: "0000000000000000" + t[16:], "bad link signature"),            # other alert
    (lambda t: t.replace("2000000000", "2100000000"), "bad link signature"),  # extended expiry
    (lambda t: t[:-1] + ("0" if t[-1] != "0" else "1"), "bad link signature"),
    (lambda t: t.split(".", 1)[1], "malformed"),
])
def test_forged_tokens_rejected(mutate, message):
    token = make_token("3f2a9c0e11d4b7a1", "ack", 2_000_000_000, KEY)
    with pytest.raises(InvalidLinkError, match=message):
        verify(mutate(token), now=1_900_000_000, key=KEY)


def test_expired_and_wrong_key():
    token = make_token("fp", "ack", 1000, KEY)
    with pytest.raises(InvalidLinkError, match="expired"):
        verify(token, now=1001, key=KEY)
    with pytest.raises(InvalidLinkError, match="bad link signature"):
        verify(token, now=999, key=b"other")
    with pytest.raises(ValueError):
        make_token("fp", "delete", 1000, KEY)
