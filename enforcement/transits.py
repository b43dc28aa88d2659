"""The transit record: what the log keeps of one camera transit, and its identity.

A transit's id is derived from the camera's `(camera, event_id)` and the capture instant, so
the same event gets the same id in every worker, replica and replay: a retry never becomes a
second transit, and acknowledged ids can be reconciled against the log. The dedup key names
`(camera, event_id)` only, so a retry with a slightly different body is still a retry.
"""

from __future__ import annotations

import hashlib
from typing import Final

import msgspec

from .verdicts import Verdict

NO_FIELDS: Final = msgspec.Raw(b"\xc0")  # MessagePack nil: a native transit's vendor fields


class TransitRecord(msgspec.Struct, array_like=True, gc=False, omit_defaults=True):
    """One transit as logged. Holds a plate: deleted with its retention (retention.py)."""

    id: str
    camera: str
    event_id: str
    gate: str
    zone: str
    plate: str  # normalised ("" when unreadable)
    raw: str  # the camera's read, as sent
    ts: float  # capture instant, epoch seconds (camera clock)
    received: float  # when Varco judged it, epoch seconds
    verdict: str
    reason: str
    permits: list[str] = []
    revision: int = 0
    grace_until: int | None = None  # epoch seconds; pending only
    confidence: float | None = None
    country: str | None = None
    # The raw payload fields a vendor adapter keeps (never images), embedded as the adapter
    # encoded them: a MessagePack map in the vendor's own field names (cameras/values.kept),
    # or nil. (A Raw field cannot be optional: msgspec decodes it whatever it holds.)
    vendor: msgspec.Raw = NO_FIELDS


class Seen(msgspec.Struct, array_like=True, gc=False):
    """What a retry gets back: the first attempt's verdict, without the plate (the dedup
    key outlives no record, but it need not carry a plate either)."""

    id: str
    verdict: str
    reason: str
    permits: list[str]
    revision: int
    grace_until: int | None


ENCODE: Final = msgspec.msgpack.Encoder().encode
DECODE_RECORD: Final = msgspec.msgpack.Decoder(TransitRecord).decode
DECODE_SEEN: Final = msgspec.msgpack.Decoder(Seen).decode


# Copied per use: cheaper than a new hash object with parameters (every transit takes both).
_ID_HASH: Final = hashlib.blake2b(digest_size=12)
_KEY_HASH: Final = hashlib.blake2b(digest_size=16)


def transit_id(camera: str, event_id: str, ts: float) -> str:
    """24 hex digits: unique per event for all practical purposes (2^96)."""
    h = _ID_HASH.copy()
    h.update(f"{camera}\0{event_id}\0{ts:.3f}".encode())
    return h.hexdigest()


def dedup_key(camera: str, event_id: str) -> str:
    """Hashed so that camera-chosen strings never shape Redis key names."""
    h = _KEY_HASH.copy()
    h.update(f"{camera}\0{event_id}".encode())
    return h.hexdigest()


def seen_of(record: TransitRecord) -> Seen:
    return Seen(record.id, record.verdict, record.reason, record.permits, record.revision,
                record.grace_until)  # fmt: skip


def record_of(verdict: Verdict, *, camera: str, gate: str, zone: str, raw: str, ts: float,
              received: float, confidence: float | None, country: str | None,
              vendor: msgspec.Raw | None) -> TransitRecord:  # fmt: skip
    event_id = verdict.event_id or ""
    grace = verdict.grace_until
    return TransitRecord(
        transit_id(camera, event_id, ts), camera, event_id, gate, zone, verdict.plate, raw, ts,
        received, verdict.verdict, verdict.reason, verdict.permits, verdict.index_revision,
        None if grace is None else int(grace.timestamp()), confidence, country,
        NO_FIELDS if vendor is None else vendor,
    )  # fmt: skip
