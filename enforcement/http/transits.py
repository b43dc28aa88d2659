"""The native camera endpoints: `POST /v1/transits` and `POST /v1/transits/batch`.

Varco's own JSON (schemas.TransitIn), judged and recorded by the same intake as every vendor
format (enforcement/transits/intake.py).
"""

from __future__ import annotations

from aiohttp import web

from ..core.plates import normalise
from ..transits.record import Transit
from . import errors
from .auth import CAMERA
from .cameras.registry import check_own
from .endpoints import JSON, read_json
from .schemas import BATCH_DECODER, ENCODER, TRANSIT_DECODER, BatchOut, TransitIn
from .service import Service


def native_transit(t: TransitIn) -> Transit:
    """A native transit as the intake takes it."""
    return Transit(
        t.camera,
        t.gate,
        t.event_id,
        t.plate,
        normalise(t.plate, t.country),
        t.ts.timestamp(),
        t.confidence,
        t.country,
    )


def add_routes(app: web.Application, service: Service) -> None:
    settings, intake, require = service.settings, service.intake, service.require

    async def post_transit(request: web.Request) -> web.Response:
        key = require(request, CAMERA)
        t = await read_json(request, TRANSIT_DECODER)
        if key.camera is not None:  # a registered camera's key: its own camera and gate only
            check_own(settings, key, (t,))
        (verdict,) = await intake.accept((native_transit(t),))
        return web.Response(body=ENCODER.encode(verdict), content_type=JSON)

    async def post_batch(request: web.Request) -> web.Response:
        key = require(request, CAMERA)
        batch = await read_json(request, BATCH_DECODER)
        if key.camera is not None:
            check_own(settings, key, batch.transits, "transits")
        limit = settings.server.max_batch
        if len(batch.transits) > limit:
            raise errors.TooLarge(
                f"at most {limit} transits per batch, got {len(batch.transits)}", "transits"
            )
        results = await intake.accept([native_transit(t) for t in batch.transits], field="transits")
        return web.Response(body=ENCODER.encode(BatchOut(results)), content_type=JSON)

    add, ep = app.router.add_route, service.endpoint
    add("POST", "/v1/transits", ep("/v1/transits", post_transit))
    add("POST", "/v1/transits/batch", ep("/v1/transits/batch", post_batch))
