"""The regional circuit's HTTP JSON feed against a real HTTP server on loopback, whose answers
each test scripts: pagination, ETag and 304, retries with back-off and Retry-After, timeouts,
garbage, page loops, a failure mid-download (never a partial list), items that are not rows,
and the rows validated exactly like the CSV's."""

from __future__ import annotations

import itertools
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import msgspec
import pytest

from enforcement.config.settings import Settings
from enforcement.core.rules import Rules
from loader.feedcsv import FeedFileError, FeedReport
from loader.httpfeed import (
    MAX_DELAY_S,
    FeedFetchError,
    FeedPage,
    NotModified,
    fetch_regional_feed,
    redact,
)
from loader.regional import COLUMNS, parse_regional_rows

TOKEN = "s3cret-token"


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # before answering
    drip: float = 0.0  # between the body's bytes
    short: int = 0  # bytes promised in Content-Length but never sent


def page(passes: list[Any], next_: str | None, **headers: str) -> Answer:
    return Answer(200, msgspec.json.encode({"passes": passes, "next": next_}), headers)


Route = list[Answer] | Callable[[dict[str, str]], Answer]


class Feed:
    """Routes by path and query: a list of answers is served in order, its last one repeated;
    a callable answers from the request's headers. `seen` records (path, headers)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.routes: dict[str, Route] = {}
        self.seen: list[tuple[str, dict[str, str]]] = []
        self.stop = threading.Event()

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def paths(self) -> list[str]:
        return [path for path, _ in self.seen]

    def answer(self, path: str, headers: dict[str, str]) -> Answer:
        self.seen.append((path, headers))
        route = self.routes.get(path)
        if route is None:
            return Answer(404)
        if callable(route):
            return route(headers)
        return route.pop(0) if len(route) > 1 else route[0]


class _Server(ThreadingHTTPServer):
    feed: Feed


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        feed = self.server.feed
        answer = feed.answer(self.path, {k.lower(): v for k, v in self.headers.items()})
        if answer.delay and feed.stop.wait(answer.delay):
            return
        try:
            self.send_response(answer.status)
            for name, value in answer.headers.items():
                self.send_header(name, value)
            if answer.status != 304:
                self.send_header("Content-Length", str(len(answer.body) + answer.short))
            self.end_headers()
            if not answer.drip:
                self.wfile.write(answer.body)
                return
            for i in range(len(answer.body)):
                self.wfile.write(answer.body[i : i + 1])
                if feed.stop.wait(answer.drip):
                    return
        except OSError:  # the client gave up first, as it should
            pass

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def feed() -> Iterator[Feed]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.feed = Feed(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server.feed
    finally:
        server.feed.stop.set()  # release handlers still sleeping
        server.shutdown()
        server.server_close()
        thread.join()


class Sleeps(list[float]):
    """An injected sleep: records the delays, waits for none."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def item(number: str, plate: Any, **fields: Any) -> dict[str, Any]:
    return {"numero_pass": number, "comune": number[:4], "targa": plate, "principale": True,
            "tipo_pass": "DISABILITÀ", "inizio": "01/03/2024", "fine": "28/02/2029",
            "stato": "attivo", "data_revoca": None, **fields}  # fmt: skip


def fetch(url: str, **kw: Any) -> FeedPage | NotModified:
    kw.setdefault("sleep", Sleeps())
    return fetch_regional_feed(url, **{"timeout_s": 0.5, "retries": 2, **kw})


# -- pagination and conversion ------------------------------------------------------------


def test_three_pages_followed_in_order(feed: Feed) -> None:
    first = [item("L736_2024_00015", "AB123CD"),
             item("L736_2024_00015", "CD456EF", principale=False)]  # fmt: skip
    second = [item("G224_2025_00003", " ab 123 cd ", principale=None)]
    third = [item("L781_2026_00002", "EF789GH", pass_precedente=None)]
    feed.routes = {
        "/feed": [page(first, "/feed?page=2", ETag='"v7"')],  # relative, from the root
        "/feed?page=2": [page(second, feed.url("/feed?page=3"))],  # absolute
        "/feed?page=3": [page(third, None)],
    }
    got = fetch(feed.url("/feed"), token=TOKEN)
    assert isinstance(got, FeedPage)
    assert (got.etag, got.pages) == ('"v7"', 3)
    assert feed.paths() == ["/feed", "/feed?page=2", "/feed?page=3"]
    assert [pos for pos, _ in got.rows] == [1, 2, 3, 4]
    assert all(list(row) == list(COLUMNS) for _, row in got.rows)  # every column, no error
    assert got.rows[0][1] == {"numero_pass": "L736_2024_00015", "comune": "L736",
                              "targa": "AB123CD", "principale": "S", "tipo_pass": "DISABILITÀ",
                              "inizio": "01/03/2024", "fine": "28/02/2029", "stato": "attivo",
                              "data_revoca": "", "pass_precedente": ""}  # fmt: skip
    assert got.rows[1][1]["principale"] == "N"
    assert got.rows[2][1]["targa"] == "ab 123 cd" and got.rows[2][1]["principale"] == ""
    # The token went to every page; no If-None-Match without an ETag.
    assert [h.get("authorization") for _, h in feed.seen] == [f"Bearer {TOKEN}"] * 3
    assert all("if-none-match" not in h for _, h in feed.seen)


def test_etag_then_304_is_not_modified(feed: Feed) -> None:
    def answer(headers: dict[str, str]) -> Answer:
        if headers.get("if-none-match") == '"v1"':
            return Answer(304, headers={"ETag": '"v1"'})
        return page([item("L736_2024_00015", "AB123CD")], None, ETag='"v1"')

    feed.routes = {"/feed": answer}
    first = fetch(feed.url("/feed"))
    assert isinstance(first, FeedPage) and first.etag == '"v1"' and len(first.rows) == 1
    again = fetch(feed.url("/feed"), etag=first.etag)
    assert again == NotModified('"v1"')
    assert [h.get("if-none-match") for _, h in feed.seen] == [None, '"v1"']


def test_items_validated_like_the_csv(feed: Feed, demo: tuple[Settings, Rules]) -> None:
    feed.routes = {
        "/feed": [page([item("L736_2024_00015", "AB123CD"),
                        item("L736_2024_00015", "CD456EF", principale=False)], "/feed/2")],
        "/feed/2": [page([item("G224_2025_00003", "EF789GH", inizio=20250110),  # a number
                          ["L781_2026_00002", "GH012IJ"],  # not an object
                          item("L781_2026_00002", "GH012IJ", comune=" L781 ", principale=None),
                          item("L840_2026_00004", {"plate": "X"}, fine=[1])],  # nested
                         None)],
    }  # fmt: skip
    got = fetch(feed.url("/feed"))
    assert isinstance(got, FeedPage)
    rows = dict(got.rows)
    assert rows[3]["__error__"] == "inizio is a number, not text"
    assert rows[3]["numero_pass"] == "G224_2025_00003"  # names the pass in the reject
    assert rows[4]["__error__"] == "the item is an array, not an object"
    assert rows[6]["__error__"] == "targa is an object, not text; fine is an array, not text"

    settings, rules = demo
    assert settings.circuit is not None
    report = FeedReport("vivipass")
    passes = parse_regional_rows(got.rows, rules, settings.circuit, report)
    rejects = [(r.line, r.key, r.field) for r in report.rejects]
    assert rejects == [(3, "G224_2025_00003", "row"), (4, "", "row"), (6, "L840_2026_00004", "row")]
    assert "inizio is a number" in report.rejects[0].reason
    assert (report.rows, report.permits) == (6, 2)
    by_number = {p.permit.permit_id: p.permit for p in passes}
    assert by_number["L736_2024_00015"].plates == (("AB123CD", True), ("CD456EF", False))
    assert by_number["L781_2026_00002"].plates == (("GH012IJ", True),)


# -- retries ------------------------------------------------------------------------------


def test_500_twice_then_200_backs_off_with_jitter(feed: Feed) -> None:
    feed.routes = {"/feed": [Answer(500), Answer(502), page([item("L736_2024_00015", "AB1")],
                                                            None)]}  # fmt: skip
    sleeps = Sleeps()
    draws = iter([0.9, 0.6])
    got = fetch(feed.url("/feed"), sleep=sleeps, rng=lambda: next(draws), backoff_s=0.1)
    assert isinstance(got, FeedPage) and len(got.rows) == 1
    assert feed.paths() == ["/feed"] * 3
    # Full jitter: rng() × backoff × 2**attempt, the cap doubling each time.
    assert sleeps == pytest.approx([0.9 * 0.1, 0.6 * 0.2])
    assert sleeps[0] < sleeps[1]

    feed.seen.clear()
    feed.routes = {"/feed": [Answer(503)] * 4 + [page([], None)]}
    sleeps = Sleeps()
    fetch(feed.url("/feed"), sleep=sleeps, rng=random.Random(4).random, backoff_s=0.1,
          retries=4)  # fmt: skip
    caps = [0.1, 0.2, 0.4, 0.8]
    assert len(sleeps) == 4 and all(0 <= d <= cap for d, cap in zip(sleeps, caps, strict=True))
    assert len(set(sleeps)) == 4  # jittered, not a fixed schedule


def test_429_and_503_honour_retry_after_capped(feed: Feed) -> None:
    feed.routes = {"/feed": [Answer(429, headers={"Retry-After": "2"}),
                             Answer(503, headers={"Retry-After": "86400"}),
                             Answer(503, headers={"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"}),
                             page([], None)]}  # fmt: skip
    sleeps = Sleeps()
    got = fetch(feed.url("/feed"), sleep=sleeps, rng=lambda: 0.5, backoff_s=0.1, retries=3)
    assert isinstance(got, FeedPage)
    # seconds as given; a day capped; an HTTP date: our own back-off
    assert sleeps == pytest.approx([2.0, MAX_DELAY_S, 0.5 * 0.4])


def test_timeouts_are_retried_then_fail(feed: Feed) -> None:
    feed.routes = {"/slow": [Answer(delay=2.0, body=b"{}")]}
    sleeps = Sleeps()
    t0 = time.monotonic()
    with pytest.raises(FeedFetchError, match=r"timed out, still after 1 retries"):
        fetch(feed.url("/slow"), timeout_s=0.2, retries=1, sleep=sleeps)
    assert time.monotonic() - t0 < 1.0
    assert feed.paths() == ["/slow", "/slow"] and len(sleeps) == 1


def test_a_dripping_page_hits_its_deadline(feed: Feed) -> None:
    body = msgspec.json.encode({"passes": [], "next": None})
    feed.routes = {"/drip": [Answer(body=body, drip=0.05)]}
    with pytest.raises(FeedFetchError, match=r"took over 0.15 s"):
        fetch(feed.url("/drip"), timeout_s=0.5, page_deadline_s=0.15, retries=0)


def test_a_short_body_is_retried(feed: Feed) -> None:
    good = page([item("L736_2024_00015", "AB1")], None)
    feed.routes = {"/feed": [Answer(body=good.body[:20], short=len(good.body) - 20), good]}
    sleeps = Sleeps()
    got = fetch(feed.url("/feed"), sleep=sleeps)
    assert isinstance(got, FeedPage) and len(got.rows) == 1 and len(sleeps) == 1


def test_connection_refused_is_retried_then_fails() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sleeps = Sleeps()
    with pytest.raises(FeedFetchError, match=r"cannot connect.*still after 2 retries"):
        fetch(f"http://127.0.0.1:{port}/feed", sleep=sleeps)
    assert len(sleeps) == 2


def test_other_4xx_are_not_retried_and_urls_are_redacted(feed: Feed) -> None:
    sleeps = Sleeps()
    with pytest.raises(FeedFetchError) as caught:
        fetch(feed.url("/missing?key=hunter2#frag"), token=TOKEN, sleep=sleeps)
    message = str(caught.value)
    assert message == f"feed {feed.url('/missing')}: HTTP 404 Not Found"
    assert "hunter2" not in message and TOKEN not in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert sleeps == [] and len(feed.seen) == 1
    assert isinstance(caught.value, FeedFileError)  # the sync's "unusable export"

    feed.routes = {"/feed": [Answer(401)]}
    with pytest.raises(FeedFetchError, match="HTTP 401 Unauthorized"):
        fetch(feed.url("/feed"), token=TOKEN, sleep=sleeps)
    assert sleeps == []
    assert redact("https://user:pw@feed.example:8443/v1/passes?token=abc#x") == \
        "https://feed.example:8443/v1/passes"  # fmt: skip


# -- whole-feed failures: never a partial list ---------------------------------------------


@pytest.mark.parametrize("body", [
    b"<html>502 Bad Gateway</html>",
    b"[]",
    b'{"passes": {"numero_pass": "L736_2024_00015"}, "next": null}',
    b'{"passes": [], "next": 2}',
    b'{"passes": []}',  # no next: a feed paginated some other way
    b'{"passes": [], "next": null',
])  # fmt: skip
def test_garbage_is_refused(feed: Feed, body: bytes) -> None:
    feed.routes = {"/feed": [Answer(body=body)]}
    with pytest.raises(FeedFetchError, match=r"not a page of passes and next link"):
        fetch(feed.url("/feed"))
    assert len(feed.seen) == 1


@pytest.mark.parametrize("loop", [["/a", "/b", "/a"], ["/a", "/a"], ["/a", "/a#again"]])
def test_a_page_loop_is_refused(feed: Feed, loop: list[str]) -> None:
    for path, next_ in itertools.pairwise(loop):
        feed.routes[path] = [page([item("L736_2024_00015", "AB1")], next_)]
    with pytest.raises(FeedFetchError, match=r"next link .*/a was already fetched: a page loop"):
        fetch(feed.url("/a"))
    assert feed.paths() == loop[:-1]


def test_too_many_pages(feed: Feed) -> None:
    feed.routes = {f"/p{i}": [page([], f"/p{i + 1}")] for i in range(5)}
    with pytest.raises(FeedFetchError, match=r"more than 3 pages"):
        fetch(feed.url("/p0"), max_pages=3)
    assert feed.paths() == ["/p0", "/p1", "/p2"]


def test_failure_mid_download_returns_nothing(feed: Feed) -> None:
    feed.routes = {"/p1": [page([item("L736_2024_00015", "AB1")], "/p2")],
                   "/p2": [Answer(500)],
                   "/p3": [page([item("G224_2025_00003", "AB1")], None)]}  # fmt: skip
    result: list[FeedPage | NotModified] = []
    with pytest.raises(FeedFetchError, match=r"\(page 2\): HTTP 500 .* still after 2 retries"):
        result.append(fetch(feed.url("/p1")))
    assert result == []
    assert feed.paths() == ["/p1", "/p2", "/p2", "/p2"]  # and never /p3


# -- where the token goes -----------------------------------------------------------------


def test_the_token_stays_on_the_feeds_origin(feed: Feed) -> None:
    other = feed.url("/elsewhere", host="localhost")  # same server, another origin
    feed.routes = {"/moved": [Answer(301, headers={"Location": "/feed"})],
                   "/feed": [page([], None)],
                   "/away": [Answer(302, headers={"Location": other})],
                   "/elsewhere": [page([], None)],
                   "/leaks": [page([], other)]}  # fmt: skip
    fetch(feed.url("/moved"), token=TOKEN)
    fetch(feed.url("/away"), token=TOKEN)
    auth = [(path, h.get("authorization")) for path, h in feed.seen]
    assert auth == [("/moved", f"Bearer {TOKEN}"), ("/feed", f"Bearer {TOKEN}"),
                    ("/away", f"Bearer {TOKEN}"), ("/elsewhere", None)]  # fmt: skip
    with pytest.raises(FeedFetchError, match=r"next link http://localhost:\d+/elsewhere leaves"):
        fetch(feed.url("/leaks"), token=TOKEN)
    with pytest.raises(FeedFetchError, match="not an http"):
        fetch("file:///etc/passwd")
    with pytest.raises(FeedFetchError, match="cannot carry") as caught:
        fetch(feed.url("/feed"), token="abc\r\nX-Evil: 1")
    assert "Evil" not in str(caught.value)


def test_a_configured_http_source_syncs_then_304s_then_keeps_its_data_on_failure(
    feed: Feed, tmp_path: Any
) -> None:
    """The loader's FeedRunner with a regional_http source: a sync, a 304 that keeps the feed
    fresh, and a server failing mid-download that changes nothing and is reported."""
    from enforcement.config.load import load_config
    from loader.feeds import FeedRunner
    from loader.sqlite import PermitDB

    from ..conftest import DEMO_CONFIG

    config = tmp_path / "city.toml"
    config.write_text(DEMO_CONFIG.read_text(encoding="utf-8") + f"""
[sources.circuit]
kind = "regional_http"
url = "http://127.0.0.1:{feed.port}/feed"
token_env = "CIRCUIT_TOKEN"
schedule = "1s"
""", encoding="utf-8")  # fmt: skip
    settings, rules = load_config(config, {"VARCO_DATA_DIR": str(tmp_path / "data"),
                                           "CIRCUIT_TOKEN": "s3cret"})  # fmt: skip
    calls: list[str] = []

    def answer(headers: dict[str, str]) -> Answer:
        calls.append(headers.get("if-none-match", ""))
        if headers.get("if-none-match") == '"v1"':
            return Answer(304)
        return page([item("L736_2024_00015", "AB123CD")], "/feed2", ETag='"v1"')

    feed.routes = {"/feed": answer, "/feed2": [page([item("G224_2025_00003", "EF456GH")], None)]}
    runner = FeedRunner(settings, rules)
    with PermitDB(settings.storage.database_path) as db:
        (status,) = runner.run_due(db, now=1000.0)
        assert (status.permits, status.last_error, status.last_success) == (2, None, 1000.0)
        assert db.get("G224_2025_00003") is not None
        (status,) = runner.run_due(db, now=1002.0)  # 304: nothing read, still fresh
        assert calls == ["", '"v1"'] and status.last_success == 1002.0
        revision = db.revision
        feed.routes = {"/feed": [page([item("L736_2024_00015", "AB123CD")], "/feed2")],
                       "/feed2": [Answer(500)]}  # fmt: skip
        runner.states["circuit"].etag = None  # as if the circuit published a new export
        (status,) = runner.run_due(db, now=1004.0)
        assert "HTTP 500" in (status.last_error or "") and status.last_success == 1002.0
        assert db.revision == revision and db.get("G224_2025_00003") is not None
    assert all(h.get("authorization") == "Bearer s3cret" for _, h in feed.seen)
