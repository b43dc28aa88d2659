"""Static files read once from the package and the strict headers they go out with: the
console's (console/routes.py) and the API reference's (apidocs/routes.py). Nothing here
imports the service, so both route modules stay one layer above it.

The Content-Security-Policy allows scripts and styles from this origin only, no inline
code, no framing, no plugins.
"""

from __future__ import annotations

import hashlib
import mimetypes
from collections.abc import Mapping
from pathlib import Path
from typing import Final, NamedTuple

from aiohttp import web

from . import errors

_TYPES: Final = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".json": "application/json",
    ".png": "image/png",
    ".svg": "image/svg+xml",
}
CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS: Final = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


class File(NamedTuple):
    body: bytes
    content_type: str
    etag: str


def load(directory: Path) -> dict[str, File]:
    """Every file under `directory`, by its path relative to it (`pages/review.js`)."""
    files: dict[str, File] = {}
    for path in sorted(directory.rglob("*")):
        if not path.is_file() or path.name.startswith("."):
            continue
        kind = _TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0]
        if kind is None:
            continue  # not something the console serves (an editor's backup file)
        body = path.read_bytes()
        etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
        files[path.relative_to(directory).as_posix()] = File(body, kind, etag)
    return files


def answer(
    request: web.Request,
    files: Mapping[str, File],
    name: str,
    headers: Mapping[str, str],
    cache_control: str,
) -> web.Response:
    """The file `name` with `headers`, or 304 when the client holds this version (its ETag
    in If-None-Match); 404 for a name not among `files`."""
    file = files.get(name)
    if file is None:
        raise errors.NotFound(f"no such file: {name[:100]}")
    sent = {**headers, "ETag": file.etag, "Cache-Control": cache_control}
    if file.etag in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers=sent)
    charset = "utf-8" if file.content_type.startswith("text/") else None
    return web.Response(
        body=file.body, content_type=file.content_type, charset=charset, headers=sent
    )
