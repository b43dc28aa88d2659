"""Is this replica fit to answer cameras? `/healthz` (the process answers), `/readyz`.

Ready means a verified index that is not stale (no permit change missed) and reflects the
permit database as of no longer ago than `enforcement.index_max_age`, a loader streaming
permit changes (when following Redis: replica/loader_presence.py), and a transit spool that
is not full. The details (revisions, lags, Redis, feeds, audit trail, transit log) come
with the answer either way; a feed past its `max_age`, and Redis's memory past
`[redis] memory_warn` of its ceiling (or full: transits then go to the spool), are warnings,
not unreadiness.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Iterable

from aiohttp import web

from ..replica.sources import SourceStatus
from .endpoints import JSON
from .schemas import ENCODER
from .service import Service


def readiness(service: Service) -> tuple[bool, dict[str, object]]:
    """Ready = a verified index, not stale, reflecting the permit database as of no longer
    ago than `enforcement.index_max_age`; and the details."""
    holder, follower = service.holder, service.follower
    live = holder.current
    info: dict[str, object] = {
        "snapshot_swaps": holder.swaps,
        "snapshot_rejected": holder.rejected,
        "last_error": holder.last_error,
        "worker_pid": os.getpid(),
    }  # which of `serve --workers` answered
    warnings: list[str] = []
    if follower is not None:
        info["redis"] = {
            "connected": follower.connected,
            "last_error": follower.last_error,
            "changes_applied": follower.changes_applied,
            "resyncs": follower.resyncs,
        }
        info["loader"] = {
            "lease_held": follower.loader.seen,
            "absent_s": round(follower.loader.absent_for(), 1),
        }
        if follower.sources:
            info["sources"], warnings = _sources(follower.sources.values())
    if service.memory is not None:  # a warning, not unreadiness: at the ceiling, the spool
        info["redis_memory"] = service.memory.status()
        warnings += service.memory.warnings()
    if warnings:
        info["warnings"] = warnings
    if service.audit is not None:  # not part of readiness: transits do not need it, lookups do
        info["audit"] = service.audit.status()
    info["admission"] = service.admission.status()
    log_ = service.intake.transit_log
    if service.followup is not None:
        info["followup"] = service.followup.status()
    if log_ is not None:
        info["transit_log"] = log_.status()
        if log_.full:  # transits would be refused: send cameras elsewhere
            return False, {"ready": False, "reason": "transit spool full", **info}
    if live is None:
        return False, {"ready": False, "reason": "no verified index loaded", **info}
    lag = time.time() - live.fresh_at
    stale = live.overlay.stale
    fresh = lag <= service.settings.enforcement.index_max_age_s
    reason = (
        f"index stale: {stale}"
        if stale is not None
        else None
        if fresh
        else "index older than enforcement.index_max_age"
    )
    if reason is None and follower is not None and follower.loader.missing:
        # Nothing streams permit changes: a permit issued now would never be enforced here.
        reason = (
            f"no loader: none has held the lease in Redis for {follower.loader.absent_for():.0f}"
            " s, so permit changes do not reach this replica (start `varco watch`)"
        )
    return reason is None, {
        "ready": reason is None,
        "reason": reason,
        "index_revision": live.revision,
        "snapshot_revision": live.snapshot_revision,
        "overlay_changes": len(live.overlay),
        "index_built_at": dt.datetime.fromtimestamp(live.built_at, dt.UTC).isoformat(),
        "index_age_s": round(time.time() - live.built_at, 1),
        "freshness_lag_s": round(lag, 1),
        "permits": live.index.permit_count,
        "plates": live.index.plate_count,
        "snapshot": live.source,
        "lookup_kernel": live.index.kernel,
        "unknown_types": list(live.unknown_types),
        **info,
    }


def _sources(statuses: Iterable[SourceStatus]) -> tuple[dict[str, object], list[str]]:
    """The feeds' details for /readyz, and a warning per feed past its max_age (its last good
    permits still count, so the replica stays ready)."""
    now = time.time()
    details: dict[str, object] = {}
    warnings: list[str] = []
    for s in statuses:
        age = s.age_s(now)
        details[s.name] = {
            "age_s": None if age is None else round(age),
            "max_age_s": s.max_age_s,
            "last_error": s.last_error,
            "held": s.held,
            "rows": s.rows,
            "permits": s.permits,
            "rejected": s.rejected,
        }
        if s.too_old(now):
            since = "never synced" if age is None else f"no good sync for {age / 3600:.1f} h"
            error = f"; last error: {s.last_error}" if s.last_error else ""
            warnings.append(f"feed {s.name}: {since} (max_age {s.max_age_s / 3600:g} h){error}")
    return details, warnings


def add_routes(app: web.Application, service: Service) -> None:
    async def healthz(request: web.Request) -> web.Response:
        return web.Response(body=b'{"status":"ok"}', content_type=JSON)

    async def readyz(request: web.Request) -> web.Response:
        ok, info = readiness(service)
        return web.Response(status=200 if ok else 503, body=ENCODER.encode(info), content_type=JSON)

    add, ep = app.router.add_route, service.endpoint
    add("GET", "/healthz", ep("/healthz", healthz))
    add("GET", "/readyz", ep("/readyz", readyz))
