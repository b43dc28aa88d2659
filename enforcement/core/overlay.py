"""Permit changes applied on top of a snapshot, until a newer snapshot covers them.

A change replaces its permit whole: the snapshot's records of that permit become invisible
(a bit per snapshot permit row in `masked`, which the C scanner reads too) and the new
version's records are kept here by plate. The overlay is small (changes since the last
snapshot) and read on the event loop thread that applies it, so it needs no lock.

Staleness: a change whose `prev` is newer than the overlay's revision means entries were
missed; the overlay then refuses further changes and reports `stale` until the follower
resynchronises from a newer snapshot (verdicts that would be `pending` become `review`).
"""

from __future__ import annotations

import logging
from typing import NamedTuple

from .changes import PermitChange
from .index import END_UNLIMITED, PermitIndex
from .rules import PermitType, Rules, zone_mask

log = logging.getLogger(__name__)


class OverlayRecord(NamedTuple):
    """One (plate, permit) interval of a changed permit, in the snapshot's zone bits."""

    start: int
    end: int  # exclusive; END_UNLIMITED as in the index
    zones: int
    permit_id: str
    type_code: str
    ptype: PermitType | None  # None: a type the configuration lacks (covers nothing)
    primary: bool
    source: str


class Overlay:
    def __init__(self, index: PermitIndex, rules: Rules, masked: bytearray) -> None:
        self._index = index
        self._rules = rules
        self._zone_codes = index.meta.zone_codes
        self.masked = masked  # shared with the C scanner: mutate in place only
        self.revision = index.meta.revision  # highest revision applied
        self.changes: dict[str, PermitChange] = {}  # permit id -> newest version
        self.by_plate: dict[str, list[OverlayRecord]] = {}
        self.masked_rows = 0
        self.stale: str | None = None  # why the overlay can no longer be trusted
        self.missing_upto = 0  # when stale: a snapshot of this revision or newer heals it
        # Epoch seconds up to which the follower saw the change stream complete (0: never).
        self.fresh_at = 0.0

    def __len__(self) -> int:
        return len(self.changes)

    def apply(self, change: PermitChange) -> bool:
        """Apply one change in stream order; False (and `stale` set) when one was missed."""
        if self.stale is not None:
            return False
        if change.revision <= self.revision:
            return True  # already in the snapshot or applied: a replay, harmless to skip
        if change.prev > self.revision:
            self.mark_stale(
                f"permit changes missed between revisions {self.revision} and {change.prev}",
                change.prev,
            )
            return False
        self._put(change)
        self.revision = change.revision
        return True

    def mark_stale(self, reason: str, missing_upto: int) -> None:
        """Changes up to `missing_upto` cannot be applied: stale until a snapshot has them."""
        self.stale, self.missing_upto = reason, missing_upto
        log.warning("index stale: %s", reason)

    def carry_over(self, older: Overlay) -> None:
        """Re-apply the changes of an older overlay that this (newer) snapshot lacks."""
        for change in sorted(older.changes.values(), key=lambda c: c.revision):
            if change.revision > self.revision:
                self._put(change)
        self.revision = max(self.revision, older.revision)
        self.fresh_at = older.fresh_at
        if older.stale is not None and older.missing_upto > self._index.meta.revision:
            self.stale, self.missing_upto = older.stale, older.missing_upto  # still missing

    def _put(self, change: PermitChange) -> None:
        old = self.changes.get(change.permit_id)
        if old is not None:
            for plate, _primary in old.plates:
                kept = [r for r in self.by_plate.get(plate, ()) if r.permit_id != old.permit_id]
                if kept:
                    self.by_plate[plate] = kept
                else:
                    self.by_plate.pop(plate, None)
        else:
            row = self._index.row_of(change.permit_id)
            if row >= 0:
                self.masked[row >> 3] |= 1 << (row & 7)
                self.masked_rows += 1
        self.changes[change.permit_id] = change
        ptype = self._rules.types.get(change.type)
        zones = change.zones or (ptype.zones if ptype is not None else ())
        mask = zone_mask([z for z in zones if z in self._zone_codes], self._zone_codes)
        for plate, primary in change.plates:
            records = self.by_plate.setdefault(plate, [])
            for start, end in change.spans():  # a renewed permit: one record per period
                records.append(
                    OverlayRecord(
                        start,
                        END_UNLIMITED if end is None else end,
                        mask,
                        change.permit_id,
                        change.type,
                        ptype,
                        primary,
                        change.source,
                    )
                )
