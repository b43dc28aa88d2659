"""Dahua ITS cameras, ITSAPI push: JSON `{"Picture": {"Plate": {...}, "SnapInfo": {...},
"Vehicle": {...}, "NormalPic": {...}, "CutoutPic": {...}}}` posted to the fixed path
`/NotificationInfo/TollgateInfo`, and a keep-alive to `/NotificationInfo/KeepAlive`. The camera
resends until it is answered `{"Result": true}`.

Fields: `Plate.PlateNumber` (empty, or `IsExist: false`, when no plate was read),
`Plate.Confidence`, `Plate.PlateColor`, `Plate.PlateType`, `Plate.Region`;
`SnapInfo.AccurateTime` / `SnapTime` (local wall time, no offset), `SnapInfo.DeviceID`,
`SnapInfo.Direction`, `SnapInfo.LaneNo`; `Vehicle.VehicleColor`, `VehicleType`. Pictures
(`NormalPic.Content`, `CutoutPic.Content`, `VehiclePic.Content`, base64) are not declared
below, so the decoder skips them unread. Dahua has no stable id for the vehicle: the event id
is derived.
"""

from __future__ import annotations

import time
from typing import Final
from zoneinfo import ZoneInfo

import msgspec
from aiohttp import web

from ...config.settings import Camera
from ...transits.record import Transit
from .. import errors
from . import clock, values
from .body import read_body
from .reads import Context, Payload, Read, decode_json, transit_from
from .values import Scalar


class _Plate(msgspec.Struct, omit_defaults=True, gc=False):
    PlateNumber: Scalar = None
    IsExist: Scalar = None
    Confidence: Scalar = None
    PlateColor: Scalar = None
    PlateType: Scalar = None
    Region: Scalar = None
    Country: Scalar = None


class _Snap(msgspec.Struct, omit_defaults=True, gc=False):
    AccurateTime: Scalar = None
    SnapTime: Scalar = None
    DeviceID: Scalar = None
    Direction: Scalar = None
    LaneNo: Scalar = None
    LanNo: Scalar = None  # as ITSAPI firmware spell it
    TriggerSource: Scalar = None
    SnapAddress: Scalar = None


class _Vehicle(msgspec.Struct, omit_defaults=True, gc=False):
    VehicleColor: Scalar = None
    VehicleType: Scalar = None
    VehicleSeries: Scalar = None


class _Picture(msgspec.Struct, omit_defaults=True, gc=False):
    Plate: _Plate | None = None
    SnapInfo: _Snap | None = None
    Vehicle: _Vehicle | None = None


class _Message(msgspec.Struct, omit_defaults=True, gc=False):
    Picture: _Picture | None = None


DECODER: Final = msgspec.json.Decoder(_Message)


async def parse(request: web.Request, ctx: Context) -> Payload:
    return from_body(await read_body(request, ctx.max_body), ctx)


def transit(data: bytes, camera: Camera, tz: ZoneInfo) -> Transit | None:
    """The usual push (a plate block, `AccurateTime` as text, the documented types) straight
    to its transit: the very Transit `from_body` and `routes._transits` make of it, in fewer
    steps (see `rekor.transit` for why). None for anything else, which `from_body` takes."""
    try:
        pic = DECODER.decode(data).Picture
    except (msgspec.MsgspecError, RecursionError):
        return None
    if pic is None or pic.Plate is None or pic.SnapInfo is None:
        return None
    plate_in = pic.Plate
    when, raw, confidence = pic.SnapInfo.AccurateTime, plate_in.PlateNumber, plate_in.Confidence
    if (
        type(when) is not str
        or type(raw) is not str
        or (plate_in.IsExist is not True and plate_in.IsExist is not None)
        or (
            confidence is not None and type(confidence) is not int and type(confidence) is not float
        )
    ):
        return None
    when = values.present(when)
    if when is None:  # the general path then tries SnapTime
        return None
    try:
        raw = values.plate(raw, "Picture.Plate.PlateNumber")
        confidence = values.confidence(confidence, "Picture.Plate.Confidence")
        ts = clock.parse(when, tz, time.time(), "Picture.SnapInfo.AccurateTime")
    except errors.Invalid:
        return None
    country = values.country(plate_in.Country or plate_in.Region)
    return transit_from(camera.id, camera.gate, raw, ts, confidence, country, pic)


def from_body(data: bytes, ctx: Context) -> Payload:
    pic = decode_json(data, DECODER).Picture
    if pic is None:
        raise errors.Invalid("Object missing required field `Picture`", "Picture")
    snap = pic.SnapInfo or _Snap()
    when = values.present(snap.AccurateTime)
    name = "Picture.SnapInfo.AccurateTime"
    if when is None:
        when = values.present(snap.SnapTime)
        name = "Picture.SnapInfo.SnapTime"
        if when is None:
            raise errors.Invalid("Object missing required field `SnapTime`", name)
    ts = clock.parse(when, ctx.tz, ctx.now, name)
    plate_in = pic.Plate or _Plate()
    exists = plate_in.IsExist not in (False, 0, "false", "0")
    plate = values.plate(plate_in.PlateNumber if exists else None, "Picture.Plate.PlateNumber")
    read = Read(
        plate,
        ts,
        values.confidence(plate_in.Confidence, "Picture.Plate.Confidence"),
        values.country(plate_in.Country or plate_in.Region),
        pic,
    )
    return Payload([read], ("Picture.SnapInfo.DeviceID", snap.DeviceID))
