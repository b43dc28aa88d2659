"""Peers (d) and (e) for bench/compare.py: the ceiling's handler plus the same check served
from PostgreSQL or from Redis instead of Varco's in-memory index.

    python -m bench.peer_server PORT pg DSN [--pool 16]
    python -m bench.peer_server PORT redis URL

Per request, as the ceiling (bench/empty_server.py): read the body and decode it with the same
msgspec decoder; then what Varco does around its index: normalise the plate
(`enforcement.core.plates.normalise`), look the gate's zone bits up, fetch the plate's permits (one
round trip), keep those whose [valid_from, valid_to) contains ts and whose zones cover the
gate's zone, and answer the same `Verdict` JSON (pending: the closest miss as reason, and
`grace_until`). Not done here, so the peers are flattered, never handicapped: API-key check,
gate schedules and time-slot windows (the benchmark's gate is always active and its permit
types have none), the near-match search, metrics.

PostgreSQL: table `bench_permits(plate text, permit_id text, valid_from bigint, valid_to
bigint, zones int)` with a plain btree index on plate; an asyncpg pool of fixed size (prepared
statements cached per connection, as asyncpg does by default), and the per-release reset
disabled: asyncpg >= 0.30 calls `Connection.reset()` on every release unless the pool's
`reset` is a coroutine of one's own, and that reset is one more round trip
(`SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL;`) per request.
Connections carry `application_name = varco-bench-peer`, so compare.py can pin their
backends to the load generator's core.

Redis: one key per plate, the value the msgpack list of `[permit_id, valid_from, valid_to,
zones]` of its permits; one GET per request (redis-py asyncio, hiredis parser).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import msgspec
import uvloop
from aiohttp import web

from enforcement.config.load import load_config
from enforcement.core.plates import normalise
from enforcement.core.rules import zone_mask
from enforcement.core.verdict import (
    ALLOWED,
    EXPIRED,
    MISS_REASONS,
    NO_PERMIT,
    NOT_YET_VALID,
    PENDING,
    WRONG_ZONE,
    Verdict,
)
from enforcement.http.schemas import ENCODER, TRANSIT_DECODER

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "examples" / "demo.toml"
APP_NAME = "varco-bench-peer"
TABLE = "bench_permits"
PG_QUERY = f"SELECT permit_id, valid_from, valid_to, zones FROM {TABLE} WHERE plate = $1"
REVISION = 1  # the snapshot revision compare.py publishes for Varco, echoed for equal bodies

Row = Sequence[Any]  # (permit_id, valid_from, valid_to, zones)
# The store's round trip: (normalised plate, the decoded transit, its ts in epoch seconds, the
# gate's zone mask) -> the plate's permits. The logging peers (peer_logged.py) record the
# transit in the same round trip, hence the transit and the mask.
Lookup = Callable[[str, Any, int, int], Awaitable[Sequence[Row]]]


def judge(
    rows: Sequence[Row],
    text: str,
    t: int,
    mask: int,
    grace_until: Callable[[int], Any],
    event_id: str | None,
) -> Verdict:
    """Varco's rule for permits without time slots at an always-active gate."""
    ids: list[str] = []
    miss = NO_PERMIT
    for permit_id, start, end, zones in rows:
        if t < start:
            why = NOT_YET_VALID
        elif t >= end:
            why = EXPIRED
        elif not zones & mask:
            why = WRONG_ZONE
        else:
            ids.append(permit_id)
            continue
        if why > miss:
            miss = why
    if ids:
        if len(ids) > 1:
            ids.sort()
        return Verdict(ALLOWED, "permit", text, ids, REVISION, None, event_id)
    return Verdict(
        PENDING,
        MISS_REASONS[miss],
        text,
        index_revision=REVISION,
        grace_until=grace_until(t),
        event_id=event_id,
    )


def make_app(
    lookup: Lookup, setup: Callable[[web.Application], AsyncIterator[None]]
) -> web.Application:
    _, rules = load_config(CONFIG, os.environ)
    zones = tuple(rules.zones)
    masks = {
        code: zone_mask(sorted(rules.covered_by[g.zone]), zones) for code, g in rules.gates.items()
    }
    grace = {code: rules.zones[g.zone].grace_s for code, g in rules.gates.items()}
    to_datetime = rules.clock.to_datetime

    async def transit(request: web.Request) -> web.Response:
        t = TRANSIT_DECODER.decode(await request.read())
        mask = masks.get(t.gate)
        if mask is None:
            return web.json_response({"error": "invalid", "field": "gate"}, status=422)
        plate = normalise(t.plate, t.country)
        ts = int(t.ts.timestamp())
        g = grace[t.gate]
        rows = await lookup(plate.text, t, ts, mask)
        verdict = judge(rows, plate.text, ts, mask, lambda x: to_datetime(x + g), t.event_id)
        return web.Response(body=ENCODER.encode(verdict), content_type="application/json")

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(body=b'{"status":"ok"}', content_type="application/json")

    app = web.Application()
    app.router.add_post("/v1/transits", transit)
    app.router.add_get("/healthz", healthz)
    app.cleanup_ctx.append(setup)
    return app


async def no_reset(con: Any) -> None:
    """The pool's per-release reset, disabled: nothing to undo, the handler runs one SELECT."""


async def pg_pool(dsn: str, size: int, **settings: str) -> Any:
    """A fixed-size asyncpg pool without the per-release reset, its backends named APP_NAME
    (compare.py pins them to the load generator's core); `settings`: more server settings."""
    import asyncpg

    return await asyncpg.create_pool(
        dsn,
        min_size=size,
        max_size=size,
        reset=no_reset,
        server_settings={"application_name": APP_NAME, **settings},
    )


def pg_app(dsn: str, pool_size: int) -> web.Application:
    state: dict[str, Any] = {}

    async def lookup(text: str, t: Any, ts: int, mask: int) -> Sequence[Row]:
        if not text:
            return ()
        return await state["pool"].fetch(PG_QUERY, text)  # type: ignore[no-any-return]

    async def setup(app: web.Application) -> AsyncIterator[None]:
        pool = await pg_pool(dsn, pool_size)
        async with pool.acquire() as con:  # prepare once per connection happens on first use
            await con.fetch(PG_QUERY, "")
        state["pool"] = pool
        yield
        await pool.close()

    return make_app(lookup, setup)


def redis_app(url: str) -> web.Application:
    import redis.asyncio as aioredis

    decode = msgspec.msgpack.Decoder(list[tuple[str, int, int, int]]).decode
    state: dict[str, Any] = {}

    async def lookup(text: str, t: Any, ts: int, mask: int) -> Sequence[Row]:
        raw = await state["r"].get(text) if text else None
        return () if raw is None else decode(raw)

    async def setup(app: web.Application) -> AsyncIterator[None]:
        r = aioredis.Redis.from_url(url, max_connections=256)
        await r.ping()
        state["r"] = r
        yield
        await r.aclose()

    return make_app(lookup, setup)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("port", type=int)
    p.add_argument("backend", choices=("pg", "redis"))
    p.add_argument("url", help="asyncpg DSN or Redis URL")
    p.add_argument("--pool", type=int, default=16, help="asyncpg pool size (fixed)")
    args = p.parse_args()
    app = pg_app(args.url, args.pool) if args.backend == "pg" else redis_app(args.url)
    uvloop.install()
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
