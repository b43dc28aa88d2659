"""HTTP transit check against the stack's ceiling, side by side in one run.

    .venv/bin/python -m bench.bench_http --permits 1000000 --rounds 3 --duration 10

(a) `empty`: an aiohttp + uvloop handler that reads and decodes the same TransitIn body with
    the same msgspec decoder and returns a fixed verdict: the ceiling of the stack.
(b) `varco`: the real service (`varco serve`), auth, plate normalisation, gate schedule,
    index lookup, rules, verdict encoding, metrics, over a snapshot of N synthetic permits.

Each server runs pinned to core 0 (`taskset -c 0`), wrk to core 1; rounds interleave the
servers so drift on this noisy 2-core machine hits both alike; medians are reported with the
ratio to the ceiling. Needs `wrk` (Debian: apt-get install wrk).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from enforcement.config.load import load_config
from enforcement.core.index import END_UNLIMITED, IndexMeta, build_index
from enforcement.core.plates import key_plate
from enforcement.core.rules import zone_mask
from loader.rebuild import publish

from .bench_index import synthetic_keys

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "examples" / "demo.toml"
GATE = "PD-03"  # the always-active gate: every request takes the full check


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prepare(data_dir: Path, n: int) -> tuple[list[str], list[str]]:
    """Publish a snapshot of n synthetic permits; return (permitted, unknown) sample plates."""
    settings, rules = load_config(CONFIG, {"VARCO_DATA_DIR": str(data_dir)})
    rng = np.random.default_rng(3)
    keys = synthetic_keys(n + 2000, rng)
    permitted, unknown = keys[:n], keys[n:]
    types = tuple(rules.types)
    always = [
        i for i, t in enumerate(types) if not rules.types[t].restricted and not rules.types[t].cude
    ]
    type_no = rng.choice(always, n)
    zones = np.array(
        [zone_mask(rules.types[types[i]].zones, tuple(rules.zones)) for i in range(len(types))]
    )
    now = int(time.time())
    meta = IndexMeta(1, now, types, tuple(rules.zones))
    index = build_index(
        meta,
        permitted,
        np.full(n, now - 86400),
        np.full(n, END_UNLIMITED),
        zones[type_no],
        np.arange(n),
        type_no,
        np.ones(n),
        [f"PD-{i:08d}" for i in range(n)],
    )
    publish(index, settings.storage.snapshot_dir, max_shrink=1.0)
    sample = rng.integers(0, n, 800)
    return [key_plate(int(k)) for k in permitted[sample]], [
        key_plate(int(k)) for k in unknown[:200]
    ]


def lua_script(path: Path, permitted: list[str], unknown: list[str]) -> None:
    ts = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
    plates = permitted + unknown
    random.Random(5).shuffle(plates)
    bodies = [
        json.dumps(
            {
                "event_id": f"bench-{i}",
                "camera": "cam-1",
                "gate": GATE,
                "plate": p,
                "ts": ts,
                "confidence": 0.92,
            }
        )
        for i, p in enumerate(plates)
    ]
    lua_bodies = ",\n".join("[[" + b + "]]" for b in bodies)
    path.write_text(f"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer demo-camera"
local bodies = {{ {lua_bodies} }}
local i = 0
request = function()
  i = (i % #bodies) + 1
  return wrk.format(nil, "/v1/transits", nil, bodies[i])
end
""")


def start(kind: str, port: int, data_dir: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, VARCO_DATA_DIR=str(data_dir), VARCO_PORT=str(port), PYTHONPATH=str(ROOT))
    if kind == "empty":
        cmd = [sys.executable, "-m", "bench.empty_server", str(port)]
    else:
        cmd = [sys.executable, "-m", "varco.cli", "--config", str(CONFIG), "serve"]
    return launch(kind, cmd, env, port, "readyz" if kind == "varco" else "healthz")


def launch(
    name: str,
    cmd: list[str],
    env: dict[str, str],
    port: int,
    ready_path: str,
    core: int | str = 0,
    timeout_s: float = 60,
) -> subprocess.Popen[bytes]:
    """Start a server pinned to `core` (a taskset list: 0, or "0,1") and wait until
    GET /`ready_path` answers 200."""
    proc = subprocess.Popen(
        ["taskset", "-c", str(core), *cmd],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + timeout_s
    url = f"http://127.0.0.1:{port}/{ready_path}"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"{name} server did not become ready: {proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def wrk_raw(
    port: int,
    script: Path,
    duration: int,
    connections: int,
    core: int = 1,
    script_args: Sequence[str] = (),
) -> str:
    """wrk's full output (1 thread, pinned to `core`, with --latency); `script_args` go to
    the script's init(args)."""
    return subprocess.run(
        [
            "taskset",
            "-c",
            str(core),
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{duration}s",
            "--latency",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}",
            "--",
            *script_args,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def parse_wrk(out: str) -> dict[str, float]:
    """Requests/s, p50 and p99 (ms) and the count of non-2xx answers from wrk's output."""
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    lat = {}
    for pct in ("50", "99"):
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)", out, re.M)
        lat[pct] = float(m.group(1)) * _UNITS[m.group(2)]  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    count = re.search(r"(\d+) requests in", out)
    return {
        "rps": rps,
        "p50_ms": lat["50"],
        "p99_ms": lat["99"],
        "non_2xx": float(errors.group(1)) if errors else 0.0,
        "requests": float(count.group(1)) if count else 0.0,
    }


def wrk(port: int, script: Path, duration: int, connections: int) -> dict[str, float]:
    return parse_wrk(wrk_raw(port, script, duration, connections))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--permits", type=int, default=1_000_000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    p.add_argument("--connections", type=int, default=32)
    args = p.parse_args(argv)
    if not shutil.which("wrk") or not shutil.which("taskset"):
        print("needs wrk and taskset (Debian: apt-get install wrk util-linux)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="varco-bench-") as tmp:
        data = Path(tmp)
        print(f"preparing a snapshot of {args.permits:,} permits ...", flush=True)
        permitted, unknown = prepare(data, args.permits)
        script = data / "transits.lua"
        lua_script(script, permitted, unknown)
        results: dict[str, list[dict[str, float]]] = {"empty": [], "varco": []}
        ports = {k: free_port() for k in results}
        procs = {k: start(k, ports[k], data) for k in results}
        try:
            for kind in results:  # warm-up: first requests touch the mapped pages
                wrk(ports[kind], script, 2, args.connections)
            for r in range(args.rounds):
                for kind in results:
                    res = wrk(ports[kind], script, args.duration, args.connections)
                    results[kind].append(res)
                    print(
                        f"round {r + 1} {kind:6} {res['rps']:9.0f} req/s  p50 {res['p50_ms']:.2f} ms"
                        f"  p99 {res['p99_ms']:.2f} ms  non-2xx {res['non_2xx']:.0f}",
                        flush=True,
                    )
        finally:
            for proc in procs.values():
                proc.terminate()
                proc.wait(timeout=10)
    med = {k: {m: statistics.median(r[m] for r in v) for m in v[0]} for k, v in results.items()}
    e, v = med["empty"], med["varco"]
    print(
        f"\nmedians of {args.rounds} rounds, {args.permits:,} permits, {args.connections} connections,"
        f" server on core 0, wrk on core 1"
    )
    print(f"{'':8}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'ratio':>8}")
    for k in results:
        m = med[k]
        print(
            f"{k:8}{m['rps']:>10.0f}{m['p50_ms']:>9.2f}{m['p99_ms']:>9.2f}{m['rps'] / e['rps']:>8.2f}"
        )
    pair = [b["rps"] / a["rps"] for a, b in zip(results["empty"], results["varco"], strict=True)]
    print(
        f"per-round ratios {', '.join(f'{r:.2f}' for r in pair)}: median "
        f"{statistics.median(pair):.2f} (the two runs of a round are seconds apart, so host "
        "drift cancels better than in the ratio of medians)"
    )
    print(
        f"\nthroughput ratio {v['rps'] / e['rps']:.2f} (target >= 0.85); "
        f"p99 ratio {v['p99_ms'] / e['p99_ms']:.2f} (target <= 1.5)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
