"""`/console` and `/console/static/{name}`: the console's files, read once from the package.

No template and no build step: the page is a static HTML shell and ES modules that call the
JSON API with the session cookie; nothing about the caller is ever written into a file, so the
same bytes go to everyone and no secret can be in them. Only the files shipped in static/ are
served, looked up by name in a dict: a request's path never reaches the filesystem.

Every answer carries a strict Content-Security-Policy (scripts and styles from this origin
only, no inline code, no framing, no plugins), so a plate or vendor field that slipped into
the page as markup still could not run; `X-Frame-Options: DENY` says the same to browsers
that predate `frame-ancestors`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from aiohttp import web

from .. import staticfiles
from ..service import Service
from ..staticfiles import HEADERS, load

STATIC: Final = Path(__file__).parent / "static"


def add_routes(app: web.Application, service: Service) -> None:
    files = load(STATIC)

    def answer(request: web.Request, name: str) -> web.Response:
        # Revalidated on every load (no-cache) but not resent: a new version is seen at
        # once after an upgrade, and an unchanged file costs a 304.
        return staticfiles.answer(request, files, name, HEADERS, "no-cache")

    async def index(request: web.Request) -> web.Response:
        return answer(request, "index.html")

    async def static(request: web.Request) -> web.Response:
        return answer(request, request.match_info["name"])

    add, ep = app.router.add_route, service.endpoint
    for method in ("GET", "HEAD"):
        add(method, "/console", ep("/console", index))
        add(method, "/console/", ep("/console", index))
        add(method, "/console/static/{name:.+}", ep("/console/static", static))
