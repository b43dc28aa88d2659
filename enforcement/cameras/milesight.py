"""Milesight LPR cameras (HTTP post): a flat JSON object in which every value is a string,
`"-"` means missing, the time is local wall time without an offset, and some keys are words
with spaces (`"Vehicle Brand"`, and in some firmware `"License Plate"`, `"Plate Color"`).

Firmware differ in spelling (`plate` / `License Plate`, `vehicle_type` / `Vehicle Type`), so
keys are matched case-insensitively with spaces and underscores alike. Fields: the plate,
`time` or `time_msec` (local), `confidence` (a percentage string), `region` or `country`,
`direction`, `type` (the camera's own list), colours, vehicle type and brand; pictures
(base64) and coordinates are not kept. Milesight has no documented id for the vehicle (an
`id` field, where a firmware sends one, is kept on the record but not trusted as one): the
event id is derived.
"""

from __future__ import annotations

import functools
from typing import Final, NamedTuple

from aiohttp import web

from .. import errors
from . import clock, values
from .body import read_body
from .reads import OBJECT, Context, Payload, Read, decode_json, ignored

PLATE_KEYS: Final = ("plate", "license_plate", "plate_number", "licenseplate")
TIME_KEYS: Final = ("time_msec", "time", "snap_time", "datetime")
COUNTRY_KEYS: Final = ("region", "country", "plate_region", "country_region")
CONFIDENCE_KEYS: Final = ("confidence", "confidence_int")
DEVICE_KEYS: Final = ("mac", "device_mac", "mac_address", "sn")
# Kept on the transit record (folded names); pictures and coordinates are not.
KEPT: Final = ("device", "mac", "sn", "id", "type", "direction", "speed", "detection_region",
               "plate_color", "vehicle_type", "vehicle_color", "vehicle_brand", "device_name",
               "event_type", *COUNTRY_KEYS, *CONFIDENCE_KEYS, *PLATE_KEYS,
               *TIME_KEYS)  # fmt: skip


class _Plan(NamedTuple):
    """Where a key layout keeps each field (keys as sent; None: absent)."""

    plate: str | None
    time: str | None
    confidence: str | None
    country: str | None
    device: str | None
    event: str | None
    dropped: tuple[str, ...]  # every key not kept on the record (pictures, coordinates, ...)


@functools.lru_cache(maxsize=256)  # a camera sends the same keys, in the same order, each time
def _plan(keys: tuple[str, ...]) -> _Plan:
    folded = {k.strip().lower().replace(" ", "_").replace("-", "_"): k for k in keys}

    def first(names: tuple[str, ...]) -> str | None:
        return next((folded[n] for n in names if n in folded), None)

    kept = {folded[n] for n in KEPT if n in folded}
    return _Plan(first(PLATE_KEYS), first(TIME_KEYS), first(CONFIDENCE_KEYS),
                 first(COUNTRY_KEYS), first(DEVICE_KEYS), first(("event",)),
                 tuple(k for k in keys if k not in kept))  # fmt: skip


async def parse(request: web.Request, ctx: Context) -> Payload:
    # Milesight sends JSON, though not always with a JSON Content-Type: read the body as is.
    return from_body(await read_body(request, ctx.max_body), ctx)


def from_body(data: bytes, ctx: Context) -> Payload:
    obj = decode_json(data, OBJECT)
    plan = _plan(tuple(obj))
    if plan.plate is None:
        if plan.event is not None:  # vehicle counting, parking: no plate read to judge
            return ignored(f"event {str(obj[plan.event])[:40]}")
        raise errors.Invalid("Object missing required field `plate`", "plate")
    field = plan.time or "time"
    when = None if plan.time is None else obj[plan.time]
    if isinstance(when, str) and when.strip().isdigit():
        ts = clock.from_epoch(int(when), field)
    elif isinstance(when, str) and values.present(when) is not None:
        ts = clock.parse(when, ctx.tz, ctx.now, field)
    else:
        raise errors.Invalid("Object missing required field `time`", field)
    raw = obj[plan.plate]
    plate = values.plate(raw if values.present(raw) else "", plan.plate)
    confidence = None if plan.confidence is None else values.confidence(
        obj[plan.confidence], plan.confidence)  # fmt: skip
    country = None if plan.country is None else values.country(obj[plan.country])
    device = None if plan.device is None else values.present(obj[plan.device])
    for key in plan.dropped:  # the object is ours: what remains is what the record keeps
        del obj[key]
    read = Read(plate, ts, confidence, country, obj)
    return Payload([read], device=None if device is None or plan.device is None
                   else (plan.device, device))  # fmt: skip
