"""The snapshot file: one versioned binary format for a `PermitIndex`.

    offset 0   fixed header (64 bytes, little-endian):
               magic b"VARCOIDX" | format version u32 | meta length u32 | revision u64 |
               built_at i64 | plates u64 | records u64 | permits u64 | (reserved)
    64         blake2b-256 digest of everything after byte 96 (32 bytes)
    96         meta: JSON {type_codes, zone_codes, sections: {name: [offset, nbytes]}}
    ...        arrays, each aligned to 64 bytes, at the offsets the meta names

Written to a temporary file, fsynced and renamed, so a reader sees a whole file or none.
Opened memory-mapped: every worker process maps the same pages, one copy in memory. A file
whose digest, magic, version or sizes are wrong raises `SnapshotError` and is never used.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import struct
import tempfile
from pathlib import Path
from typing import Any, Final

import numpy as np

from .index import RECORD, IndexMeta, PermitIndex

MAGIC: Final = b"VARCOIDX"
FORMAT_VERSION: Final = 2  # 2: permit id table sorted (PermitIndex.row_of)
_HEADER: Final = struct.Struct("<8sIIQqQQQ")
_DIGEST_AT: Final = 64
_META_AT: Final = 96
_ALIGN: Final = 64
_SECTIONS: Final[dict[str, np.dtype[Any]]] = {
    "keys": np.dtype("<i8"),
    "offsets": np.dtype("<u4"),
    "records": RECORD,
    "buckets": np.dtype("<u4"),
    "order": np.dtype("<u4"),
    "id_blob": np.dtype("u1"),
    "id_offsets": np.dtype("<u4"),
}
SUFFIX: Final = ".vidx"


class SnapshotError(Exception):
    """A snapshot file that must not be used (corrupt, truncated, wrong format)."""


def _arrays(index: PermitIndex) -> dict[str, np.ndarray]:
    return {name: getattr(index, name) for name in _SECTIONS}


def write_snapshot(index: PermitIndex, path: str | os.PathLike[str]) -> Path:
    """Write `index` to `path` atomically (temp file, fsync, rename, fsync directory)."""
    path = Path(path)
    arrays = _arrays(index)
    # Lay sections out after a meta block whose size we must know first: compute offsets
    # relative to the data start, then shift by the aligned meta length.
    rel, pos = {}, 0
    for name, arr in arrays.items():
        rel[name] = pos
        pos += -(-arr.nbytes // _ALIGN) * _ALIGN
    meta: dict[str, object] = {
        "type_codes": list(index.meta.type_codes),
        "zone_codes": list(index.meta.zone_codes),
    }
    for _ in range(2):  # the meta's own length moves the offsets; two passes settle it
        data_start = -(-(_META_AT + len(json.dumps(meta).encode())) // _ALIGN) * _ALIGN
        meta["sections"] = {n: [data_start + rel[n], int(a.nbytes)] for n, a in arrays.items()}
    meta_bytes = json.dumps(meta).encode()
    data_start = -(-(_META_AT + len(meta_bytes)) // _ALIGN) * _ALIGN
    assert meta["sections"]["keys"][0] == data_start  # type: ignore[index]

    header = _HEADER.pack(
        MAGIC,
        FORMAT_VERSION,
        len(meta_bytes),
        index.meta.revision,
        index.meta.built_at,
        index.plate_count,
        index.interval_count,
        index.permit_count,
    )
    digest = hashlib.blake2b(digest_size=32)
    body: list[bytes | memoryview] = [meta_bytes, b"\0" * (data_start - _META_AT - len(meta_bytes))]
    for name, arr in arrays.items():
        body.append(np.ascontiguousarray(arr).view(np.uint8).data)
        pad = meta["sections"][name][0] + -(-arr.nbytes // _ALIGN) * _ALIGN  # type: ignore[index]
        body.append(b"\0" * (pad - meta["sections"][name][0] - arr.nbytes))  # type: ignore[index]
    for chunk in body:
        digest.update(chunk)

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(header.ljust(_DIGEST_AT, b"\0"))
            f.write(digest.digest())
            for chunk in body:
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return path


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_header(path: str | os.PathLike[str]) -> dict[str, int]:
    """The fixed header fields, without verifying the body (cheap; for listings)."""
    with open(path, "rb") as f:
        raw = f.read(_HEADER.size)
    if len(raw) < _HEADER.size:
        raise SnapshotError(f"{path}: truncated header")
    magic, version, meta_len, revision, built_at, plates, records, permits = _HEADER.unpack(raw)
    if magic != MAGIC:
        raise SnapshotError(f"{path}: not a Varco snapshot (bad magic)")
    if version != FORMAT_VERSION:
        raise SnapshotError(f"{path}: format version {version}, this build reads {FORMAT_VERSION}")
    return {
        "meta_len": meta_len,
        "revision": revision,
        "built_at": built_at,
        "plates": plates,
        "records": records,
        "permits": permits,
    }


def open_snapshot(path: str | os.PathLike[str], *, verify: bool = True) -> PermitIndex:
    """Memory-map and (by default) verify a snapshot. Raises SnapshotError."""
    head = read_header(path)
    with open(path, "rb") as f:
        try:
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError as exc:  # empty file
            raise SnapshotError(f"{path}: empty file") from exc
    size = len(mm)
    meta_end = _META_AT + head["meta_len"]
    if size < meta_end:
        raise SnapshotError(f"{path}: truncated ({size} bytes)")
    if verify:
        digest = hashlib.blake2b(memoryview(mm)[_META_AT:], digest_size=32).digest()
        if digest != mm[_DIGEST_AT:_META_AT]:
            raise SnapshotError(f"{path}: checksum mismatch (corrupt or truncated)")
    try:
        meta = json.loads(mm[_META_AT:meta_end])
        sections = meta["sections"]
        arrays = {}
        for name, dtype in _SECTIONS.items():
            offset, nbytes = sections[name]
            if offset % _ALIGN or offset + nbytes > size or nbytes % dtype.itemsize:
                raise SnapshotError(f"{path}: section {name} out of bounds")
            arrays[name] = np.frombuffer(
                mm, dtype=dtype, count=nbytes // dtype.itemsize, offset=offset
            )
        index_meta = IndexMeta(
            head["revision"], head["built_at"], tuple(meta["type_codes"]), tuple(meta["zone_codes"])
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise SnapshotError(f"{path}: malformed metadata: {exc}") from exc
    if (
        len(arrays["keys"]) != head["plates"]
        or len(arrays["records"]) != head["records"]
        or len(arrays["offsets"]) != head["plates"] + 1
        or len(arrays["id_offsets"]) != head["permits"] + 1
    ):
        raise SnapshotError(f"{path}: section sizes disagree with the header")
    return PermitIndex(
        index_meta,
        arrays["keys"],
        arrays["offsets"],
        arrays["records"],
        arrays["buckets"],
        arrays["order"],
        arrays["id_blob"],
        arrays["id_offsets"],
    )
