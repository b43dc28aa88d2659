"""The ceiling for bench_http: aiohttp + uvloop, decode the same body, return a fixed verdict."""

from __future__ import annotations

import sys

import uvloop
from aiohttp import web

from enforcement.http.schemas import TRANSIT_DECODER

BODY = (
    b'{"verdict":"allowed","reason":"permit","plate":"AB123CD","permits":["PD-1"],'
    b'"index_revision":1}'
)


async def transit(request: web.Request) -> web.Response:
    TRANSIT_DECODER.decode(await request.read())
    return web.Response(body=BODY, content_type="application/json")


async def healthz(request: web.Request) -> web.Response:
    return web.Response(body=b'{"status":"ok"}', content_type="application/json")


def main() -> None:
    app = web.Application()
    app.router.add_post("/v1/transits", transit)
    app.router.add_get("/healthz", healthz)
    uvloop.install()
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)


if __name__ == "__main__":
    main()
