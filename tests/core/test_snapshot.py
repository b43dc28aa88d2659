"""Snapshot format: round trip, and every kind of damage refused."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from enforcement.core.snapshot import SnapshotError, open_snapshot, write_snapshot

from ..support.core import build


@pytest.fixture
def snapshot(tmp_path: Path) -> Path:
    rows = [("AB1", 100, 200, 1, 0, 1), ("AB1", 150, 4294967295, 2, 1, 0), ("B0", 0, 5, 3, 2, 3)]
    path = tmp_path / "s.vidx"
    write_snapshot(build(rows, ["PD-1", "PD-2", "CUDE-ü"]), path)
    return path


def test_round_trip(snapshot: Path) -> None:
    rows = [("AB1", 100, 200, 1, 0, 1), ("AB1", 150, 4294967295, 2, 1, 0), ("B0", 0, 5, 3, 2, 3)]
    original = build(rows, ["PD-1", "PD-2", "CUDE-ü"])
    loaded = open_snapshot(snapshot)
    assert loaded.meta == original.meta
    for name in ("keys", "offsets", "records", "buckets", "order", "id_blob", "id_offsets"):
        assert np.array_equal(getattr(loaded, name), getattr(original, name)), name
    assert [loaded.permit_id(i) for i in range(3)] == ["CUDE-ü", "PD-1", "PD-2"]  # sorted
    assert loaded.row_of("PD-2") == 2 and loaded.row_of("PD-3") == -1


def test_no_temporary_files_left(snapshot: Path) -> None:
    assert [p.name for p in snapshot.parent.iterdir()] == ["s.vidx"]


@pytest.mark.parametrize("where", [0.05, 0.5, 0.99])
def test_flipped_byte_is_refused(snapshot: Path, where: float) -> None:
    data = bytearray(snapshot.read_bytes())
    pos = max(96, int(len(data) * where))
    data[pos] ^= 0x40
    snapshot.write_bytes(bytes(data))
    with pytest.raises(SnapshotError, match="checksum"):
        open_snapshot(snapshot)


@pytest.mark.parametrize("keep", [0, 10, 63, 97, 300, -1])
def test_truncated_is_refused(snapshot: Path, keep: int) -> None:
    data = snapshot.read_bytes()
    snapshot.write_bytes(data[:keep] if keep >= 0 else data[:-1])
    with pytest.raises(SnapshotError):
        open_snapshot(snapshot)


def test_bad_magic_and_version(snapshot: Path) -> None:
    data = bytearray(snapshot.read_bytes())
    snapshot.write_bytes(b"NOTVARCO" + bytes(data[8:]))
    with pytest.raises(SnapshotError, match="magic"):
        open_snapshot(snapshot)
    data[8:12] = (99).to_bytes(4, "little")
    snapshot.write_bytes(bytes(data))
    with pytest.raises(SnapshotError, match="version 99"):
        open_snapshot(snapshot)


def test_replace_is_whole(snapshot: Path) -> None:
    before = open_snapshot(snapshot)
    inode = os.stat(snapshot).st_ino
    write_snapshot(build([("Z9", 1, 2, 1, 0, 1)]), snapshot)
    assert os.stat(snapshot).st_ino != inode  # a new file renamed over the old one
    assert open_snapshot(snapshot).plate_count == 1
    assert before.plate_count == 2  # the old mapping still reads the old file
