"""Each camera endpoint's whole handler per post, in one process: no network, no log.

    .venv/bin/python -m bench.bench_handlers [--posts 10000] [--rounds 5] [--profile]

The handlers of `native` (POST /v1/transits) and of each vendor endpoint, called directly,
each on a new event whose request is built just before the call (untimed) with its body
already received (a real aiohttp StreamReader at end of stream, as a body arriving with its
headers is): authentication, reading and parsing the body, the check against a snapshot of
100,000 synthetic permits (80 % of plates covered), the response. Without the transit log a
handler never waits, so each call runs to completion in one step.

What it leaves out (the HTTP parser, the event loop, the durable log) costs every endpoint
the same, so the difference between a vendor's time and native's is the adapter's own cost,
the figure to cut when bench_cameras says an adapter costs too much. Under load the same
code runs about twice as slow (bench/results/2026-12.md, "Runs of 2026-12-04 (evening)"): read
these as relative, not as a post's cost in service. Rounds are interleaved; the figure is
the best round of each (the least disturbed by the host). `--profile` adds cProfile's top
functions per endpoint (its overhead inflates short functions: use it for where, not how
much).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import datetime as dt
import pstats
import random
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from aiohttp import StreamReader, web
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict, CIMultiDictProxy

from .bench_http import prepare
from .cameras_posts import post_builders, unique_bodies
from .cameras_server import CONFIG

Handler = Callable[[web.Request], Coroutine[Any, Any, web.StreamResponse]]


class _Protocol:
    """What a StreamReader asks of its connection: here nothing is ever paused."""

    _reading_paused = False

    def pause_reading(self) -> None:
        pass

    def resume_reading(self, resume_parser: bool = True) -> None:
        pass


def _maker(
    app: web.Application, loop: asyncio.AbstractEventLoop, path: str, auth: str
) -> tuple[Handler, Callable[[bytes], web.Request]]:
    """The endpoint's handler, and a function building one request for a body, its body already received. aiohttp's
    make_mocked_request builds its mocks per call (milliseconds each), so it builds one, and
    the others share its connection stand-ins, each with its own message and StreamReader."""
    template = make_mocked_request("POST", path, app=app, loop=loop)
    match = loop.run_until_complete(app.router.resolve(template))
    protocol = _Protocol()

    def make(body: bytes) -> web.Request:
        content = StreamReader(protocol, 1 << 16, loop=loop)
        content.feed_data(body)
        content.feed_eof()
        headers = CIMultiDict(
            {
                "Authorization": auth,
                "Content-Type": "application/json",
                "Content-Length": str(len(body)),
            }
        )
        message = template._message._replace(
            headers=CIMultiDictProxy(headers),
            raw_headers=tuple((k.encode(), v.encode()) for k, v in headers.items()),
        )
        request = web.Request(
            message, content, template._protocol, template._payload_writer, template._task, loop
        )
        request._match_info = match  # as the server sets it
        return request

    return match.handler, make


def _run(handler: Handler, make: Callable[[bytes], web.Request], bodies: list[bytes]) -> float:
    """Microseconds per post; each handler must answer 200 without waiting. Each request is
    built just before its call (untimed), as the server parses one just before its handler
    runs: building it touches other code and data, which then compete with the handler's
    for the caches, as in service. (Built all beforehand, the handlers ran ~1.5-2.5 us
    faster and the vendors' gap over native was ~2-3 us smaller.)"""
    total = 0
    for body in bodies:
        request = make(body)
        start = time.perf_counter_ns()
        step = handler(request)
        try:
            step.send(None)
        except StopIteration as done:
            total += time.perf_counter_ns() - start
            if done.value.status != 200:
                raise RuntimeError(
                    f"{request.path}: {done.value.status} {getattr(done.value, 'body', b'')!r}"
                ) from None
        else:
            step.close()
            raise RuntimeError(f"{request.path}: the handler waited (is the log off?)")
    return total / len(bodies) / 1e3


def _profile(
    handler: Handler, make: Callable[[bytes], web.Request], bodies: list[bytes], top: int = 20
) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    _run(handler, make, bodies)
    profiler.disable()
    stats = pstats.Stats(profiler).stats
    n = len(bodies)
    rows = sorted(stats.items(), key=lambda kv: -kv[1][2])[:top]
    for (file, line, func), (_, calls, own, _, _) in rows:
        if Path(file).name in ("bench_handlers.py", "streams.py", "web_request.py") and func in (
            "make",
            "feed_data",
            "feed_eof",
            "__init__",
        ):
            continue  # building the request, not handling it
        print(
            f"    {calls / n:5.2f} calls {own / n * 1e6:6.2f} us  {Path(file).name}:{line} {func}"
        )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--posts", type=int, default=10_000, help="per endpoint and round")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--profile", action="store_true", help="and cProfile's top functions")
    args = p.parse_args(argv)

    from enforcement.config.load import load_config
    from enforcement.http.app import create_app
    from enforcement.http.service import SERVICE

    with tempfile.TemporaryDirectory(prefix="varco-bench-handlers-") as tmp:
        data = Path(tmp)
        permitted, unknown = prepare(data, 100_000)
        # Distinct plates: `prepare` samples permitted ones with repeats, and one plate twice
        # in a capture minute is one transit (a derived event id), answered as a retry.
        plates = list(dict.fromkeys(permitted))[:400] + unknown[:100]
        random.Random(7).shuffle(plates)
        at = dt.datetime.now(dt.UTC).replace(microsecond=0)
        settings, rules = load_config(CONFIG, {"VARCO_DATA_DIR": str(data)})
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        app = create_app(settings, rules, record=False)
        runner = web.AppRunner(app)  # starts the snapshot watcher, as `varco serve` does

        async def ready() -> None:
            await runner.setup()
            for _ in range(200):
                if app[SERVICE].holder.current is not None:
                    return
                await asyncio.sleep(0.05)
            raise RuntimeError("no snapshot loaded")

        loop.run_until_complete(ready())
        endpoints = post_builders()
        handlers: dict[str, Handler] = {}
        makers: dict[str, Callable[[bytes], web.Request]] = {}
        for name, (path, auth, _) in endpoints.items():
            handlers[name], makers[name] = _maker(app, loop, path, auth)
        used = dict.fromkeys(endpoints, 0)  # posts so far: each post a new event

        def bodies(name: str) -> list[bytes]:
            first, used[name] = used[name], used[name] + args.posts
            return unique_bodies(endpoints[name][2], plates, at, first, args.posts)

        for name in endpoints:  # warm-up
            _run(handlers[name], makers[name], bodies(name))
        times: dict[str, list[float]] = {name: [] for name in endpoints}
        for r in range(1, args.rounds + 1):
            order = list(endpoints)
            random.Random(r).shuffle(order)
            for name in order:
                times[name].append(_run(handlers[name], makers[name], bodies(name)))
        native = min(times["native"])
        print(
            f"{args.posts:,} posts per endpoint and round, best of {args.rounds} rounds; "
            "no network, no transit log"
        )
        print(f"{'':16}{'us/post':>9}{'over native':>13}{'share':>7}")
        for name, ts in times.items():
            best = min(ts)
            print(f"{name:16}{best:9.2f}{best - native:+13.2f}{native / best:7.2f}")
            if args.profile:
                _profile(handlers[name], makers[name], bodies(name))
        loop.run_until_complete(runner.cleanup())
        loop.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
