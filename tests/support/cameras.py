"""The camera service as the camera tests post to it: the demo cameras' keys (examples/demo.toml),
the permit they check against, a client that posts raw bodies the way cameras do; and every
vendor's read as a table, posted the same way (the `cams` fixture:
tests/http/cameras/conftest.py)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from enforcement.config.settings import Settings

from . import payloads as p
from .common import permit

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=5)
PERMITTED, UNKNOWN = "AB123CD", "ZZ999ZZ"
PERMITS = [permit("RES-1", PERMITTED, "1", "2020-01-01T00:00:00+01:00")]
MAX_CAMERA_BODY = 1 << 20  # small, so the oversized-body test stays quick


def key(vendor: str) -> dict[str, str]:
    return {"Authorization": f"Bearer demo-{vendor}"}


class Cameras:
    def __init__(self, session: aiohttp.ClientSession, base: str, settings: Settings) -> None:
        self.session, self.base, self.settings = session, base, settings

    async def post(
        self, path: str, data: Any = None, headers: dict[str, str] | None = None, **kw: Any
    ) -> tuple[int, Any]:
        async with self.session.post(self.base + path, data=data, headers=headers, **kw) as r:
            raw = await r.read()
            try:
                return r.status, json.loads(raw)
            except ValueError:
                return r.status, raw.decode(errors="replace")

    async def get(self, path: str) -> tuple[int, Any]:
        async with self.session.get(self.base + path) as r:
            return r.status, await r.json() if r.content_type == "application/json" else None


# -- every vendor, posting a read ------------------------------------------------------------

AT = NOW.replace(second=10)  # reads at AT and AT + 2 s share a minute window (and a local day)
JSON = {"Content-Type": "application/json"}
XML = {"Content-Type": "application/xml"}


def form(*parts: tuple[str, bytes | str, str | None, str | None]) -> aiohttp.FormData:
    """multipart/form-data from (name, value, content type, filename) parts."""
    data = aiohttp.FormData()
    for name, value, ctype, filename in parts:
        data.add_field(name, value, content_type=ctype, filename=filename)
    return data


@dataclass(frozen=True)
class Vendor:
    name: str
    path: str
    # (plate, capture instant, confidence 0-1 or None) -> (body, extra headers)
    body: Callable[[str, dt.datetime, float | None], tuple[Any, dict[str, str]]]
    no_read: str  # the plate text this vendor sends when nothing was read
    malformed: tuple[bytes, dict[str, str], int, str | None]  # body, headers, status, field


def _hik(plate: str, at: dt.datetime, conf: float | None) -> tuple[Any, dict[str, str]]:
    return p.hikvision_xml(plate, at, int((conf or 0.93) * 100)), XML


def _axis(plate: str, at: dt.datetime, conf: float | None) -> tuple[Any, dict[str, str]]:
    car = str(sum(ord(c) * 31**i for i, c in enumerate(plate)) % 10**6)  # one car per plate
    event = p.axis_event(plate, at, "" if conf is None else f"{conf:.2f}", car_id=car)
    return form(
        ("event", p.dump(event).decode(), "application/json", None),
        ("image", p.JPEG, "image/jpeg", "plate.jpg"),
    ), {}


def _milesight(plate: str, at: dt.datetime, conf: float | None) -> tuple[Any, dict[str, str]]:
    return p.dump(p.milesight(plate, at, "-" if conf is None else str(round(conf * 100)))), JSON


def _pr(plate: str, at: dt.datetime, conf: float | None) -> tuple[Any, dict[str, str]]:
    plates = [] if not plate else [(plate, conf if conf is not None else 0.9)]
    return p.dump(p.platerecognizer_stream(plates, at)), JSON


def _rekor(plate: str, at: dt.datetime, conf: float | None) -> tuple[Any, dict[str, str]]:
    lane = sum(map(ord, plate)) % 7  # other vehicles: another plate in the group's first frame
    return p.dump(p.rekor_group(plate, at, (conf or 0.92) * 100, plate_index=lane)), {}


def _dahua(plate: str, at: dt.datetime, conf: float | None) -> tuple[Any, dict[str, str]]:
    return p.dump(p.dahua(plate, at, None if conf is None else round(conf * 100))), JSON


VENDORS = [
    Vendor(
        "hikvision",
        "/v1/cameras/hikvision",
        _hik,
        "unknown",
        (b"<EventNotificationAlert><eventType>ANPR", XML, 400, None),
    ),
    Vendor(
        "axis",
        "/v1/cameras/axis",
        _axis,
        "",
        (b'{"carID": "7", "datetime": "20261122 100000000"}', JSON, 422, "plateUTF8"),
    ),
    Vendor(
        "milesight",
        "/v1/cameras/milesight",
        _milesight,
        "-",
        (b'{"plate": "AB123CD", "time": "yesterday"}', JSON, 422, "time"),
    ),
    Vendor(
        "platerecognizer",
        "/v1/cameras/platerecognizer",
        _pr,
        "",
        (
            b'{"data": {"results": [{"plate": 7}], "timestamp": "2026-11-22T10:00:00Z"}}',
            JSON,
            422,
            "data.results[0].plate",
        ),
    ),
    Vendor(
        "rekor",
        "/v1/cameras/rekor",
        _rekor,
        "",
        (b'{"data_type": "alpr_group", "best_plate_number": "AB123CD"}', {}, 422, "epoch_start"),
    ),
    Vendor(
        "dahua",
        "/NotificationInfo/TollgateInfo",
        _dahua,
        "",
        (
            b'{"Picture": {"Plate": {"PlateNumber": "AB123CD"}, "SnapInfo": {}}}',
            JSON,
            422,
            "Picture.SnapInfo.SnapTime",
        ),
    ),
]
IDS = [v.name for v in VENDORS]


async def post(
    cams: Cameras, v: Vendor, plate: str, at: dt.datetime = AT, conf: float | None = 0.93
) -> dict[str, Any]:
    body, headers = v.body(plate, at, conf)
    status, reply = await cams.post(v.path, body, {**key(v.name), **headers})
    assert status == 200, reply
    if v.name == "dahua":
        assert reply["Result"] is True
    return reply  # type: ignore[no-any-return]
