"""The police view of a plate: every permit it holds, the verdict per zone, near-matches."""

from __future__ import annotations

import datetime as dt

from .index import END_UNLIMITED, Interval
from .live import LiveIndex
from .plates import confusable_variants, plate_key
from .rules import Rules
from .schemas import NearMatch, PermitView, PlateView, ZoneVerdict
from .verdicts import MISS_REASONS, Checker


def _status(start: int, end: int, t: int) -> str:
    if t < start:
        return "not_yet_valid"
    return "expired" if t >= end else "valid"


def _visible(live: LiveIndex, text: str) -> list[Interval]:
    """The snapshot's intervals of a plate, less those the overlay supersedes."""
    masked = live.overlay.masked
    return [iv for iv in live.index.intervals(plate_key(text))
            if not masked[iv.permit >> 3] >> (iv.permit & 7) & 1]  # fmt: skip


def plate_view(checker: Checker, live: LiveIndex, text: str, at: dt.datetime,
               zones: list[str]) -> PlateView:  # fmt: skip
    """What an officer sees for normalised plate `text` at instant `at`, for `zones`."""
    rules: Rules = checker.rules
    t = int(at.timestamp())
    index = live.index
    to_local = rules.clock.to_datetime
    permits = []
    for iv in _visible(live, text):
        ptype = live.types[iv.type]
        code = index.meta.type_codes[iv.type]
        permits.append(PermitView(
            permit_id=index.permit_id(iv.permit),
            type=code,
            type_name=ptype.name if ptype else f"{code} (not in the configuration)",
            valid_from=to_local(iv.start),
            valid_to=None if iv.end == END_UNLIMITED else to_local(iv.end),
            zones=live.zone_codes(iv.zones),
            source=iv.source,
            primary=iv.primary,
            windows=list(ptype.window_text) if ptype else [],
            status=_status(iv.start, iv.end, t),
        ))  # fmt: skip
    for r in live.overlay.by_plate.get(text, ()):  # changed since the snapshot
        permits.append(PermitView(
            permit_id=r.permit_id,
            type=r.type_code,
            type_name=r.ptype.name if r.ptype else f"{r.type_code} (not in the configuration)",
            valid_from=to_local(r.start),
            valid_to=None if r.end is None else to_local(r.end),
            zones=live.zone_codes(r.zones),
            source=r.source,
            primary=r.primary,
            windows=list(r.ptype.window_text) if r.ptype else [],
            status=_status(r.start, END_UNLIMITED if r.end is None else r.end, t),
        ))  # fmt: skip
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
