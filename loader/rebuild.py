"""Rebuild: read the permit database, build the index, publish a snapshot.

Snapshots are written as `index-r<revision>-<time>.vidx` and then made current by atomically
replacing the `current.vidx` symlink, so a running service never sees half a file. A new
snapshot with far fewer permits than the current one is refused unless the operator accepts
the shrink: an emptied source table must not silently lift enforcement.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
from tqdm import tqdm

from enforcement.core.index import (
    FLAG_PRIMARY,
    SOURCE_SHIFT,
    SOURCES,
    IndexMeta,
    PermitIndex,
    build_index,
)
from enforcement.core.plates import plate_key
from enforcement.core.rules import Rules, zone_mask
from enforcement.core.snapshot import (
    SUFFIX,
    SnapshotError,
    open_snapshot,
    read_header,
    write_snapshot,
)

from .columns import parse_periods
from .store import PermitStore

log = logging.getLogger(__name__)

CURRENT: Final = "current" + SUFFIX
KEEP_SNAPSHOTS: Final = 3
DEFAULT_MAX_SHRINK: Final = 0.10


class ShrinkRefused(Exception):
    """The new index would drop too large a share of the current one's permits."""


@dataclass(frozen=True, slots=True)
class RebuildReport:
    path: Path
    revision: int
    permits: int
    plates: int
    records: int
    seconds: float


def index_from_db(
    db: PermitStore, rules: Rules, history_days: int, now: float | None = None
) -> PermitIndex:
    """Build an index of every permit not ended more than `history_days` ago."""
    now = time.time() if now is None else now
    revision = db.revision  # read first: rows committed later may or may not be included,
    # and a later rebuild or change stream replays them; never claim more than we read.
    type_codes = tuple(rules.types)
    zone_codes = tuple(rules.zones)
    type_no = {t: i for i, t in enumerate(type_codes)}
    default_zones = {t: zone_mask(p.zones, zone_codes) for t, p in rules.types.items()}
    zone_cache: dict[str, int] = {}
    source_no = {s: i for i, s in enumerate(SOURCES)}

    keys: list[int] = []
    starts: list[int] = []
    ends: list[int] = []
    zones: list[int] = []
    rows: list[int] = []
    types: list[int] = []
    flags: list[int] = []
    permit_ids: list[str] = []
    row_of: dict[str, int] = {}
    skipped: dict[str, int] = {}  # type code -> plate rows left out
    total = db.count()
    min_end = int(now - history_days * 86400)
    for pid, vfrom, vto, type_, zone_text, source, primary, plate, periods in tqdm(
        db.index_rows(min_end), total=total, unit="plate", desc="rebuild", disable=None
    ):
        t = type_no.get(type_)
        if t is None:  # a type removed from the configuration: nothing to enforce it by
            skipped[type_] = skipped.get(type_, 0) + 1
            continue
        row = row_of.get(pid)
        if row is None:
            row = row_of[pid] = len(permit_ids)
            permit_ids.append(pid)
        if zone_text:
            mask = zone_cache.get(zone_text)
            if mask is None:
                mask = zone_cache[zone_text] = zone_mask(
                    [z for z in zone_text.split() if z in rules.zones], zone_codes
                )
        else:
            mask = default_zones[type_]
        flag = (FLAG_PRIMARY if primary else 0) | (
            source_no.get(source, len(SOURCES) - 1) << SOURCE_SHIFT
        )
        key = plate_key(plate)
        # One interval per validity period (a renewed permit has several, loader/periods.py),
        # all of the same permit row; periods ended before the history kept are left out.
        for start, end in parse_periods(periods) if periods else ((vfrom, vto),):
            if end is not None and end < min_end:
                continue
            keys.append(key)
            starts.append(start)
            ends.append(0xFFFFFFFF if end is None else end)
            zones.append(mask)
            rows.append(row)
            types.append(t)
            flags.append(flag)
    for type_, n in sorted(skipped.items()):
        # Never silently: such permits are not enforced until the type is configured again.
        log.warning(
            "%d plate rows of permit type %r left out: the configuration has no such type", n, type_
        )
    meta = IndexMeta(revision, int(now), type_codes, zone_codes)
    return build_index(
        meta, np.array(keys, dtype=np.int64), starts, ends, zones, rows, types, flags, permit_ids
    )


def current_snapshot(snapshot_dir: Path) -> Path:
    return snapshot_dir / CURRENT


def publish(
    index: PermitIndex, snapshot_dir: Path, *, max_shrink: float = DEFAULT_MAX_SHRINK
) -> Path:
    """Write a snapshot, verify it, and make it current (unless it shrinks too much)."""
    snapshot_dir.mkdir(parents=True, exist_ok=True)
    current = current_snapshot(snapshot_dir)
    try:
        previous = read_header(current)["permits"]
    except (OSError, SnapshotError):
        previous = 0
    if previous and index.permit_count < previous * (1 - max_shrink):
        raise ShrinkRefused(
            f"the new index has {index.permit_count} permits, the current one {previous} "
            f"(a drop of more than {max_shrink:.0%}); check the sources, or accept it with "
            "--accept-shrink"
        )
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(index.meta.built_at))
    path = snapshot_dir / f"index-r{index.meta.revision:012d}-{stamp}-{os.getpid()}{SUFFIX}"
    write_snapshot(index, path)
    open_snapshot(path)  # read it back whole: never point `current` at a bad file
    tmp_link = snapshot_dir / f".current-{os.getpid()}"
    tmp_link.unlink(missing_ok=True)
    tmp_link.symlink_to(path.name)
    os.replace(tmp_link, current)
    _prune(snapshot_dir, keep=path)
    return path


def _prune(snapshot_dir: Path, keep: Path) -> None:
    """Keep the newest few snapshots (a service may still map an older one: unlinking is
    safe, the mapping keeps the inode alive)."""
    files = sorted(snapshot_dir.glob("index-r*" + SUFFIX), key=lambda p: p.stat().st_mtime)
    for old in files[:-KEEP_SNAPSHOTS]:
        if old != keep:
            old.unlink(missing_ok=True)


def rebuild(
    db: PermitStore,
    rules: Rules,
    snapshot_dir: Path,
    history_days: int,
    *,
    max_shrink: float = DEFAULT_MAX_SHRINK,
) -> RebuildReport:
    t0 = time.perf_counter()
    index = index_from_db(db, rules, history_days)
    path = publish(index, snapshot_dir, max_shrink=max_shrink)
    return RebuildReport(
        path,
        index.meta.revision,
        index.permit_count,
        index.plate_count,
        index.interval_count,
        time.perf_counter() - t0,
    )
