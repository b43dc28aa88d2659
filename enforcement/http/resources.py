"""What the service opens while it runs, one cleanup context each: opened before the first
request, handed to the `Service`, closed after the last.

The index follower (Redis) or snapshot watcher (files) is the replica's (replica/); here are
the audit trail, the transit log, the violations store with the follow-up worker, the watch
on Redis's memory, and the sign-in sessions (this replica's status for the others: replicas.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

import redis.asyncio as aredis
from aiohttp import web

from ..audit.writer import AuditLog, FileAudit, RedisAudit, audit_file
from ..keys import Keys
from ..memory import MemoryWatch
from ..transits.camerahealth import FLUSH_S
from ..transits.followup import FollowUp, running
from ..transits.log import TransitLog
from ..transits.review import ReviewQueue
from ..transits.search import TransitSearch
from ..transits.violations import Violations
from .service import Service
from .sessions import Sessions

log = logging.getLogger(__name__)

Resource = Callable[[web.Application], AsyncIterator[None]]


def audit_trail(service: Service, redis_url: str | None) -> Resource:
    """Every police lookup is recorded first: in Redis when following one, else in a file."""
    settings = service.settings

    async def run(app: web.Application) -> AsyncIterator[None]:
        audit: AuditLog = (
            RedisAudit(redis_url, Keys(settings.redis.prefix))
            if redis_url is not None
            else FileAudit(audit_file(settings.storage.data_dir))
        )
        service.audit = audit
        try:
            yield
        finally:
            service.audit = None
            await audit.close()

    return run


def transit_log(service: Service, redis_url: str | None) -> Resource:
    """The durable transit log: Redis at `redis_url`, else (or while it is away) the spool."""
    settings = service.settings

    async def run(app: web.Application) -> AsyncIterator[None]:
        log = TransitLog(
            redis_url=redis_url,
            keys=Keys(settings.redis.prefix),
            spool_root=settings.storage.spool_dir,
            spool_max_bytes=settings.transit_log.spool_max_bytes,
            write_timeout_s=settings.transit_log.write_timeout_s,
            dedup_window_s=settings.transit_log.dedup_window_s,
            correction_window_s=settings.transit_log.correction_window_s,
            retention_s=settings.retention.allowed_s,
        )
        await log.start()
        service.intake.transit_log = log
        try:
            yield
        finally:
            service.intake.transit_log = None
            await log.stop()

    return run


def violations(service: Service, redis_url: str, followup: bool) -> Resource:
    """The violations store for GET /v1/violations; and the follow-up worker if asked."""
    settings, rules = service.settings, service.rules

    async def run(app: web.Application) -> AsyncIterator[None]:
        r = aredis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=2)
        keys = Keys(settings.redis.prefix)
        service.violations = Violations(r, keys, rules.clock)
        worker = None
        if followup:
            worker = FollowUp(
                r,
                keys,
                rules,
                service.checker,
                service.holder,
                retention_allowed_s=settings.retention.allowed_s,
                retention_violations_s=settings.retention.violations_s,
            )
            service.followup = worker
        try:
            if worker is None:
                yield
            else:
                async with running(worker):
                    yield
        finally:
            service.violations = service.followup = None
            await r.aclose()

    return run


def redis_memory(service: Service, redis_url: str) -> Resource:
    """Redis's memory read every few seconds, for /readyz and /metrics; a Redis switched to a
    policy that would evict gets no more transits (they go to the spool)."""
    settings = service.settings.redis

    def evicting(reason: str) -> None:
        if service.intake.transit_log is not None:
            service.intake.transit_log.distrust(reason)

    def refusing() -> bool:
        return service.intake.transit_log is not None and service.intake.transit_log.out_of_memory

    async def run(app: web.Application) -> AsyncIterator[None]:
        watch = MemoryWatch(
            redis_url,
            configured_max=settings.max_memory,
            warn_fraction=settings.memory_warn,
            poll_s=settings.memory_poll_s,
            on_evicting=evicting,
            refusing=refusing,
        )
        await watch.start()
        service.memory = watch
        try:
            yield
        finally:
            service.memory = None
            await watch.stop()

    return run


def sessions(service: Service, redis_url: str) -> Resource:
    """People's sign-in sessions and lock-outs, in the Redis every replica follows, so that a
    session begun on one replica is known to all (sessions.py)."""
    console = service.settings.console

    async def run(app: web.Application) -> AsyncIterator[None]:
        r = aredis.Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)
        service.sessions = Sessions(
            r, Keys(service.settings.redis.prefix), console.session_idle_s, console.session_max_s
        )
        try:
            yield
        finally:
            service.sessions = None
            await r.aclose()

    return run


def desk(service: Service, redis_url: str | None) -> Resource:
    """The desk's review queue and transit search (with a Redis), and camera health's flush
    every FLUSH_S seconds (into Redis, or into this process's own hour without one)."""
    settings, rules = service.settings, service.rules

    async def flush_loop(r: aredis.Redis | None, keys: Keys) -> None:
        failing = False
        while True:
            await asyncio.sleep(FLUSH_S)
            try:
                if r is None:
                    await service.health.flush(None, keys)
                else:
                    await service.health.tick(r, keys)
                failing = False
            except Exception as exc:  # counted again at the next flush
                if not failing:
                    log.warning("camera health: flush failed (%s)", type(exc).__name__)
                failing = True

    async def run(app: web.Application) -> AsyncIterator[None]:
        keys = Keys(settings.redis.prefix)
        r = None
        if redis_url is not None:
            r = aredis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=2)
            violations = Violations(r, keys, rules.clock)
            service.review = ReviewQueue(
                r, keys, violations, rules, service.checker, service.holder
            )
            service.search = TransitSearch(
                r,
                keys,
                skew_s=settings.enforcement.max_clock_skew_s,
                delivery_s=settings.enforcement.max_delivery_delay_s,
            )
            service.desk_redis = r
        task = asyncio.create_task(flush_loop(r, keys), name="camera-health-flush")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            service.review = service.search = service.desk_redis = None
            if r is not None:
                with contextlib.suppress(Exception):
                    await service.health.flush(r, keys)  # what this process counted last
                await r.aclose()

    return run
