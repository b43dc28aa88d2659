"""Vendor camera adapters against native POST /v1/transits, side by side in one run.

    .venv/bin/python -m bench.bench_cameras --permits 1000000 --rounds 5 --duration 5 [--log]

One service (the demo configuration and its demo cameras, over a snapshot of N synthetic
permits) answers, in interleaved rounds: `native` (Varco's own JSON, the demo's shared
camera key) and each vendor's JSON endpoint with that vendor's documented payload (plates
80 % permitted, 20 % unknown, as bench_http): hikvision (ISAPI JSON), axis, milesight,
platerecognizer, rekor (alpr_group), dahua (ITSAPI). The figure is each vendor's throughput
as a share of native's within the same round (per-round ratios, then their median): the
adapter's overhead is 1 - ratio (target <= 15 %). Server on core 0, wrk (and with --log
Redis) on core 1 (needs `wrk`: apt-get install wrk).

Without `--log` there is no transit log and wrk replays a few hundred bodies. With it the
durable transit log is on (an embedded Redis, appendfsync always, as in production), and
every post must be a new event, or the log would answer it as a retry: each wrk run reads
its own file of `--bodies` distinct posts (plates x capture minutes), and a run that used
them all up (so replayed some) is reported, not silently counted.

With `--paired`, each round runs native right beside every vendor (before it in even rounds,
after it in odd ones) and each vendor's ratio is to that native run: the host's speed drifts
over a round's minute, and a reference 40 s away carried that drift into the ratio.

On a host shared with other work, throughput swings between runs seconds apart; the server's
CPU time per request (from /proc, user + system) is steadier, so it is reported beside it:
`cpu ratio` = native's CPU per request / the vendor's (what throughput would be if the server
had its core to itself).

    .venv/bin/python -m bench.bench_cameras --permits 1000000 --instructions 2000 [--log]

counts instead the server's instructions per post under callgrind (bench/instructions.py),
each endpoint in turn, twice: a figure this host's noise cannot move. Every post is a new
event (plates x capture minutes), so with `--log` (the durable transit log on an embedded
Redis, as in production: vendor records also carry the vendor's raw fields) no post is
answered as a retry.

The pieces: bench/cameras_posts.py (each endpoint's posts and wrk scripts),
cameras_server.py (the server and its per-post costs), cameras_instructions.py (callgrind).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from enforcement.replica.redis_server import EmbeddedRedis

from .bench_http import free_port, parse_wrk, prepare, wrk_raw
from .cameras_instructions import count_instructions
from .cameras_posts import lua_file_script, lua_script, post_builders, unique_bodies
from .cameras_server import per_post, sample, serve, server_counters, start


def spooled(res: dict[str, Any]) -> str:
    return f", {res['spooled']:.0f} SPOOLED" if res.get("spooled") else ""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--permits", type=int, default=1_000_000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--vendors", nargs="*", help="only these (native is always measured)")
    p.add_argument(
        "--paired",
        action="store_true",
        help="run native right beside each vendor run (alternately before and "
        "after it) and take each vendor's ratio to its own native run: "
        "slow swings of the host's speed cancel, at ~1.7x the time",
    )
    p.add_argument(
        "--instructions",
        type=int,
        metavar="N",
        help="instead of wrk rounds: count the server's instructions over N "
        "posts per endpoint under callgrind (steady on a noisy host)",
    )
    p.add_argument(
        "--log",
        action="store_true",
        help="the durable transit log on (embedded Redis), as in production",
    )
    p.add_argument(
        "--bodies",
        type=int,
        metavar="N",
        help="with --log, distinct posts per wrk run, which it must not use up "
        "(default: 25,000 per second of --duration)",
    )
    p.add_argument("--redis", help=argparse.SUPPRESS)
    p.add_argument(
        "--keep-dumps",
        type=Path,
        metavar="DIR",
        help="with --instructions: keep each callgrind dump here",
    )
    p.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="sample the server with py-spy (on wrk's core) during each "
        "endpoint's runs: DIR/<endpoint>.txt, collapsed stacks",
    )
    p.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve:
        serve(args.serve, args.redis)
        return 0
    if not shutil.which("wrk") or not shutil.which("taskset"):
        print("needs wrk and taskset (Debian: apt-get install wrk util-linux)", file=sys.stderr)
        return 2
    endpoints = post_builders()
    if args.vendors:
        endpoints = {k: v for k, v in endpoints.items() if k == "native" or k in args.vendors}
    with tempfile.TemporaryDirectory(prefix="varco-bench-cameras-") as tmp:
        data = Path(tmp)
        print(f"preparing a snapshot of {args.permits:,} permits ...", flush=True)
        permitted, unknown = prepare(data, args.permits)
        # Distinct plates: `prepare` samples permitted ones with repeats, and one plate twice
        # in a capture minute is one transit (a derived event id), answered as a retry.
        plates = list(dict.fromkeys(permitted))[:400] + unknown[:100]
        random.Random(7).shuffle(plates)
        at = dt.datetime.now(dt.UTC).replace(microsecond=0)
        port = free_port()
        if args.instructions:
            return count_instructions(port, data, endpoints, plates, at, args)
        scripts = {}
        for name, (url_path, auth, build) in endpoints.items():
            scripts[name] = data / f"{name}.lua"
            if args.log:
                lua_file_script(scripts[name], url_path, auth)
            else:
                bodies = [json.dumps(build(plate, at), separators=(",", ":")) for plate in plates]
                lua_script(scripts[name], url_path, auth, bodies)
        redis = None
        if args.log:
            redis = EmbeddedRedis(data / "redis")  # appendfsync always, as the log requires
            redis.start()
            assert redis.process is not None  # on wrk's core: the server's is the server's
            subprocess.run(
                ["taskset", "-a", "-p", "-c", "1", str(redis.process.pid)],
                check=True,
                stdout=subprocess.DEVNULL,
            )
        proc = start(port, data, redis_url=None if redis is None else redis.url)
        results: dict[str, list[dict[str, float]]] = {k: [] for k in endpoints}
        # Each vendor run's native reference: the round's native run, or with --paired the
        # native run beside it.
        references: dict[str, list[dict[str, float]]] = {k: [] for k in endpoints}
        used = dict.fromkeys(endpoints, 0)  # with --log: posts each endpoint has had

        def run(name: str, duration: int, measured: bool = False) -> dict[str, Any]:
            """One wrk run; `measured`: with what it cost the server per post (the counters
            are read around wrk alone, not around writing the posts file)."""
            script_args: list[str] = []
            count = 0
            if args.log:
                posts = data / "posts.txt"  # this run's distinct posts, one JSON per line
                count = args.bodies or 25_000 * duration
                posts.write_bytes(
                    b"\n".join(unique_bodies(endpoints[name][2], plates, at, used[name], count))
                    + b"\n"
                )
                used[name] += count
                script_args = [str(posts)]
                # Written back now, not during the run: Redis's fsyncs (appendfsync always)
                # make the filesystem flush every dirty page, and the file is tens of MB for
                # the larger vendor bodies, which cost those runs the server's core and
                # caches (Rekor 0.73 without this, 0.95 with it).
                os.sync()
            before = server_counters(proc.pid, port) if measured else None
            spy = (
                sample(proc.pid, args.profile, name, duration)
                if measured and args.profile is not None
                else None
            )
            res: dict[str, Any] = parse_wrk(
                wrk_raw(port, scripts[name], duration, args.connections, script_args=script_args)
            )
            if before is not None:
                res |= per_post(before, server_counters(proc.pid, port), res["rps"] * duration)
            if spy is not None:
                spy.wait(timeout=60)
            if args.log and res.get("retries"):  # every post must be a new event
                raise RuntimeError(
                    f"{name}: the log answered {res['retries']:.0f} posts as "
                    "retries of earlier ones: their event ids repeat"
                )
            if args.log and res["requests"] > count:
                raise RuntimeError(
                    f"{name}: {res['requests']:.0f} posts in {duration} s, "
                    f"more than the {count} distinct ones (--bodies): some "
                    "were retries"
                )
            return res

        try:
            for name in endpoints:  # warm-up, and a check that every endpoint answers 200
                res = run(name, 1)
                if res["non_2xx"]:
                    raise RuntimeError(f"{name}: {res['non_2xx']:.0f} non-2xx answers")

            def measure(r: int, name: str) -> dict[str, Any]:
                res = run(name, args.duration, measured=True)
                results[name].append(res)
                print(
                    f"round {r + 1} {name:16} {res['rps']:9.0f} req/s  p50 "
                    f"{res['p50_ms']:.2f} ms  p99 {res['p99_ms']:.2f} ms  cpu "
                    f"{res['cpu_us']:.0f} us/req (user {res['user_us']:.0f}, system "
                    f"{res['sys_us']:.0f}, {res['faults']:.1f} page faults; gc {res['gc_us']:.1f} us, "
                    f"{res['gc_runs']} runs, {res['tracked']} tracked{spooled(res)})  "
                    f"non-2xx {res['non_2xx']:.0f}",
                    flush=True,
                )
                return res

            for r in range(args.rounds):
                order = list(endpoints)
                random.Random(r).shuffle(order)  # no endpoint always runs first in a round
                if not args.paired:
                    for name in order:
                        measure(r, name)
                    for name in endpoints:
                        references[name].append(results["native"][-1])
                    continue
                for name in (n for n in order if n != "native"):
                    if r % 2 == 0:  # native first in even rounds, second in odd ones
                        ref, _ = measure(r, "native"), measure(r, name)
                    else:
                        _, ref = measure(r, name), measure(r, "native")
                    references[name].append(ref)
                references["native"] = results["native"]
        finally:
            proc.terminate()
            proc.wait(timeout=10)
            if redis is not None:
                redis.stop()
    log = "durable transit log on Redis" if args.log else "no transit log"
    paired = ", each vendor run beside its own native run" if args.paired else ""
    print(
        f"\nmedians of {args.rounds} rounds of {args.duration} s, {args.permits:,} permits, "
        f"{args.connections} connections, server on core 0, wrk on core 1, {log}{paired}"
    )
    print(
        f"{'':16}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'ratio':>8}{'us/req':>8}"
        f"{'cpu ratio':>11}{'gc us':>7}  per-round ratios"
    )
    for name, runs in results.items():
        native = references[name]
        rps = statistics.median(x["rps"] for x in runs)
        p50 = statistics.median(x["p50_ms"] for x in runs)
        p99 = statistics.median(x["p99_ms"] for x in runs)
        ratios = [x["rps"] / n["rps"] for x, n in zip(runs, native, strict=True)]
        ratio = statistics.median(ratios)
        cpu = statistics.median(x["cpu_us"] for x in runs)
        cpu_ratio = statistics.median(
            n["cpu_us"] / x["cpu_us"] for x, n in zip(runs, native, strict=True)
        )
        flag = "" if name == "native" else ("  ok" if ratio >= 0.85 else "  over 15 %")
        gc_us = statistics.median(x["gc_us"] for x in runs)
        shown = f"({len(runs)} runs)" if name == "native" else ", ".join(f"{x:.2f}" for x in ratios)
        print(
            f"{name:16}{rps:>9.0f}{p50:>9.2f}{p99:>9.2f}{ratio:>8.2f}{cpu:>8.0f}"
            f"{cpu_ratio:>11.2f}{gc_us:>7.1f}  {shown}{flag}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
