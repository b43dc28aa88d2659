"""Every replica's index revision and age, for the console's health page: `GET /v1/replicas`.

/readyz answers for the one process that took the request; behind a balancer that says
nothing of the others. So each serving process with a Redis writes a small status (what
/readyz computes, cut down) every PERIOD_S seconds into one hash, `{p}:replicas`, field
`host:pid`, the instant inside; a reader lists those written within FRESH_S and deletes the
older ones (a process killed without its clean stop). One hash rather than a key per replica
with a TTL: listing it needs no SCAN over a keyspace holding a key per recent camera event,
and per-field expiry needs Redis 7.4. A clean stop deletes its own field at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Final

import msgspec
import redis.asyncio as aredis
from aiohttp import web

from ..keys import Keys
from . import errors
from .apidoc import BEARER, PathDocs, error, json_response
from .apidoc import errors as error_docs
from .auth import OPERATOR
from .endpoints import JSON
from .params import redis_down
from .schemas import ENCODER
from .service import Service

log = logging.getLogger(__name__)

PERIOD_S: Final = 2.0
FRESH_S: Final = 3 * PERIOD_S  # three missed writes: gone


class ReplicaStatus(msgspec.Struct):
    host: str
    pid: int
    port: int  # as configured (`[server] port`); `serve --workers` share it
    index_revision: int | None
    index_age_s: float | None
    freshness_lag_s: float | None
    ready: bool
    reason: str | None
    spool_bytes: int
    updated_at: float  # epoch seconds


class ReplicasOut(msgspec.Struct):
    replicas: list[ReplicaStatus]


_DECODE: Final = msgspec.json.Decoder(ReplicaStatus)


Probe = Callable[[Service], tuple[bool, dict[str, object]]]  # readiness.readiness


def status_of(service: Service, probe: Probe, now: float) -> ReplicaStatus:
    ok, info = probe(service)
    spool = info.get("transit_log")
    return ReplicaStatus(
        host=service.identity[0],
        pid=service.identity[1],
        port=service.settings.server.port,
        index_revision=info.get("index_revision"),  # type: ignore[arg-type]
        index_age_s=info.get("index_age_s"),  # type: ignore[arg-type]
        freshness_lag_s=info.get("freshness_lag_s"),  # type: ignore[arg-type]
        ready=ok,
        reason=info.get("reason"),  # type: ignore[arg-type]
        spool_bytes=spool.get("spool_bytes", 0) if isinstance(spool, dict) else 0,
        updated_at=round(now, 3),
    )


async def fresh(r: aredis.Redis, keys: Keys, now: float) -> list[ReplicaStatus]:
    """The statuses written within FRESH_S, by host and pid; older ones deleted."""
    raw: dict[bytes, bytes] = await r.hgetall(keys.replicas)  # type: ignore[assignment]
    out: list[ReplicaStatus] = []
    stale: list[bytes] = []
    for field, value in raw.items():
        try:
            s = _DECODE.decode(value)
        except msgspec.DecodeError:
            stale.append(field)  # written by another version: it will write again
            continue
        if now - s.updated_at <= FRESH_S:
            out.append(s)
        else:
            stale.append(field)
    if stale:
        await r.hdel(keys.replicas, *stale)
    out.sort(key=lambda s: (s.host, s.pid))
    return out


def publisher(
    service: Service, redis_url: str, probe: Probe
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context (as resources.py's): this process's status into `{p}:replicas` every
    PERIOD_S seconds while it runs; its field deleted when it stops. `probe` is what /readyz
    computes, passed in: importing readiness.py here would deepen the import layers past
    tests/test_layout.py's bound."""
    keys = Keys(service.settings.redis.prefix)

    async def loop(r: aredis.Redis, field: str) -> None:
        failing = False
        while True:
            try:
                status = status_of(service, probe, time.time())
                await r.hset(keys.replicas, field, ENCODER.encode(status))
                failing = False
            except Exception as exc:  # Redis away: /readyz says so; written again when back
                if not failing:
                    log.warning("replica status: write failed (%s)", type(exc).__name__)
                failing = True
            await asyncio.sleep(PERIOD_S)

    async def run(app: web.Application) -> AsyncIterator[None]:
        r = aredis.Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)
        service.replicas_redis = r
        field = "{}:{}".format(*service.identity)
        task = asyncio.create_task(loop(r, field), name="replica-status")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            service.replicas_redis = None
            with contextlib.suppress(Exception):  # else it ages out in FRESH_S
                await r.hdel(keys.replicas, field)
            await r.aclose()

    return run


def add_routes(app: web.Application, service: Service) -> None:
    keys = Keys(service.settings.redis.prefix)
    service.docs.append(_DOCS)

    async def replicas(request: web.Request) -> web.Response:
        await service.require(request, OPERATOR)
        if request.query:
            name = sorted(request.query)[0]
            raise errors.Invalid(f"unknown query parameter {name!r}", name)
        r = service.replicas_redis
        if r is None:
            raise errors.NotReady("replicas report through Redis, and this service has none")
        try:
            found = await fresh(r, keys, time.time())
        except (aredis.ConnectionError, aredis.TimeoutError) as exc:
            raise redis_down(exc) from None
        return web.Response(body=ENCODER.encode(ReplicasOut(found)), content_type=JSON)

    app.router.add_route("GET", "/v1/replicas", service.endpoint("/v1/replicas", replicas))


_DOCS: Final = PathDocs(
    {
        "/v1/replicas": {
            "get": {
                "summary": "Every replica's index revision and age (operator, admin)",
                "description": (
                    "Each serving process with a Redis writes its status every "
                    f"{PERIOD_S:g} s; those written within the last {FRESH_S:g} s, by host "
                    "and pid. `updated_at`: epoch seconds of the last write."
                ),
                "security": BEARER,
                "responses": {
                    "200": json_response("ReplicasOut", "The replicas heard from lately"),
                    **error_docs(
                        ("401", "403", "422", "503"),
                        e503=error("Redis unreachable, or this service has none"),
                    ),
                },
            }
        }
    },
    (ReplicasOut, ReplicaStatus),
)
