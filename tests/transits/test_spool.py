"""The local spool: frames survive as written, a torn tail (a write cut by kill -9, never
acknowledged) is ignored, a full spool refuses, directories are claimed one per process, and
retention rewrites a segment atomically."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from enforcement.transits.spool import Spool, SpoolFull, all_frames, read_frames


@settings(max_examples=50, deadline=None)
@given(
    groups=st.lists(
        st.lists(st.binary(min_size=0, max_size=300), min_size=1, max_size=20),
        min_size=1,
        max_size=10,
    )
)
def test_frames_come_back_in_order(
    tmp_path_factory: pytest.TempPathFactory, groups: list[list[bytes]]
) -> None:
    root = tmp_path_factory.mktemp("spool")
    spool = Spool.claim(root, 1 << 30)
    for g in groups:
        spool.append(g)
    assert list(all_frames(root)) == [f for g in groups for f in g]
    spool.release()


def test_torn_tail_is_ignored(tmp_path: Path) -> None:
    spool = Spool.claim(tmp_path, 1 << 20)
    spool.append([b"first", b"second"])
    spool.append([b"third-record"])
    (segment,) = spool.segments()
    size = segment.stat().st_size
    with open(segment, "r+b") as f:
        f.truncate(size - 3)  # the last frame cut short
    assert list(read_frames(segment)) == [b"first", b"second"]
    with open(segment, "r+b") as f:  # a corrupt byte: the frame and what follows are dropped
        f.seek(9)
        f.write(b"X")
    assert list(read_frames(segment)) == []


def test_full_spool_refuses_and_keeps_what_it_has(tmp_path: Path) -> None:
    spool = Spool.claim(tmp_path, 100)
    spool.append([b"a" * 40])
    with pytest.raises(SpoolFull):
        spool.append([b"b" * 60])
    assert list(all_frames(tmp_path)) == [b"a" * 40]


def test_one_directory_per_process_and_a_dead_ones_is_reclaimed(tmp_path: Path) -> None:
    first = Spool.claim(tmp_path, 1 << 20)
    second = Spool.claim(tmp_path, 1 << 20)
    assert first.directory != second.directory
    first.append([b"left behind"])
    first.release()  # the process died: its lock is gone with it
    third = Spool.claim(tmp_path, 1 << 20)
    assert third.directory == first.directory and third.bytes_used > 0
    assert [f for p in third.segments() for f in read_frames(p)] == [b"left behind"]


def test_rewrite_drops_frames_atomically(tmp_path: Path) -> None:
    spool = Spool.claim(tmp_path, 1 << 20)
    spool.append([b"keep-1", b"drop", b"keep-2"])
    spool.seal()
    (segment,) = spool.segments()
    assert spool.rewrite(segment, lambda f: f != b"drop") == 1
    assert list(read_frames(segment)) == [b"keep-1", b"keep-2"]
    assert spool.bytes_used == segment.stat().st_size
    assert spool.rewrite(segment, lambda f: False) == 2
    assert spool.segments() == [] and spool.bytes_used == 0
    assert not [p for p in os.listdir(spool.directory) if p.endswith(".tmp")]
