"""The regional circuit's HTTP JSON feed when it fails, against a real HTTP server on loopback
whose answers each test scripts: retries with back-off and Retry-After, timeouts, a short
body, refused connections, other 4xx; garbage, page loops, too many pages and a failure
mid-download, each refused whole (never a partial list)."""

from __future__ import annotations

import itertools
import random
import socket
import time

import msgspec
import pytest

from loader.feedcsv import FeedFileError
from loader.httpfeed import MAX_DELAY_S, FeedFetchError, FeedPage, NotModified, redact

from ..support.feeds import TOKEN, Answer, Feed, Sleeps, fetch, item, page

# -- retries ------------------------------------------------------------------------------


def test_500_twice_then_200_backs_off_with_jitter(feed: Feed) -> None:
    feed.routes = {
        "/feed": [Answer(500), Answer(502), page([item("L736_2024_00015", "AB1")], None)]
    }
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
    fetch(feed.url("/feed"), sleep=sleeps, rng=random.Random(4).random, backoff_s=0.1, retries=4)
    caps = [0.1, 0.2, 0.4, 0.8]
    assert len(sleeps) == 4 and all(0 <= d <= cap for d, cap in zip(sleeps, caps, strict=True))
    assert len(set(sleeps)) == 4  # jittered, not a fixed schedule


def test_429_and_503_honour_retry_after_capped(feed: Feed) -> None:
    feed.routes = {
        "/feed": [
            Answer(429, headers={"Retry-After": "2"}),
            Answer(503, headers={"Retry-After": "86400"}),
            Answer(503, headers={"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"}),
            page([], None),
        ]
    }
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
    assert (
        redact("https://user:pw@feed.example:8443/v1/passes?token=abc#x")
        == "https://feed.example:8443/v1/passes"
    )


# -- whole-feed failures: never a partial list ---------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"<html>502 Bad Gateway</html>",
        b"[]",
        b'{"passes": {"numero_pass": "L736_2024_00015"}, "next": null}',
        b'{"passes": [], "next": 2}',
        b'{"passes": []}',  # no next: a feed paginated some other way
        b'{"passes": [], "next": null',
    ],
)
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
    feed.routes = {
        "/p1": [page([item("L736_2024_00015", "AB1")], "/p2")],
        "/p2": [Answer(500)],
        "/p3": [page([item("G224_2025_00003", "AB1")], None)],
    }
    result: list[FeedPage | NotModified] = []
    with pytest.raises(FeedFetchError, match=r"\(page 2\): HTTP 500 .* still after 2 retries"):
        result.append(fetch(feed.url("/p1")))
    assert result == []
    assert feed.paths() == ["/p1", "/p2", "/p2", "/p2"]  # and never /p3
