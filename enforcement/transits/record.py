"""The transit record: what the log keeps of one camera transit, and its identity.

A transit's id is derived from the camera's `(camera, event_id)` and the capture instant, so
the same event gets the same id in every worker, replica and replay: a retry never becomes a
second transit, and acknowledged ids can be reconciled against the log. The dedup key names
`(camera, event_id)` only, so a retry with a slightly different body is still a retry.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Final

import msgspec

from ..core.localtime import LocalClock
from ..core.plates import Plate
from ..core.verdict import Verdict

NO_FIELDS: Final = msgspec.Raw(b"\xc0")  # MessagePack nil: a native transit's vendor fields


class Transit(msgspec.Struct, gc=False):
    """One camera transit as `Intake.accept` judges and records it, whatever format it came in
    (a native TransitIn, a vendor adapter's read). Built in C, one per transit."""

    camera: str
    gate: str
    event_id: str | None
    raw: str  # the plate as read
    plate: Plate  # normalised: normalise(raw, country)
    ts: float  # capture instant, epoch seconds (camera clock)
    confidence: float | None
    country: str | None
    fields: object = None  # a vendor's raw payload fields (TransitRecord.vendor), unencoded
    candidates: Iterable[str] = ()  # the camera's alternative reads, as sent


class TransitRecord(msgspec.Struct, array_like=True, gc=False, omit_defaults=True):
    """One transit as logged. Holds a plate: deleted with its retention (`[retention]`)."""

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
    # The raw payload fields a vendor adapter keeps (never images): a MessagePack map in the
    # vendor's own field names, or nil. Decoded as a Raw, left for whoever reads it (a Raw
    # field cannot be optional: msgspec decodes it whatever it holds). A new record holds
    # the adapter's struct or dict itself instead: msgspec encodes a field by its value's
    # type, so it is encoded in place, with the record (encode_record), the same bytes.
    vendor: msgspec.Raw = NO_FIELDS
    # A correction (passages.py): the passage's earlier reads (normalised plates, oldest
    # first) this record's read replaces; the record carries the passage's transit id.
    earlier: list[str] = []


class Seen(msgspec.Struct, array_like=True, gc=False):
    """What the dedup key keeps of a camera event's passage: the standing read's verdict
    (what a retry gets back), and what tells a retry, a correction and a new passage apart
    (passages.py): the standing read, when it was captured, the reads it replaced. It holds
    a plate, so it expires no later than the record it stands for (`retention.allowed`)."""

    id: str
    verdict: str
    reason: str
    permits: list[str]
    revision: int
    grace_until: int | None
    plate: str = ""  # the standing read, normalised
    ts: float = 0.0  # its capture instant; 0: written before Varco kept it (a retry then)
    earlier: list[str] = []  # the reads it replaced, oldest first

    def answer(self, plate: str, event_id: str | None, clock: LocalClock) -> Verdict:
        """The verdict a retry gets: the first attempt's, with its transit id."""
        grace = None if self.grace_until is None else clock.to_datetime(self.grace_until)
        return Verdict(
            self.verdict, self.reason, plate, self.permits, self.revision, grace, event_id, self.id
        )


ENCODE: Final = msgspec.msgpack.Encoder().encode
MAX_RECORD: Final = 4096  # bytes: past this a record's vendor fields are cut (encode_record)
MAX_FIELD: Final = 256  # characters a vendor text is cut to, there
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


def identity(camera: str, event_id: str, ts: float) -> tuple[str, str]:
    """`(transit_id(...), dedup_key(...))` in one call. Still two hashes: both derivations are
    pinned (stored ids and Redis key names must match across versions), and they differ in
    input (the capture instant) and digest size. (Hashing the shared prefix once and copying
    the state costs more than it saves: a third `update` call.)"""
    tid = _ID_HASH.copy()
    tid.update(f"{camera}\0{event_id}\0{ts:.3f}".encode())
    key = _KEY_HASH.copy()
    key.update(f"{camera}\0{event_id}".encode())
    return tid.hexdigest(), key.hexdigest()


def encode_record(record: TransitRecord) -> bytes:
    """The record as logged. A payload that puts a blob where a value was due would make it
    large: then it is encoded again with the vendor's texts cut to MAX_FIELD characters,
    lists to 10 items and maps to 64 keys (kept, not refused: the transit happened)."""
    data = ENCODE(record)
    if len(data) > MAX_RECORD and record.vendor is not NO_FIELDS:
        fields: object = record.vendor
        plain = (
            msgspec.msgpack.decode(fields)
            if isinstance(fields, msgspec.Raw)
            else msgspec.to_builtins(fields)
        )
        cut = msgspec.Raw(ENCODE(_cut(plain)))
        data = ENCODE(msgspec.structs.replace(record, vendor=cut))
    return data


def lapsed(frame: bytes, cutoff: float) -> bool:
    """An encoded record of an allowed or not-enforced transit received before `cutoff`:
    past its retention. Pending and review records stay: they must reach the follow-up."""
    rec = DECODE_RECORD(frame)
    return rec.verdict in ("allowed", "not_enforced") and rec.received < cutoff


def _cut(value: object) -> object:
    if isinstance(value, str):
        return value[:MAX_FIELD]
    if isinstance(value, dict):
        return {str(k)[:MAX_FIELD]: _cut(v) for k, v in list(value.items())[:64]}
    if isinstance(value, list):
        return [_cut(v) for v in value[:10]]
    return value


def seen_of(record: TransitRecord) -> Seen:
    """What the dedup key keeps of a record."""
    return Seen(
        record.id,
        record.verdict,
        record.reason,
        record.permits,
        record.revision,
        record.grace_until,
        record.plate,
        record.ts,
        record.earlier,
    )
