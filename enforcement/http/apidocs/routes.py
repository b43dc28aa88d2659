"""`/docs` (Swagger UI), `/docs/static/{name}` (its files) and `/docs/plain` (the same
operations as a plain HTML list, for readers without JavaScript).

The files are read once from the package, like the console's (console/routes.py: looked up
by name in a dict, a request's path never reaches the filesystem), and go out with the
console's headers: scripts and styles from this origin only, no inline code, so the page is
static HTML plus init.js. One difference: images may also be `data:` URLs, which is how
Swagger UI draws some icons (an SVG as an <img> runs no script). It loads nothing from
elsewhere; `validatorUrl: null` in init.js keeps it from calling the public validator.

The vendored files (swagger-ui*, README.md says which version) are cached for a day: they
change only with an upgrade of the package, and 2 MB is worth not resending. Our own small
files revalidate on every load (an ETag makes that a 304). None of these routes takes an
admission slot (admission.py): they answer bytes already in memory, and an overloaded
service's reference should still open.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from aiohttp import web

from .. import staticfiles
from ..endpoints import Handler, endpoint
from ..service import Service
from ..staticfiles import CSP, HEADERS, load

STATIC: Final = Path(__file__).parent / "static"
VENDOR_CACHE: Final = "public, max-age=86400"
OWN_CACHE: Final = "no-cache"
DOCS_HEADERS: Final = {
    **HEADERS,
    "Content-Security-Policy": CSP.replace("img-src 'self'", "img-src 'self' data:"),
}


def add_routes(app: web.Application, service: Service) -> None:
    files = load(STATIC)

    def answer(request: web.Request, name: str) -> web.Response:
        cache = VENDOR_CACHE if name.startswith("swagger-ui") else OWN_CACHE
        return staticfiles.answer(request, files, name, DOCS_HEADERS, cache)

    async def page(request: web.Request) -> web.Response:
        return answer(request, "index.html")

    async def static(request: web.Request) -> web.Response:
        return answer(request, request.match_info["name"])

    def ep(name: str, handler: Handler) -> Handler:
        return endpoint(service.metrics, name, handler)  # no admission: see the docstring

    for method in ("GET", "HEAD"):
        app.router.add_route(method, "/docs", ep("/docs", page))
        app.router.add_route(method, "/docs/static/{name:.+}", ep("/docs/static", static))
