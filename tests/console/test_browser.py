"""The console in a real headless Chromium against a real server with Redis: sign-in, a plate
lookup, a permit revoke, the health page, the language toggle, sign-out. Screenshots go to
data/screenshots/ (tests/support/browser.py)."""

from __future__ import annotations

import datetime as dt
import time

from ..support.accounts import audit_records
from ..support.browser import Browser
from ..support.console import add_user, call
from ..support.desk import OPERATOR
from .conftest import Console

PASSWORD = "una-password-lunga"


def sign_in(console: Console, name: str, role: str, landing: str) -> None:
    add_user(console.settings, name, role, PASSWORD)
    b = console.browser
    b.open("/console")
    b.wait("h1", "Accesso")
    b.fill("Nome utente", name)
    b.fill("Password", PASSWORD + "\n")
    b.wait("h1", landing)


def test_the_sign_in_page_speaks_italian_then_english_and_remembers(console: Console) -> None:
    b = console.browser
    b.open("/console")
    b.wait("h1", "Accesso")
    assert b.focused().get_attribute("name") == "username"  # focus where typing starts
    assert b.driver.find_element("css selector", "html").get_attribute("lang") == "it"
    b.shot("signin-it")
    b.click("#lang", "English")
    b.wait("h1", "Sign in")
    assert b.labelled("Username").get_attribute("autocomplete") == "username"
    assert b.driver.find_element("css selector", "html").get_attribute("lang") == "en"
    b.open("/console")  # a reload keeps the choice
    b.wait("h1", "Sign in")
    b.wait("#lang", "Italiano")
    assert b.console_errors() == []  # no CSP refusal, no script error


def test_a_police_officer_signs_in_looks_up_a_plate_and_signs_out(console: Console) -> None:
    b = console.browser
    add_user(console.settings, "rossi", "police", PASSWORD)
    b.open("/console")
    b.fill("Nome utente", "rossi")
    b.fill("Password", "sbagliata-davvero\n")
    b.wait(".error", "Nome utente o password errati.")
    assert b.focused().get_attribute("name") == "password"
    b.fill("Password", PASSWORD + "\n")
    b.wait("h1", "Ricerca targa")
    # police see the lookup and the health page, not the operators' or admins' pages
    assert b.text("#nav") == "Ricerca targa\nStato del servizio"
    assert "rossi · police" in b.text("#whoami")

    b.fill("Targa", "ab123cd")
    b.fill("Motivo della consultazione", "verbale 12/2026: controllo")
    b.click("button[type=submit]", "Cerca")
    b.wait("#lookup-result h2", "AB123CD")
    assert "RES-1" in b.text("#lookup-result")
    assert "consentito" in b.text("#lookup-result")
    b.shot("lookup")
    # A reason with letters beyond ASCII goes in the query string (a header cannot carry it)
    b.fill("Motivo della consultazione", "verifica identità, esposto n° 7")
    b.click("button[type=submit]", "Cerca")
    b.wait("#status", "AB123CD")

    every = audit_records(console.settings)
    assert ("sign_in", "rossi") in [(r["action"], r["person"]) for r in every]  # issue 21
    records = [r for r in every if r["action"] == "plate_lookup"]
    assert [(r["key_id"], r["person"], r["plate"], r["reason"]) for r in records] == [
        ("user:rossi", "rossi", "AB123CD", "verbale 12/2026: controllo"),
        ("user:rossi", "rossi", "AB123CD", "verifica identità, esposto n° 7"),
    ]

    # The session ends (here: its cookie is gone): the next call brings the sign-in back.
    cookie = b.driver.get_cookie("varco_session")
    b.driver.delete_cookie("varco_session")
    b.click("button[type=submit]", "Cerca")
    b.wait(".notice", "Sessione scaduta: accedi di nuovo.")
    b.driver.add_cookie(cookie)
    b.driver.refresh()
    b.wait("h1", "Ricerca targa")  # the session itself was still valid

    b.click("#signout")
    b.wait(".notice", "Sei uscito.")
    assert b.driver.get_cookie("varco_session") is None
    # ended on the server too, not only forgotten by the browser
    replay = {"Cookie": f"varco_session={cookie['value']}"}
    assert call(console.base, "GET", "/v1/session", headers=replay)[0] == 401
    assert b.console_errors() == []


def test_an_admin_revokes_a_permit_with_a_reason_kept_in_its_history(console: Console) -> None:
    b = console.browser
    sign_in(console, "bianchi", "admin", "Ricerca targa")
    b.click("#nav a", "Permessi")
    b.wait("h1", "Permessi")
    b.fill("Numero del permesso", "RES-1")
    b.click("button", "Apri")
    b.wait("#permit-detail h2", "RES-1")
    b.fill("Motivo della revoca", "trasferimento di residenza")
    b.click("#revoke button[type=submit]")
    b.wait("#status", "Permesso RES-1 revocato")
    history = b.wait("#permit-detail table", "trasferimento di residenza").text
    assert "bianchi" in history and "revoca" in history
    b.shot("permit-revoked")
    status, permit = call(
        console.base, "GET", "/v1/permits/RES-1", headers={"Authorization": "Bearer demo-admin"}
    )
    assert status == 200 and permit["valid_to"] is not None  # revoked: it ends now
    assert [(c["action"], c["person"], c["reason"]) for c in permit["changes"]] == [
        ("revoke", "bianchi", "trasferimento di residenza")
    ]
    assert b.console_errors() == []


def test_the_health_page_shows_the_replica_in_both_languages(console: Console) -> None:
    b = console.browser
    sign_in(console, "verdi", "admin", "Ricerca targa")
    reported_ready(console.base)  # its status written since its index loaded
    b.open("/console#/health")
    b.wait("h1", "Stato del servizio")
    b.wait("#ready-flag", "Pronta")
    _, ready = call(console.base, "GET", "/readyz")
    assert b.text("#index-revision") == str(ready["index_revision"])
    # Every replica that reported through Redis: here the one serving, with its revision.
    row = b.wait("#health-replicas tbody tr", f"· {ready['worker_pid']}")
    cells = [td.text for td in row.find_elements("css selector", "td")]
    assert cells[1:3] == ["Pronta", str(ready["index_revision"])], cells
    assert len(b.driver.find_elements("css selector", "#health-replicas tbody tr")) == 1
    b.shot("health-it")
    b.click("#lang", "English")
    b.wait("h1", "Service health")
    b.wait("#ready-flag", "Ready")
    assert b.wait("#health-ready h3", "Follow-up")
    assert b.wait("#health-replicas th", "Replica (host:port · process)")
    b.wait("#health-replicas tbody tr td", "Ready")
    b.shot("health-en")


def reported_ready(base: str) -> None:
    """Once the replica's status in Redis says ready (written every PERIOD_S seconds)."""
    deadline = time.monotonic() + 10
    while True:
        status, body = call(base, "GET", "/v1/replicas", headers=OPERATOR)
        if status == 200 and [r["ready"] for r in body["replicas"]] == [True]:
            return
        assert time.monotonic() < deadline, body
        time.sleep(0.1)


def local(delta: dt.timedelta) -> str:
    """A datetime-local control's value (the browser's wall time), `delta` from now."""
    return (dt.datetime.now().astimezone() + delta).strftime("%Y-%m-%dT%H:%M")


def set_value(b: Browser, label: str, value: str, within: str) -> None:
    # Date controls take typed text in the browser's locale order; the value is locale-free.
    b.driver.execute_script("arguments[0].value = arguments[1]", b.labelled(label, within), value)


def test_an_admin_issues_a_permit_then_renews_it(console: Console) -> None:
    b = console.browser
    sign_in(console, "viola", "admin", "Ricerca targa")
    b.click("#nav a", "Permessi")
    b.fill("Numero del permesso", "ONL-9", "#issue")
    b.fill("Tipo", "TEMP", "#issue")
    b.fill("Targhe", "hk321lm", "#issue")
    set_value(b, "Valido da", local(-dt.timedelta(hours=1)), "#issue")
    set_value(b, "Valido fino a", local(dt.timedelta(days=1)), "#issue")
    b.click("#issue button[type=submit]")
    b.wait("#status", "Permesso ONL-9 rilasciato")
    b.wait("#permit-detail h2", "ONL-9")
    assert "HK321LM" in b.text("#permit-detail")
    set_value(b, "Valido fino a", local(dt.timedelta(days=30)), "#renew")
    b.fill("Motivo (facoltativo)", "rinnovo richiesto allo sportello", "#renew")
    b.click("#renew button[type=submit]")
    b.wait("#status", "Permesso ONL-9 rinnovato")
    changes = b.wait("#permit-detail table", "rinnovo").text
    assert "rilascio" in changes and "viola" in changes
    b.shot("permit-renewed")
    _, permit = call(
        console.base, "GET", "/v1/permits/ONL-9", headers={"Authorization": "Bearer demo-admin"}
    )
    assert [(c["action"], c["reason"]) for c in permit["changes"]] == [
        ("issue", ""),
        ("renew", "rinnovo richiesto allo sportello"),
    ]
    assert len(permit["periods"]) == 2  # the running period, then the renewal's
    assert b.console_errors() == []
