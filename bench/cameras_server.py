"""bench.bench_cameras's server under test (`varco serve`'s app on the demo configuration,
pinned to core 0, optionally under callgrind) and what a run costs it per post: CPU, page
faults, garbage collections, spooled posts; py-spy samples of it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import instructions

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "examples" / "demo.toml"


def serve(port: int, redis_url: str | None) -> None:
    """The service under test: `varco serve`'s app on local snapshot files; the transit log
    on the Redis at `redis_url`, or none."""

    from enforcement.config.load import load_config
    from enforcement.config.settings import with_changes
    from enforcement.http.app import create_app
    from enforcement.http.server import run_app

    settings, rules = load_config(CONFIG, os.environ)
    settings = with_changes(settings, server={"host": "127.0.0.1", "port": port})
    app = create_app(settings, rules, record=redis_url is not None, transit_redis_url=redis_url)
    app.router.add_get("/_bench/gc", _gc_counter())
    run_app(app, settings)  # as `varco serve` serves it: bounded connections, frozen start-up


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
        return web.json_response(
            {"collections": collections, "seconds": seconds[0], "tracked": len(gc.get_objects())}
        )

    return handler


def server_counters(pid: int, port: int) -> dict[str, Any]:
    """The server's user and system CPU seconds, minor page faults, garbage collections per
    generation and seconds in them, so far, and the objects the collector tracks now."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_bench/gc", timeout=5) as r:
        gc = json.loads(r.read())
    metrics = _metrics(port)
    return {
        "user": int(fields[11]) / tick,
        "system": int(fields[12]) / tick,
        "faults": int(fields[7]),
        "gc_runs": gc["collections"],
        "gc": gc["seconds"],
        "tracked": gc["tracked"],
        "spooled": metrics.get("varco_transits_spooled_total", 0),
        "retries": metrics.get("varco_transits_duplicate_total", 0),
    }


def _metrics(port: int) -> dict[str, float]:
    """The server's unlabelled /metrics values."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        lines = r.read().decode().splitlines()
    return {
        name: float(value)
        for name, _, value in (line.partition(" ") for line in lines)
        if value and not name.startswith("#") and "{" not in name
    }


def per_post(before: dict[str, Any], after: dict[str, Any], posts: float) -> dict[str, Any]:
    """What one run cost the server per post (µs, page faults) between two counter reads."""

    def us(key: str) -> float:
        return (after[key] - before[key]) / posts * 1e6

    return {
        "user_us": us("user"),
        "sys_us": us("system"),
        "cpu_us": us("user") + us("system"),
        "gc_us": us("gc"),
        "faults": (after["faults"] - before["faults"]) / posts,
        "gc_runs": "/".join(
            str(b - a) for a, b in zip(before["gc_runs"], after["gc_runs"], strict=True)
        ),
        "tracked": after["tracked"],
        # Posts the log put in the local spool: Redis stalled past the write timeout (its
        # fsync behind other disk writes), and a spooled post costs another path's CPU.
        "spooled": after["spooled"] - before["spooled"],
        "retries": after["retries"] - before["retries"],
    }


def sample(pid: int, out: Path, name: str, duration: int) -> subprocess.Popen[bytes]:
    """py-spy sampling the server for one run, C frames included, into `out/name.N.txt`
    (collapsed stacks; N counts that endpoint's runs). py-spy stops the process for each
    sample (ptrace), which lands on system-call boundaries more often than chance: read
    the profile for its shape."""
    out.mkdir(parents=True, exist_ok=True)
    n = len(list(out.glob(f"{name}.*.txt")))
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    return subprocess.Popen(
        [
            "taskset",
            "-c",
            "1",
            spy,
            "record",
            "--pid",
            str(pid),
            "--format",
            "raw",
            "--rate",
            "100",
            "--native",
            "--duration",
            str(duration),
            "--output",
            str(out / f"{name}.{n}.txt"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def start(
    port: int, data_dir: Path, callgrind: bool = False, redis_url: str | None = None
) -> subprocess.Popen[bytes]:
    """serve() in a process of its own (`python -m bench.bench_cameras --serve PORT`) pinned
    to core 0, under callgrind if asked; returned once it answers /readyz."""
    env = dict(os.environ, VARCO_DATA_DIR=str(data_dir), PYTHONPATH=str(ROOT), REDIS_URL="off")
    cmd = [sys.executable, "-m", "bench.bench_cameras", "--serve", str(port)]
    if redis_url is not None:
        cmd += ["--redis", redis_url]
    if callgrind:
        cmd = instructions.under_callgrind(cmd, data_dir)
    proc = subprocess.Popen(
        ["taskset", "-c", "0", *cmd],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
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
