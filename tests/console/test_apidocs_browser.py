"""`/docs` in the console's headless Chromium (tests/support/browser.py): Swagger UI renders
the service's operations from the package's own files, under the page's strict CSP."""

from __future__ import annotations

from .conftest import Console


def test_the_api_reference_renders_the_operations(console: Console) -> None:
    b = console.browser
    b.open("/docs")
    transits = b.wait(".opblock.opblock-post", "/v1/transits", timeout=20)
    assert "POST" in transits.text
    b.wait(".opblock.opblock-get", "/v1/plates/{plate}")
    b.wait("button.authorize")  # the bearer scheme: a key can be entered for "Try it out"
    assert "Varco" in b.text(".info .title")
    b.shot("apidocs")
    # the CSP refused nothing and nothing was fetched from elsewhere (a refusal is an error)
    assert b.console_errors() == []
    origin = b.driver.execute_script("return location.origin")
    fetched = b.driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert fetched and all(url.startswith(origin) for url in fetched), fetched
