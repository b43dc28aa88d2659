"""Rekor Scout / OpenALPR agent posts: JSON told apart by `data_type`, sent without a
Content-Type by some agent versions, so the raw body is read whatever the header says.

- `alpr_group`: one vehicle. `best_plate_number` is the read, `best_confidence` (0-100) its
  confidence, `best_plate.candidates` (or `candidates`) the alternatives, `best_region` the
  region (`it`, `us-mo`), `epoch_start` (ms) the first sight. The event id is the uuid of
  the group's first frame (`{agent_uid}-{camera_id}-{epoch_start}`) and the plate's index in
  it (its `plate_indexes` entry): two vehicles first seen in one frame differ by index, and
  a resent group is a retry. A group may first come as a preview (`is_preview: true`), sent
  while the vehicle is still in view and followed by the complete group: the preview's read
  is provisional (the complete group often reads better), so it is acknowledged and ignored;
  were it judged, the complete group would be its retry and a misread could become a fine.
- `alpr_results`: one video frame (`epoch_time`, ms), `results[]` with `plate`, `confidence`
  (0-100), `region`, `candidates`; a vehicle yields many frames, collapsed by derived id.
- `heartbeat` (every minute), `alpr_alert` and other types: acknowledged, nothing to judge.

Picture fields (`vehicle_crop_jpeg`, `plate_crop_jpeg`) are never decoded: the structs below
do not declare them, so the decoder skips them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from operator import attrgetter
from typing import Final
from zoneinfo import ZoneInfo

import msgspec
from aiohttp import web

from ...config.settings import Camera
from ...transits.record import Transit
from .. import errors
from . import clock, values
from .body import read_body
from .reads import Context, Payload, Read, decode_json, ignored, transit_from
from .values import Scalar


class _Candidate(msgspec.Struct, omit_defaults=True, gc=False):
    plate: str = ""
    confidence: Scalar = None


class _Plate(msgspec.Struct, omit_defaults=True, gc=False):
    plate: Scalar = None
    confidence: Scalar = None
    region: Scalar = None
    region_confidence: Scalar = None
    candidates: list[_Candidate] = []


class _Message(msgspec.Struct, omit_defaults=True, gc=False):
    # In the order the agent sends them: the decoder looks for each key from the field after
    # the last one found, so keys in order are found at the first try.
    data_type: str | None = None
    epoch_start: Scalar = None  # alpr_group
    epoch_end: Scalar = None
    agent_uid: Scalar = None
    site_id: Scalar = None
    camera_id: Scalar = None
    country: Scalar = None
    uuids: list[str] = []
    plate_indexes: list[int] = []
    best_plate: _Plate | None = None
    best_confidence: Scalar = None
    best_uuid: Scalar = None
    best_plate_number: Scalar = None
    best_region: Scalar = None
    travel_direction: Scalar = None
    is_parked: Scalar = None
    is_preview: bool = False
    uuid: Scalar = None  # alpr_results
    epoch_time: Scalar = None
    results: list[_Plate] = []


DECODER: Final = msgspec.json.Decoder(_Message)


class _Kept(msgspec.Struct, omit_defaults=True, gc=False):
    """What the record keeps of a group: where its pictures are on the agent (agent or site,
    camera, the best frame's uuid), when the vehicle left view, its region, direction and
    parking flag as sent, and the camera's alternative reads with their confidences. Not
    what the record holds already (the read, its confidence, the first sight) nor the
    group's frame list: a record is written for every transit, and its size costs the
    service and Redis on every post (bench/README.md, "Smaller records")."""

    agent_uid: Scalar = None
    site_id: Scalar = None
    camera_id: Scalar = None
    epoch_end: Scalar = None
    best_uuid: Scalar = None
    best_region: Scalar = None
    travel_direction: Scalar = None
    is_parked: Scalar = None
    candidates: list[_Candidate] = []


def _kept(m: _Message) -> _Kept:
    best = m.best_plate
    # (version 1 groups have the region in best_plate only)
    region = m.best_region or (None if best is None else best.region)
    return _Kept(
        m.agent_uid,
        m.site_id,
        m.camera_id,
        m.epoch_end,
        m.best_uuid,
        region,
        m.travel_direction,
        m.is_parked,
        [] if best is None else best.candidates,
    )


class _Candidates(msgspec.Struct, gc=False):
    candidates: list[_Candidate] = []


CANDIDATES: Final = msgspec.json.Decoder(_Candidates)


def _top_candidates(data: bytes) -> Iterator[str]:
    """A group's top-level `candidates`, read only if a check asks for alternatives and
    best_plate had none. Version 2 groups repeat best_plate's list there (so the first
    decode skips it, and the record keeps best_plate's); version 1 has it in best_plate
    only. A malformed list gives no alternatives: they are hints, the read stands."""
    try:
        found = CANDIDATES.decode(data.removeprefix(b"\xef\xbb\xbf")).candidates
    except (msgspec.MsgspecError, RecursionError):
        return
    for c in found:
        yield c.plate


async def parse(request: web.Request, ctx: Context) -> Payload:
    return from_body(await read_body(request, ctx.max_body), ctx)


_PLATE: Final = attrgetter("plate")  # a candidate's plate


def _group_id(m: _Message, agent: str, camera: object, start_ms: int) -> str:
    """The group's event id: the uuid of its first frame and the plate's index in it."""
    first = f"{agent}-{camera}-{start_ms}"
    try:
        at = m.uuids.index(first)
    except ValueError:
        at = len(m.plate_indexes)
    return f"{first}-{m.plate_indexes[at] if at < len(m.plate_indexes) else 0}"


def _alternatives(m: _Message, data: bytes) -> Iterable[str]:
    """best_plate's candidates, else (lazily) the group's top-level ones."""
    best = m.best_plate
    if best is not None and best.candidates:
        return map(_PLATE, best.candidates)
    return _top_candidates(data)


def _instant(value: Scalar, field: str) -> float:
    if type(value) is int:  # milliseconds, as sent
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if isinstance(value, float):
        return value
    raise errors.Invalid(f"Object missing required field `{field}`", field)


def transit(data: bytes, camera: Camera, tz: ZoneInfo) -> Transit | None:
    """The usual post, a complete alpr_group as agents send it (typed as documented, no
    missing markers), straight to its transit: the very Transit that `from_body` and
    `routes._transits` make of it, in far fewer steps. None for anything else (a preview,
    another type, a value in another form, a malformed body): `from_body` takes it.

    Why a second path: under load each small step of the general one (Context, the
    `values` helpers, Read, Payload, the transits loop) costs several times what it costs
    in a loop, and together they were most of an adapter's overhead over a native post
    (bench/README.md, "A fast path for the usual post"). Tests check that both paths give
    the same transit for every payload this one accepts."""
    try:
        m = DECODER.decode(data)
    except (msgspec.MsgspecError, RecursionError):
        return None
    start, raw, confidence = m.epoch_start, m.best_plate_number, m.best_confidence
    agent, camera_id = m.agent_uid, m.camera_id
    if (
        m.data_type != "alpr_group"
        or m.is_preview
        or type(start) is not int
        or not clock.MIN_MS <= start < clock.MAX_MS
        or type(raw) is not str
        or type(agent) is not str
        or type(camera_id) is not int
        or (type(confidence) is not float and type(confidence) is not int)
    ):
        return None
    agent = values.present(agent)
    if agent is None:  # the general path then tries site_id
        return None
    try:
        raw = values.plate(raw, "best_plate_number")
        confidence = values.confidence(confidence, "best_confidence", 100)
    except errors.Invalid:
        return None
    kept = _kept(m)
    country = values.country(kept.best_region or m.country)
    return transit_from(
        camera.id,
        camera.gate,
        raw,
        start / 1000,
        confidence,
        country,
        kept,
        _alternatives(m, data),
        _group_id(m, agent, camera_id, start),
    )


def from_body(data: bytes, ctx: Context) -> Payload:
    m = decode_json(data, DECODER)
    kind = m.data_type
    if kind is None:
        raise errors.Invalid("Object missing required field `data_type`", "data_type")
    device = ("camera_id", m.camera_id)
    if kind == "alpr_group":
        if m.is_preview:
            return ignored("alpr_group preview")
        start = m.epoch_start
        if type(start) is not int:  # (milliseconds as an int, as agents send them)
            start = _instant(start, "epoch_start")
        ts = clock.from_epoch(start, "epoch_start")
        plate = values.plate(m.best_plate_number, "best_plate_number")
        agent = values.present(m.agent_uid) or values.present(m.site_id)
        camera = m.camera_id if type(m.camera_id) is int else values.present(m.camera_id)
        event_id = None
        if agent is not None and camera is not None:
            event_id = _group_id(m, agent, camera, start if type(start) is int else round(start))
        kept = _kept(m)
        read = Read(
            plate,
            ts,
            values.confidence(m.best_confidence, "best_confidence", 100),
            values.country(kept.best_region or m.country),
            kept,
            _alternatives(m, data),
            event_id,
        )
        return Payload([read], device)
    if kind == "alpr_results":
        common = {
            "data_type": kind,
            "agent_uid": m.agent_uid,
            "site_id": m.site_id,
            "camera_id": m.camera_id,
            "uuid": m.uuid,
            "epoch_time": m.epoch_time,
        }
        ts = clock.from_epoch(_instant(m.epoch_time, "epoch_time"), "epoch_time")
        reads = []
        for i, r in enumerate(m.results or [_Plate()]):  # results: []: a frame, no read
            try:
                reads.append(
                    Read(
                        values.plate(r.plate, "plate"),
                        ts,
                        values.confidence(r.confidence, "confidence", 100),
                        values.country(r.region or m.country),
                        {**common, "result": r},
                        map(_PLATE, r.candidates),
                    )
                )
            except errors.Invalid as exc:  # the field's full name, built only when needed
                exc.field = f"results[{i}].{exc.field}"
                raise
        return Payload(reads, device)
    return ignored(kind[:40])  # heartbeat, alpr_alert, vehicle, ...
