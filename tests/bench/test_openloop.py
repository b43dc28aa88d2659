"""The overload bench's open-loop generator (bench/openloop.py) against real servers on
loopback: it counts every answer by status, keeps its schedule, and catches a 200 that
answers another transit."""

from __future__ import annotations

import argparse
import datetime as dt

from aiohttp import web
from aiohttp.test_utils import TestServer

from bench import openloop
from enforcement.config.settings import Settings, with_changes
from enforcement.core.rules import Rules
from enforcement.http.app import create_app

from ..support.api import PERMITS, serving
from ..support.common import publish_permits


def load(port: int, **kw: object) -> argparse.Namespace:
    args = {
        "port": port,
        "plates": "AB123CD,ZZ999ZZ",
        "ts": dt.datetime.now(dt.UTC).isoformat(),
        "connections": 16,
        "closed": 0,
        "rate": 400.0,
        "duration": 0.5,
        "warmup": 0.1,
        "drain": 3.0,
    }
    return argparse.Namespace(**(args | kw))


async def test_every_transit_offered_is_answered_by_its_own_verdict(
    demo: tuple[Settings, Rules],
) -> None:
    settings, rules = demo
    settings = with_changes(settings, server={"snapshot_poll_s": 0.05})
    publish_permits(settings, rules, PERMITS)
    async with serving(create_app(settings, rules)) as (server, _):
        res = await openloop.main_async(load(server.port))
        assert 150 <= res["submitted"] <= 250  # 400/s for 0.5 s, on schedule
        assert res["status"] == {"200": res["submitted"]}
        assert (res["wrong"], res["unanswered"], res["lost"]) == (0, 0, 0)
        closed = await openloop.main_async(load(server.port, closed=4))
        assert closed["status"] == {"200": closed["submitted"]} and closed["submitted"] > 0


async def test_a_200_for_another_transit_is_counted_wrong() -> None:
    async def same_answer(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"verdict": "allowed", "event_id": "someone-else"})

    app = web.Application()
    app.router.add_post("/v1/transits", same_answer)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        res = await openloop.main_async(load(server.port))
        assert res["submitted"] > 0 and res["wrong"] == res["submitted"]
    finally:
        await server.close()
