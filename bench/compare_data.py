"""bench.compare's data: the dataset every server answers from (described in bench/compare.py's
docstring), and the stores it is loaded into: Varco's snapshot, peer (d)'s PostgreSQL table and
peer (e)'s Redis keys, which the logging peers (f) and (g) read too, beside their transit
table and stream (bench/peer_logged.py)."""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from enforcement.config.load import load_config
from enforcement.core.index import END_UNLIMITED, IndexMeta, build_index
from enforcement.core.rules import zone_mask
from loader.rebuild import publish

from .bench_index import synthetic_keys
from .peer_logged import CREATE_LOG_TABLE
from .peer_server import TABLE

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "examples" / "demo.toml"
GATE = "PD-03"  # always active, zone PEDONALE: every permit type without slots covers it
DAY = 86400


# -- the dataset -------------------------------------------------------------------------------


@dataclass
class Dataset:
    t: int  # the instant every transit of the stream carries (epoch seconds)
    keys: np.ndarray  # plate key of each permit (int64)
    start: np.ndarray
    end: np.ndarray
    zones: np.ndarray  # zone bits (over the configuration's zone order)
    type_no: np.ndarray  # position in the configuration's types
    sample: list[str]  # the stream's plates, in order

    @property
    def n(self) -> int:
        return len(self.keys)

    def ids(self) -> list[str]:
        return [f"PD-{i:08d}" for i in range(self.n)]  # sorted: the index wants them so


def plate_texts(keys: np.ndarray) -> list[str]:
    """key_plate over an array of 7-character plate keys, vectorised."""
    alphabet = np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", dtype=np.uint8)
    k = np.asarray(keys, dtype=np.int64)
    digits = np.stack([(k // 36**p) % 36 for p in range(6, -1, -1)], axis=1)
    assert np.all(k // 36**7 == 1), "plate keys of 7 characters expected"
    return alphabet[digits].view("S7").ravel().astype("U7").tolist()  # type: ignore[no-any-return]


def make_dataset(n: int, seed: int = 3, t: int | None = None) -> Dataset:
    _, rules = load_config(CONFIG, {})
    rng = np.random.default_rng(seed)
    t = int(time.time()) - 60 if t is None else t
    n_plates = max(200, round(n / 1.08))
    keys = synthetic_keys(n_plates + 200, rng)
    plates, unknown = keys[:n_plates], keys[n_plates:]
    extra = rng.integers(0, n_plates, n - n_plates)  # a second permit for 8 % of plates
    pk = np.concatenate([plates, plates[extra]])
    start = t - rng.integers(DAY, 3 * 365 * DAY, n)
    end = np.where(rng.random(n) < 0.5, END_UNLIMITED, t + rng.integers(DAY, 3 * 365 * DAY, n))
    u = rng.random(n)
    expired, future = u < 0.10, (u >= 0.10) & (u < 0.15)
    start[expired] = t - rng.integers(30 * DAY, 3 * 365 * DAY, expired.sum())
    end[expired] = t - rng.integers(1, 20 * DAY, expired.sum())
    start[future] = t + rng.integers(1, 30 * DAY, future.sum())
    end[future] = start[future] + rng.integers(DAY, 365 * DAY, future.sum())
    edge = rng.choice(n_plates, 100, replace=False)  # their first permit sits on an edge
    for part, (s, e) in zip(
        np.array_split(edge, 4),
        ((t, t + DAY), (t - 10 * DAY, t), (t - DAY, t + 1), (t + 1, t + DAY)),
        strict=True,
    ):
        start[part], end[part] = s, e
    types = tuple(rules.types)
    plain = [
        i for i, c in enumerate(types) if not rules.types[c].restricted and not rules.types[c].cude
    ]
    type_no = rng.choice(plain, n)
    masks = np.array([zone_mask(rules.types[c].zones, tuple(rules.zones)) for c in types])
    others = rng.choice(np.setdiff1d(np.arange(n_plates), edge), 700, replace=False)
    chosen = np.concatenate([plates[others], plates[edge], unknown])
    order = np.random.default_rng(seed + 1).permutation(len(chosen))
    return Dataset(t, pk, start, end, masks[type_no], type_no, plate_texts(chosen[order]))


def publish_snapshot(ds: Dataset, data: Path) -> Path:
    settings, rules = load_config(CONFIG, {"VARCO_DATA_DIR": str(data)})
    meta = IndexMeta(1, int(time.time()), tuple(rules.types), tuple(rules.zones))
    index = build_index(
        meta,
        ds.keys,
        ds.start,
        ds.end,
        ds.zones,
        np.arange(ds.n),
        ds.type_no,
        np.ones(ds.n),
        ds.ids(),
    )
    return publish(index, settings.storage.snapshot_dir, max_shrink=1.0)


# -- the peers' stores -------------------------------------------------------------------------


def _chunks(n: int, size: int) -> Iterator[slice]:
    for i in range(0, n, size):
        yield slice(i, min(i + size, n))


def load_postgres(ds: Dataset, dsn: str) -> dict[str, float]:
    """Fill `bench_permits` (COPY), build the btree index on plate, VACUUM ANALYZE; create
    peer (f)'s empty transit table."""
    import psycopg

    t0 = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as con:
        con.execute(
            f"CREATE TABLE {TABLE} (plate text NOT NULL, permit_id text NOT NULL, "
            "valid_from bigint NOT NULL, valid_to bigint NOT NULL, zones int NOT NULL)"
        )
        with con.cursor() as cur, cur.copy(f"COPY {TABLE} FROM STDIN") as copy:
            for part in _chunks(ds.n, 200_000):
                plates = plate_texts(ds.keys[part])
                rows = zip(
                    plates,
                    range(part.start, part.stop),
                    ds.start[part].tolist(),
                    ds.end[part].tolist(),
                    ds.zones[part].tolist(),
                    strict=True,
                )
                copy.write("".join(f"{p}\tPD-{i:08d}\t{s}\t{e}\t{z}\n" for p, i, s, e, z in rows))
        con.execute(f"CREATE INDEX {TABLE}_plate ON {TABLE} (plate)")
        con.execute(f"VACUUM ANALYZE {TABLE}")
        con.execute(CREATE_LOG_TABLE)
        size = con.execute(f"SELECT pg_total_relation_size('{TABLE}')").fetchone()[0]  # type: ignore[index]
        version = con.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
        shared = con.execute("SHOW shared_buffers").fetchone()[0]  # type: ignore[index]
        # What makes (f)'s commits durable: reported, so a server with fsync off is seen.
        durability = {
            k: con.execute(f"SHOW {k}").fetchone()[0]  # type: ignore[index]
            for k in ("fsync", "wal_sync_method", "commit_delay")
        }
    return {
        "load_s": time.perf_counter() - t0,
        "bytes_per_permit": size / ds.n,
        "version": version,
        "shared_buffers": shared,
        **durability,
    }


def load_redis(ds: Dataset, url: str) -> dict[str, Any]:
    """One key per plate: the msgpack list of [permit_id, valid_from, valid_to, zones].
    Loaded without the append-only file, which is switched on again afterwards: (e) only
    reads, and (g) must write its transits as durably as Varco's log Redis does."""
    import redis

    r = redis.Redis.from_url(url)
    r.config_set("appendonly", "no")
    before = int(r.info("memory")["used_memory"])
    t0 = time.perf_counter()
    order = np.argsort(ds.keys, kind="stable")
    keys = ds.keys[order]
    bounds = np.flatnonzero(np.diff(keys)) + 1
    firsts = np.concatenate([[0], bounds])
    encode = msgspec.msgpack.encode
    pipe = r.pipeline(transaction=False)
    for part in _chunks(len(firsts), 100_000):
        lo, hi = firsts[part.start], (firsts[part.stop] if part.stop < len(firsts) else len(keys))
        rows = order[lo:hi]
        plates = plate_texts(keys[lo:hi])
        starts, ends, zones = (
            ds.start[rows].tolist(),
            ds.end[rows].tolist(),
            ds.zones[rows].tolist(),
        )
        ids = rows.tolist()
        mapping: dict[str, bytes] = {}
        batch: dict[str, list[tuple[str, int, int, int]]] = {}
        for j, p in enumerate(plates):
            batch.setdefault(p, []).append((f"PD-{ids[j]:08d}", starts[j], ends[j], zones[j]))
        for p, permits in batch.items():
            permits.sort()
            mapping[p] = encode(permits)
        items = list(mapping.items())
        for k in range(0, len(items), 10_000):
            pipe.mset(dict(items[k : k + 10_000]))
        pipe.execute()
    info = r.info("memory")
    version = r.info("server")["redis_version"]
    r.config_set("appendonly", "yes")  # a rewrite of the whole dataset, in a child: awaited
    while True:
        p = r.info("persistence")
        if p["aof_enabled"] and not p["aof_rewrite_in_progress"] and not p["aof_rewrite_scheduled"]:
            break
        time.sleep(0.1)
    fsync = r.config_get("appendfsync")["appendfsync"]
    r.close()
    return {
        "load_s": time.perf_counter() - t0,
        "bytes_per_permit": (int(info["used_memory"]) - before) / ds.n,
        "version": version,
        "appendfsync": fsync,
    }


def with_db(dsn: str, db: str, socket_dir: str = "") -> str:
    """`dsn` (a postgresql:// URL) naming database `db`, through `socket_dir` if given."""
    u = urllib.parse.urlsplit(dsn)
    netloc = u.netloc
    query = urllib.parse.parse_qsl(u.query)
    if socket_dir:
        user = netloc.rpartition("@")[0]
        netloc = f"{user}@" if user else ""
        query = [(k, v) for k, v in query if k != "host"] + [("host", socket_dir)]
        if u.port:
            query.append(("port", str(u.port)))
    return urllib.parse.urlunsplit((u.scheme, netloc, f"/{db}", urllib.parse.urlencode(query), ""))
