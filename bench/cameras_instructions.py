"""bench.bench_cameras --instructions: the server's instructions per post, counted by
callgrind (bench/instructions.py), each endpoint in turn."""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import instructions
from enforcement.replica.redis_server import EmbeddedRedis

from .cameras_posts import unique_bodies
from .cameras_server import start


def count_instructions(
    port: int,
    data: Path,
    endpoints: dict[str, Any],
    plates: list[str],
    at: dt.datetime,
    args: argparse.Namespace,
) -> int:
    """Instructions per post, each endpoint in turn, two rounds (they should agree)."""
    if not instructions.available():
        print("needs valgrind (Debian: apt-get install valgrind)", file=sys.stderr)
        return 2
    redis = None
    if args.log:
        redis = EmbeddedRedis(data / "redis")  # appendfsync always, as the log requires
        redis.start()
    print("starting the server under callgrind (a minute or more) ...", flush=True)
    proc = start(port, data, callgrind=True, redis_url=None if redis is None else redis.url)
    counter = instructions.Callgrind(proc.pid, data)

    def bodies(build: Callable[[str, dt.datetime], Any], r: int) -> list[bytes]:
        return unique_bodies(build, plates, at, r * args.instructions, args.instructions)

    per_post: dict[str, list[float]] = {k: [] for k in endpoints}
    if args.keep_dumps is not None:
        args.keep_dumps.mkdir(parents=True, exist_ok=True)
    try:
        counter.start_counting()
        for r in range(3):  # round 0 warms up
            for name, (url_path, auth, build) in endpoints.items():
                posts = bodies(build, r)
                headers = {"Authorization": auth, "Content-Type": "application/json"}
                if r == 0:
                    instructions.post(port, url_path, headers, posts[:200], 8)
                    continue

                def send(
                    b: list[bytes] = posts, u: str = url_path, h: dict[str, str] = headers
                ) -> None:
                    instructions.post(port, u, h, b, 8)

                keep = None if args.keep_dumps is None else args.keep_dumps / f"{name}.{r}"
                per_post[name].append(counter.count(send, keep) / len(posts))
                print(
                    f"round {r} {name:16} {per_post[name][-1]:12,.0f} instructions per post",
                    flush=True,
                )
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        if redis is not None:
            redis.stop()
    native = statistics.mean(per_post["native"])
    log = "durable transit log on Redis" if args.log else "no transit log"
    print(
        f"\n{args.instructions:,} posts per endpoint and round, {args.permits:,} permits, "
        f"8 connections, {log}, counted by callgrind"
    )
    print(
        f"{'':16}{'instr/post':>12}{'ratio':>8}  (ratio = native's / the vendor's: the "
        "throughput share a quiet core would give)"
    )
    for name, counts in per_post.items():
        mean = statistics.mean(counts)
        flag = "" if name == "native" else ("  ok" if native / mean >= 0.85 else "  over 15 %")
        print(f"{name:16}{mean:>12,.0f}{native / mean:>8.2f}{flag}")
    return 0
