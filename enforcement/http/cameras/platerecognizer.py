"""Plate Recognizer webhooks, Snapshot and Stream: JSON `{"hook": {...}, "data": {...}}`, or
`multipart/form-data` with that JSON in a `json` part and the picture in an `upload` part.

`data.results[]` holds one entry per plate in the picture: `plate` (lower case), `score` (the
read, 0-1), `dscore` (the detection, 0-1), `region.code` (`it`, `us-ca`), `candidates[]`
(`plate`, `score`) and `vehicle`; `results: []` means nothing was read. `data.timestamp` is the
capture instant in UTC (`...Z`, or in newer Snapshot versions `2025-09-09 23:22:38.030345`
without an offset: UTC all the same, whatever the camera's zone; `timestamp_local` is not
used), `data.camera_id` the camera as Stream or the caller named it. Every
result is one transit; Plate Recognizer has no stable id for the vehicle, so event ids are
derived (a webhook retry carries the same timestamp and plates).
"""

from __future__ import annotations

import time
from operator import attrgetter
from typing import Final
from zoneinfo import ZoneInfo

import msgspec
from aiohttp import web

from ...config.settings import Camera
from ...transits.record import Transit
from .. import errors
from . import clock, values
from .body import is_multipart, read_body, read_parts
from .reads import Context, Payload, Read, decode_json, ignored, transit_from
from .values import Scalar


class _Candidate(msgspec.Struct, omit_defaults=True, gc=False):
    plate: str = ""
    score: Scalar = None


class _Region(msgspec.Struct, omit_defaults=True, gc=False):
    code: str | None = None
    score: Scalar = None


class _Vehicle(msgspec.Struct, omit_defaults=True, gc=False):
    type: str | None = None
    score: Scalar = None


# Fields in the order the webhooks send them: the decoder looks for each key from the field
# after the last one found, so keys in order are found at the first try.
class _Result(msgspec.Struct, omit_defaults=True, gc=False):
    plate: Scalar = None
    region: _Region | None = None
    score: Scalar = None
    candidates: list[_Candidate] = []
    dscore: Scalar = None
    vehicle: _Vehicle | None = None
    direction: Scalar = None
    source_url: Scalar = None
    position_sec: Scalar = None


class _Data(msgspec.Struct, omit_defaults=True, gc=False):
    camera_id: Scalar = None
    filename: Scalar = None
    timestamp: str | None = None
    results: list[_Result] | None = None


class _Hook(msgspec.Struct, omit_defaults=True, gc=False):
    id: Scalar = None
    event: str | None = None


class _Body(msgspec.Struct, omit_defaults=True, gc=False):
    hook: _Hook | None = None
    data: _Data | None = None


DECODER: Final = msgspec.json.Decoder(_Body)
_PLATE: Final = attrgetter("plate")  # a candidate's plate


def _metadata(name: str, filename: str, content_type: str) -> bool:
    return name == "json" or content_type == "application/json"


async def parse(request: web.Request, ctx: Context) -> Payload:
    if is_multipart(request):
        parts = await read_parts(request, ctx.max_body, _metadata)
        if not parts:
            raise errors.Invalid("no json part in the multipart body", "json")
        data = parts[0].data
    else:
        data = await read_body(request, ctx.max_body)
    return from_body(data, ctx)


def transit(data: bytes, camera: Camera, tz: ZoneInfo) -> Transit | None:
    """The usual post, a webhook with one result in the documented types, straight to its
    transit: the very Transit `from_body` and `routes._transits` make of it, in fewer steps
    (see `rekor.transit` for why). None for anything else, which `from_body` takes."""
    try:
        body = DECODER.decode(data)
    except (msgspec.MsgspecError, RecursionError):
        return None
    found = body.data
    if found is None or found.timestamp is None or not found.results or len(found.results) > 1:
        return None
    r = found.results[0]
    raw, score = r.plate, r.score
    if type(raw) is not str or (type(score) is not float and type(score) is not int):
        return None
    try:
        raw = values.plate(raw, "plate")
        confidence = values.confidence(score, "score", 1)
        ts = clock.parse(found.timestamp, clock.UTC_ZONE, time.time(), "data.timestamp")
    except errors.Invalid:
        return None
    country = None if r.region is None else values.country(r.region.code)
    event = None if body.hook is None else body.hook.event
    fields = {
        "camera_id": found.camera_id,
        "filename": found.filename,
        "hook.event": event,
        "result": r,
    }
    return transit_from(
        camera.id, camera.gate, raw, ts, confidence, country, fields, map(_PLATE, r.candidates)
    )


def from_body(data: bytes, ctx: Context) -> Payload:
    """The webhook from its JSON (a whole body, or the multipart body's json part)."""
    body = decode_json(data, DECODER)
    found = body.data
    if found is None:
        if body.hook is not None and body.hook.event:
            return ignored(f"hook event {body.hook.event[:40]}")
        raise errors.Invalid("Object missing required field `data`", "data")
    if found.results is None:
        raise errors.Invalid("Object missing required field `results`", "data.results")
    if found.timestamp is None:
        raise errors.Invalid("Object missing required field `timestamp`", "data.timestamp")
    ts = clock.parse(found.timestamp, clock.UTC_ZONE, ctx.now, "data.timestamp")
    event = None if body.hook is None else body.hook.event
    common = {"camera_id": found.camera_id, "filename": found.filename, "hook.event": event}
    if not found.results:  # results: [] - a picture without a readable plate
        reads = [Read("", ts, None, None, common)]
    else:
        reads = []
        for i, r in enumerate(found.results):
            try:
                reads.append(
                    Read(
                        values.plate(r.plate, "plate"),
                        ts,
                        values.confidence(r.score, "score", 1),
                        None if r.region is None else values.country(r.region.code),
                        {**common, "result": r},
                        map(_PLATE, r.candidates),
                    )
                )
            except errors.Invalid as exc:  # the field's full name, built only when needed
                exc.field = f"data.results[{i}].{exc.field}"
                raise
    return Payload(reads, ("data.camera_id", found.camera_id))
