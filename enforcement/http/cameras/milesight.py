"""Milesight LPR cameras (HTTP post): a flat JSON object in which every value is a string,
`"-"` means missing, the time is local wall time without an offset, and some keys are words
with spaces (`"Vehicle Brand"`, and in some firmware `"License Plate"`, `"Plate Color"`).

Fields: the plate, `time` or `time_msec` (local), `confidence` (a percentage string),
`region` or `country`, `direction`, `type` (the camera's own list), colours, vehicle type and
brand; pictures (base64), coordinates and resolution are not kept. Milesight has no
documented id for the vehicle (an `id` field, where a firmware sends one, is kept on the
record but not trusted as one): the event id is derived.

A post is decoded into `_Post`, by the names the documentation and the devices use, which
skips the pictures unread. Firmware differ in spelling (`plate` / `License Plate`,
`vehicle_type` / `Vehicle Type`): a post whose plate (or event) and time are under none of
those names is decoded again as a dict, its keys matched case-insensitively with spaces,
dashes and underscores alike, into the same struct. (A documented post that also spells a
kept field another way keeps only the documented names on the record.)
"""

from __future__ import annotations

import time
from typing import Any, Final
from zoneinfo import ZoneInfo

import msgspec
from aiohttp import web
from msgspec import UNSET, UnsetType

from ...config.settings import Camera
from ...transits.record import Transit
from .. import errors
from . import clock, values
from .body import read_body
from .reads import OBJECT, Context, Payload, Read, decode_json, ignored, read_transit
from .values import Scalar

Field = Scalar | UnsetType  # UNSET: the post has no such key (None: a JSON null)


class _Post(msgspec.Struct, omit_defaults=True, gc=False):
    """The fields Varco reads or keeps, in the order cameras send them (the decoder looks
    for each key from the field after the last one found). Kept on the transit record as
    it stands: UNSET fields are left out."""

    device: Field = UNSET
    device_name: Field = UNSET
    mac: Field = UNSET
    device_mac: Field = UNSET
    mac_address: Field = UNSET
    sn: Field = UNSET
    id: Field = UNSET
    event: Field = UNSET  # vehicle counting, parking: no plate read to judge
    event_type: Field = UNSET
    time: Field = UNSET
    time_msec: Field = UNSET
    snap_time: Field = UNSET
    datetime: Field = UNSET
    plate: Field = UNSET
    license_plate: Field = UNSET
    plate_number: Field = UNSET
    licenseplate: Field = UNSET
    type: Field = UNSET
    speed: Field = UNSET
    direction: Field = UNSET
    detection_region: Field = UNSET
    region: Field = UNSET
    country: Field = UNSET
    plate_region: Field = UNSET
    country_region: Field = UNSET
    confidence: Field = UNSET
    confidence_int: Field = UNSET
    plate_color: Field = UNSET
    vehicle_type: Field = UNSET
    vehicle_color: Field = UNSET
    vehicle_brand: Field = msgspec.field(default=UNSET, name="Vehicle Brand")


DECODER: Final = msgspec.json.Decoder(_Post)
NAMES: Final = frozenset(_Post.__struct_fields__)
# Where firmware differ, the names in order of preference.
PLATE_KEYS: Final = ("plate", "license_plate", "plate_number", "licenseplate")
TIME_KEYS: Final = ("time_msec", "time", "snap_time", "datetime")
COUNTRY_KEYS: Final = ("region", "country", "plate_region", "country_region")
CONFIDENCE_KEYS: Final = ("confidence", "confidence_int")
DEVICE_KEYS: Final = ("mac", "device_mac", "mac_address", "sn")


def _first(post: _Post, names: tuple[str, ...]) -> tuple[str, Field]:
    """The first of `names` the post has, and its value (UNSET when none)."""
    for name in names:
        value = getattr(post, name)
        if value is not UNSET:
            return name, value
    return names[0], UNSET


def _folded(data: bytes) -> _Post:
    """A post whose keys are spelt otherwise (`License Plate`, `Plate Color`, `TIME`)."""
    obj: dict[str, Any] = decode_json(data, OBJECT)
    fields: dict[str, Any] = {}
    for key, value in obj.items():
        name = key.strip().lower().replace(" ", "_").replace("-", "_")
        if name in NAMES and name not in fields:
            fields[name] = value
    return _Post(**fields)


async def parse(request: web.Request, ctx: Context) -> Payload:
    # Milesight sends JSON, though not always with a JSON Content-Type: read the body as is.
    return from_body(await read_body(request, ctx.max_body), ctx)


def from_body(data: bytes, ctx: Context) -> Payload:
    post = decode_json(data, DECODER)
    # The documented names first: one attribute each; _first for the other firmware's.
    when_key, when = (
        ("time_msec", post.time_msec) if post.time_msec is not UNSET else _first(post, TIME_KEYS)
    )
    plate_key, raw = ("plate", post.plate) if post.plate is not UNSET else _first(post, PLATE_KEYS)
    if when is UNSET or (raw is UNSET and post.event is UNSET):
        post = _folded(data)  # no documented names: another firmware's spelling
        when_key, when = _first(post, TIME_KEYS)
        plate_key, raw = _first(post, PLATE_KEYS)
    if raw is UNSET:
        if post.event is not UNSET:
            return ignored(f"event {str(post.event)[:40]}")
        raise errors.Invalid("Object missing required field `plate`", "plate")
    read = _read(post, when_key, when, plate_key, raw, ctx.tz, ctx.now)
    key, value = _first(post, DEVICE_KEYS)
    return Payload([read], None if value is UNSET else (key, value))


def transit(data: bytes, camera: Camera, tz: ZoneInfo) -> Transit | None:
    """The usual post, in the documented names, straight to its transit: the very Transit
    `from_body` and `routes._transits` make of it (the same `_read`), without the general
    path's wrapping (see `rekor.transit` for why). None for anything else (other firmware's
    names, an event without a plate, a body `from_body` refuses), which `from_body` takes."""
    try:
        post = DECODER.decode(data)
    except (msgspec.MsgspecError, RecursionError):
        return None
    if post.time_msec is UNSET or post.plate is UNSET:
        return None
    try:
        read = _read(post, "time_msec", post.time_msec, "plate", post.plate, tz, time.time())
    except errors.Invalid:
        return None
    return read_transit(camera.id, camera.gate, read)


def _read(
    post: _Post, when_key: str, when: Any, plate_key: str, raw: Any, tz: ZoneInfo, now: float
) -> Read:
    """The read of a post whose time and plate fields were found under these keys."""
    if isinstance(when, str) and when.strip().isdigit():
        ts = clock.from_epoch(int(when), when_key)
    elif isinstance(when, str) and values.present(when) is not None:
        ts = clock.parse(when, tz, now, when_key)
    else:
        raise errors.Invalid("Object missing required field `time`", when_key)
    plate = values.plate(raw if values.present(raw) else "", plate_key)
    key, value = (
        ("confidence", post.confidence)
        if post.confidence is not UNSET
        else _first(post, CONFIDENCE_KEYS)
    )
    confidence = None if value is UNSET else values.confidence(value, key)
    value = post.region if post.region is not UNSET else _first(post, COUNTRY_KEYS)[1]
    country = None if value is UNSET else values.country(value)
    return Read(plate, ts, confidence, country, post)
