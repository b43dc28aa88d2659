"""What a vendor adapter hands back: the plate reads of one post, before they are transits.

Each vendor module has `async def parse(request, ctx) -> Payload`: it reads the body in the
vendor's format and returns its reads (raw plate, aware capture instant, confidence 0-1 or
None, country, the vendor's event id if it has a stable one, alternative reads, the raw fields
worth keeping), the device the payload names (checked against `[cameras.ID] device_id`), or
why there is nothing to judge (a heartbeat, another event type).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final, TypeVar
from zoneinfo import ZoneInfo

import msgspec

from ...config.settings import Camera
from ...core.plates import normalise
from ...transits.record import Transit
from .. import errors
from . import ids
from .values import Scalar


# msgspec structs, not dataclasses: built in C, three of them per post. Not encoded or
# decoded, so their fields may hold any Python type.
class Context(msgspec.Struct, gc=False):
    camera: Camera
    tz: ZoneInfo  # the camera's zone, for timestamps without an offset
    max_body: int
    now: float


class Read(msgspec.Struct, gc=False):
    plate: str  # raw read; "" (or a vendor's "unknown") when nothing was read
    ts: float  # capture instant, epoch seconds (clock.parse, clock.from_epoch)
    confidence: float | None
    country: str | None
    # The raw payload fields for the transit record, as the vendor named them: a struct of
    # the fields the adapter declares (so never a picture: undeclared fields are skipped
    # unread) or a dict. Encoded only if the transit is logged, with its record.
    fields: object
    # The camera's alternative reads as sent, unread until a check needs them
    # (plates.alternatives): a lazy map over the decoded payload, usually.
    candidates: Iterable[str] = ()
    event_id: str | None = None  # the vendor's id for this vehicle; None: derived (ids.py)


class Payload(msgspec.Struct, gc=False):
    reads: list[Read]
    # (payload field, its value as sent) naming the sender: read (values.present) only for a
    # camera with a `device_id` to check.
    device: tuple[str, Scalar] | None = None
    ignored: str | None = None  # nothing to judge, and why (heartbeat, other event type)


def ignored(why: str) -> Payload:
    return Payload([], ignored=why)


def transit_from(
    camera_id: str,
    gate: str,
    raw: str,
    ts: float,
    confidence: float | None,
    country: str | None,
    fields: object,
    candidates: Iterable[str] = (),
    event_id: str | None = None,
) -> Transit:
    """A read as `Intake.accept` takes it: the plate normalised once (the event id needs it,
    and so does the check), the event id the vendor's or derived (ids.py). The vendors'
    fast paths call it with their values; `read_transit` with a Read's."""
    plate = normalise(raw, country)
    return Transit(
        camera_id,
        gate,
        ids.vendor(event_id) if event_id is not None else ids.synthetic(camera_id, plate.text, ts),
        raw,
        plate,
        ts,
        confidence,
        country,
        fields,
        candidates,
    )


def read_transit(camera_id: str, gate: str, r: Read) -> Transit:
    """`transit_from` of a Read."""
    return transit_from(
        camera_id, gate, r.plate, r.ts, r.confidence, r.country, r.fields, r.candidates, r.event_id
    )


T = TypeVar("T")


def decode_json(data: bytes, decoder: msgspec.json.Decoder[T]) -> T:
    """A JSON body as `decoder`'s type; 400 (not JSON) or 422 (wrong shape, naming the field).
    A UTF-8 byte-order mark, as some firmware send, is dropped: looked for only when the body
    fails as it stands (no body without one decodes after the drop but not before)."""
    try:
        try:
            return decoder.decode(data)
        except msgspec.MsgspecError as exc:
            if data[:3] != b"\xef\xbb\xbf":
                raise errors.from_msgspec(exc) from None
        try:
            return decoder.decode(data[3:])
        except msgspec.MsgspecError as exc:
            raise errors.from_msgspec(exc) from None
    except RecursionError:  # msgspec's nesting limit: no camera event nests so deep
        raise errors.MalformedBody("JSON nested too deeply") from None


OBJECT: Final = msgspec.json.Decoder(dict[str, Any])
