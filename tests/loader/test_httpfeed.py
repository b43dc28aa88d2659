"""The regional circuit's HTTP JSON feed against a real HTTP server on loopback, whose answers
each test scripts: pagination, ETag and 304, items that are not rows, the rows validated
exactly like the CSV's, where the token goes, and the feed as a configured source (retries,
timeouts and refusals: test_httpfeed_failures.py)."""

from __future__ import annotations

from typing import Any

import pytest

from enforcement.config.settings import Settings
from enforcement.core.rules import Rules
from loader.feedcsv import FeedReport
from loader.httpfeed import FeedFetchError, FeedPage, NotModified
from loader.regional import COLUMNS, parse_regional_rows

from ..support.feeds import TOKEN, Answer, Feed, fetch, item, page

# -- pagination and conversion ------------------------------------------------------------


def test_three_pages_followed_in_order(feed: Feed) -> None:
    first = [
        item("L736_2024_00015", "AB123CD"),
        item("L736_2024_00015", "CD456EF", principale=False),
    ]
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
    assert got.rows[0][1] == {
        "numero_pass": "L736_2024_00015",
        "comune": "L736",
        "targa": "AB123CD",
        "principale": "S",
        "tipo_pass": "DISABILITÀ",
        "inizio": "01/03/2024",
        "fine": "28/02/2029",
        "stato": "attivo",
        "data_revoca": "",
        "pass_precedente": "",
    }
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
        "/feed": [
            page(
                [
                    item("L736_2024_00015", "AB123CD"),
                    item("L736_2024_00015", "CD456EF", principale=False),
                ],
                "/feed/2",
            )
        ],
        "/feed/2": [
            page(
                [
                    item("G224_2025_00003", "EF789GH", inizio=20250110),  # a number
                    ["L781_2026_00002", "GH012IJ"],  # not an object
                    item("L781_2026_00002", "GH012IJ", comune=" L781 ", principale=None),
                    item("L840_2026_00004", {"plate": "X"}, fine=[1]),
                    item("L840_2026_00005", "JK345LM", principale="yes"),  # S, N or a boolean
                    # No `fine`: cut short, not an unlimited pass (null would say "none").
                    {k: v for k, v in item("L840_2026_00006", "KL456MN").items() if k != "fine"},
                ],  # nested
                None,
            )
        ],
    }
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
    assert rejects == [
        (3, "G224_2025_00003", "row"),
        (4, "", "row"),
        (6, "L840_2026_00004", "row"),
        (7, "L840_2026_00005", "principale"),
        (8, "L840_2026_00006", "row"),
    ]
    assert "inizio is a number" in report.rejects[0].reason
    assert report.rejects[-1].reason.endswith("the item lacks fine")
    assert (report.rows, report.permits) == (8, 2)
    by_number = {p.permit.permit_id: p.permit for p in passes}
    assert by_number["L736_2024_00015"].plates == (("AB123CD", True), ("CD456EF", False))
    assert by_number["L781_2026_00002"].plates == (("GH012IJ", True),)


# -- where the token goes -----------------------------------------------------------------


def test_the_token_stays_on_the_feeds_origin(feed: Feed) -> None:
    other = feed.url("/elsewhere", host="localhost")  # same server, another origin
    feed.routes = {
        "/moved": [Answer(301, headers={"Location": "/feed"})],
        "/feed": [page([], None)],
        "/away": [Answer(302, headers={"Location": other})],
        "/elsewhere": [page([], None)],
        "/leaks": [page([], other)],
    }
    fetch(feed.url("/moved"), token=TOKEN)
    fetch(feed.url("/away"), token=TOKEN)
    auth = [(path, h.get("authorization")) for path, h in feed.seen]
    assert auth == [
        ("/moved", f"Bearer {TOKEN}"),
        ("/feed", f"Bearer {TOKEN}"),
        ("/away", f"Bearer {TOKEN}"),
        ("/elsewhere", None),
    ]
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

    from ..support.common import DEMO_CONFIG

    config = tmp_path / "city.toml"
    config.write_text(
        DEMO_CONFIG.read_text(encoding="utf-8")
        + f"""
[sources.circuit]
kind = "regional_http"
url = "http://127.0.0.1:{feed.port}/feed"
token_env = "CIRCUIT_TOKEN"
schedule = "1s"
""",
        encoding="utf-8",
    )
    settings, rules = load_config(
        config, {"VARCO_DATA_DIR": str(tmp_path / "data"), "CIRCUIT_TOKEN": "s3cret"}
    )
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
        # The ETag is kept in the permit database: a sync run by cron gets its 304 too.
        (status,) = FeedRunner(settings, rules).run_due(db, now=1003.0)
        assert calls == ["", '"v1"', '"v1"'] and status.last_success == 1003.0
        revision = db.revision
        feed.routes = {
            "/feed": [page([item("L736_2024_00015", "AB123CD")], "/feed2")],
            "/feed2": [Answer(500)],
        }
        db.set_feed_etag("circuit", None)  # as if the circuit published a new export
        (status,) = runner.run_due(db, now=1004.0)
        assert "HTTP 500" in (status.last_error or "") and status.last_success == 1002.0
        assert db.revision == revision and db.get("G224_2025_00003") is not None
    assert all(h.get("authorization") == "Bearer s3cret" for _, h in feed.seen)
