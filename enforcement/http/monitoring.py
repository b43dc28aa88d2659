"""`/metrics`: the route, and what it shows besides requests and verdicts (metrics.py): the
index, the loader, the transit log, Redis's memory, admission control and rate limits, the
follow-up, the feeds and the audit trail, read from their owners when scraped; under
`serve --workers N`, every worker's, merged (siblings.py).

Labels are configuration (feed names, key ids) or outcomes, never data: no plate, key or
reason.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from aiohttp import web

from ..replica.sources import SourceStatus
from .metrics import render
from .service import Service


def register_gauges(service: Service) -> None:
    """The gauges and counters /metrics reads from the service's parts at render time."""
    m, holder = service.metrics, service.holder

    def rev() -> float:
        return holder.current.revision if holder.current else -1

    def age() -> float:
        return time.time() - holder.current.built_at if holder.current else -1

    def permits() -> float:
        return holder.current.index.permit_count if holder.current else 0

    m.gauge("varco_index_revision", "Permit-database revision of the live index.", rev, "min")
    m.gauge("varco_index_age_seconds", "Seconds since the live index was built.", age)
    m.gauge(
        "varco_index_freshness_lag_seconds",
        "Seconds since the permit database was last known reflected in the index.",
        lambda: time.time() - holder.current.fresh_at if holder.current else -1,
    )
    m.gauge(
        "varco_index_stale",
        "1 when permit changes were missed (resynchronising).",
        lambda: float(holder.current is not None and holder.current.overlay.stale is not None),
    )
    m.gauge(
        "varco_overlay_changes",
        "Permit changes applied on top of the snapshot.",
        lambda: len(holder.current.overlay) if holder.current else 0,
    )
    m.gauge("varco_index_permits", "Permits in the live index.", permits, "min")
    m.gauge("varco_snapshot_swaps_total", "Snapshots activated.", lambda: holder.swaps, "sum")
    m.gauge(
        "varco_snapshot_rejected_total",
        "Snapshots refused (corrupt, unreadable).",
        lambda: holder.rejected,
        "sum",
    )

    def loader() -> float:
        seen = service.follower.loader.seen if service.follower is not None else None
        return -1 if seen is None else float(seen)

    m.gauge(
        "varco_loader_lease_held",
        "1 while a loader holds its lease in Redis, 0 when none does (-1: not known).",
        loader,
        "min",
    )

    def transits(attr: str) -> Callable[[], float]:
        return lambda: (
            getattr(service.intake.transit_log, attr)
            if service.intake.transit_log is not None
            else 0
        )

    m.gauge(
        "varco_transits_logged_redis_total",
        "Transits written to the Redis stream.",
        transits("written_redis"),
        "sum",
    )
    m.gauge(
        "varco_transits_spooled_total",
        "Transits written to the local spool.",
        transits("written_spool"),
        "sum",
    )
    m.gauge(
        "varco_transits_replayed_total",
        "Spooled transits replayed into Redis.",
        transits("replayed"),
        "sum",
    )
    m.gauge(
        "varco_transits_duplicate_total",
        "Camera retries answered with the standing verdict.",
        transits("duplicates"),
        "sum",
    )
    m.gauge(
        "varco_transits_corrected_total",
        "Camera corrections: the same event with another plate, judged again.",
        transits("corrections"),
        "sum",
    )
    m.gauge(
        "varco_transits_new_passage_total",
        "Camera event ids reused for another passage (an Axis camera restarted).",
        transits("new_passages"),
        "sum",
    )
    m.gauge(
        "varco_transits_refused_total",
        "Transits refused (spool full or failing).",
        transits("refused"),
        "sum",
    )
    m.gauge(
        "varco_transit_log_groups_total",
        "Group commits (writes of queued transits).",
        transits("groups"),
        "sum",
    )
    m.gauge(
        "varco_transit_log_to_spool",
        "1 while transits go to the local spool.",
        lambda: float(
            service.intake.transit_log is not None and not service.intake.transit_log.redis_ok
        ),
    )
    m.gauge(
        "varco_transit_spool_bytes",
        "Bytes in the local transit spool.",
        lambda: (
            service.intake.transit_log.spool.bytes_used
            if service.intake.transit_log is not None and service.intake.transit_log.spool
            else 0
        ),
        "sum",  # each worker's own spool
    )

    def memory(attr: str) -> Callable[[], float]:
        return lambda: float(getattr(service.memory, attr)) if service.memory is not None else -1

    m.gauge(
        "varco_redis_memory_used_bytes",
        "Redis's used_memory at the last read (-1: not watched).",
        memory("used"),
    )
    m.gauge(
        "varco_redis_memory_max_bytes",
        "Redis's memory ceiling: its maxmemory, else [redis] max_memory (0: none).",
        memory("ceiling"),
    )
    m.gauge(
        "varco_redis_memory_state",
        "Redis's memory: 0 ok, 1 past [redis] memory_warn, 2 full (transits to the spool), "
        "-1 unknown.",
        memory("state"),
    )

    m.gauge_by(
        "varco_followup_transits_total",
        "Transits the follow-up workers handled, by outcome.",
        "outcome",
        lambda: dict(service.followup.counts) if service.followup is not None else {},
        "sum",
    )

    def feeds() -> list[SourceStatus]:
        return list(service.follower.sources.values()) if service.follower is not None else []

    def feed_age(s: SourceStatus) -> float:
        a = s.age_s(time.time())
        return -1 if a is None else a

    m.gauge_by(
        "varco_feed_age_seconds",
        "Seconds since the feed's last good sync (-1: never).",
        "feed",
        lambda: {s.name: feed_age(s) for s in feeds()},
    )
    m.gauge_by(
        "varco_feed_max_age_seconds",
        "The feed's age bound (older: a warning).",
        "feed",
        lambda: {s.name: s.max_age_s for s in feeds()},
    )
    m.gauge_by(
        "varco_feed_failing",
        "1 while the feed's last attempt failed or is held.",
        "feed",
        lambda: {s.name: s.last_error is not None for s in feeds()},
    )
    m.gauge_by(
        "varco_feed_rejected_rows",
        "Rows rejected by the feed's last good sync.",
        "feed",
        lambda: {s.name: s.rejected for s in feeds()},
    )

    admission, rates = service.admission, service.key_rates
    m.gauge(
        "varco_http_in_flight",
        "Requests holding an admission slot (server.max_in_flight).",
        lambda: admission.in_flight,
    )
    m.gauge(
        "varco_http_in_flight_limit",
        "The in-flight limit in force: adapts up to server.max_in_flight to keep the p90 "
        "latency (first bytes to answer) within server.target_latency_ms.",
        lambda: admission.limit,
    )
    m.gauge(
        "varco_http_queued", "Requests waiting for an admission slot.", lambda: admission.queued
    )
    m.counter_by(
        "varco_http_shed_total",
        "Requests answered 503 overloaded: the queue was full, or no slot freed in time.",
        "reason",
        lambda: dict(admission.shed),
    )
    m.counter_by(
        "varco_rate_limited_total",
        "Requests answered 429 by the per-key rate limit, by key (or camera) id.",
        "key",
        lambda: dict(rates.limited),
    )

    def audit_writes() -> dict[str, float]:
        audit = service.audit
        return {"ok": audit.writes if audit else 0, "failed": audit.failures if audit else 0}

    m.counter_by(
        "varco_audit_writes_total",
        "Police-lookup audit records written (ok) or not (failed: lookup refused).",
        "result",
        audit_writes,
    )


def add_routes(app: web.Application, service: Service) -> None:
    async def metrics(request: web.Request) -> web.Response:
        if service.siblings is None:
            text = service.metrics.render()
        else:  # one of `serve --workers N`: the whole service's (siblings.py)
            text = render(await service.siblings.families(service.metrics))
        return web.Response(text=text, content_type="text/plain", charset="utf-8")

    app.router.add_route("GET", "/metrics", service.endpoint("/metrics", metrics))
