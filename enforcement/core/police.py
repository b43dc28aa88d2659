"""The police view of a plate: every permit it holds, the verdict per zone, near-matches."""

from __future__ import annotations

import datetime as dt

import msgspec

from .checker import Checker
from .index import END_UNLIMITED, Interval
from .live import LiveIndex
from .plates import confusable_variants, plate_key
from .rules import PermitType, Rules
from .verdict import MISS_REASONS


class PermitView(msgspec.Struct):
    permit_id: str
    type: str
    type_name: str
    valid_from: dt.datetime
    valid_to: dt.datetime | None
    zones: list[str]
    source: str
    primary: bool
    windows: list[str]  # local time slots; empty = no restriction
    status: str  # valid | expired | not_yet_valid at the instant asked


class ZoneVerdict(msgspec.Struct):
    zone: str
    verdict: str  # allowed | not_allowed
    reason: str
    permits: list[str]


class NearMatch(msgspec.Struct):
    plate: str
    permits: list[str]


class PlateView(msgspec.Struct):
    plate: str
    at: dt.datetime
    index_revision: int
    permits: list[PermitView]
    zones: list[ZoneVerdict]
    near_matches: list[NearMatch]


def _status(start: int, end: int, t: int) -> str:
    if t < start:
        return "not_yet_valid"
    return "expired" if t >= end else "valid"


def _visible(live: LiveIndex, text: str) -> list[Interval]:
    """The snapshot's intervals of a plate, less those the overlay supersedes."""
    masked = live.overlay.masked
    return [
        iv
        for iv in live.index.intervals(plate_key(text))
        if not masked[iv.permit >> 3] >> (iv.permit & 7) & 1
    ]


def plate_view(
    checker: Checker, live: LiveIndex, text: str, at: dt.datetime, zones: list[str]
) -> PlateView:
    """What an officer sees for normalised plate `text` at instant `at`, for `zones`."""
    rules: Rules = checker.rules
    t = int(at.timestamp())
    index = live.index
    to_local = rules.clock.to_datetime
    permits = []

    def view(
        permit_id: str,
        code: str,
        ptype: PermitType | None,
        start: int,
        end: int,
        zones: int,
        source: str,
        primary: bool,
    ) -> PermitView:
        return PermitView(
            permit_id=permit_id,
            type=code,
            type_name=ptype.name if ptype else f"{code} (not in the configuration)",
            valid_from=to_local(start),
            valid_to=None if end == END_UNLIMITED else to_local(end),
            zones=live.zone_codes(zones),
            source=source,
            primary=primary,
            windows=list(ptype.window_text) if ptype else [],
            status=_status(start, end, t),
        )

    for iv in _visible(live, text):
        permits.append(
            view(
                index.permit_id(iv.permit),
                index.meta.type_codes[iv.type],
                live.types[iv.type],
                iv.start,
                iv.end,
                iv.zones,
                iv.source,
                iv.primary,
            )
        )
    for r in live.overlay.by_plate.get(text, ()):  # changed since the snapshot
        permits.append(
            view(r.permit_id, r.type_code, r.ptype, r.start, r.end, r.zones, r.source, r.primary)
        )
    verdicts = []
    for zone in zones:
        ids, miss = checker.cover(live, text, t, live.zone_masks[zone])
        if ids:
            verdicts.append(ZoneVerdict(zone, "allowed", "permit", ids))
        else:
            verdicts.append(ZoneVerdict(zone, "not_allowed", MISS_REASONS[miss], []))
    near = []
    for variant in confusable_variants(text):
        ids = [index.permit_id(iv.permit) for iv in _visible(live, variant)]
        ids += [r.permit_id for r in live.overlay.by_plate.get(variant, ())]
        if ids:
            near.append(NearMatch(variant, list(dict.fromkeys(ids))))
    return PlateView(text, at.astimezone(rules.clock.tz), live.revision, permits, verdicts, near)
