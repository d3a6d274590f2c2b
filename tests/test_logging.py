"""JSON-lines logging: line shape, bound context, exceptions, and secret redaction."""

from __future__ import annotations

import io
import json
import logging
import re

import pytest

from monitor.config.loader import load_config_text
from monitor.config.secrets import secret_values
from monitor.logging import add_secrets, bind, setup_logging

SECRET = "ck_live_1234567890abcdef"


@pytest.fixture
def stream():
    """Install JSON logging on a fresh stream; remove the handler afterwards."""
    out = io.StringIO()
    root = logging.getLogger()
    level = root.level
    handler = setup_logging("DEBUG", stream=out, secrets=[SECRET])
    yield out
    root.removeHandler(handler)
    root.setLevel(level)


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_line_shape(stream):
    logging.getLogger("monitor.test").info("probe %s failed", "api", extra={"probe": "api", "attempt": 2})
    (line,) = lines(stream)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["ts"])
    assert line == {"ts": line["ts"], "level": "INFO", "logger": "monitor.test",
                    "message": "probe api failed", "probe": "api", "attempt": 2}


def test_level_filters(stream):
    setup_logging("WARNING", stream=stream)
    log = logging.getLogger("monitor.test")
    log.info("hidden")
    log.warning("shown")
    assert [line["message"] for line in lines(stream)] == ["shown"]


def test_setup_twice_installs_one_handler(stream):
    setup_logging("DEBUG", stream=stream)
    logging.getLogger("monitor.test").info("once")
    assert len(lines(stream)) == 1


def test_bound_context_merges_with_extra(stream):
    log = bind(logging.getLogger("monitor.notify"), receiver="ops", integration="slack[0]")
    log.info("sent", extra={"alerts": 3})
    log.bind(group="api").warning("retry", extra={"integration": "slack[1]"})
    first, second = lines(stream)
    assert first["receiver"] == "ops" and first["integration"] == "slack[0]" and first["alerts"] == 3
    assert second["group"] == "api" and second["integration"] == "slack[1]", "call extra wins"
    assert bind(log, probe="x").extra == {"receiver": "ops", "integration": "slack[0]", "probe": "x"}


def test_exception_is_one_string_field(stream):
    try:
        raise ValueError("bad thing")
    except ValueError:
        logging.getLogger("monitor.test").exception("crashed")
    (line,) = lines(stream)
    assert line["level"] == "ERROR"
    assert line["exc"].startswith("Traceback") and "ValueError: bad thing" in line["exc"]


def test_non_json_context_is_stringified(stream):
    class Thing:
        def __str__(self) -> str:
            return "thing!"

    logging.getLogger("monitor.test").info("x", extra={"thing": Thing(), "labels": {"a": 1}})
    (line,) = lines(stream)
    assert line["thing"] == "thing!" and line["labels"] == {"a": 1}


def test_secret_never_appears_anywhere_in_a_line(stream):
    log = bind(logging.getLogger("monitor.test"), token=SECRET)
    log.warning("key %s rejected", SECRET, extra={"headers": {"Authorization": f"Bearer {SECRET}"},
                                                   "tried": [SECRET]})
    try:
        raise RuntimeError(f"401 for {SECRET}")
    except RuntimeError:
        log.exception(f"call failed with {SECRET}")
    text = stream.getvalue()
    assert SECRET not in text
    first, second = lines(stream)
    assert first["message"] == "key ck_live_... rejected"
    assert first["token"] == "ck_live_..."
    assert first["headers"] == {"Authorization": "Bearer ck_live_..."}
    assert first["tried"] == ["ck_live_..."]
    assert "401 for ck_live_..." in second["exc"]


def test_secret_with_json_special_characters(stream):
    odd = 'p@ss"wo\\rd-0123456789'
    add_secrets([odd])
    logging.getLogger("monitor.test").info("pw", extra={"raw": odd})
    text = stream.getvalue()
    assert odd not in text and json.dumps(odd)[1:-1] not in text
    assert lines(stream)[0]["raw"] == 'p@ss"wo\\...'


def test_secrets_added_at_runtime(stream):
    later = "sk-later-abcdefghijklmnop"
    log = logging.getLogger("monitor.test")
    add_secrets([later])
    log.info("using %s", later)
    assert lines(stream)[0]["message"] == "using sk-later..."
    assert later not in stream.getvalue()


def test_short_secrets_are_masked_whole(stream):
    add_secrets(["hunter22"])
    logging.getLogger("monitor.test").info("password hunter22")
    assert lines(stream)[0]["message"] == "password ***"


def test_config_secrets_never_reach_the_log(stream, tmp_path):
    (tmp_path / "key").write_text("file-key-abcdefghijklmnop\n")
    text = ("api:\n  tokens:\n    - name: a\n      token: ${TOKEN}\n    - name: b\n      token_file: key\n")
    config = load_config_text(text, base_dir=tmp_path, env={"TOKEN": "env-token-abcdefghijkl"})
    setup_logging("DEBUG", stream=stream, secrets=secret_values(config))
    log = logging.getLogger("monitor.test")
    for token in config.api.tokens:
        log.info("token %s loaded", token.token.get_secret_value(), extra={"config": config.model_dump()})
    text = stream.getvalue()
    assert "env-token-abcdefghijkl" not in text and "file-key-abcdefghijklmnop" not in text
    assert [line["message"] for line in lines(stream)] == ["token env-toke... loaded", "token file-key... loaded"]


def test_vendor_sdks_that_log_every_call_speak_up_at_warning_only():
    """The Pinecone SDK logged "Describing index stats" at INFO on every probe run (issue 16)."""
    import io
    import logging

    from monitor.logging import setup_logging

    root = logging.getLogger()
    before = list(root.handlers)
    handler = setup_logging("INFO", stream=io.StringIO())
    try:
        assert logging.getLogger("pinecone").getEffectiveLevel() == logging.WARNING
        assert logging.getLogger("openai").getEffectiveLevel() == logging.WARNING
    finally:
        root.removeHandler(handler)
        for h in before:
            if h not in root.handlers:
                root.addHandler(h)
