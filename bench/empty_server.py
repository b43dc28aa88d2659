"""The ceiling for bench_http and bench.compare: aiohttp + uvloop, decode the same body, return
a fixed verdict.

    python -m bench.empty_server PORT                 (a) the stack's ceiling
    python -m bench.empty_server PORT --log REDIS_URL  the floor of any durably logged answer

With --log each request also waits, before its answer, for a fixed 300-byte record to be
written to the Redis at REDIS_URL (append-only, `appendfsync always`) by group commit as
Varco's transit log writes (enforcement/transits/writer.py's connection and hiredis packing,
one Lua call of XADDs per group, a group gathered while the previous one is written): no
judging, no dedup, no transit id, one future per group. What a logged handler on this stack
costs at least, so the ceiling for bench_transits' `logged` under the same load.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
from typing import Any

import redis.asyncio as aredis
import uvloop
from aiohttp import web

from enforcement.http.schemas import TRANSIT_DECODER
from enforcement.transits.writer import GroupWriter, Script

BODY = (
    b'{"verdict":"allowed","reason":"permit","plate":"AB123CD","permits":["PD-1"],'
    b'"index_revision":1}'
)
RECORD = b"r" * 300
_APPEND = "for i = 1, #ARGV do redis.call('XADD', KEYS[1], '*', 'r', ARGV[i]) end return 0"
APPEND = Script(_APPEND, hashlib.sha1(_APPEND.encode()).hexdigest())


class FloorLog:
    """Group commit stripped to what durability needs: gather, one call, wake the group."""

    def __init__(self, url: str) -> None:
        self.redis = aredis.Redis.from_url(url)
        self.writer = GroupWriter(self.redis)
        self.records: list[bytes] = []
        self.done: asyncio.Future[None] | None = None
        self.wake = asyncio.Event()

    async def append(self, record: bytes) -> None:
        if self.done is None:
            self.done = asyncio.get_running_loop().create_future()
        self.records.append(record)
        done = self.done
        self.wake.set()
        await done

    async def run(self) -> None:
        while True:
            await self.wake.wait()
            await asyncio.sleep(0)  # as Varco's log: one more turn joins the group
            self.wake.clear()
            records, done, self.records, self.done = self.records, self.done, [], None
            if done is None:
                continue
            try:
                await self.writer.call(APPEND, ["floor"], records, None)
            except Exception as exc:
                done.set_exception(exc)
            else:
                done.set_result(None)


def make_app(log_url: str | None) -> web.Application:
    app = web.Application()
    floor = FloorLog(log_url) if log_url else None

    async def transit(request: web.Request) -> web.Response:
        TRANSIT_DECODER.decode(await request.read())
        if floor is not None:
            await floor.append(RECORD)
        return web.Response(body=BODY, content_type="application/json")

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(body=b'{"status":"ok"}', content_type="application/json")

    async def start_floor(app: web.Application) -> Any:
        assert floor is not None
        task = asyncio.create_task(floor.run())
        yield
        task.cancel()
        await floor.writer.close()
        await floor.redis.aclose()

    app.router.add_post("/v1/transits", transit)
    app.router.add_get("/healthz", healthz)
    if floor is not None:
        app.cleanup_ctx.append(start_floor)
    return app


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("port", type=int)
    p.add_argument("--log", metavar="REDIS_URL", help="log each request durably first")
    args = p.parse_args()
    uvloop.install()
    web.run_app(make_app(args.log), host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
