"""Scraping real HTTP servers on 127.0.0.1 into a real SampleStore."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from monitor.scrape.exposition import ExpositionError, parse_exposition
from monitor.scrape.scraper import Scraper, instance_of
from model.labels import Labels
from model.matchers import Matcher
from monitor.tsdb import SampleStore, is_stale

GOOD = """\
# HELP http_requests_total Requests.
# TYPE http_requests_total counter
http_requests_total{method="GET",endpoint="/health",status="200"} 10
http_requests_total{method="POST",endpoint="/codebooks",status="500"} 2
# HELP jobs_done Done jobs (a counter exposed without _total).
# TYPE jobs_done counter
jobs_done 7
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le="0.1"} 3
http_request_duration_seconds_bucket{le="+Inf"} 4
http_request_duration_seconds_sum 1.5
http_request_duration_seconds_count 4
temperature NaN
"""


@dataclass
class Reply:
    status: int = 200
    body: str = ""
    content_type: str = "text/plain; version=0.0.4; charset=utf-8"
    hang: bool = False


class Target:
    """A real HTTP server whose replies the test sets per path."""

    def __init__(self) -> None:
        self.replies: dict[str, Reply] = {}
        self.release = threading.Event()
        self.requests: list[dict[str, str]] = []
        target = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                target.requests.append(dict(self.headers))
                reply = target.replies.get(self.path, Reply(404, "not found"))
                if reply.hang:
                    target.release.wait(10)
                    return
                body = reply.body.encode()
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def url(self, path: str = "/metrics") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


class Clock:
    """A manual clock in seconds."""

    def __init__(self, t: float = 1_700_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def target() -> Iterator[Target]:
    t = Target()
    yield t
    t.close()


@pytest.fixture
async def client():
    async with httpx.AsyncClient() as c:
        yield c


@pytest.fixture
def store() -> SampleStore:
    return SampleStore()


def make(target: Target, store: SampleStore, client, clock=None, **kw) -> Scraper:
    kw.setdefault("timeout", 2.0)
    return Scraper("backend", target.url(), store, client=client, clock=clock or Clock(), **kw)


def values(store: SampleStore, name: str, **labels: str) -> list[tuple[int, float]]:
    ms = [Matcher("__name__", "=", name)] + [Matcher(k, "=", v) for k, v in labels.items()]
    out = []
    for sl in store.select(ms, 0, 2**62):
        out.extend(zip(sl.timestamps, sl.values))
    return out


def one(store: SampleStore, name: str, **labels: str) -> float:
    [(_, v)] = values(store, name, **labels)
    return v


# ---------------------------------------------------------------- good scrapes


async def test_good_scrape_stores_exact_names_with_target_labels(target, store, client):
    target.replies["/metrics"] = Reply(body=GOOD)
    clock = Clock(1_700_000_000.25)
    result = await make(target, store, client, clock).scrape_once()
    assert result.up and result.error is None
    assert result.samples_scraped == 8 and result.reason is None
    assert result.series_added == 8
    assert result.timestamp_ms == 1_700_000_000_250
    instance = f"127.0.0.1:{target.port}"
    names = store.label_values("__name__")
    assert "http_requests_total" in names
    assert "jobs_done" in names and "jobs_done_total" not in names  # kept exactly as exposed
    assert {"http_request_duration_seconds_bucket", "http_request_duration_seconds_sum",
            "http_request_duration_seconds_count"} <= set(names)
    lbl = Labels.of({"__name__": "http_requests_total", "method": "GET", "endpoint": "/health",
                     "status": "200", "job": "backend", "instance": instance})
    [sl] = store.select([Matcher("method", "=", "GET")], 0, 2**62)
    assert sl.labels == lbl
    assert list(sl.timestamps) == [1_700_000_000_250] and list(sl.values) == [10.0]
    assert one(store, "http_request_duration_seconds_bucket", le="+Inf") == 4.0
    assert one(store, "up", job="backend", instance=instance) == 1.0
    assert one(store, "scrape_samples_scraped") == 8.0
    assert one(store, "scrape_series_added") == 8.0
    assert 0 <= one(store, "scrape_duration_seconds") < 2
    assert "text/plain;version=0.0.4" in target.requests[0]["Accept"]


async def test_one_listener_call_per_scrape(target, store, client):
    target.replies["/metrics"] = Reply(body=GOOD)
    calls: list[set[str]] = []
    store.add_listener(calls.append)
    await make(target, store, client).scrape_once()
    assert len(calls) == 1
    assert {"up", "http_requests_total", "jobs_done"} <= calls[0]


async def test_exposed_timestamps_are_honoured(target, store, client):
    target.replies["/metrics"] = Reply(body="a 1 1600000000123\nb 2\n")
    clock = Clock(1_700_000_000)
    s = make(target, store, client, clock)
    await s.scrape_once()
    assert values(store, "a") == [(1_600_000_000_123, 1.0)]
    assert values(store, "b") == [(1_700_000_000_000, 2.0)]
    # a series with its own timestamp is not tracked for staleness (scrape.go)
    target.replies["/metrics"] = Reply(body="")
    clock.t += 15
    await s.scrape_once()
    assert values(store, "a") == [(1_600_000_000_123, 1.0)]
    assert is_stale(values(store, "b")[-1][1])


# ---------------------------------------------------------------- target labels


async def test_conflicting_exposed_labels_renamed_exported(target, store, client):
    target.replies["/metrics"] = Reply(body='m{job="theirs",instance="x:1",zone="a"} 1\n')
    await make(target, store, client, labels={"zone": "eu", "team": "core"}).scrape_once()
    [lbl] = store.series([Matcher("__name__", "=", "m")])
    assert lbl.as_dict() == {
        "__name__": "m", "job": "backend", "exported_job": "theirs",
        "instance": f"127.0.0.1:{target.port}", "exported_instance": "x:1",
        "zone": "eu", "exported_zone": "a", "team": "core",
    }
    assert one(store, "up", team="core", zone="eu") == 1.0


async def test_exported_prefix_repeats_when_taken(target, store, client):
    target.replies["/metrics"] = Reply(body='m{job="theirs",exported_job="older"} 1\n')
    await make(target, store, client).scrape_once()
    [lbl] = store.series([Matcher("__name__", "=", "m")])
    assert lbl.get("job") == "backend"
    assert lbl.get("exported_job") == "older"
    assert lbl.get("exported_exported_job") == "theirs"


async def test_honor_labels_keeps_exposed_values(target, store, client):
    target.replies["/metrics"] = Reply(body='m{job="theirs"} 1\nn 2\n')
    await make(target, store, client, honor_labels=True).scrape_once()
    [m] = store.series([Matcher("__name__", "=", "m")])
    [n] = store.series([Matcher("__name__", "=", "n")])
    assert m.get("job") == "theirs" and m.get("exported_job") == ""
    assert n.get("job") == "backend"


def test_instance_of_urls():
    assert instance_of("http://127.0.0.1:9100/metrics") == "127.0.0.1:9100"
    assert instance_of("http://example.com/metrics") == "example.com:80"
    assert instance_of("https://example.com/metrics") == "example.com:443"
    assert instance_of("http://[::1]:9090/metrics") == "[::1]:9090"


# ---------------------------------------------------------------- staleness


async def test_disappeared_series_get_staleness_markers(target, store, client):
    clock = Clock(1_700_000_000)
    s = make(target, store, client, clock)
    target.replies["/metrics"] = Reply(body='q{k="a"} 1\nq{k="b"} 2\n')
    assert (await s.scrape_once()).series_added == 2
    clock.t += 15
    target.replies["/metrics"] = Reply(body='q{k="a"} 3\nq{k="c"} 4\n')
    r = await s.scrape_once()
    assert r.series_added == 1
    t1, t2 = 1_700_000_000_000, 1_700_000_015_000
    assert values(store, "q", k="a") == [(t1, 1.0), (t2, 3.0)]
    (ta, va), (tb, vb) = values(store, "q", k="b")
    assert (ta, va) == (t1, 2.0) and tb == t2 and is_stale(vb)
    assert store.instant([Matcher("__name__", "=", "q")], t2) == [
        (s._labels_for("q", {"k": "a"}), t2, 3.0), (s._labels_for("q", {"k": "c"}), t2, 4.0)]
    assert values(store, "scrape_series_added", job="backend") == [(t1, 2.0), (t2, 1.0)]


async def test_failed_scrape_marks_everything_stale_and_up_zero(target, store, client):
    clock = Clock(1_700_000_000)
    s = make(target, store, client, clock)
    target.replies["/metrics"] = Reply(body=GOOD)
    await s.scrape_once()
    clock.t += 15
    target.replies["/metrics"] = Reply(500, "internal error")
    r = await s.scrape_once()
    assert not r.up and "500" in r.error
    assert r.samples_scraped == 0
    t2 = 1_700_000_015_000
    for sl in store.select([Matcher("__name__", "!~", "up|scrape_.*")], t2, t2):
        assert list(sl.timestamps) == [t2] and is_stale(sl.values[0]), sl.labels
    assert len(store.select([Matcher("__name__", "!~", "up|scrape_.*")], t2, t2)) == 8
    assert values(store, "up") == [(1_700_000_000_000, 1.0), (t2, 0.0)]
    assert s.failures_total == 1 and s.scrapes_total == 2
    # recovery: series come back as new ones
    clock.t += 15
    target.replies["/metrics"] = Reply(body=GOOD)
    r = await s.scrape_once()
    assert r.up and r.series_added == 8
    assert values(store, "jobs_done")[-1] == (1_700_000_030_000, 7.0)


async def test_stop_marks_series_and_report_stale(target, store, client):
    clock = Clock(1_700_000_000)
    s = make(target, store, client, clock)
    target.replies["/metrics"] = Reply(body="x 1\n")
    await s.scrape_once()
    s.stop(1_700_000_005_000)
    assert store.instant([], 1_700_000_005_000) == []
    assert store.series_count == 5


# ---------------------------------------------------------------- bad targets


async def test_a_bad_line_fails_the_whole_scrape_up_zero_nothing_stored(target, store, client, caplog):
    target.replies["/metrics"] = Reply(body=GOOD)
    clock = Clock()
    s = make(target, store, client, clock)
    assert (await s.scrape_once()).up
    clock.t += 15
    bad = GOOD.replace("jobs_done 7", 'jobs_done 7\nbroken{a="x\\ty"} 1') + 'after_bad{x="1"} 5\n'
    target.replies["/metrics"] = Reply(body=bad)
    with caplog.at_level(logging.WARNING, logger="monitor.scrape"):
        r = await s.scrape_once()
    assert not r.up and r.reason == "parse" and r.limit is None
    assert r.error == "line 8: invalid escape sequence '\\t' in value of label \"a\""
    assert r.samples_scraped == 3  # the samples before the bad line, as Prometheus reports them
    assert s.parse_failures_total == 1 and s.failures_total == 1
    t1 = 1_700_000_015_000
    assert values(store, "up")[-1] == (t1, 0.0)
    assert values(store, "scrape_samples_scraped")[-1] == (t1, 3.0)
    assert values(store, "after_bad", x="1") == []  # nothing of the failed scrape, not even before the line
    [(_, v0), (t, v1)] = values(store, "jobs_done")
    assert v0 == 7.0 and t == t1 and is_stale(v1)  # the previous scrape's series go stale
    [rec] = [rec for rec in caplog.records if "failed" in rec.getMessage()]
    assert "line 8: invalid escape sequence" in rec.getMessage() and rec.job == "backend"
    assert rec.reason == "parse"
    clock.t += 15
    target.replies["/metrics"] = Reply(body=GOOD)
    assert (await s.scrape_once()).up  # recovered: stored again
    assert values(store, "jobs_done")[-1] == (1_700_000_030_000, 7.0)


@pytest.mark.parametrize(("body", "error"), [
    ("# TYPE a counter\na 1\n# TYPE a gauge\n",
     'line 3: second TYPE line for metric name "a", or TYPE reported after samples'),
    ('a{x="1",x="2"} 1\n', 'line 1: duplicate label name "x"'),
    ("a 1\nb 0x1p3\n", 'line 2: expected float as value, got "0x1p3"'),
])
async def test_known_bad_expositions_fail_with_line_and_reason(target, store, client, body, error):
    target.replies["/metrics"] = Reply(body=body)
    r = await make(target, store, client).scrape_once()
    assert not r.up and r.reason == "parse" and r.error == error
    assert values(store, "a") == []


async def test_metadata_kept_per_family_and_a_failed_scrape_keeps_the_previous(target, store, client):
    target.replies["/metrics"] = Reply(body=GOOD)
    s = make(target, store, client)
    await s.scrape_once()
    meta = {k: v.api() for k, v in s.metadata.items()}
    assert meta == {
        "http_requests_total": {"type": "counter", "help": "Requests.", "unit": ""},
        "jobs_done": {"type": "counter", "help": "Done jobs (a counter exposed without _total).", "unit": ""},
        "http_request_duration_seconds": {"type": "histogram", "help": "", "unit": ""},
    }  # temperature: no TYPE/HELP line, no metadata (as Prometheus)
    target.replies["/metrics"] = Reply(body="# HELP x one\n# HELP x two\n")
    assert not (await s.scrape_once()).up
    assert set(s.metadata) == set(meta)


async def test_hanging_target_times_out_with_up_zero(target, store, client):
    target.replies["/metrics"] = Reply(hang=True)
    s = make(target, store, client, timeout=0.3)
    r = await s.scrape_once()
    assert not r.up and "timed out" in r.error
    assert 0.25 <= r.duration_seconds < 2
    assert one(store, "up") == 0.0
    assert one(store, "scrape_duration_seconds") == pytest.approx(r.duration_seconds)


async def test_connection_refused_is_up_zero(store, client):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    s = Scraper("gone", f"http://127.0.0.1:{port}/metrics", store, client=client, timeout=1)
    r = await s.scrape_once()
    assert not r.up and "ConnectError" in r.error
    assert one(store, "up", job="gone") == 0.0


async def test_openmetrics_response(target, store, client):
    target.replies["/metrics"] = Reply(
        content_type="application/openmetrics-text; version=1.0.0; charset=utf-8",
        body='# TYPE req counter\nreq_total{a="b"} 4 # {trace_id="t"} 1\n'
             'req_created{a="b"} 1.7e9\n# TYPE g gauge\ng 2 1700000001.5\n# EOF\n')
    r = await make(target, store, client).scrape_once()
    assert r.up and r.reason is None
    assert one(store, "req_total", a="b") == 4.0
    assert values(store, "g") == [(1_700_000_001_500, 2.0)]


# ---------------------------------------------------------------- the parser alone


def test_parse_exposition_stops_at_the_first_bad_line():
    with pytest.raises(ExpositionError) as e:
        parse_exposition('a 1\nb{x="1"} oops\n\n# comment\nc{y="2"} 3 1000\nd\n')
    assert str(e.value) == 'line 2: expected float as value, got "oops"'
    assert (e.value.line, e.value.reason) == (2, 'expected float as value, got "oops"')


def test_parse_exposition_keeps_reasons_short():
    with pytest.raises(ExpositionError) as e:
        parse_exposition("bad " + "x" * 500 + "\n")
    assert len(str(e.value)) < 120


def test_openmetrics_without_eof_fails_after_the_last_line():
    text = '# TYPE g gauge\ng 1 1700000000.5\nh 3\n'
    with pytest.raises(ExpositionError, match=r"^line 4: data does not end with # EOF$"):
        parse_exposition(text, "application/openmetrics-text; version=1.0.0")
    assert parse_exposition(text + "# EOF\n", "application/openmetrics-text") == [
        ("g", {}, 1.0, 1_700_000_000_500), ("h", {}, 3.0, None)]
