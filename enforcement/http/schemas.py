"""Request and response bodies of the HTTP API, as msgspec structs (decoders built once)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Final

import msgspec

from ..core.verdict import Verdict

Id = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
Code = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class TransitIn(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """One plate read by a gate camera."""

    event_id: Id  # the camera's own id: a retry, or a correction of the plate, carries it
    camera: Code
    gate: Code
    plate: Annotated[str, msgspec.Meta(max_length=64)]  # raw read; "" or "unknown" = no read
    ts: Annotated[dt.datetime, msgspec.Meta(tz=True)]  # capture instant, RFC 3339 with offset
    confidence: Annotated[float, msgspec.Meta(ge=0, le=1)] | None = None
    country: Annotated[str, msgspec.Meta(max_length=3)] | None = None


class BatchIn(msgspec.Struct, forbid_unknown_fields=True):
    transits: list[TransitIn]


class BatchOut(msgspec.Struct):
    results: list[Verdict]


class ErrorOut(msgspec.Struct, omit_defaults=True):
    error: str
    detail: str
    field: str | None = None


TRANSIT_DECODER: Final = msgspec.json.Decoder(TransitIn)
BATCH_DECODER: Final = msgspec.json.Decoder(BatchIn)
ENCODER: Final = msgspec.json.Encoder()
