"""One invalid config per error, each with its exact expected message (STYLE 13c).

Each ``fixtures/bad_*.yaml`` ends with ``# error: <message>`` lines: every error the loader must
report, exactly and in order. The fixtures are loaded by their bare file name from the fixtures
directory (so messages start with it) with the environment in ``conftest.ENV``.
"""

from __future__ import annotations

import pytest

from monitor.config.loader import check_config_file, load_config
from monitor.errors import ConfigErrors
from tests.config.config_helpers import ENV, FIXTURES


BAD = sorted(FIXTURES.glob("bad_*.yaml"))


def _expected(path) -> list[str]:
    return [line[len("# error: "):] for line in path.read_text().splitlines() if line.startswith("# error: ")]


def test_there_are_fixtures():
    assert len(BAD) >= 30
    assert all(_expected(p) for p in BAD), "every fixture lists its expected errors"


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_bad_fixture_reports_exactly_its_errors(path, monkeypatch):
    monkeypatch.chdir(FIXTURES)
    with pytest.raises(ConfigErrors) as info:
        load_config(path.name, env=ENV)
    assert [str(e) for e in info.value.errors] == _expected(path)
    assert str(info.value) == "\n".join(_expected(path))


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_check_config_file_returns_the_same_lines(path, monkeypatch):
    monkeypatch.chdir(FIXTURES)
    assert check_config_file(path.name, env=ENV) == _expected(path)


def test_errors_carry_file_line_column_and_path(monkeypatch):
    monkeypatch.chdir(FIXTURES)
    with pytest.raises(ConfigErrors) as info:
        load_config("bad_negative_interval.yaml", env=ENV)
    (err,) = info.value.errors
    assert (err.file, err.line, err.column, err.path) == ("bad_negative_interval.yaml", 8, 5, "probes[1].interval")
    assert err.message == 'expected a duration such as 30s, got "-5"'


def test_file_is_named_as_the_caller_gave_it():
    path = FIXTURES / "bad_type_int.yaml"
    assert check_config_file(path, env=ENV) == [f"{path}:2:3: server.port: expected an integer, got \"ninety\""]
