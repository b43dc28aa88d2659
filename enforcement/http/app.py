"""The application factory: `create_app(settings, rules)`.

Routes come from one module per concern (native transits, camera vendors, police lookups,
violations, readiness, metrics, the API description, the web console); each resource the
service opens while it runs is one cleanup context (resources.py, and the replica's follower
or snapshot watcher).
State lives in one `Service` (service.py) under `app[SERVICE]`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from aiohttp import hdrs, web

from ..config.settings import Settings
from ..core.live import IndexHolder
from ..core.rules import Rules
from ..keys import Keys
from ..replica.follower import Follower, redis_follower
from ..replica.watcher import snapshot_watcher
from . import (
    desk,
    errors,
    monitoring,
    plates,
    readiness,
    replicas,
    resources,
    review,
    transits,
    violations,
)
from .admission import ADMISSION
from .apidocs import routes as apidocs
from .cameras import routes as cameras
from .console import routes as console
from .endpoints import JSON
from .openapi import docs_html, openapi_document
from .schemas import ENCODER
from .service import HOLDER, SERVICE, Service

# Adds routes (the admin API, which needs the permit database) and documents them by
# appending to `service.docs`: called with the app, the service and the Redis URL followed.
Extension = Callable[[web.Application, Service, str | None], None]


def create_app(
    settings: Settings,
    rules: Rules,
    holder: IndexHolder | None = None,
    *,
    watch: bool = True,
    redis_url: str | None = None,
    extend: Extension | None = None,
    record: bool = True,
    transit_redis_url: str | None = None,
    followup: bool = False,
) -> web.Application:
    """The application. Follows Redis at `redis_url` (snapshots and permit changes), else the
    local snapshot files; `watch=False` leaves index loading to the caller (tests, benches).
    `record=False` judges transits without logging them: only for benchmarks that measure
    what the log costs. Transits go to the Redis at `transit_redis_url` (default:
    `redis_url`; none: the local spool only); `followup` runs the follow-up worker
    (transits/followup.py) in this process."""
    service = Service(settings, rules, holder or IndexHolder())
    app = web.Application(client_max_size=settings.server.max_body_bytes)
    app[SERVICE] = service
    app[HOLDER] = service.holder
    app[ADMISSION] = service.admission
    app.cleanup_ctx.append(service.admission.probe)
    monitoring.register_gauges(service)

    for module in (transits, plates, violations, review, desk, replicas, readiness, monitoring):
        module.add_routes(app, service)
    _add_docs(app, service)
    cameras.add_routes(app, service)
    console.add_routes(app, service)
    if extend is not None:
        extend(app, service, redis_url)
    _add_catch_all(app, service)

    app.cleanup_ctx.append(resources.audit_trail(service, redis_url))
    if redis_url is not None:
        app.cleanup_ctx.append(resources.sessions(service, redis_url))
    transit_redis = transit_redis_url or redis_url
    if record:
        app.cleanup_ctx.append(resources.transit_log(service, transit_redis))
    app.cleanup_ctx.append(resources.desk(service, transit_redis))
    if transit_redis is not None:
        app.cleanup_ctx.append(resources.violations(service, transit_redis, followup))
        app.cleanup_ctx.append(resources.redis_memory(service, transit_redis))
        app.cleanup_ctx.append(replicas.publisher(service, transit_redis, readiness.readiness))
    if watch and redis_url is not None:

        def adopt(follower: Follower) -> None:
            service.follower = follower

        app.cleanup_ctx.append(
            redis_follower(
                rules,
                service.holder,
                settings.storage.snapshot_dir,
                redis_url,
                Keys(settings.redis.prefix),
                adopt,
            )
        )
    elif watch:
        app.cleanup_ctx.append(snapshot_watcher(settings, rules, service.holder))
    return app


def _add_docs(app: web.Application, service: Service) -> None:
    """`/openapi.json` and `/docs/plain`, built on first request: by then every extension has
    registered its paths; `/docs`, Swagger UI rendering the former (apidocs/)."""

    @functools.cache
    def documents() -> tuple[bytes, str]:
        doc = openapi_document(service.settings, service.rules, service.docs)
        return ENCODER.encode(doc), docs_html(doc)

    async def openapi(request: web.Request) -> web.Response:
        return web.Response(body=documents()[0], content_type=JSON)

    async def docs(request: web.Request) -> web.Response:
        return web.Response(text=documents()[1], content_type="text/html", charset="utf-8")

    add, ep = app.router.add_route, service.endpoint
    add("GET", "/openapi.json", ep("/openapi.json", openapi))
    add("GET", "/docs/plain", ep("/docs/plain", docs))
    apidocs.add_routes(app, service)


def _add_catch_all(app: web.Application, service: Service) -> None:
    """JSON errors for every other method and path (no middleware: see endpoints.py): 405 with
    `Allow` (RFC 9110 section 15.5.6) on a path some route serves, else 404."""
    served = list(app.router.resources())

    async def method_not_allowed(request: web.Request) -> web.Response:
        # Every resource matching the path, with the methods its routes take: two resources
        # may share a path (routes added apart), and only the real ones are asked.
        allowed: set[str] = set()
        for resource in served:
            allowed |= (await resource.resolve(request))[1]
        allowed.discard(hdrs.METH_ANY)
        raise errors.MethodNotAllowed(
            f"{request.method[:20]} is not allowed on {request.path[:200]}",
            headers={"Allow": ", ".join(sorted(allowed))},
        )

    async def not_found(request: web.Request) -> web.Response:
        raise errors.NotFound(f"no such endpoint: {request.path}")

    add, ep = app.router.add_route, service.endpoint
    for resource in served:
        add("*", resource.canonical, ep("method_not_allowed", method_not_allowed))
    add("*", "/{path:.*}", ep("unmatched", not_found))
