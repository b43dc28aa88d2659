"""The police view of a plate: every permit it holds, the verdict per zone, near-matches."""

from __future__ import annotations

import datetime as dt

from .index import END_UNLIMITED, Interval
from .live import LiveIndex
from .plates import confusable_variants, plate_key
from .rules import Rules
from .schemas import NearMatch, PermitView, PlateView, ZoneVerdict
from .verdicts import MISS_REASONS, Checker


def _status(iv: Interval, t: int) -> str:
    if t < iv.start:
        return "not_yet_valid"
    return "expired" if t >= iv.end else "valid"


def plate_view(checker: Checker, live: LiveIndex, text: str, at: dt.datetime,
               zones: list[str]) -> PlateView:  # fmt: skip
    """What an officer sees for normalised plate `text` at instant `at`, for `zones`."""
    rules: Rules = checker.rules
    t = int(at.timestamp())
    index = live.index
    to_local = rules.clock.to_datetime
    permits = []
    for iv in index.intervals(plate_key(text)):
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
            status=_status(iv, t),
        ))  # fmt: skip
    verdicts = []
    for zone in zones:
        rows, miss = checker.scan_mask(live, text, t, live.zone_masks[zone])
        if rows:
            verdicts.append(ZoneVerdict(zone, "allowed", "permit",
                                        [index.permit_id(r) for r in rows]))  # fmt: skip
        else:
            verdicts.append(ZoneVerdict(zone, "not_allowed", MISS_REASONS[miss], []))
    near = []
    for variant in confusable_variants(text):
        ivs = index.intervals(plate_key(variant))
        if ivs:
            ids = list(dict.fromkeys(index.permit_id(iv.permit) for iv in ivs))
            near.append(NearMatch(variant, ids))
    return PlateView(text, at.astimezone(rules.clock.tz), live.revision, permits, verdicts, near)
