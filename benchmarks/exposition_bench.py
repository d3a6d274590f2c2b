"""Benchmark: the strict exposition parser alone (:class:`monitor.scrape.exposition.ExpositionParser`),
as a scrape drives it: the whole body fed, then parsed 50 lines at a time. Prints samples per second
for three bodies of 200,000 lines: labelled series (two labels, one family with HELP/TYPE), plain
``name value`` lines (100 names), and the hostile-target format of ``tests/support/hostile_servers.py``.

Run it on another checkout to compare (the parser before this one kept bad lines; same interface)::

    .venv/bin/python benchmarks/exposition_bench.py
    git archive <commit> | tar -x -C /tmp/before
    PYTHONPATH=/tmp/before .venv/bin/python benchmarks/exposition_bench.py
"""

from __future__ import annotations

import time

from monitor.scrape.exposition import ExpositionParser

N = 200_000


def bodies() -> dict[str, str]:
    """Return the three bodies by name."""
    labelled = "# HELP s h\n# TYPE s gauge\n" + "".join(f's{{a="v{i}",b="x{i % 7}"}} {i}.5\n' for i in range(N))
    plain = "".join(f"plain_{i % 100} {i}\n" for i in range(N))
    hostile = ("# HELP hostile_series A target.\n# TYPE hostile_series gauge\n"
               + "".join(f'hostile_series{{id="{i}",l0="v0"}} {i}\n' for i in range(N)))
    return {"labelled": labelled, "plain": plain, "hostile": hostile}


def main() -> None:
    """Parse each body three times; print the best rate."""
    for name, body in bodies().items():
        best = float("inf")
        for _ in range(3):
            parser = ExpositionParser()
            parser.feed(body.encode(), final=True)
            t0 = time.perf_counter()
            n = 0
            while parser.pending:
                for _ in parser.parse(50):
                    n += 1
            best = min(best, time.perf_counter() - t0)
        print(f"{name:9s} {n} samples in {best:.2f} s = {n / best / 1000:.0f}k samples/s")


if __name__ == "__main__":
    main()
