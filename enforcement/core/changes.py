"""A permit change as it travels from the loader to every replica (one Redis stream entry).

The entry carries the permit's whole new row, never a delta, so applying it twice or after a
newer snapshot is harmless (upsert by permit id). `revision` is the permit's revision in the
permit database; `prev` is the revision of the entry published before it. A replica that has
applied revision r accepts an entry only if `prev <= r`: anything else means it missed an
entry (the stream was trimmed past it, or Redis lost data) and must resynchronise from a
snapshot. Revisions between `prev` and `revision` that were never published belong to
permits changed again later: their newest version is published instead, so none is lost.
"""

from __future__ import annotations

from typing import Final

import msgspec

STREAM_FIELD: Final = b"c"  # the stream entry's one field: the msgpack-encoded change


class PermitChange(msgspec.Struct, frozen=True, array_like=True, gc=False):
    revision: int
    prev: int
    permit_id: str
    type: str
    valid_from: int  # epoch seconds, inclusive
    valid_to: int | None  # epoch seconds, exclusive; None = unlimited
    zones: tuple[str, ...]  # empty: the type's zones
    source: str
    plates: tuple[tuple[str, bool], ...]  # (normalised plate, primary)
    # A renewed permit's validity periods, by start (valid_from/valid_to then span them);
    # empty: the one period [valid_from, valid_to). Last, so that an entry written before it
    # existed still decodes.
    periods: tuple[tuple[int, int | None], ...] = ()

    def spans(self) -> tuple[tuple[int, int | None], ...]:
        """The validity periods [start, end), end None: unlimited."""
        return self.periods or ((self.valid_from, self.valid_to),)


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(PermitChange)


def encode_change(change: PermitChange) -> bytes:
    return _encoder.encode(change)


def decode_change(data: bytes) -> PermitChange:
    """Raises msgspec.DecodeError (a ValueError) on a malformed entry."""
    return _decoder.decode(data)


def stream_id(revision: int) -> str:
    """The stream entry id of a revision: entries are ordered and deduplicated by it."""
    return f"{revision}-1"


def revision_of(entry_id: bytes | str) -> int:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(text.split("-", 1)[0])
