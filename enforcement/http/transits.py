"""The native camera endpoints: `POST /v1/transits` and `POST /v1/transits/batch`.

Varco's own JSON (schemas.TransitIn), judged and recorded by the same intake as every vendor
format (enforcement/transits/intake.py).
"""

from __future__ import annotations

import logging
from typing import Final

from aiohttp import web

from ..config.access import unbound_camera_keys
from ..config.settings import ApiKey
from ..core.plates import normalise
from ..transits.record import Transit
from . import errors
from .auth import CAMERA
from .cameras.registry import check_native
from .connections import FAST_POST
from .endpoints import JSON, decode_buffered, read_json
from .fastpost import FastPost
from .schemas import BATCH_DECODER, ENCODER, TRANSIT_DECODER, BatchOut, TransitIn
from .service import Service

log = logging.getLogger(__name__)

_CHECKED_MAX: Final = 10_000


def native_transit(t: TransitIn, ts: float | None = None) -> Transit:
    """A native transit as the intake takes it (`ts`: its capture instant, if known)."""
    return Transit(
        t.camera,
        t.gate,
        t.event_id,
        t.plate,
        normalise(t.plate, t.country),
        t.ts.timestamp() if ts is None else ts,
        t.confidence,
        t.country,
    )


def add_routes(app: web.Application, service: Service) -> None:
    # Cameras authenticate with keys only (`keyring.require`, synchronous): none signs in.
    settings, intake, require = service.settings, service.intake, service.keyring.require
    answer, logged = intake.answer_native, intake.answer_logged
    # (key id, camera, gate) that `check_native` let through: it depends on nothing else, and
    # a camera posts the same three every time (bounded, as the keyring's header cache).
    checked: set[tuple[str, str, str]] = set()

    def check(key: ApiKey, t: TransitIn) -> None:
        if (key.id, t.camera, t.gate) not in checked:
            check_native(settings, key, (t,))  # its cameras, their gates (registry.py)
            if len(checked) < _CHECKED_MAX:
                checked.add((key.id, t.camera, t.gate))

    # The plain posts are answered at their connection, by the same steps (fastpost.py).
    app[FAST_POST] = FastPost(
        intake,
        service.keyring,
        CAMERA,
        check,
        service.metrics,
        service.admission,
        settings.server.max_body_bytes,
    )
    for key_id in unbound_camera_keys(settings.api_keys):  # only the demo has any (access.py)
        log.warning(
            "demo configuration: camera key %r is bound to no camera and may post as any "
            "camera at any gate; never use this configuration in production",
            key_id,
        )

    async def post_transit(request: web.Request) -> web.Response:
        key = require(request, CAMERA)
        t = decode_buffered(request, TRANSIT_DECODER)  # no await for a body received whole
        if t is None:
            t = await read_json(request, TRANSIT_DECODER)
        check(key, t)
        ts = t.ts.timestamp()
        # The common case in one native step (Intake.answer_native, answer_logged with the
        # log running), else the reference path, which judges and records.
        if intake.transit_log is None:
            body = answer(t.camera, t.gate, t.event_id, t.plate, ts, t.confidence)
        else:
            body = await logged(t, ts)
        if body is None:
            (verdict,) = await intake.accept((native_transit(t, ts),))
            body = ENCODER.encode(verdict)
        return web.Response(body=body, content_type=JSON)

    async def post_batch(request: web.Request) -> web.Response:
        key = require(request, CAMERA)
        batch = await read_json(request, BATCH_DECODER)
        limit = settings.server.max_batch
        if len(batch.transits) > limit:
            raise errors.TooLarge(
                f"at most {limit} transits per batch, got {len(batch.transits)}", "transits"
            )
        check_native(settings, key, batch.transits, "transits")
        results = await intake.accept([native_transit(t) for t in batch.transits], field="transits")
        return web.Response(body=ENCODER.encode(BatchOut(results)), content_type=JSON)

    add, ep = app.router.add_route, service.endpoint
    add("POST", "/v1/transits", ep("/v1/transits", post_transit))
    add("POST", "/v1/transits/batch", ep("/v1/transits/batch", post_batch))
