"""A realistic demo permit set: every permit type, overlaps, renewals, windows, CUDE badges.

Deterministic (seeded), so the plates printed in the README and by `varco demo` exist. Shapes
follow the cities' rules (Milan, Padova, the Veneto circuit): residents unlimited or renewed
with a 4-month overlap, craftsmen and shops for a year, hotel guests for a few days (some
registered after the fact), online 2-hour permits, temporary ones up to 6 months, CUDE badges
with a primary and a secondary plate, foreign and motorcycle plates, and permits that ended
within the last weeks.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from typing import Final

from enforcement.core.rules import Rules
from loader.store import PermitRow

DAY: Final = 86400
_LETTERS: Final = "ABCDEFGHJKLMNPRSTVWXYZ"  # Italian plates never use I, O, Q, U
_FOREIGN_LETTERS: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

# Plates the demo guarantees, for the README and the printed curl commands.
DEMO_RESIDENT: Final = "AB123CD"  # type 1, unlimited
DEMO_LOADING: Final = "EF456GH"  # type 4: 04:00-11:00 and 15:00-16:00 only
DEMO_CUDE_PRIMARY: Final = "FA001CU"
DEMO_CUDE_SECONDARY: Final = "FA002CU"
DEMO_UNKNOWN: Final = "ZZ999ZZ"  # no permit: pending
DEMO_NEAR: Final = "AB123C0"  # one OCR confusion from the resident: review (near_match)

# (type code, share of permits); codes absent from the configuration are skipped.
_MIX: Final = (
    ("1", 0.16),
    ("2", 0.18),
    ("2bis", 0.06),
    ("3", 0.06),
    ("4", 0.08),
    ("5", 0.04),
    ("6", 0.02),
    ("7", 0.03),
    ("8", 0.14),
    ("9", 0.02),
    ("10", 0.01),
    ("ONLINE", 0.08),
    ("TEMP", 0.06),
    ("CUDE", 0.06),
)


class _Plates:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: set[str] = {
            DEMO_RESIDENT,
            DEMO_LOADING,
            DEMO_CUDE_PRIMARY,
            DEMO_CUDE_SECONDARY,
            DEMO_UNKNOWN,
            DEMO_NEAR,
        }

    def new(self) -> str:
        r = self.rng
        while True:
            kind = r.random()
            if kind < 0.86:  # car LL DDD LL
                p = (
                    r.choice(_LETTERS)
                    + r.choice(_LETTERS)
                    + f"{r.randrange(1000):03d}"
                    + r.choice(_LETTERS)
                    + r.choice(_LETTERS)
                )
            elif kind < 0.92:  # motorcycle LL DDDDD
                p = r.choice(_LETTERS) + r.choice(_LETTERS) + f"{r.randrange(100000):05d}"
            else:  # foreign: German, French, Swiss, Austrian shapes, normalised
                p = (
                    r.choice(_FOREIGN_LETTERS) * r.randint(1, 2)
                    + r.choice(_FOREIGN_LETTERS)
                    + str(r.randrange(10, 9999))
                )
            if p not in self.used:
                self.used.add(p)
                return p


def demo_permits(
    rules: Rules, count: int, seed: int = 2026, now: float | None = None
) -> Iterator[PermitRow]:
    """About `count` permits valid around `now`, valid for `rules`' permit types."""
    rng = random.Random(seed)
    now = int(time.time() if now is None else now)
    plates = _Plates(rng)
    mix = [(t, w) for t, w in _MIX if t in rules.types]
    types, weights = [t for t, _ in mix], [w for _, w in mix]
    seq = 0

    def pid(prefix: str) -> str:
        nonlocal seq
        seq += 1
        return f"{prefix}-{seq:07d}"

    def capped(type_: str, start: int, end: int | None) -> int | None:
        limit = rules.types[type_].max_duration
        if limit is None:
            return end
        latest = limit.end_from(start, rules.clock)
        return latest if end is None else min(end, latest)

    # The guaranteed plates first.
    if "1" in rules.types:
        yield PermitRow(
            pid("PD"), "1", now - 400 * DAY, None, (), "municipal", ((DEMO_RESIDENT, True),)
        )
    if "4" in rules.types:
        yield PermitRow(
            pid("PD"),
            "4",
            now - 30 * DAY,
            capped("4", now - 30 * DAY, None),
            (),
            "municipal",
            ((DEMO_LOADING, True),),
        )
    if "CUDE" in rules.types:
        yield PermitRow(
            pid("CUDE"),
            "CUDE",
            now - 200 * DAY,
            now + 800 * DAY,
            (),
            "cude",
            ((DEMO_CUDE_PRIMARY, True), (DEMO_CUDE_SECONDARY, False)),
        )

    produced = 3
    while produced < count:
        type_ = rng.choices(types, weights)[0]
        produced += 1
        if type_ in ("1", "2", "2bis"):
            start = now - rng.randrange(30, 3000) * DAY
            if rng.random() < 0.5:
                yield PermitRow(
                    pid("PD"), type_, start, None, (), "municipal", ((plates.new(), True),)
                )
                continue
            # A 3-year permit; a fifth are mid-renewal: the new one starts 4 months before the
            # old one ends, same plate, so both cover the overlap.
            plate = plates.new()
            end = now + rng.randrange(-20, 900) * DAY
            yield PermitRow(
                pid("PD"), type_, end - 3 * 365 * DAY, end, (), "municipal", ((plate, True),)
            )
            if rng.random() < 0.2:
                produced += 1
                yield PermitRow(
                    pid("PD"),
                    type_,
                    end - 120 * DAY,
                    end + 3 * 365 * DAY,
                    (),
                    "municipal",
                    ((plate, True),),
                )
        elif type_ == "8":  # hotel guests: a few days, some registered after the transit
            start = now - rng.randrange(0, 20 * 24) * 3600
            stay_end = capped(type_, start, start + rng.randint(1, 6) * DAY)
            yield PermitRow(
                pid("HOT"), type_, start, stay_end, (), "online", ((plates.new(), True),)
            )
        elif type_ == "ONLINE":
            start = now - rng.randrange(-48, 24 * 20) * 3600
            yield PermitRow(
                pid("WEB"), type_, start, start + 2 * 3600, (), "online", ((plates.new(), True),)
            )
        elif type_ == "TEMP":
            start = now - rng.randrange(0, 170) * DAY
            temp_end = capped(type_, start, start + rng.randrange(7, 183) * DAY)
            yield PermitRow(
                pid("TMP"), type_, start, temp_end, (), "municipal", ((plates.new(), True),)
            )
        elif type_ == "CUDE":
            start = now - rng.randrange(0, 1500) * DAY
            badge: tuple[tuple[str, bool], ...] = ((plates.new(), True),)
            if rng.random() < 0.4:
                badge += ((plates.new(), False),)
            yield PermitRow(
                pid("CUDE"), type_, start, start + 5 * 365 * DAY, (), "cude", tuple(sorted(badge))
            )
        else:  # 3, 4, 5, 6, 7, 9, 10: a year (capped by the type's maximum), several vehicles
            start = now - rng.randrange(0, 360) * DAY
            vehicles = tuple(
                sorted(
                    (plates.new(), True)
                    for _ in range(1 if rng.random() < 0.85 else rng.randint(2, 4))
                )
            )
            yield PermitRow(
                pid("PD"),
                type_,
                start,
                capped(type_, start, start + 365 * DAY),
                (),
                "municipal",
                vehicles,
            )
