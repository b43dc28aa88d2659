"""The interval index against a naive model, through both the C kernel and pure Python."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from enforcement.core import index as index_module
from enforcement.core.index import END_UNLIMITED, build_index
from enforcement.core.plates import plate_key

from ..support.core import META, build

# A small plate alphabet so that plates collide: several permits per plate, as renewals do.
PLATES = st.text(alphabet="AB01", min_size=1, max_size=3)
ROW = st.tuples(
    PLATES,
    st.integers(0, 2**32 - 2),  # start
    st.one_of(st.just(END_UNLIMITED), st.integers(0, 2**32 - 2)),  # end
    st.integers(0, 3),  # zones
    st.integers(0, 2),  # type
    st.integers(0, 9),  # flags
)


def model(rows: list[tuple[str, int, int, int, int, int]]) -> dict[str, list[tuple[int, ...]]]:
    out: dict[str, list[tuple[int, ...]]] = {}
    for i, (plate, start, end, zones, type_, flags) in enumerate(rows):
        out.setdefault(plate, []).append((start, end, zones, i, type_, flags))
    return out


@pytest.mark.parametrize("use_kernel", [True, False], ids=["c", "python"])
@settings(max_examples=150, deadline=None)
@given(rows=st.lists(ROW, max_size=60), probes=st.lists(PLATES, max_size=20))
def test_index_matches_model(
    use_kernel: bool, rows: list[tuple[str, int, int, int, int, int]], probes: list[str]
) -> None:
    if use_kernel and index_module.Kernel is None:
        pytest.skip("C kernel not built")
    idx = build(rows, use_kernel=use_kernel)
    expected = model(rows)
    for plate in set(probes) | set(expected):
        got = [tuple(r) for r in idx.plate_records(plate_key(plate))]
        want = expected.get(plate, [])
        assert sorted(got) == sorted(want)
        assert [r[0] for r in got] == sorted(r[0] for r in got)  # by start: renewals in order
        assert (idx.position(plate_key(plate)) >= 0) == (plate in expected)
    keys = np.array(
        [plate_key(p) for p in probes] + [plate_key(p) for p in expected], dtype=np.int64
    )
    lo, hi = idx.find_batch(keys)
    for k, a, b in zip(keys.tolist(), lo.tolist(), hi.tolist(), strict=True):
        batch = sorted(tuple(int(x) for x in rec) for rec in idx.records[a:b].tolist())
        assert batch == sorted(tuple(r) for r in idx.plate_records(k))
    assert idx.permit_count == len(rows)


def test_empty_index() -> None:
    idx = build([])
    assert idx.position(plate_key("AB123CD")) == -1
    assert list(idx.plate_records(plate_key("AB123CD"))) == []
    lo, hi = idx.find_batch(np.array([plate_key("A")], dtype=np.int64))
    assert (lo == hi).all()


def test_permit_ids_round_trip() -> None:
    ids = ["PD-1", "L736_2024_00015", "CUDE-ÀÈ-ü", ""]
    idx = build([("AB", 0, 10, 1, 0, 1)] * 4, ids)
    assert [idx.permit_id(i) for i in range(4)] == sorted(ids)  # stored in byte order


def test_negative_and_huge_keys_are_absent() -> None:
    idx = build([("AB", 0, 10, 1, 0, 1)])
    assert idx.position(-5) == -1
    if index_module.Kernel is not None:
        assert idx.position(2**70) == -1


def test_kernel_refuses_inconsistent_buffers() -> None:
    if index_module.Kernel is None:
        pytest.skip("C kernel not built")
    idx = build([("AB", 0, 10, 1, 0, 1), ("B", 0, 10, 1, 0, 1)])
    bad_order = idx.order.copy()
    bad_order[0] = 99
    with pytest.raises(ValueError, match="order"):
        index_module.Kernel(
            idx.keys, bad_order, idx.buckets, idx.offsets, idx.records.view(np.uint8)
        )


def test_permit_ids_stored_sorted_and_found_by_row_of() -> None:
    ids = ["P-9", "é-1", "A", "_x", "B", "a"]  # given out of order, with non-ASCII
    keys = [plate_key(f"AA{i:03d}BB") for i in range(len(ids))]
    n = len(ids)
    idx = build_index(
        META, keys, [0] * n, [END_UNLIMITED] * n, [1] * n, range(n), [0] * n, [1] * n, ids
    )
    stored = [idx.permit_id(r) for r in range(n)]
    assert stored == sorted(ids)
    for i, pid in enumerate(ids):  # each plate still names its own permit after the reorder
        (iv,) = idx.intervals(keys[i])
        assert idx.permit_id(iv.permit) == pid
        assert idx.row_of(pid) == iv.permit
    assert idx.row_of("missing") == -1 and idx.row_of("") == -1 and idx.row_of("zzz") == -1
