"""A small round-robin reverse proxy: nginx's place in deploy/nginx.conf, for the topology
without Docker. A replica that refuses the connection or answers 503 (not ready, as while it
resynchronises) is skipped for the next one, as nginx's `proxy_next_upstream error timeout
http_503` does. Not for production: use nginx or the city's load balancer there.

    python -m deploy.proxy --port 8080 http://127.0.0.1:8081 http://127.0.0.1:8082
"""

from __future__ import annotations

import argparse
import itertools
import logging

import aiohttp
from aiohttp import web

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "proxy-connection",
        "te",
        "trailer",
    }
)
log = logging.getLogger("proxy")


def make_app(upstreams: list[str]) -> web.Application:
    turn = itertools.cycle(range(len(upstreams)))
    app = web.Application(client_max_size=8 * 1024 * 1024)

    async def session_ctx(app: web.Application):  # type: ignore[no-untyped-def]
        timeout = aiohttp.ClientTimeout(total=10, connect=1)
        app["session"] = aiohttp.ClientSession(timeout=timeout, auto_decompress=False)
        yield
        await app["session"].close()

    app.cleanup_ctx.append(session_ctx)

    async def forward(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        first = next(turn)
        last: web.Response | None = None
        for k in range(len(upstreams)):
            base = upstreams[(first + k) % len(upstreams)]
            try:
                async with app["session"].request(
                    request.method, base + request.path_qs, headers=headers, data=body
                ) as r:
                    payload = await r.read()
                    out = {k: v for k, v in r.headers.items() if k.lower() not in HOP_BY_HOP}
                    last = web.Response(status=r.status, body=payload, headers=out)
                    if r.status != 503:
                        return last
            except (TimeoutError, aiohttp.ClientError) as exc:
                log.warning("upstream %s failed (%s); trying the next", base, type(exc).__name__)
        return last or web.json_response(
            {"error": "bad_gateway", "detail": "no replica answered"}, status=502
        )

    app.router.add_route("*", "/{path:.*}", forward)
    return app


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m deploy.proxy")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("upstreams", nargs="+")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s proxy: %(message)s")
    web.run_app(
        make_app(args.upstreams),
        host=args.host,
        port=args.port,
        access_log=None,
        print=lambda *_: log.info("listening on %s:%d", args.host, args.port),
    )


if __name__ == "__main__":
    main()
