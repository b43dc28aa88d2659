"""The console's files as the service serves them: the headers that keep the page from being
framed or running injected code, the files' integrity (no inline script, every text in both
languages), and nothing outside the shipped files."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from html.parser import HTMLParser

import aiohttp
import pytest

from enforcement.config.settings import Settings
from enforcement.core.rules import Rules
from enforcement.http.app import create_app
from enforcement.http.console.routes import STATIC

from ..support.api import Client, ServiceServer


@pytest.fixture
async def web(demo: tuple[Settings, Rules]) -> AsyncIterator[Client]:
    settings, rules = demo
    server = ServiceServer(create_app(settings, rules, watch=False))
    await server.start_server()
    async with aiohttp.ClientSession() as session:
        yield Client(session, str(server.make_url("")).rstrip("/"))
    await server.close()


async def test_the_page_forbids_framing_and_foreign_or_inline_code(web: Client) -> None:
    for path in ("/console", "/console/", "/console/static/app.js"):
        status, _, r = await web.request("GET", path)
        assert status == 200, path
        csp = r.headers["Content-Security-Policy"]
        directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
        assert directives["script-src"] == "'self'"  # no 'unsafe-inline', no CDN
        assert directives["style-src"] == "'self'"
        assert directives["frame-ancestors"] == "'none'"
        assert directives["default-src"] == "'none'"
        assert r.headers["X-Frame-Options"] == "DENY"
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert r.headers["Referrer-Policy"] == "no-referrer"
    status, body, r = await web.request("GET", "/console")
    assert r.content_type == "text/html" and "<title>Varco</title>" in body
    _, _, js = await web.request("GET", "/console/static/pages/review.js")
    assert js.content_type == "text/javascript"  # module scripts need a JavaScript type


async def test_unchanged_files_are_revalidated_not_resent(web: Client) -> None:
    status, _, r = await web.request("GET", "/console/static/app.css")
    etag = r.headers["ETag"]
    assert r.headers["Cache-Control"] == "no-cache"
    status, body, r = await web.request("GET", "/console/static/app.css", {"If-None-Match": etag})
    assert (status, body) == (304, "")


async def test_only_shipped_files_are_served(web: Client) -> None:
    for path in (
        "/console/static/../routes.py",
        "/console/static/%2e%2e/routes.py",
        "/console/static/nope.js",
        "/console/static/",
    ):
        status, body, _ = await web.request("GET", path)
        assert status == 404, path
        assert body["error"] == "not_found"
    status, body, r = await web.request("POST", "/console")
    assert status == 405 and "GET" in r.headers["Allow"]


class _Scripts(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.inline: list[str] = []
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        self.inline += [name for name, _ in attrs if name.startswith("on")]  # onclick=...
        if "style" in named:
            self.inline.append("style attribute")
        if tag == "script":
            src = named.get("src") or ""
            (self.external if src else self.inline).append(src or "inline script")
        if tag == "link" and (named.get("href") or "").startswith(("http:", "https:", "//")):
            self.external.append(named["href"] or "")


def test_no_inline_code_and_nothing_from_elsewhere() -> None:
    page = _Scripts()
    page.feed((STATIC / "index.html").read_text())
    assert page.inline == []
    assert page.external == ["/console/static/app.js"]
    for path in STATIC.rglob("*.js"):
        code = path.read_text()
        # No HTML built from strings (text is set as text), no eval, nothing fetched from
        # another origin.
        assert not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|eval\(|new Function", code), (
            path
        )
        assert not re.search(r"https?://(?!/)[a-z]", code.replace("^https?:\\/\\/", "")), path


def test_every_text_in_both_languages() -> None:
    it = json.loads((STATIC / "i18n" / "it.json").read_text())
    en = json.loads((STATIC / "i18n" / "en.json").read_text())
    assert set(it) == set(en)
    assert all(it[k].strip() and en[k].strip() for k in it)
    sources = "\n".join(p.read_text() for p in [*STATIC.rglob("*.js"), STATIC / "index.html"])
    # Keys named literally: i18n: 'x', t('x'), heading('x'), field('x', ...), data-i18n="x",
    # title: 'x', errorBox-independent messages.
    used = set(
        re.findall(
            r"(?:i18n|i18nAria|i18nPlaceholder|title|data-i18n(?:-aria)?)[:=]\s*['\"]([a-z][\w.]+)['\"]",
            sources,
        )
    )
    used |= set(re.findall(r"\b(?:t|heading|field|table)\(\s*'([a-z][\w.]+)'", sources))
    used |= set(re.findall(r"'([a-z]+\.[\w.]+)'\s*[,)]", sources)) - {"app.js"}
    used = {k for k in used if not k.endswith(".js") and not k.endswith(".json")}
    assert used, "the pattern finds the keys"
    assert sorted(used - set(it)) == []
