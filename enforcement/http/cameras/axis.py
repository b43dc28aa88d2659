"""AXIS License Plate Verifier (FF Group's JSON protocol): `multipart/form-data` with an
`event` JSON part and an `image` part, or the JSON alone.

Fields: `plateUTF8` / `plateUnicode` / `plateText` (the read), `plateCountry` (ISO alpha-3),
`plateConfidence`, `carState` (`new`, `update`, `lost`), `carID`, `carMoveDirection`,
`datetime` (`YYYYMMDD HHMMSSFFF`, an offset `+HHMM` optional), `capture_timestamp` (epoch),
`sensorProviderID`, `roiID`, `packetCounter`, `vehicle_info`, `camera_info`.

One vehicle yields a `new` event, `update` ones (direction found, read corrected) and a
`lost` one: they share the car id, so they are one transit (event id = car id + the local
date); an update with another plate corrects the read. Car ids restart with the camera's
application, so a car id seen again later is another car: the transit log tells the two
apart by the capture instant (enforcement/transits/passages.py).
"""

from __future__ import annotations

import datetime as dt
import re
import time
from typing import Final
from zoneinfo import ZoneInfo

import msgspec
from aiohttp import web

from ...config.settings import Camera
from ...transits.record import Transit
from .. import errors
from . import clock, values
from .body import is_multipart, read_body, read_parts
from .reads import Context, Payload, Read, decode_json, read_transit
from .values import Scalar

_OFFSET: Final = re.compile(r"(?:[+-]\d\d:?\d\d|Z)$")


def _has_offset(text: str) -> bool:
    """Whether a time ends in a UTC offset or Z (only the tail is searched: `+0200` or
    `+02:00` at most, and the date's own dashes are further in)."""
    if "+" not in text and "Z" not in text and "-" not in text[10:]:
        return False  # the usual compact local time: no regex
    text = text.rstrip()
    return _OFFSET.search(text, len(text) - 6) is not None


class _VehicleInfo(msgspec.Struct, omit_defaults=True, gc=False):
    type: Scalar = None
    color: Scalar = None
    make: Scalar = None
    brand: Scalar = None  # what devices send (`make` in some documentation)
    model: Scalar = None


class _CameraInfo(msgspec.Struct, omit_defaults=True, gc=False):
    SerialNumber: Scalar = None
    ProdShortName: Scalar = None


class _Event(msgspec.Struct, omit_defaults=True, gc=False):
    # Fields not declared (geotag, plateCoordinates, pictures) are skipped unread. In the
    # order devices send them: the decoder looks for each key from the field after the last
    # one found, so keys in order are found at the first try.
    packetCounter: Scalar = None
    capture_timestamp: Scalar = None
    datetime: Scalar = None
    plateText: Scalar = None
    plateUnicode: Scalar = None
    plateUTF8: Scalar = None
    plateASCII: Scalar = None
    plateCountry: Scalar = None
    plateRegion: Scalar = None
    plateConfidence: Scalar = None
    carState: Scalar = None
    roiID: Scalar = None
    carMoveDirection: Scalar = None
    carID: Scalar = None
    vehicle_info: _VehicleInfo | None = None
    camera_info: _CameraInfo | None = None
    sensorProviderID: Scalar = None


DECODER: Final = msgspec.json.Decoder(_Event)


def _metadata(name: str, filename: str, content_type: str) -> bool:
    return (
        name.lower() in ("event", "json")
        or content_type == "application/json"
        or filename.lower().endswith(".json")
    )


async def parse(request: web.Request, ctx: Context) -> Payload:
    if is_multipart(request):
        parts = await read_parts(request, ctx.max_body, _metadata)
        if not parts:
            raise errors.Invalid("no event part in the multipart body", "event")
        data = parts[0].data
    else:
        data = await read_body(request, ctx.max_body)
    return from_body(data, ctx)


def transit(data: bytes, camera: Camera, tz: ZoneInfo) -> Transit | None:
    """The usual post, the event as plain JSON, straight to its transit: the very Transit
    `from_body` and `routes._transits` make of it (the same `_read`), without the general
    path's wrapping (see `rekor.transit` for why). None for a body it cannot take as it
    stands (a byte-order mark, or anything `from_body` refuses, naming the field)."""
    try:
        read = _read(DECODER.decode(data), tz, time.time())
    except (msgspec.MsgspecError, RecursionError, errors.Invalid):
        return None
    return read_transit(camera.id, camera.gate, read)


def from_body(data: bytes, ctx: Context) -> Payload:
    """The event from its JSON (a whole body, or the multipart body's event part)."""
    e = decode_json(data, DECODER)
    return Payload(
        [_read(e, ctx.tz, ctx.now)],
        None if e.camera_info is None else ("camera_info.SerialNumber", e.camera_info.SerialNumber),
    )


def _read(e: _Event, tz: ZoneInfo, now: float) -> Read:
    # The first of the plate fields the event has.
    if e.plateUTF8 is not None:
        field, raw = "plateUTF8", e.plateUTF8
    elif e.plateUnicode is not None:
        field, raw = "plateUnicode", e.plateUnicode
    elif e.plateText is not None:
        field, raw = "plateText", e.plateText
    elif e.plateASCII is not None:
        field, raw = "plateASCII", e.plateASCII
    else:
        raise errors.Invalid("Object missing required field `plateUTF8`", "plateUTF8")
    plate = values.plate(raw, field)
    text, epoch = e.datetime, e.capture_timestamp
    if isinstance(epoch, str) and epoch.strip().isdigit():
        epoch = int(epoch)
    seconds = None  # the epoch's, if it names an instant in range
    if type(epoch) is int or type(epoch) is float:  # (a bool is neither)
        seconds = clock.instant(epoch)
    # An explicit offset is unambiguous; else the epoch; else local time in the camera's zone.
    if isinstance(text, str) and (seconds is None or _has_offset(text)):
        ts = clock.parse(text, tz, now, "datetime")
    elif seconds is not None:
        ts = seconds
    else:
        raise errors.Invalid("Object missing required field `datetime`", "datetime")
    car = values.present(e.carID)
    event_id = None
    if car is not None:
        day = dt.datetime.fromtimestamp(ts, tz)
        event_id = f"car-{car[:64]}-{day.year * 10000 + day.month * 100 + day.day}"  # YYYYMMDD
    return Read(
        plate,
        ts,
        values.confidence(e.plateConfidence, "plateConfidence"),
        values.country(e.plateCountry),
        e,
        [],
        event_id,
    )
