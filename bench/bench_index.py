"""In-process index benchmark: build time, bytes per permit, single and batch lookups.

    .venv/bin/python -m bench.bench_index --sizes 1000000 10000000

Synthetic permits shaped like the demo's (Italian car plates, ~8 % of plates with a second,
overlapping permit). Lookups draw 80 % present and 20 % absent plates at random, so the
figures include cache and TLB misses as a real gate stream would. A Python dict of the same
plates is measured side by side, as the speed to match.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from enforcement.core.index import END_UNLIMITED, IndexMeta, PermitIndex, build_index
from enforcement.core.snapshot import open_snapshot, write_snapshot

LETTERS = np.frombuffer(b"ABCDEFGHJKLMNPRSTVWXYZ", dtype=np.uint8)


def synthetic_keys(n: int, rng: np.random.Generator) -> np.ndarray:
    """n distinct plate keys of Italian car plates LL DDD LL (22^4 * 1000 = 234 M possible)."""
    want = int(n * 1.1) + 100  # birthday collisions: draw extra, keep n distinct
    letters = rng.integers(0, 22, size=(want, 4))
    digits = rng.integers(0, 1000, size=want)

    # key = int("1" + plate, 36): compose the base-36 digits directly.
    def l36(col: np.ndarray) -> np.ndarray:
        return LETTERS[col].astype(np.int64) - ord("A") + 10

    d = [digits // 100, digits // 10 % 10, digits % 10]
    parts = [
        np.ones(want, np.int64),
        l36(letters[:, 0]),
        l36(letters[:, 1]),
        d[0],
        d[1],
        d[2],
        l36(letters[:, 2]),
        l36(letters[:, 3]),
    ]
    key = np.zeros(want, np.int64)
    for p in parts:
        key = key * 36 + p
    key = np.unique(key)
    rng.shuffle(key)
    assert len(key) >= n, "plate space too small for n"
    return key[:n]


def synthetic_index(n_permits: int, seed: int = 7) -> tuple[PermitIndex, np.ndarray, float]:
    rng = np.random.default_rng(seed)
    n_plates = int(n_permits / 1.08)
    keys = synthetic_keys(n_plates, rng)
    extra = n_permits - n_plates
    plate_keys = np.concatenate([keys, keys[rng.integers(0, n_plates, extra)]])
    now = int(time.time())
    start = now - rng.integers(0, 3 * 365 * 86400, n_permits)
    end = np.where(
        rng.random(n_permits) < 0.5,
        END_UNLIMITED,
        start + rng.integers(3600, 3 * 365 * 86400, n_permits),
    )
    ids = [f"PD-{i:08d}" for i in range(n_permits)]
    meta = IndexMeta(1, now, tuple(str(i) for i in range(14)), ("ZTL", "PEDONALE"))
    t0 = time.perf_counter()
    index = build_index(
        meta,
        plate_keys,
        start,
        end,
        np.ones(n_permits),
        np.arange(n_permits),
        rng.integers(0, 14, n_permits),
        np.ones(n_permits),
        ids,
    )
    return index, keys, time.perf_counter() - t0


def queries(keys: np.ndarray, n: int, seed: int = 11) -> list[int]:
    rng = np.random.default_rng(seed)
    present = keys[rng.integers(0, len(keys), int(n * 0.8))].tolist()
    absent = (synthetic_keys(n, np.random.default_rng(seed + 1))[: n - len(present)]).tolist()
    out = present + absent
    random.Random(seed).shuffle(out)
    return out


def per_call_ns(fn, qs: list[int], rounds: int = 3) -> float:  # type: ignore[no-untyped-def]
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for k in qs:
            fn(k)
        best = min(best, (time.perf_counter() - t0) / len(qs) * 1e9)
    return best


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench(n: int, with_dict: bool) -> dict[str, float]:
    gc.collect()
    index, keys, build_s = synthetic_index(n)
    lookup_bytes = index.nbytes - index.id_blob.nbytes - index.id_offsets.nbytes
    row = {
        "permits": n,
        "build_s": build_s,
        "index_bytes_per_permit": lookup_bytes / n,
        "with_ids_bytes_per_permit": index.nbytes / n,
    }
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.vidx"
        t0 = time.perf_counter()
        write_snapshot(index, path)
        row["snapshot_write_s"] = time.perf_counter() - t0
        row["snapshot_file_bytes_per_permit"] = os.path.getsize(path) / n
        del index
        gc.collect()
        t0 = time.perf_counter()
        mapped = open_snapshot(path)
        row["snapshot_open_verify_s"] = time.perf_counter() - t0
        qs = queries(keys, 200_000)
        row["single_position_ns"] = per_call_ns(mapped.position, qs)
        row["single_records_ns"] = per_call_ns(mapped.plate_records, qs)
        # The same lookups through the pure-Python path (what runs without the C kernel).
        py = PermitIndex(
            mapped.meta,
            mapped.keys,
            mapped.offsets,
            mapped.records,
            mapped.buckets,
            mapped.order,
            mapped.id_blob,
            mapped.id_offsets,
            use_kernel=False,
        )
        row["python_position_ns"] = per_call_ns(py.position, qs[:50_000], rounds=2)
        row["python_records_ns"] = per_call_ns(
            lambda k: tuple(py.plate_records(k)), qs[:50_000], rounds=2
        )
        batch = [np.array(qs[i : i + 1000], dtype=np.int64) for i in range(0, len(qs), 1000)]
        t0 = time.perf_counter()
        for b in batch:
            mapped.find_batch(b)
        row["batch_find_ns_per_plate"] = (time.perf_counter() - t0) / len(qs) * 1e9
        del mapped
    if with_dict:
        gc.collect()
        before = rss_now()
        d = {k: [(1, 2, 3, i, 5, 6)] for i, k in enumerate(keys.tolist())}
        row["dict_bytes_per_permit"] = (rss_now() - before) / n
        row["dict_get_ns"] = per_call_ns(d.get, qs)
        del d
    return row


def rss_now() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    p.add_argument("--no-dict", action="store_true", help="skip the dict baseline")
    p.add_argument("--json", metavar="FILE", help="also write the rows as JSON (bench/compare.py)")
    args = p.parse_args(argv)
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}, {os.cpu_count()} cpus")
    rows = [bench(n, not args.no_dict) for n in args.sizes]
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    names = list(rows[0])
    width = max(len(k) for k in names)
    print("\n" + "metric".ljust(width) + "".join(f"{r['permits']:>14,}" for r in rows))
    for k in names[1:]:
        print(k.ljust(width) + "".join(f"{r.get(k, float('nan')):>14.2f}" for r in rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
