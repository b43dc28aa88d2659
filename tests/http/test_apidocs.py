"""`/docs`: Swagger UI from the package's own files (no CDN), under the console's strict CSP."""

from __future__ import annotations

import re
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from enforcement.config.settings import Settings
from enforcement.core.rules import Rules
from enforcement.http.admission import ADMISSION
from enforcement.http.apidocs.routes import STATIC
from enforcement.http.app import create_app

TYPES = {".js": "text/javascript", ".css": "text/css"}


def references(page: str) -> list[str]:
    return re.findall(r'<(?:script|link)\b[^>]*?(?:src|href)="([^"]+)"', page)


async def test_docs_page_is_swagger_ui_from_the_package(demo: tuple[Settings, Rules]) -> None:
    settings, rules = demo
    async with TestClient(TestServer(create_app(settings, rules, watch=False))) as client:
        r = await client.get("/docs")
        page = await r.text()
        assert r.status == 200 and r.content_type == "text/html"
        csp = r.headers["Content-Security-Policy"]
        assert "script-src 'self';" in csp and "unsafe" not in csp
        assert r.headers["X-Frame-Options"] == "DENY"
        # nothing from elsewhere, no inline code: every script is a file of ours
        assert not re.search(r"\b(?:https?:)?//", page), "the page names another origin"
        assert not re.search(r"<script(?![^>]*\bsrc=)", page), "an inline script"
        assert not re.search(r"\son\w+=", page), "an inline event handler"
        refs = references(page)
        assert {"/docs/static/swagger-ui-bundle.js", "/docs/static/init.js"} <= set(refs)
        assert "/docs/static/swagger-ui.css" in refs
        for ref in refs:
            r = await client.get(ref)
            assert r.status == 200, ref
            assert r.content_type == TYPES[Path(ref).suffix], ref
            assert "Content-Security-Policy" in r.headers and r.headers["ETag"]
        bundle = await client.get("/docs/static/swagger-ui-bundle.js")
        body = await bundle.read()
        assert len(body) > 500_000 and b"SwaggerUIBundle" in body
        assert "max-age=86400" in bundle.headers["Cache-Control"]
        again = await client.get(
            "/docs/static/swagger-ui-bundle.js", headers={"If-None-Match": bundle.headers["ETag"]}
        )
        assert again.status == 304 and not await again.read()
        init = await client.get("/docs/static/init.js")
        script = await init.text()
        assert init.headers["Cache-Control"] == "no-cache"  # ours: seen at once after upgrades
        assert 'url: "/openapi.json"' in script and "tryItOutEnabled: true" in script
        assert "validatorUrl: null" in script  # the public validator is never called
        # the document Swagger UI reads, with the scheme its Authorize button offers
        doc = await (await client.get("/openapi.json")).json()
        assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
        assert {"/docs", "/docs/plain"} <= set(doc["paths"])
        r = await client.get("/docs/static/../routes.py")
        assert r.status == 404 and (await r.json())["error"] == "not_found"
        r = await client.get("/docs/static/nothing.js")
        assert r.status == 404 and (await r.json())["error"] == "not_found"
        plain = await client.get("/docs/plain")
        assert plain.status == 200 and "POST /v1/transits" in await plain.text()


async def test_docs_take_no_admission_slot(demo: tuple[Settings, Rules]) -> None:
    """Every slot taken: the API answers 503, the reference still opens."""
    settings, rules = demo
    app = create_app(settings, rules, watch=False)
    async with TestClient(TestServer(app)) as client:
        admission = app[ADMISSION]
        admission.in_flight = admission.limit
        try:
            r = await client.get("/openapi.json")
            assert r.status == 503 and (await r.json())["error"] == "overloaded"
            for path in ("/docs", "/docs/static/init.js", "/docs/static/swagger-ui.css"):
                assert (await client.get(path)).status == 200, path
        finally:
            admission.in_flight = 0


def test_vendored_files_are_package_data() -> None:
    """What the wheel ships: pyproject's package-data globs cover every file /docs serves."""
    import tomllib

    root = Path(__file__).resolve().parents[2]
    pyproject = tomllib.loads((root / "pyproject.toml").read_text())
    globs = pyproject["tool"]["setuptools"]["package-data"]["enforcement"]
    package = root / "enforcement"
    shipped = {p for g in globs for p in package.glob(g)}
    files = [p for p in STATIC.rglob("*") if p.is_file()]
    assert {f.name for f in files} >= {
        "swagger-ui-bundle.js",
        "swagger-ui.css",
        "LICENSE",
        "NOTICE",
    }
    assert not [f for f in files if f not in shipped]
