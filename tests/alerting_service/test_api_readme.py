"""The README's endpoint table is the access table: every endpoint with its scope and body limit."""

from __future__ import annotations

from pathlib import Path

from monitor.api.access import readme_table

README = Path(__file__).parents[2] / "README.md"


def test_the_readme_lists_every_endpoint_with_its_scope_and_limit():
    text = README.read_text()
    start = text.index("<!-- endpoints:")
    start = text.index("\n", start) + 1
    end = text.index("<!-- /endpoints -->")
    assert text[start:end].strip() == readme_table(), (
        "README.md's endpoint table differs from monitor/api/access.py; regenerate it with\n"
        "python -c 'from monitor.api.access import readme_table; print(readme_table())'")
