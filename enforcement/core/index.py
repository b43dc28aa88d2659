"""The permit interval index: immutable, columnar, numpy. Knows nothing of HTTP or Redis.

Layout (every array may be a view into a memory-mapped snapshot, shared by all workers):

- `keys`     int64[P]    sorted plate keys (`plates.plate_key`), unique
- `offsets`  uint32[P+1] plate p owns interval records offsets[p]:offsets[p+1]
- `records`  RECORD[I]   one packed row per (plate, permit): start, end (epoch seconds,
                         [start, end), END_UNLIMITED for none), zones (bit mask over the
                         snapshot's zone list), permit (row in the permit-id table),
                         type (index into the snapshot's type list), flags (primary, source)
- `buckets`  uint32[B+1] hash directory over the keys: bucket b lists `order[buckets[b]:
- `order`    uint32[P]   buckets[b+1]]`, the positions of the keys hashing to b

A single lookup hashes the key and reads a handful of memory locations (a binary search over
10 M keys would touch ~24 cache lines, each a TLB miss under virtualisation, and cost ~24
interpreted steps). Batch lookups use
`np.searchsorted` on the sorted keys, vectorised. Permit ids live in a string table read only
when a verdict names them. The table is sorted by id (byte order), so a permit change from
the stream finds the row it supersedes by binary search (`row_of`) without a 10 M-entry dict.
"""

from __future__ import annotations

import bisect
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Final, NamedTuple

import numpy as np
import numpy.typing as npt

try:
    from ._lookup import Kernel
except ImportError:  # not built (no C compiler): the pure-Python lookups below serve
    Kernel = None  # type: ignore[assignment,misc]

END_UNLIMITED: Final = 0xFFFFFFFF  # uint32 epoch seconds reach 2106; this means "no end"
RECORD: Final = np.dtype(
    [
        ("start", "<u4"),
        ("end", "<u4"),
        ("zones", "<u4"),
        ("permit", "<u4"),
        ("type", "u1"),
        ("flags", "u1"),
    ]
)
_RECORD: Final = struct.Struct("<IIIIBB")
_PAIR: Final = struct.Struct("<II")
FLAG_PRIMARY: Final = 1
SOURCE_SHIFT: Final = 1  # flags >> 1 = index into SOURCES
SOURCES: Final = ("municipal", "online", "regional", "cude", "other")
_RSIZE: Final = RECORD.itemsize


class Interval(NamedTuple):
    """One (plate, permit) interval as read from the index."""

    start: int  # epoch seconds, inclusive
    end: int  # epoch seconds, exclusive; END_UNLIMITED for none
    zones: int
    permit: int
    type: int
    flags: int

    @property
    def primary(self) -> bool:
        return bool(self.flags & FLAG_PRIMARY)

    @property
    def source(self) -> str:
        i = self.flags >> SOURCE_SHIFT
        return SOURCES[i] if i < len(SOURCES) else "other"


@dataclass(frozen=True, slots=True)
class IndexMeta:
    revision: int  # highest permit-database revision the index contains
    built_at: int  # epoch seconds
    type_codes: tuple[str, ...]  # `type` field -> permit type code
    zone_codes: tuple[str, ...]  # bit i of `zones` -> zone code


class PermitIndex:
    """Immutable lookup structure; construct with `build_index` or from a snapshot."""

    def __init__(
        self,
        meta: IndexMeta,
        keys: npt.NDArray[np.int64],
        offsets: npt.NDArray[np.uint32],
        records: npt.NDArray[np.void],
        buckets: npt.NDArray[np.uint32],
        order: npt.NDArray[np.uint32],
        id_blob: npt.NDArray[np.uint8],
        id_offsets: npt.NDArray[np.uint32],
        *,
        use_kernel: bool = True,
    ) -> None:
        self.meta = meta
        self.keys, self.offsets, self.records = keys, offsets, records
        self.buckets, self.order = buckets, order
        self.id_blob, self.id_offsets = id_blob, id_offsets
        self._n_buckets = len(buckets) - 1
        # Byte views for struct.unpack_from: one call per read, no numpy scalar boxing.
        self._keys_mv = memoryview(keys.view(np.uint8).data).cast("q")
        self._order_mv = memoryview(order.view(np.uint8).data).cast("I")
        self._buckets_b = buckets.view(np.uint8).data
        self._offsets_b = offsets.view(np.uint8).data
        self._records_b = records.view(np.uint8).data
        self._id_offsets_b = id_offsets.view(np.uint8).data
        self._id_blob_b = id_blob.data
        self.kernel = "python"
        self.c_kernel: Kernel | None = None
        if Kernel is not None and use_kernel:
            # The same lookups in C, bound over these very buffers (instance attributes
            # shadow the Python methods below).
            k = Kernel(keys, order, buckets, offsets, records.view(np.uint8))
            self.c_kernel = k
            self.position = k.position  # type: ignore[method-assign,assignment]
            self.plate_records = k.records  # type: ignore[method-assign,assignment]
            self._ranges = k.ranges
            self.kernel = "c"

    @property
    def plate_count(self) -> int:
        return len(self.keys)

    @property
    def interval_count(self) -> int:
        return len(self.records)

    @property
    def permit_count(self) -> int:
        return len(self.id_offsets) - 1

    @property
    def nbytes(self) -> int:
        return sum(
            a.nbytes
            for a in (
                self.keys,
                self.offsets,
                self.records,
                self.buckets,
                self.order,
                self.id_blob,
                self.id_offsets,
            )
        )

    def position(self, key: int) -> int:
        """Position of `key` in `keys`, or -1."""
        lo, hi = _PAIR.unpack_from(self._buckets_b, (key % self._n_buckets) << 2)
        keys, order = self._keys_mv, self._order_mv
        while lo < hi:
            p = order[lo]
            if keys[p] == key:
                return int(p)
            lo += 1
        return -1

    def plate_records(self, key: int) -> Iterable[tuple[int, int, int, int, int, int]]:
        """Raw records of a plate key: (start, end, zones, permit, type, flags) tuples.

        The hot path: no object per record beyond the tuple struct gives back.
        """
        lo, hi = _PAIR.unpack_from(self._buckets_b, (key % self._n_buckets) << 2)
        keys, order = self._keys_mv, self._order_mv
        while lo < hi:
            p = order[lo]
            if keys[p] == key:
                a, z = _PAIR.unpack_from(self._offsets_b, p << 2)
                return _RECORD.iter_unpack(self._records_b[a * _RSIZE : z * _RSIZE])
            lo += 1
        return iter(())

    def intervals(self, key: int) -> list[Interval]:
        """Every interval of a plate key (empty when the plate has none)."""
        return [Interval(*r) for r in self.plate_records(key)]

    def find_batch(
        self, keys: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
        """Vectorised: for each query key, the [lo, hi) range of its records (lo == hi: none)."""
        if self.kernel == "c":
            q = np.ascontiguousarray(keys, dtype=np.int64)
            lo_c, hi_c = np.empty(len(q), np.int64), np.empty(len(q), np.int64)
            self._ranges(q, lo_c, hi_c)
            return lo_c.astype(np.intp, copy=False), hi_c.astype(np.intp, copy=False)
        if not len(self.keys):
            none = np.zeros(len(keys), dtype=np.intp)
            return none, none.copy()
        pos = np.minimum(np.searchsorted(self.keys, keys), len(self.keys) - 1)
        found = self.keys[pos] == keys
        lo = np.where(found, self.offsets[pos], 0).astype(np.intp)
        hi = np.where(found, self.offsets[pos + 1], 0).astype(np.intp)
        return lo, hi

    def permit_id(self, row: int) -> str:
        a, b = _PAIR.unpack_from(self._id_offsets_b, row * 4)
        return str(self._id_blob_b[a:b], "utf-8")

    def row_of(self, permit_id: str) -> int:
        """Row of a permit id in the (sorted) id table, or -1."""
        n = self.permit_count
        row = bisect.bisect_left(range(n), permit_id, key=self.permit_id)
        return row if row < n and self.permit_id(row) == permit_id else -1


def bucket_count(n_keys: int) -> int:
    """A prime near half the key count: ~2 keys a bucket, ~2 bytes a plate of directory.

    Bucket = key mod prime. A prime modulus mixes every base-36 digit of the key, so plates
    sharing a suffix or prefix still spread evenly, and one small-int modulo is the cheapest
    hash the interpreter can compute.
    """
    n = max(n_keys // 2, 3) | 1
    while any(n % d == 0 for d in range(3, int(n**0.5) + 1, 2)):
        n += 2
    return n


def hash_directory(
    keys: npt.NDArray[np.int64],
) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint32]]:
    """(buckets, order) for `keys`; matches `PermitIndex.position`."""
    n_buckets = bucket_count(len(keys))
    h = keys % n_buckets
    order = np.argsort(h, kind="stable").astype(np.uint32)
    buckets = np.zeros(n_buckets + 1, dtype=np.uint32)
    np.cumsum(np.bincount(h, minlength=n_buckets), out=buckets[1:])
    return buckets, order


def build_index(
    meta: IndexMeta,
    plate_keys: npt.ArrayLike,
    start: npt.ArrayLike,
    end: npt.ArrayLike,
    zones: npt.ArrayLike,
    permit: npt.ArrayLike,
    type_: npt.ArrayLike,
    flags: npt.ArrayLike,
    permit_ids: Sequence[str],
) -> PermitIndex:
    """Build an index from one row per (plate, permit). Rows may come in any order.

    `permit[i]` is a position in `permit_ids`; the id table is stored sorted (the database
    hands ids over in order, so this is one linear check; otherwise it is sorted here).
    """
    permit_a = np.asarray(permit, dtype=np.uint32)
    if any(a >= b for a, b in pairwise(permit_ids)):
        if len(set(permit_ids)) != len(permit_ids):
            raise ValueError("duplicate permit ids")
        by_id = sorted(range(len(permit_ids)), key=permit_ids.__getitem__)
        new_row = np.empty(len(by_id), dtype=np.uint32)
        new_row[np.array(by_id, dtype=np.intp)] = np.arange(len(by_id), dtype=np.uint32)
        permit_ids = [permit_ids[i] for i in by_id]
        permit_a = new_row[permit_a]
    k = np.asarray(plate_keys, dtype=np.int64)
    n = len(k)
    if len(permit_ids) >= END_UNLIMITED or n >= END_UNLIMITED:
        raise ValueError("too many permits for uint32 row numbers")
    if len(meta.type_codes) > 256 or len(meta.zone_codes) > 32:
        raise ValueError("at most 256 permit types and 32 zones")
    start_a = np.asarray(start, dtype=np.int64)
    end_a = np.asarray(end, dtype=np.int64)
    sort = _by_plate_then_start(k, start_a)
    k = k[sort]
    records = np.empty(n, dtype=RECORD)
    records["start"] = np.clip(start_a[sort], 0, END_UNLIMITED - 1)
    records["end"] = np.clip(end_a[sort], 0, END_UNLIMITED)
    records["zones"] = np.asarray(zones, dtype=np.uint32)[sort]
    records["permit"] = permit_a[sort]
    records["type"] = np.asarray(type_, dtype=np.uint8)[sort]
    records["flags"] = np.asarray(flags, dtype=np.uint8)[sort]
    if n:
        first = np.empty(n, dtype=bool)
        first[0] = True
        np.not_equal(k[1:], k[:-1], out=first[1:])
        starts = np.flatnonzero(first)
        keys = k[starts]
    else:
        starts = np.zeros(0, dtype=np.intp)
        keys = np.zeros(0, dtype=np.int64)
    offsets = np.empty(len(keys) + 1, dtype=np.uint32)
    offsets[:-1] = starts
    offsets[-1] = n
    buckets, order = hash_directory(keys)
    id_blob, id_offsets = encode_strings(permit_ids)
    return PermitIndex(meta, keys, offsets, records, buckets, order, id_blob, id_offsets)


def _by_plate_then_start(
    keys: npt.NDArray[np.int64], start: npt.NDArray[np.int64]
) -> npt.NDArray[np.intp]:
    """Row order grouped by plate, each plate's rows by start (renewals read in order).

    One stable argsort by plate, then a lexsort of only the plates holding several permits
    (a few percent of rows): ~3x cheaper than a full two-key lexsort at 10 M rows.
    """
    order = np.argsort(keys, kind="stable")
    k = keys[order]
    if len(k) < 2:
        return order
    dup = np.zeros(len(k), dtype=bool)
    same = k[1:] == k[:-1]
    dup[1:] |= same
    dup[:-1] |= same
    rows = np.flatnonzero(dup)  # positions (in plate order) of plates with several rows
    if len(rows):
        sub = order[rows]
        order[rows] = sub[np.lexsort((start[sub], keys[sub]))]
    return order


def encode_strings(items: Sequence[str]) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint32]]:
    """A string table: one UTF-8 blob and the byte offset of each entry (plus the end)."""
    joined = "".join(items)
    if joined.isascii():  # the usual case: byte lengths are character lengths
        blob_bytes = joined.encode("ascii")
        lengths = np.fromiter(map(len, items), dtype=np.int64, count=len(items))
    else:
        encoded = [s.encode() for s in items]
        blob_bytes = b"".join(encoded)
        lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(items))
    if len(blob_bytes) >= 1 << 32:
        raise ValueError("string table over 4 GiB")
    offsets = np.zeros(len(items) + 1, dtype=np.uint32)
    np.cumsum(lengths, out=offsets[1:])
    return np.frombuffer(blob_bytes, dtype=np.uint8), offsets
