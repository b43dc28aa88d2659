"""The camera vendors' endpoints: `add_routes(app, service)` (called by `create_app`).

`POST /v1/cameras/{vendor}` (key in `Authorization: Bearer`) and
`POST /v1/cameras/{vendor}/{token}` (token in the URL) for hikvision, axis, milesight,
platerecognizer, rekor and dahua, plus the paths Dahua insists on:
`/NotificationInfo/TollgateInfo` and `/NotificationInfo/KeepAlive` (also under
`/v1/cameras/dahua/{token}/`). Every post goes: who is posting (registry) -> the vendor's
parser (one module each) -> a Transit with the camera's gate and a stable event id ->
`Intake.accept`, the same check, log and verdict as `/v1/transits`. The answer is
`{"results": [verdict, ...]}` (Dahua: `{"Result": true, "results": [...]}`), or
`{"results": [], "ignored": why}` for a heartbeat or another event type.

The usual post is a few kB of JSON that has fully arrived by the time the handler runs: it is
taken straight from the buffered bytes (`body.buffered`), with no awaits, and each vendor's
`transit` makes the one Transit of its usual shape in a few steps; anything else (another
shape or event type, values in another form, a camera whose device field is checked) goes
through the vendor's `from_body`, and multipart, compressed, large or still-arriving bodies
through its streaming `parse`. All give the same answer for the same bytes
(tests/http/cameras/test_fast_paths.py compares the first two on every body the fast path
takes).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final, NamedTuple
from zoneinfo import ZoneInfo

import msgspec
from aiohttp import web

from ...config.settings import Camera
from ...core.verdict import Verdict
from ...transits.record import Transit
from .. import errors
from ..endpoints import JSON
from ..schemas import ENCODER
from ..service import Service
from . import apidoc, axis, dahua, hikvision, milesight, platerecognizer, rekor
from .body import buffered, is_multipart, read_body
from .reads import Context, Payload, Read, read_transit
from .registry import Registry

Parser = Callable[[web.Request, Context], Awaitable[Payload]]


class Vendor(NamedTuple):
    parse: Parser  # any body: reads it, streaming multipart parts, within the cap
    from_body: Callable[[bytes, Context], Payload]  # a whole body already received
    multipart: bool  # posts may be multipart/form-data (parse then, never from_body)
    # The usual post (one read, in the documented types) straight to its transit, or None
    # for anything else: the same Transit from_body and _transits give, in fewer steps.
    transit: Callable[[bytes, Camera, ZoneInfo], Transit | None]


VENDORS: Final[dict[str, Vendor]] = {
    "hikvision": Vendor(hikvision.parse, hikvision.from_body, True, hikvision.transit),
    "axis": Vendor(axis.parse, axis.from_body, True, axis.transit),
    "milesight": Vendor(milesight.parse, milesight.from_body, False, milesight.transit),
    "platerecognizer": Vendor(
        platerecognizer.parse, platerecognizer.from_body, True, platerecognizer.transit
    ),
    "rekor": Vendor(rekor.parse, rekor.from_body, False, rekor.transit),
    "dahua": Vendor(dahua.parse, dahua.from_body, False, dahua.transit),
}


class CameraOut(msgspec.Struct, omit_defaults=True, gc=False):
    """The answer to a vendor post: one verdict per plate read, in the payload's order."""

    results: list[Verdict]
    ignored: str | None = None  # a heartbeat or another event type: nothing was judged


class DahuaOut(msgspec.Struct, omit_defaults=True, gc=False):
    """Dahua's answer: `Result: true` stops the camera resending."""

    Result: bool
    results: list[Verdict] = []
    ignored: str | None = None


def _transits(camera_id: str, gate: str, reads: Sequence[Read]) -> list[Transit]:
    """A payload's reads as `Intake.accept` takes them (`reads.read_transit`)."""
    return [read_transit(camera_id, gate, r) for r in reads]


def add_routes(app: web.Application, service: Service) -> None:
    """Register the vendor endpoints and document them (before the catch-all routes)."""
    # Camera posts are charged to the camera by the registry, so the key check charges none.
    settings, accept, require = service.settings, service.intake.accept, service.keyring.identify
    registry = Registry(settings, service.keyring.rates)
    cap = settings.server.max_camera_body_bytes

    zones, max_batch = registry.zones, settings.server.max_batch

    def handler(
        vendor: str, dahua_answer: bool
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        parse, from_body, multipart, fast = VENDORS[vendor]

        async def handle(request: web.Request) -> web.Response:
            camera = registry.identify(request, require, vendor)  # before reading a byte
            data = None if multipart and is_multipart(request) else buffered(request, cap)
            # The usual post straight to its transit (a camera with a device_id to check
            # takes the general path, which reads the device field).
            usual = (
                fast(data, camera, zones[camera.id])
                if data is not None and camera.device_id is None
                else None
            )
            if usual is not None:
                verdicts, ignored = await accept((usual,)), None
            else:
                verdicts, ignored = await general(camera, data, request)
            out: Any = (
                DahuaOut(True, verdicts, ignored) if dahua_answer else CameraOut(verdicts, ignored)
            )
            return web.Response(body=ENCODER.encode(out), content_type=JSON)

        async def general(
            camera: Camera, data: bytes | None, request: web.Request
        ) -> tuple[list[Verdict], str | None]:
            """Any post: the payload's reads judged, or why there is nothing to judge."""
            ctx = Context(camera, zones[camera.id], cap, time.time())
            payload = from_body(data, ctx) if data is not None else await parse(request, ctx)
            if camera.device_id is not None:
                registry.check_device(camera, payload.device)
            if payload.ignored is not None:
                return [], payload.ignored
            reads = payload.reads
            if len(reads) > max_batch:
                raise errors.TooLarge(f"at most {max_batch} plate reads per post", "results")
            return await accept(_transits(camera.id, camera.gate, reads)), None

        return handle

    async def keepalive(request: web.Request) -> web.Response:
        registry.identify(request, require, "dahua")
        await read_body(request, cap)  # {"Active": "keepAlive", ...}: nothing to keep
        return web.Response(body=b'{"Result":true}', content_type=JSON)

    add, ep = app.router.add_route, service.endpoint
    for vendor in VENDORS:
        handle = handler(vendor, vendor == "dahua")
        for path in (f"/v1/cameras/{vendor}", f"/v1/cameras/{vendor}/{{token}}"):
            add("POST", path, ep(path, handle))
    tollgate = handler("dahua", True)
    for prefix in ("", "/v1/cameras/dahua/{token}"):
        add(
            "POST",
            f"{prefix}/NotificationInfo/TollgateInfo",
            ep(f"{prefix}/NotificationInfo/TollgateInfo", tollgate),
        )
        add(
            "POST",
            f"{prefix}/NotificationInfo/KeepAlive",
            ep(f"{prefix}/NotificationInfo/KeepAlive", keepalive),
        )
    service.docs.append(apidoc.docs(VENDORS, (CameraOut, DahuaOut)))
