"""Hikvision ISAPI ANPR: `EventNotificationAlert` as plain XML, as JSON, or as
`multipart/form-data` with the XML in an `anpr.xml` part beside picture parts (which may be
empty, `Content-Length: 0`).

Fields (`ANPR` block): `licensePlate` (`unknown` when nothing was read), `confidenceLevel`
(0-100), `country` (a number in older firmware, a name in newer), `direction`, `plateType`,
`plateColor`, `vehicleType`; top level: `dateTime` (capture time, with an offset in most
firmware), `eventType` (`ANPR`; other types, such as the `videoloss` heartbeat, are
acknowledged and ignored), `channelID`, `ipAddress`, `macAddress`, and `isDataRetransmission`
(`true` on a late re-upload after a network failure, which carries the original capture time
and so maps to the same transit as the first upload, if that one arrived).

Elements are found by local name, whatever the namespace (ver10, ver20, isapi.org or none).
Hikvision has no stable id for the vehicle: the event id is derived (ids.py).
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
from . import clock, safexml, values
from .body import Malformed, is_multipart, read_body, read_parts
from .reads import Context, Payload, Read, decode_json, ignored, transit_from
from .values import Scalar


class _Top(msgspec.Struct, gc=False):
    """The event's top-level fields the check reads and the record keeps."""

    eventType: Scalar = None
    dateTime: Scalar = None
    channelID: Scalar = None
    ipAddress: Scalar = None
    macAddress: Scalar = None
    isDataRetransmission: Scalar = None
    UUID: Scalar = None


class _Anpr(msgspec.Struct, gc=False):
    """The ANPR block's."""

    licensePlate: Scalar | msgspec.UnsetType = msgspec.UNSET  # UNSET: not an ANPR event
    confidenceLevel: Scalar = None
    country: Scalar = None
    direction: Scalar = None
    plateType: Scalar = None
    plateColor: Scalar = None
    vehicleType: Scalar = None


class _Fields(_Top, omit_defaults=True):
    """Both, in one flat map (as the XML's leaves come): what the check reads and the record
    keeps (None fields left out). The ANPR block's fields, as _Anpr declares them: msgspec
    structs take one base."""

    licensePlate: Scalar | msgspec.UnsetType = msgspec.UNSET
    confidenceLevel: Scalar = None
    country: Scalar = None
    direction: Scalar = None
    plateType: Scalar = None
    plateColor: Scalar = None
    vehicleType: Scalar = None


KEPT: Final = frozenset(_Fields.__struct_fields__)


def _metadata(name: str, filename: str, content_type: str) -> bool:
    """The event part: anpr.xml (or any XML or JSON part); pictures are drained."""
    names = (name.lower(), filename.lower())
    return content_type.endswith(("xml", "json")) or any(
        n.endswith((".xml", ".json")) for n in names
    )


class _Alert(_Top):
    """ISAPI's JSON form; undeclared fields (pictures, vehicleInfo, ...) are skipped unread."""

    ANPR: _Anpr | list[_Anpr] | None = None
    EventNotificationAlert: _Alert | None = None  # some firmware wrap the event


JSON_DECODER: Final = msgspec.json.Decoder(_Alert)
_NO_ANPR: Final = _Anpr()


def fields_of(data: bytes) -> _Fields:
    """The event's fields, from its XML or JSON form."""
    data = data.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte-order mark
    head = data.lstrip()[:1]
    if head == b"<":
        leaves = safexml.leaves(safexml.parse(data))
        return _Fields(**{k: v for k, v in leaves.items() if k in KEPT})
    if head == b"{":
        alert = decode_json(data, JSON_DECODER)
        alert = alert.EventNotificationAlert or alert
        anpr = alert.ANPR[0] if isinstance(alert.ANPR, list) and alert.ANPR else alert.ANPR
        a = anpr if isinstance(anpr, _Anpr) else _NO_ANPR
        return _Fields(
            alert.eventType,
            alert.dateTime,
            alert.channelID,
            alert.ipAddress,
            alert.macAddress,
            alert.isDataRetransmission,
            alert.UUID,
            a.licensePlate,
            a.confidenceLevel,
            a.country,
            a.direction,
            a.plateType,
            a.plateColor,
            a.vehicleType,
        )
    raise Malformed("expected an EventNotificationAlert as XML or JSON")


async def parse(request: web.Request, ctx: Context) -> Payload:
    if is_multipart(request):
        parts = await read_parts(request, ctx.max_body, _metadata)
        if not parts:
            raise errors.Invalid(
                "no EventNotificationAlert part (anpr.xml) in the multipart body", "anpr.xml"
            )
        data = parts[0].data
    else:
        data = await read_body(request, ctx.max_body)
    return from_body(data, ctx)


def transit(data: bytes, camera: Camera, tz: ZoneInfo) -> Transit | None:
    """The usual post, an ANPR event as plain JSON in the documented types, straight to its
    transit: the very Transit `from_body` and `routes._transits` make of it, in fewer steps
    (see `rekor.transit` for why). None for anything else (XML, a wrapped or listed ANPR
    block, values in another form), which `from_body` takes."""
    if data[:1] != b"{":
        return None
    try:
        alert = JSON_DECODER.decode(data)
    except (msgspec.MsgspecError, RecursionError):
        return None
    a = alert.ANPR
    if alert.EventNotificationAlert is not None or type(a) is not _Anpr:
        return None
    event_type, when, raw, confidence = (
        alert.eventType,
        alert.dateTime,
        a.licensePlate,
        a.confidenceLevel,
    )
    if (
        type(event_type) is not str
        or event_type.strip().lower() != "anpr"
        or type(when) is not str
        or type(raw) is not str
        or (
            confidence is not None and type(confidence) is not int and type(confidence) is not float
        )
    ):
        return None
    when = values.present(when)
    if when is None:
        return None
    try:
        raw = values.plate(raw, "ANPR.licensePlate")
        confidence = values.confidence(confidence, "ANPR.confidenceLevel", 100)
        ts = clock.parse(when, tz, time.time(), "dateTime")
    except errors.Invalid:
        return None
    country = values.country(a.country)
    fields = _Fields(
        alert.eventType,
        alert.dateTime,
        alert.channelID,
        alert.ipAddress,
        alert.macAddress,
        alert.isDataRetransmission,
        alert.UUID,
        a.licensePlate,
        a.confidenceLevel,
        a.country,
        a.direction,
        a.plateType,
        a.plateColor,
        a.vehicleType,
    )
    return transit_from(camera.id, camera.gate, raw, ts, confidence, country, fields)


def from_body(data: bytes, ctx: Context) -> Payload:
    """The event from its XML or JSON (a whole body, or the multipart body's event part)."""
    f = fields_of(data)
    event_type = values.present(f.eventType)
    if event_type is not None and event_type.lower() != "anpr":
        return ignored(f"eventType {event_type[:40]}")  # heartbeats (videoloss), motion, ...
    if f.licensePlate is msgspec.UNSET:
        field = "ANPR.licensePlate" if event_type else "eventType"
        raise errors.Invalid("not an ANPR event: no licensePlate", field)
    when = values.present(f.dateTime)
    if when is None:
        raise errors.Invalid("Object missing required field `dateTime`", "dateTime")
    read = Read(
        values.plate(f.licensePlate, "ANPR.licensePlate"),
        clock.parse(when, ctx.tz, ctx.now, "dateTime"),
        values.confidence(f.confidenceLevel, "ANPR.confidenceLevel", 100),
        values.country(f.country),
        f,
    )
    return Payload([read], ("macAddress", f.macAddress))
