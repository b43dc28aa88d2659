"""What one refusal costs the server: admission's 503 to a camera post, side by side for
several checkouts (--tree; default this one) in one run.

    .venv/bin/python -m bench.bench_refusal --tree /tmp/base --tree . --rounds 3

Each tree's `varco serve` app (the demo configuration, no transit log) with its admission
limit forced to 0, so every metered request is refused (health is not), on core 0. Per round
and tree, on a fresh server:

- cpu: an open loop (bench/openloop.py, core 1) posts transits at --rate for --duration
  seconds; the server's CPU (user and system, from /proc) over the answers it gave. On
  loopback the system part includes the client's TCP receive, which the server's write
  runs; it is the same for every tree, and for an admitted transit too.
- instructions (--instructions N, needs valgrind): the server under callgrind, N posts on 8
  keep-alive connections, its instructions per refusal (user space only; bench/
  instructions.py), less what it runs idle for as long. The host's noise cannot move it.

Every answer must be a 503 with Retry-After (a 200 or any other status fails the run).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from . import openloop
from .bench_http import free_port, launch
from .instructions import Callgrind, available, under_callgrind
from .openloop import HEAD
from .processes import proc_stat

ROOT = Path(__file__).resolve().parent.parent
CLOCK = os.sysconf("SC_CLK_TCK")

# The server, from the tree given as its third argument (`python -c` puts the working
# directory, this checkout, first on sys.path).
SERVE = """
import os
import sys
from pathlib import Path

sys.path.insert(0, sys.argv[3])
os.chdir(sys.argv[3])
from enforcement.config.load import load_config
from enforcement.config.settings import with_changes
from enforcement.http.admission import ADMISSION
from enforcement.http.app import create_app
from enforcement.http.server import run_app

port, data = int(sys.argv[1]), sys.argv[2]
settings, rules = load_config(Path("examples/demo.toml"), {"VARCO_DATA_DIR": data})
# A fixed limit; no snapshot to wait for, so the loader's poll is kept out of the count.
server = {"host": "127.0.0.1", "port": port, "target_latency_s": 0.0, "snapshot_poll_s": 3600}
settings = with_changes(settings, server=server)
app = create_app(settings, rules, record=False)

async def refuse_all(app):
    app[ADMISSION].limit = 0

app.on_startup.append(refuse_all)
run_app(app, settings)
"""


def body(i: int) -> bytes:
    return (
        f'{{"event_id":"refusal-{i}","camera":"cam-1","gate":"PD-03","plate":"AB123CD",'
        f'"ts":"2026-12-08T00:00:00+00:00","confidence":0.92}}'
    ).encode()


def serve_cmd(port: int, data: Path, tree: Path) -> list[str]:
    return [sys.executable, "-c", SERVE, str(port), str(data), str(tree)]


def cpu_ticks(pid: int) -> tuple[int, int]:
    st = proc_stat(pid)
    return int(st[11]), int(st[12])  # utime, stime


def cpu_round(tree: Path, data: Path, args: argparse.Namespace) -> dict[str, Any]:
    port = free_port()
    proc = launch(
        "refusing", serve_cmd(port, data, tree), dict(os.environ), port, "healthz", core=0
    )
    try:
        u0, s0 = cpu_ticks(proc.pid)
        res = openloop.run(
            port,
            *("--rate", str(args.rate), "--duration", str(args.duration), "--warmup", "0"),
            *("--connections", str(args.pool)),
        )
        u1, s1 = cpu_ticks(proc.pid)
    finally:
        proc.terminate()
        proc.wait()
    answered = sum(res["status"].values())
    if set(res["status"]) != {"503"} or res["lost"] or res["unanswered"]:
        raise RuntimeError(f"not every post refused: {res}")
    per = 1e6 / CLOCK / answered
    return {
        "refusals": answered,
        "user_us": round((u1 - u0) * per, 2),
        "sys_us": round((s1 - s0) * per, 2),
        "cpu_us": round((u1 - u0 + s1 - s0) * per, 2),
    }


async def _refused(port: int, n: int, start: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for i in range(start, start + n):
            b = body(i)
            writer.write(HEAD.format(len(b)).encode() + b)
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 503") or b"\r\nRetry-After: " not in head:
                raise RuntimeError(f"not a refusal: {head!r}")
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
    finally:
        writer.close()


def refuse(port: int, n: int, connections: int = 8) -> None:
    async def run() -> None:
        share = n // connections
        await asyncio.gather(*(_refused(port, share, i * share) for i in range(connections)))

    asyncio.run(run())


def instructions(tree: Path, data: Path, n: int) -> float:
    port = free_port()
    with tempfile.TemporaryDirectory() as out:
        cmd = under_callgrind(serve_cmd(port, data, tree), Path(out))
        proc = launch("callgrind", cmd, dict(os.environ), port, "healthz", core=0, timeout_s=300)
        try:
            grind = Callgrind(proc.pid, Path(out))
            grind.start_counting()
            refuse(port, 200, 1)  # warm: code paths and allocator
            t0 = time.perf_counter()
            total = grind.count(lambda: refuse(port, n, 1))
            took = time.perf_counter() - t0
            # What the process runs on its own in as long (its timers: admission's probe,
            # the loader's poll), not the refusals'.
            idle = grind.count(lambda: time.sleep(took))
        finally:
            proc.terminate()
            proc.wait()
    return (total - idle) / n


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tree", action="append", type=Path, help="a checkout (repeatable)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--rate", type=float, default=10000.0)
    p.add_argument("--duration", type=float, default=5.0)
    p.add_argument("--pool", type=int, default=256, help="the open loop's connections")
    p.add_argument("--instructions", type=int, default=0, help="N posts under callgrind")
    args = p.parse_args()
    trees = [t.resolve() for t in args.tree or [ROOT]]
    with tempfile.TemporaryDirectory() as data:
        if args.instructions:
            if not available():
                raise SystemExit("needs valgrind (apt-get install valgrind)")
            for tree in trees * 2:
                per = instructions(tree, Path(data), args.instructions)
                print(f"{tree}: {per:,.0f} instructions a refusal", flush=True)
        for r in range(args.rounds):
            for tree in trees if r % 2 == 0 else trees[::-1]:
                res = cpu_round(tree, Path(data), args)
                stamp = time.strftime("%H:%M:%S")
                print(f"round {r + 1} {stamp} {tree}: {res}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
