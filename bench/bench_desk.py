"""What the desk costs: a transit search over a day of the stream, and camera health's count
per post (the hot path).

    .venv/bin/python -m bench.bench_desk [--transits 820000]

Fills our own Redis's transit stream with a day of records (a Milan Area B day by default:
~820,000 transits over 188 gates), then times a search by plate and day, and by gate and an
hour (transits/search.py: XRANGE by id, filtered in Lua), with the longest Redis call each
takes; and `CameraHealth.note` per transit against the intake's own cost.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
import timeit
from pathlib import Path

import redis
import redis.asyncio as aredis

from enforcement.config.load import load_config
from enforcement.core.plates import normalise
from enforcement.core.verdict import Verdict
from enforcement.keys import Keys
from enforcement.replica.redis_server import EmbeddedRedis
from enforcement.transits.camerahealth import CameraHealth
from enforcement.transits.record import Transit, TransitRecord, encode_record, transit_id
from enforcement.transits.search import SCAN_CHUNK

ROOT = Path(__file__).resolve().parent.parent
DAY = 86400.0


def fill(url: str, keys: Keys, n: int, start: float) -> str:
    """n records captured over the day after `start`, XADDed with explicit ids (their arrival
    a second after capture); one plate of them seen four times, the one searched for."""
    r = redis.Redis.from_url(url)
    target = "XY123ZW"
    rng = random.Random(7)
    pipe = r.pipeline(transaction=False)
    times = sorted(start + rng.random() * DAY for _ in range(n))
    hits = set(rng.sample(range(n), 4))
    for i, ts in enumerate(times):
        plate = (
            target if i in hits else f"{chr(65 + i % 26)}{chr(65 + i // 26 % 26)}{i % 1000:03d}ZZ"
        )
        gate = f"G-{i % 188:03d}"
        rec = TransitRecord(
            transit_id("cam", str(i), ts),
            f"cam-{gate}",
            str(i),
            gate,
            "ZTL",
            plate,
            plate,
            ts,
            ts + 1,
            "allowed",
            "permit",
            ["P-1"],
            1,
        )
        pipe.xadd(keys.transits, {"r": encode_record(rec)}, id=f"{int((ts + 1) * 1000)}-{i}")
        if i % 5000 == 4999:
            pipe.execute()
    pipe.execute()
    r.close()
    return target


async def timed_search(url: str, keys: Keys, start: float, target: str) -> None:
    from enforcement.transits.search import TransitSearch

    r = aredis.Redis.from_url(url)
    s = TransitSearch(r, keys, skew_s=300, delivery_s=6 * 3600)
    for name, call in (
        ("plate+day", lambda: s.by_plate(target, start, start + DAY, 500)),
        ("gate+hour", lambda: s.by_gate("G-042", start + 36000, start + 39600, 1000)),
    ):
        t0 = time.perf_counter()
        found = await call()
        took = time.perf_counter() - t0
        calls = max(1, -(-found.scanned // SCAN_CHUNK))
        print(
            f"search {name:10} {took * 1000:8.0f} ms  scanned {found.scanned:,}  "
            f"found {len(found.records)}  truncated {found.truncated}  "
            f"~{took / calls * 1000:.1f} ms per Redis call ({calls} calls)"
        )
    await r.aclose()


def note_cost() -> None:
    """One post's count (a single transit, as most posts are), best of 30 runs of 20,000."""
    settings, rules = load_config(ROOT / "examples" / "demo.toml", {})
    health = CameraHealth({c.id: c.gate for c in settings.cameras.values()}, rules)
    plate = normalise("AB123CD", None)
    one = (Transit("cam-7", "PD-03", "1", "AB123CD", plate, time.time(), 0.9, None),)
    verdict = (Verdict("allowed", "permit", "AB123CD"),)
    now = time.time()
    runs = timeit.repeat(lambda: health.note(one, verdict, now), number=20_000, repeat=30)
    empty = timeit.repeat(lambda: None, number=20_000, repeat=30)
    per = (min(runs) - min(empty)) / 20_000
    print(f"CameraHealth.note: {per * 1e9:.0f} ns per single-transit post")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--transits", type=int, default=820_000)
    args = ap.parse_args()
    note_cost()
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedRedis(Path(tmp) / "redis")
        server.start()
        try:
            keys = Keys("bench")
            start = time.time() - DAY - 3600
            t0 = time.perf_counter()
            target = fill(server.url, keys, args.transits, start)
            print(f"filled {args.transits:,} records in {time.perf_counter() - t0:.1f} s")
            asyncio.run(timed_search(server.url, keys, start, target))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
