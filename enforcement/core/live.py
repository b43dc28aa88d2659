"""The index in service: a verified snapshot bound to the city's rules, and its holder.

A snapshot names its permit types and zones by code; the running configuration may list them
in another order or lack one. `LiveIndex` translates once, at activation: snapshot type number
-> `PermitType` (None when the configuration no longer knows it: such a permit covers nothing
and the police view says so), and gate -> bit mask of snapshot zones whose permits cover it.
`IndexHolder.current` is swapped whole; a request reads it once and keeps that one. Permit
changes since the snapshot live in its `overlay` (see overlay.py), applied in place.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from .index import PermitIndex
from .overlay import Overlay
from .plates import CONFUSABLE

try:
    from ._lookup import Scanner
except ImportError:  # not built: Checker scans in Python
    Scanner = None  # type: ignore[assignment,misc]
from .localtime import MINUTES_PER_WEEK
from .rules import ALWAYS, HolidayMode, PermitType, Rules

log = logging.getLogger(__name__)

# How the C tables spell a HolidayMode (_lookup.c, _judge.c).
HOLIDAY_CODES: Final = {HolidayMode.NORMAL: 0, HolidayMode.INACTIVE: 1, HolidayMode.AS_SUNDAY: 2}


@dataclass(frozen=True, slots=True, eq=False)
class LiveIndex:
    index: PermitIndex
    types: tuple[PermitType | None, ...]  # by snapshot type number
    type_always: tuple[bool, ...]  # by snapshot type number: no time-slot or holiday rule
    gate_masks: dict[str, int]  # gate code -> snapshot zone bits that cover its zone
    zone_masks: dict[str, int]  # zone code -> snapshot zone bits that cover it
    source: str  # file it came from, for /readyz
    activated_at: float
    unknown_types: tuple[str, ...]
    overlay: Overlay  # permit changes newer than the snapshot
    # Vectorised rule tables for batch checks, by snapshot type number.
    type_windows: npt.NDArray[np.uint8] = field(repr=False)  # [types, minute of week]
    type_modes: npt.NDArray[np.uint8] = field(repr=False)
    type_cude: npt.NDArray[np.bool_] = field(repr=False)
    type_known: npt.NDArray[np.bool_] = field(repr=False)
    # The record scan with these tables in C (None without the kernel): see Checker.scan_mask.
    scanner: Scanner | None = field(repr=False, default=None)

    @property
    def revision(self) -> int:
        """The highest permit revision enforced: the snapshot's plus applied changes."""
        return self.overlay.revision

    @property
    def snapshot_revision(self) -> int:
        return self.index.meta.revision

    @property
    def fresh_at(self) -> float:
        """Epoch seconds up to which the permit database is known to be reflected."""
        return max(float(self.index.meta.built_at), self.overlay.fresh_at)

    @property
    def built_at(self) -> int:
        return self.index.meta.built_at

    def zone_codes(self, mask: int) -> list[str]:
        return [z for i, z in enumerate(self.index.meta.zone_codes) if mask >> i & 1]


def bind(index: PermitIndex, rules: Rules, source: str | Path = "") -> LiveIndex:
    """Translate a snapshot's type and zone codes to the running rules."""
    types = tuple(rules.types.get(code) for code in index.meta.type_codes)
    unknown = tuple(c for c, t in zip(index.meta.type_codes, types, strict=True) if t is None)
    if unknown:
        log.warning("snapshot names permit types the configuration lacks: %s", ", ".join(unknown))
    zone_bit = {z: 1 << i for i, z in enumerate(index.meta.zone_codes)}
    zone_masks = {}
    for code, covering in rules.covered_by.items():
        mask = 0
        for z in covering:
            mask |= zone_bit.get(z, 0)
        zone_masks[code] = mask
    gate_masks = {code: zone_masks[gate.zone] for code, gate in rules.gates.items()}
    n = max(len(types), 1)
    windows = np.zeros((n, MINUTES_PER_WEEK), dtype=np.uint8)
    modes = np.zeros(n, dtype=np.uint8)
    cude = np.zeros(n, dtype=bool)
    known = np.zeros(n, dtype=bool)
    for i, t in enumerate(types):
        if t is not None:
            windows[i] = np.frombuffer(t.windows, dtype=np.uint8)
            modes[i] = HOLIDAY_CODES[t.holidays]
            cude[i] = t.cude
            known[i] = True
    always = tuple(
        t is not None and t.windows is ALWAYS and t.holidays is HolidayMode.NORMAL for t in types
    )
    masked = bytearray((index.permit_count + 7) // 8 or 1)
    overlay = Overlay(index, rules, masked)
    scanner = None
    if index.c_kernel is not None and Scanner is not None:
        starts, offsets = rules.clock.transitions()
        always_u8 = np.zeros(n, dtype=np.uint8)
        always_u8[: len(always)] = always
        scanner = Scanner(
            index.c_kernel,
            always_u8,
            known.astype(np.uint8),
            cude.astype(np.uint8),
            modes,
            windows,
            np.array(starts, np.int64),
            np.array(offsets, np.int64),
            rules.holidays.flags,
            masked,
            CONFUSABLE,
        )
    return LiveIndex(
        index,
        types,
        always,
        gate_masks,
        zone_masks,
        str(source),
        time.time(),
        unknown,
        overlay,
        windows,
        modes,
        cude,
        known,
        scanner,
    )


class NoIndex(Exception):
    """No verified permit index is loaded yet: nothing can be judged."""


class IndexHolder:
    """Holds the index being served; `current` is None until a verified one is activated."""

    def __init__(self) -> None:
        self.current: LiveIndex | None = None
        self.swaps = 0
        self.rejected = 0
        self.last_error: str | None = None

    def live(self) -> LiveIndex:
        """The index being served; NoIndex before one is activated."""
        live = self.current
        if live is None:
            raise NoIndex("no verified permit index loaded yet; see /readyz")
        return live

    def activate(self, live: LiveIndex) -> None:
        self.current = live
        self.swaps += 1
        self.last_error = None

    def refuse(self, error: Exception) -> None:
        """A snapshot was refused (corrupt, unreadable): counted and shown, not served."""
        self.rejected += 1
        self.last_error = str(error)
