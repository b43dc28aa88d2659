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
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import instructions
from enforcement.replica.redis_server import EmbeddedRedis

from .bench_http import free_port, parse_wrk, prepare, wrk_raw

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "examples" / "demo.toml"


def _bodies() -> dict[str, tuple[str, str, Callable[[str, dt.datetime], Any]]]:
    """vendor -> (path, Authorization header, (plate, instant) -> JSON body)."""
    from tests.cameras import payloads as p

    def native(plate: str, at: dt.datetime) -> Any:
        # The whole instant: posts run back in time by the minute, past a day with --log
        # (an id by hour and minute only came round again after 1,440 minutes of posts, and
        # the log answered native's later runs as retries, which cost less).
        return {"event_id": f"bench-{plate}-{at:%Y%m%dT%H%M%S.%f}", "camera": "cam-1",
                "gate": "PD-03",
                "plate": plate, "ts": at.isoformat(), "confidence": 0.92}  # fmt: skip

    return {
        "native": ("/v1/transits", "Bearer demo-camera", native),
        "hikvision": ("/v1/cameras/hikvision", "Bearer demo-hikvision", p.hikvision_json),
        "axis": ("/v1/cameras/axis", "Bearer demo-axis",
                 lambda plate, at: p.axis_event(plate, at, car_id=f"{abs(hash(plate))}{at:%H%M}")),
        "milesight": ("/v1/cameras/milesight", "Bearer demo-milesight", p.milesight),
        "platerecognizer": ("/v1/cameras/platerecognizer", "Bearer demo-platerecognizer",
                            lambda plate, at: p.platerecognizer_stream([(plate, 0.9)], at)),
        "rekor": ("/v1/cameras/rekor", "Bearer demo-rekor", p.rekor_group),
        "dahua": ("/NotificationInfo/TollgateInfo", "Bearer demo-dahua", p.dahua),
    }  # fmt: skip


def unique_bodies(build: Callable[[str, dt.datetime], Any], plates: list[str],
                  at: dt.datetime, first: int, count: int) -> list[bytes]:  # fmt: skip
    """Posts `first` to `first + count` of an endpoint: each a new event (its plate and
    capture minute, going back from `at`), never a retry of another. (The milliseconds tell
    Rekor's groups apart: its event id has no plate.)"""
    n = len(plates)
    return [json.dumps(build(plates[k % n], at - dt.timedelta(minutes=1 + k // n,
                                                             milliseconds=k % n)),
                       separators=(",", ":")).encode()
            for k in range(first, first + count)]  # fmt: skip


# Both scripts format every request once, before wrk starts its clock, and then only hand
# them out: wrk.format per request (headers and body concatenated in Lua) cost wrk's core
# time in proportion to the body, and that core also runs Redis with --log, so larger vendor
# bodies slowed the load and the log, not just the server under test.


def _lua(url_path: str, auth: str, loop: str) -> str:
    """A wrk script posting, in order and round again, the bodies the Lua `loop` header
    (`for body in ... do`) walks in init(), each request formatted there."""
    return f"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "{auth}"
local requests = {{}}
init = function(args)
  {loop}
    requests[#requests + 1] = wrk.format(nil, "{url_path}", nil, body)
  end
end
local i = 0
request = function()
  i = (i % #requests) + 1
  return requests[i]
end
"""


def lua_file_script(path: Path, url_path: str, auth: str) -> None:
    """A wrk script posting the lines of the file named by its first argument."""
    path.write_text(_lua(url_path, auth, "for body in io.lines(args[1]) do"))


def lua_script(path: Path, url_path: str, auth: str, bodies: list[str]) -> None:
    """A wrk script posting `bodies`."""
    lua_bodies = ",\n".join("[=[" + b + "]=]" for b in bodies)  # level-1: JSON may hold "]]"
    path.write_text(f"local bodies = {{ {lua_bodies} }}\n"
                    + _lua(url_path, auth, "for _, body in ipairs(bodies) do"))


def serve(port: int, redis_url: str | None) -> None:
    """The service under test: `varco serve`'s app on local snapshot files; the transit log
    on the Redis at `redis_url`, or none."""
    import uvloop
    from aiohttp import web

    from enforcement.config.load import load_config
    from enforcement.http.app import create_app
    from enforcement.http.server import freeze_startup_objects

    settings, rules = load_config(CONFIG, os.environ)
    uvloop.install()
    app = create_app(settings, rules, record=redis_url is not None, transit_redis_url=redis_url)
    app.router.add_get("/_bench/gc", _gc_counter())

    async def freeze(app: web.Application) -> None:  # as `varco serve` does once started
        freeze_startup_objects()
    app.on_startup.append(freeze)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def _gc_counter() -> Callable[[Any], Any]:
    """A handler answering the garbage collector's collections (per generation) and seconds
    so far, and the objects it tracks now: the bench reads it around each run."""
    import gc

    from aiohttp import web

    collections = [0, 0, 0]
    seconds = [0.0]
    started = [0.0]

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            seconds[0] += time.perf_counter() - started[0]
            collections[info["generation"]] += 1

    gc.callbacks.append(count)

    async def handler(request: Any) -> Any:
        return web.json_response({"collections": collections, "seconds": seconds[0],
                                  "tracked": len(gc.get_objects())})
    return handler


def server_counters(pid: int, port: int) -> dict[str, Any]:
    """The server's user and system CPU seconds, minor page faults, garbage collections per
    generation and seconds in them, so far, and the objects the collector tracks now."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_bench/gc", timeout=5) as r:
        gc = json.loads(r.read())
    metrics = _metrics(port)
    return {"user": int(fields[11]) / tick, "system": int(fields[12]) / tick,
            "faults": int(fields[7]), "gc_runs": gc["collections"], "gc": gc["seconds"],
            "tracked": gc["tracked"], "spooled": metrics.get("varco_transits_spooled_total", 0),
            "retries": metrics.get("varco_transits_duplicate_total", 0)}  # fmt: skip


def _metrics(port: int) -> dict[str, float]:
    """The server's unlabelled /metrics values."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        lines = r.read().decode().splitlines()
    return {name: float(value) for name, _, value in (line.partition(" ") for line in lines)
            if value and not name.startswith("#") and "{" not in name}


def per_post(before: dict[str, Any], after: dict[str, Any], posts: float) -> dict[str, Any]:
    """What one run cost the server per post (µs, page faults) between two counter reads."""
    def us(key: str) -> float:
        return (after[key] - before[key]) / posts * 1e6

    return {"user_us": us("user"), "sys_us": us("system"), "cpu_us": us("user") + us("system"),
            "gc_us": us("gc"), "faults": (after["faults"] - before["faults"]) / posts,
            "gc_runs": "/".join(str(b - a) for a, b in zip(before["gc_runs"], after["gc_runs"],
                                                             strict=True)),
            "tracked": after["tracked"],
            # Posts the log put in the local spool: Redis stalled past the write timeout (its
            # fsync behind other disk writes), and a spooled post costs another path's CPU.
            "spooled": after["spooled"] - before["spooled"],
            "retries": after["retries"] - before["retries"]}  # fmt: skip


def spooled(res: dict[str, Any]) -> str:
    return f", {res['spooled']:.0f} SPOOLED" if res.get("spooled") else ""


def sample(pid: int, out: Path, name: str, duration: int) -> subprocess.Popen[bytes]:
    """py-spy sampling the server for one run, C frames included, into `out/name.N.txt`
    (collapsed stacks; N counts that endpoint's runs). py-spy stops the process for each
    sample (ptrace), which lands on system-call boundaries more often than chance: read
    the profile for its shape."""
    out.mkdir(parents=True, exist_ok=True)
    n = len(list(out.glob(f"{name}.*.txt")))
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    return subprocess.Popen(["taskset", "-c", "1", spy, "record", "--pid", str(pid),
                             "--format", "raw", "--rate", "100", "--native",
                             "--duration", str(duration),
                             "--output", str(out / f"{name}.{n}.txt")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip


def start(port: int, data_dir: Path, callgrind: bool = False,
          redis_url: str | None = None) -> subprocess.Popen[bytes]:  # fmt: skip
    env = dict(os.environ, VARCO_DATA_DIR=str(data_dir), PYTHONPATH=str(ROOT), REDIS_URL="off")
    cmd = [sys.executable, "-m", "bench.bench_cameras", "--serve", str(port)]
    if redis_url is not None:
        cmd += ["--redis", redis_url]
    if callgrind:
        cmd = instructions.under_callgrind(cmd, data_dir)
    proc = subprocess.Popen(["taskset", "-c", "0", *cmd], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.monotonic() + (600 if callgrind else 60)
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"server not ready: {proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]


def count_instructions(port: int, data: Path, endpoints: dict[str, Any], plates: list[str],
                       at: dt.datetime, args: argparse.Namespace) -> int:
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

                def send(b: list[bytes] = posts, u: str = url_path,
                         h: dict[str, str] = headers) -> None:  # fmt: skip
                    instructions.post(port, u, h, b, 8)

                keep = None if args.keep_dumps is None else args.keep_dumps / f"{name}.{r}"
                per_post[name].append(counter.count(send, keep) / len(posts))
                print(f"round {r} {name:16} {per_post[name][-1]:12,.0f} instructions "
                      "per post", flush=True)  # fmt: skip
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        if redis is not None:
            redis.stop()
    native = statistics.mean(per_post["native"])
    log = "durable transit log on Redis" if args.log else "no transit log"
    print(f"\n{args.instructions:,} posts per endpoint and round, {args.permits:,} permits, "
          f"8 connections, {log}, counted by callgrind")
    print(f"{'':16}{'instr/post':>12}{'ratio':>8}  (ratio = native's / the vendor's: the "
          "throughput share a quiet core would give)")
    for name, counts in per_post.items():
        mean = statistics.mean(counts)
        flag = "" if name == "native" else ("  ok" if native / mean >= 0.85 else "  over 15 %")
        print(f"{name:16}{mean:>12,.0f}{native / mean:>8.2f}{flag}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--permits", type=int, default=1_000_000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--vendors", nargs="*", help="only these (native is always measured)")
    p.add_argument("--paired", action="store_true",
                   help="run native right beside each vendor run (alternately before and "
                        "after it) and take each vendor's ratio to its own native run: "
                        "slow swings of the host's speed cancel, at ~1.7x the time")
    p.add_argument("--instructions", type=int, metavar="N",
                   help="instead of wrk rounds: count the server's instructions over N "
                        "posts per endpoint under callgrind (steady on a noisy host)")
    p.add_argument("--log", action="store_true",
                   help="the durable transit log on (embedded Redis), as in production")
    p.add_argument("--bodies", type=int, metavar="N",
                   help="with --log, distinct posts per wrk run, which it must not use up "
                        "(default: 25,000 per second of --duration)")
    p.add_argument("--redis", help=argparse.SUPPRESS)
    p.add_argument("--keep-dumps", type=Path, metavar="DIR",
                   help="with --instructions: keep each callgrind dump here")
    p.add_argument("--profile", type=Path, metavar="DIR",
                   help="sample the server with py-spy (on wrk's core) during each "
                        "endpoint's runs: DIR/<endpoint>.txt, collapsed stacks")
    p.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve:
        serve(args.serve, args.redis)
        return 0
    if not shutil.which("wrk") or not shutil.which("taskset"):
        print("needs wrk and taskset (Debian: apt-get install wrk util-linux)", file=sys.stderr)
        return 2
    endpoints = _bodies()
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
                bodies = [json.dumps(build(plate, at), separators=(",", ":"))
                          for plate in plates]  # fmt: skip
                lua_script(scripts[name], url_path, auth, bodies)
        redis = None
        if args.log:
            redis = EmbeddedRedis(data / "redis")  # appendfsync always, as the log requires
            redis.start()
            assert redis.process is not None  # on wrk's core: the server's is the server's
            subprocess.run(["taskset", "-a", "-p", "-c", "1", str(redis.process.pid)],
                           check=True, stdout=subprocess.DEVNULL)  # fmt: skip
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
                posts.write_bytes(b"\n".join(unique_bodies(endpoints[name][2], plates, at,
                                                            used[name], count)) + b"\n")  # fmt: skip
                used[name] += count
                script_args = [str(posts)]
                # Written back now, not during the run: Redis's fsyncs (appendfsync always)
                # make the filesystem flush every dirty page, and the file is tens of MB for
                # the larger vendor bodies, which cost those runs the server's core and
                # caches (Rekor 0.73 without this, 0.95 with it).
                os.sync()
            before = server_counters(proc.pid, port) if measured else None
            spy = (sample(proc.pid, args.profile, name, duration)
                   if measured and args.profile is not None else None)  # fmt: skip
            res: dict[str, Any] = parse_wrk(wrk_raw(port, scripts[name], duration,
                                                    args.connections, script_args=script_args))  # fmt: skip
            if before is not None:
                res |= per_post(before, server_counters(proc.pid, port), res["rps"] * duration)
            if spy is not None:
                spy.wait(timeout=60)
            if args.log and res.get("retries"):  # every post must be a new event
                raise RuntimeError(f"{name}: the log answered {res['retries']:.0f} posts as "
                                   "retries of earlier ones: their event ids repeat")
            if args.log and res["requests"] > count:
                raise RuntimeError(f"{name}: {res['requests']:.0f} posts in {duration} s, "
                                   f"more than the {count} distinct ones (--bodies): some "
                                   "were retries")
            return res

        try:
            for name in endpoints:  # warm-up, and a check that every endpoint answers 200
                res = run(name, 1)
                if res["non_2xx"]:
                    raise RuntimeError(f"{name}: {res['non_2xx']:.0f} non-2xx answers")
            def measure(r: int, name: str) -> dict[str, Any]:
                res = run(name, args.duration, measured=True)
                results[name].append(res)
                print(f"round {r + 1} {name:16} {res['rps']:9.0f} req/s  p50 "
                      f"{res['p50_ms']:.2f} ms  p99 {res['p99_ms']:.2f} ms  cpu "
                      f"{res['cpu_us']:.0f} us/req (user {res['user_us']:.0f}, system "
                      f"{res['sys_us']:.0f}, {res['faults']:.1f} page faults; gc {res['gc_us']:.1f} us, "
                      f"{res['gc_runs']} runs, {res['tracked']} tracked{spooled(res)})  "
                      f"non-2xx {res['non_2xx']:.0f}",
                      flush=True)  # fmt: skip
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
    print(f"\nmedians of {args.rounds} rounds of {args.duration} s, {args.permits:,} permits, "
          f"{args.connections} connections, server on core 0, wrk on core 1, {log}{paired}")
    print(f"{'':16}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'ratio':>8}{'us/req':>8}"
          f"{'cpu ratio':>11}{'gc us':>7}  per-round ratios")  # fmt: skip
    for name, runs in results.items():
        native = references[name]
        rps = statistics.median(x["rps"] for x in runs)
        p50 = statistics.median(x["p50_ms"] for x in runs)
        p99 = statistics.median(x["p99_ms"] for x in runs)
        ratios = [x["rps"] / n["rps"] for x, n in zip(runs, native, strict=True)]
        ratio = statistics.median(ratios)
        cpu = statistics.median(x["cpu_us"] for x in runs)
        cpu_ratio = statistics.median(n["cpu_us"] / x["cpu_us"]
                                      for x, n in zip(runs, native, strict=True))  # fmt: skip
        flag = "" if name == "native" else ("  ok" if ratio >= 0.85 else "  over 15 %")
        gc_us = statistics.median(x["gc_us"] for x in runs)
        shown = (f"({len(runs)} runs)" if name == "native"
                 else ", ".join(f"{x:.2f}" for x in ratios))  # fmt: skip
        print(f"{name:16}{rps:>9.0f}{p50:>9.2f}{p99:>9.2f}{ratio:>8.2f}{cpu:>8.0f}"
              f"{cpu_ratio:>11.2f}{gc_us:>7.1f}  {shown}{flag}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
