"""Peers (f) and (g) for bench/compare.py: what a city would build instead of Varco with the
durable log, each judging as peers (d) and (e) do and recording every transit durably before
answering, in one round trip to its store.

    python -m bench.peer_logged PORT pg-logged DSN [--pool 32]
    python -m bench.peer_logged PORT redis-logged URL

The HTTP side is peer_server.py's (same decoding, normalisation, rule, answer); what differs is
the one call to the store, which both checks and records:

(f) pg-logged: one SQL statement, so one implicit transaction and one round trip: a CTE reads
    the plate's permits (the btree index of (d)), judges them in SQL (the same rule: the
    permit ids that cover ts and the gate's zone, else the closest miss) and INSERTs the
    transit (camera, event id, gate, plate, ts, verdict, reason, permit ids, received) into
    `bench_transits`, whose primary key (camera, event_id) is the dedup Varco keeps too
    (`ON CONFLICT DO NOTHING`: a retry is not logged twice). `synchronous_commit = on` on
    every connection: the answer leaves after the commit's WAL flush, PostgreSQL's own group
    commit sharing one flush among the backends that commit together. The rows returned are
    the permits, judged again in Python for the answer (as (d)), so the answer and the row
    come from the same rule written twice: the verification compares them
    (compare_verify.py).
(g) redis-logged: one Lua script (EVALSHA), so one round trip: GET the plate's permits (the
    key of (e)), judge them in Lua, SET the dedup key NX with a TTL and, when new, XADD the
    MessagePack record to a stream; returns the permits for the answer. The Redis runs with
    `appendonly yes, appendfsync always` as Varco's log Redis does (EmbeddedRedis): a write is
    acknowledged once fsynced, Redis batching the fsync per event-loop pass.

Not done, as for (d) and (e): API keys, schedules, time slots, metrics; nor the transit id
Varco derives, the spool for a store that is away, or review and violation follow-up.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any, Final

import msgspec
import uvloop
from aiohttp import web

from enforcement.core.verdict import (
    ALLOWED,
    EXPIRED,
    MISS_REASONS,
    NO_PERMIT,
    NOT_YET_VALID,
    PENDING,
    WRONG_ZONE,
)

from .peer_server import TABLE, Row, make_app, pg_pool

LOG_TABLE: Final = "bench_transits"
CREATE_LOG_TABLE: Final = (
    f"CREATE TABLE {LOG_TABLE} (camera text NOT NULL, event_id text NOT NULL, "
    "gate text NOT NULL, plate text NOT NULL, ts timestamptz NOT NULL, verdict text NOT NULL, "
    "reason text NOT NULL, permits text[] NOT NULL, received timestamptz NOT NULL, "
    "PRIMARY KEY (camera, event_id))"
)
_REASONS_SQL: Final = "ARRAY[" + ", ".join(f"'{r}'" for r in MISS_REASONS) + "]"

# $1 plate, $2 ts (epoch s), $3 the gate's zone mask, $4 camera, $5 event id, $6 gate.
PG_LOG_QUERY: Final = f"""
WITH p AS (
  SELECT permit_id, valid_from, valid_to, zones FROM {TABLE} WHERE plate = $1::text
), v AS (
  SELECT array_agg(permit_id ORDER BY permit_id) FILTER (
           WHERE $2::bigint >= valid_from AND $2::bigint < valid_to AND (zones & $3::int) <> 0
         ) AS ids,
         max(CASE WHEN $2::bigint < valid_from THEN {NOT_YET_VALID}
                  WHEN $2::bigint >= valid_to THEN {EXPIRED}
                  WHEN (zones & $3::int) = 0 THEN {WRONG_ZONE} END) AS miss
  FROM p
), ins AS (
  INSERT INTO {LOG_TABLE}
  SELECT $4::text, $5::text, $6::text, $1::text, to_timestamp($2::bigint),
         CASE WHEN ids IS NULL THEN '{PENDING}' ELSE '{ALLOWED}' END,
         CASE WHEN ids IS NULL THEN ({_REASONS_SQL})[coalesce(miss, {NO_PERMIT}) + 1]
              ELSE 'permit' END,
         coalesce(ids, '{{}}'), now()
  FROM v
  ON CONFLICT DO NOTHING
)
SELECT permit_id, valid_from, valid_to, zones FROM p
"""

STREAM: Final = "bench:transits"  # the peer's own store, not Varco's keys (enforcement/keys.py)
SEEN: Final = "bench:seen:"
SEEN_TTL_S: Final = 86400
_REASONS_LUA: Final = "{" + ", ".join(f"'{r}'" for r in MISS_REASONS) + "}"

# KEYS: plate, stream, dedup key. ARGV: ts, zone mask, camera, event id, gate, received, ttl.
REDIS_LOG_LUA: Final = f"""
local REASONS = {_REASONS_LUA}
local raw = redis.call('GET', KEYS[1])
local t = tonumber(ARGV[1])
local mask = tonumber(ARGV[2])
local ids = {{}}
local miss = {NO_PERMIT}
if raw then
  for _, p in ipairs(cmsgpack.unpack(raw)) do
    local why = nil
    if t < p[2] then why = {NOT_YET_VALID}
    elseif t >= p[3] then why = {EXPIRED}
    elseif bit.band(p[4], mask) == 0 then why = {WRONG_ZONE} end
    if why == nil then ids[#ids + 1] = p[1] elseif why > miss then miss = why end
  end
end
local verdict, reason = '{ALLOWED}', 'permit'
if #ids > 0 then table.sort(ids) else verdict, reason = '{PENDING}', REASONS[miss + 1] end
if redis.call('SET', KEYS[3], '1', 'NX', 'EX', ARGV[7]) then
  redis.call('XADD', KEYS[2], '*', 'r', cmsgpack.pack(
    {{ARGV[4], ARGV[3], ARGV[5], KEYS[1], t, verdict, reason, ids, tonumber(ARGV[6])}}))
end
return raw
"""
# The stream record's fields, in order (compare_verify.py reads them back).
RECORD_FIELDS: Final = (
    "event_id",
    "camera",
    "gate",
    "plate",
    "ts",
    "verdict",
    "reason",
    "permits",
    "received",
)


def pg_logged_app(dsn: str, pool_size: int) -> web.Application:
    state: dict[str, Any] = {}

    async def lookup(text: str, t: Any, ts: int, mask: int) -> Sequence[Row]:
        return await state["pool"].fetch(  # type: ignore[no-any-return]
            PG_LOG_QUERY, text, ts, mask, t.camera, t.event_id, t.gate
        )

    async def setup(app: web.Application) -> AsyncIterator[None]:
        pool = await pg_pool(dsn, pool_size, synchronous_commit="on")
        state["pool"] = pool
        yield
        await pool.close()

    return make_app(lookup, setup)


def redis_logged_app(url: str) -> web.Application:
    import redis.asyncio as aioredis

    decode = msgspec.msgpack.Decoder(list[tuple[str, int, int, int]]).decode
    state: dict[str, Any] = {}

    async def lookup(text: str, t: Any, ts: int, mask: int) -> Sequence[Row]:
        raw = await state["r"].evalsha(
            state["sha"],
            3,
            text,
            STREAM,
            f"{SEEN}{t.camera}:{t.event_id}",
            ts,
            mask,
            t.camera,
            t.event_id,
            t.gate,
            time.time(),
            SEEN_TTL_S,
        )
        return () if raw is None else decode(raw)

    async def setup(app: web.Application) -> AsyncIterator[None]:
        r = aioredis.Redis.from_url(url, max_connections=256)
        state["sha"] = await r.script_load(REDIS_LOG_LUA)
        state["r"] = r
        yield
        await r.aclose()

    return make_app(lookup, setup)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("port", type=int)
    p.add_argument("backend", choices=("pg-logged", "redis-logged"))
    p.add_argument("url", help="asyncpg DSN or Redis URL")
    p.add_argument("--pool", type=int, default=32, help="asyncpg pool size (fixed)")
    args = p.parse_args()
    if args.backend == "pg-logged":
        app = pg_logged_app(args.url, args.pool)
    else:
        app = redis_logged_app(args.url)
    uvloop.install()
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
