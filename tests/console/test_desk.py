"""The operators' desk in a real headless Chromium: the review queue decided by keyboard, the
violation a confirmation makes, a transit search, the cameras on the health page."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from ..support.accounts import audit_records
from ..support.api import CAMERA, NOW, transit
from ..support.browser import CITY_TZ
from ..support.cameras import AT, VENDORS, key
from ..support.console import call
from .conftest import Console
from .test_browser import sign_in

UNSURE = 0.3  # below the demo's review_confidence (0.6): a person must look


def eventually_file(directory: Path, pattern: str, timeout_s: float = 10) -> str:
    deadline = time.monotonic() + timeout_s
    while not (found := sorted(directory.glob(pattern))):
        assert time.monotonic() < deadline, list(directory.iterdir())
        time.sleep(0.05)
    return found[0].read_text(encoding="utf-8")


def post(console: Console, plate: str, **extra: object) -> dict[str, object]:
    status, body = call(console.base, "POST", "/v1/transits", transit(plate, **extra), CAMERA)
    assert status == 200, body
    return body  # type: ignore[no-any-return]


def test_review_decisions_by_keyboard_make_a_violation(console: Console, tmp_path: Path) -> None:
    # The queue is oldest first: a Rekor camera's read of ZZ999ZZ five minutes ago (with its
    # candidates and best frame), then a native read of YY888YY now.
    rekor = next(v for v in VENDORS if v.name == "rekor")
    body, headers = rekor.body("ZZ999ZZ", AT, UNSURE)
    status, first = call(console.base, "POST", rekor.path, body, {**key("rekor"), **headers})
    assert status == 200 and first["results"][0]["verdict"] == "review", first
    assert post(console, "YY888YY", confidence=UNSURE)["verdict"] == "review"
    # and a misread of the resident's AB123CD, a little later
    later = (NOW + dt.timedelta(seconds=30)).isoformat()
    assert post(console, "AB128CD", confidence=UNSURE, ts=later)["verdict"] == "review"
    b = console.browser
    sign_in(console, "neri", "operator", "Coda di revisione")
    # operators see the desk's pages, not the police lookup or the permits
    assert b.text("#nav") == "Coda di revisione\nRicerca transiti\nViolazioni\nStato del servizio"
    b.wait("#review-list .item", "ZZ999ZZ")
    detail = b.wait("#review-detail", "ZZ999ZZ").text
    assert "30 %" in detail and "lettura incerta" in detail and "cam-rekor" in detail
    assert "rekor:" in detail  # the evidence: the vendor's best frame
    assert "best_uuid" in detail  # the kept vendor fields
    b.shot("review")

    b.fill("Motivo della decisione", "targa leggibile nell'immagine")
    b.keys("\ue00c")  # Escape: leave the field, keys act on the queue again
    b.keys("j")
    b.wait("#review-detail h2", "YY888YY")
    b.keys("k")
    b.wait("#review-detail h2", "ZZ999ZZ")
    b.keys("c")  # confirm ZZ999ZZ: a violation
    b.wait("#status", "violazione registrata")
    b.gone("#review-list", "ZZ999ZZ")
    b.wait("#review-detail h2", "YY888YY")  # the next item is up
    b.keys("d")  # dismiss YY888YY, with the same reason (it stays filled)
    b.wait("#review-detail h2", "AB128CD")
    b.keys("e")  # correct: type the plate as read on the picture, Enter sends it
    assert b.focused().get_attribute("name") == "plate"
    b.keys("AB123CD\n")
    b.wait("#status", "AB128CD: Correggi")
    b.wait("#review-detail", "Nessuna lettura da verificare.")

    status, page = call(
        console.base, "GET", "/v1/review", headers={"Authorization": "Bearer demo-admin"}
    )
    assert status == 200 and page["items"] == []
    decisions = [
        r
        for r in audit_records(console.settings)
        if (r["person"], r["action"]) == ("neri", "review_decision")
    ]
    assert [(r["plate"], r["detail"]["decision"]) for r in decisions] == [
        ("ZZ999ZZ", "confirm"),
        ("YY888YY", "dismiss"),
        ("AB128CD", "correct"),
    ], decisions

    b.click("#nav a", "Violazioni")
    b.wait("#violations-result", "ZZ999ZZ")
    assert "YY888YY" not in b.text("#violations-result")
    b.shot("violations")
    b.downloads(tmp_path)
    b.click("#violations-csv")
    b.wait("#status", "CSV esportato")
    csv = eventually_file(tmp_path, "violations-*.csv")
    header, *rows = csv.splitlines()
    assert "plate" in header and len(rows) == 1 and "ZZ999ZZ" in rows[0]
    assert b.console_errors() == []


def test_a_transit_search_by_plate_and_day_then_the_cameras(console: Console) -> None:
    post(console, "AB123CD")
    post(console, "ZZ999ZZ", confidence=UNSURE)
    b = console.browser
    sign_in(console, "gialli", "operator", "Coda di revisione")
    b.click("#nav a", "Ricerca transiti")
    b.wait("h1", "Ricerca transiti")
    b.fill("Targa", "AB123CD")
    # the day as the browser's date control takes it (its own locale's order)
    day = dt.datetime.now(ZoneInfo(CITY_TZ))  # the city's day, as the server reads it
    b.driver.execute_script(
        "arguments[0].value = arguments[1]", b.labelled("Giorno"), day.strftime("%Y-%m-%d")
    )
    b.fill("Motivo della ricerca", "ricorso 45/2026")
    b.click("#page-transits button[type=submit]")
    result = b.wait("#transits-result table", "AB123CD").text
    assert "consentito" in result and "ZZ999ZZ" not in result
    b.shot("transits")
    search = [
        r
        for r in audit_records(console.settings)
        if (r["person"], r["action"]) == ("gialli", "transit_search")
    ]
    assert [r["reason"] for r in search] == ["ricorso 45/2026"]

    b.click("#nav a", "Stato del servizio")
    table = b.wait("#health-cameras table", "cam-1")
    assert "PD-03" in table.text
    b.driver.execute_script("arguments[0].scrollIntoView()", table)
    b.shot("health-cameras")
    assert b.console_errors() == []
