"""The console in a real headless Chromium against a real server with Redis: sign-in, a plate
lookup, a review decision, a transit search, a permit revoke, the health page, the language
toggle. Screenshots go to data/screenshots/ (tests/support/browser.py)."""

from __future__ import annotations

from .conftest import Console


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
