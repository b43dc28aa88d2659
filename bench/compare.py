"""Varco against the alternatives, side by side in one run: will it hold the peak, and why not
just put the permits in PostgreSQL or Redis?

    .venv/bin/python -m bench.compare --permits 1000000 10000000 --rounds 3

Ten servers answer the same transit stream (`POST /v1/transits`, a new event id every time):

(a) empty   aiohttp + uvloop reading and decoding the same body, a fixed answer: the ceiling;
(b) check   Varco's check (`create_app(record=False)`): auth, normalisation, gate, index, rules;
(c) logged  the same, each transit written to Redis (append-only, `appendfsync always`)
            before the answer: durable logging;
(c') floor  (a) plus a fixed record written as durably, by the same group commit, before
            each answer (bench/empty_server.py --log): the most (c) could reach on this stack;
(d) pg      the ceiling's handler plus the same check from PostgreSQL (btree index on plate,
            asyncpg pool with the per-release reset disabled): bench/peer_server.py;
(e) redis   the same from Redis (one GET per transit; redis-py asyncio + hiredis);
(f) pg-logged     (d) that also INSERTs the transit, check and insert one statement (one
            transaction, `synchronous_commit = on`): bench/peer_logged.py;
(g) redis-logged  (e) that also XADDs the transit, one Lua call, on a Redis with
            `appendfsync always` as (c)'s: (f) and (g) are (c)'s like-for-like peers;
(h) check-w2, (i) logged-w2  (b) and (c) served by `varco serve --workers 2`.

Every single-process server runs pinned to core 0; wrk, the Redis servers and the PostgreSQL
backends serving (d) and (f) to core 1 (a database is another machine in production). (h) and
(i) run on both cores, sharing core 1 with wrk and the stores: on a 2-core host their ratio to
(b) and (c) is what a second worker buys here, below what a core of its own would give.
Before any measurement, every server but (a) must give Varco's answers (verdict, reason,
permit ids, grace) to every request of the verification sample, and (c), (f), (g), (i) must
hold each transit of their sample as answered; a server that differs stops the run. Then
rounds interleave the servers (each round starts with the next one); per round, 32
connections as fast as they go and one connection (single-request latency). Reported:
medians over rounds of throughput, p50 and p99, the ratios to (a) and the issue-23 goals;
per-round ratios too. `--kinds` runs a subset ((a) and (b) always). Then the in-process
index (bench/bench_index.py) at --index-sizes: lookup time and bytes per permit. Writes the
figures to bench/plots/compare.json and the PNG plots beside it (`--replot` redraws them and
reprints the tables from the JSON); py-spy's stacks go to bench/results/profiles/.

The dataset: N permits of the demo configuration's types without time slots (so the peers'
rule is exactly Varco's), 8 % of plates with a second permit; 10 % expired, 5 % not yet
valid, and 100 sampled plates at the edges of their validity (start = ts, end = ts, end = ts
+ 1, start = ts + 1). The stream cycles through 1,000 plates: 800 with permits (those edge
plates among them), 200 unknown. Needs wrk, taskset, a PostgreSQL (--pg-dsn: a throwaway
database is created and dropped) and the optional `bench` dependencies (asyncpg, matplotlib).

The pieces: bench/compare_data.py (the dataset and the stores), compare_servers.py,
compare_verify.py, compare_run.py (wrk, rounds), compare_profile.py, compare_report.py (the
tables) and compare_plots.py.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from .compare_data import ROOT
from .compare_plots import plot
from .compare_report import report
from .compare_run import measure_index, measure_size
from .compare_servers import KINDS, REQUIRED
from .compare_verify import VerificationError

PLOTS = ROOT / "bench" / "plots"
RESULTS = PLOTS / "compare.json"  # the figures the plots are drawn from, kept beside them
PROFILES = ROOT / "bench" / "results" / "profiles"  # py-spy's stacks (bench/results: ignored)


def machine(load_key: str) -> dict[str, Any]:
    cpu = "?"
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        found = re.search(r"Model name:\s+(.+)", lscpu)
        cpu = found.group(1).strip() if found else cpu
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        load_key: " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--permits",
        type=int,
        nargs="*",
        default=[1_000_000],
        help="sizes for the HTTP figures (default 1000000; none: skip them)",
    )
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument(
        "--also-connections",
        type=int,
        nargs="*",
        default=[],
        help="more loads per round, e.g. 128: with more requests in flight the "
        "durable log's group commit gathers more transits per fsync",
    )
    p.add_argument("--verify", type=int, default=1000, help="requests in the verification sample")
    p.add_argument(
        "--index-sizes",
        type=int,
        nargs="*",
        default=[1_000_000, 10_000_000, 30_000_000],
        help="sizes for the in-process lookup time and memory (none: skip)",
    )
    p.add_argument(
        "--dict-max",
        type=int,
        default=10_000_000,
        help="measure the dict baseline up to this size (~300 bytes a permit)",
    )
    p.add_argument(
        "--pg-dsn",
        default=os.environ.get("BENCH_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="a PostgreSQL where a throwaway database may be created",
    )
    p.add_argument(
        "--pg-socket",
        default="/var/run/postgresql" if Path("/var/run/postgresql").is_dir() else "",
        help="peer (d) connects through this Unix "
        "socket directory, as (c) and (e) reach Redis ('' for the DSN's TCP address)",
    )
    p.add_argument("--pg-pool", type=int, default=16, help="asyncpg pool size of peer (d)")
    p.add_argument(
        "--pg-log-pool",
        type=int,
        default=32,
        help="asyncpg pool size of peer (f): one backend per connection, so every request "
        "in flight can join a commit's WAL flush",
    )
    p.add_argument(
        "--kinds",
        nargs="+",
        choices=KINDS,
        default=list(KINDS),
        help="the servers to run (default: all; empty and check are always run)",
    )
    p.add_argument(
        "--profile",
        nargs="*",
        choices=[k for k in KINDS if not k.endswith("-w2")],  # py-spy follows one process
        default=[],
        help="after the rounds, py-spy these servers under load",
    )
    p.add_argument("--profile-seconds", type=int, default=10)
    p.add_argument("--results", type=Path, default=RESULTS)
    p.add_argument("--plots", type=Path, default=PLOTS)
    p.add_argument("--profiles", type=Path, default=PROFILES)
    p.add_argument(
        "--replot",
        action="store_true",
        help="only redraw the plots and reprint the tables from --results",
    )
    args = p.parse_args(argv)
    args.kinds = [*REQUIRED, *(k for k in args.kinds if k not in REQUIRED)]
    if args.replot:
        res = json.loads(args.results.read_text())
    else:
        if args.permits and (not shutil.which("wrk") or not shutil.which("taskset")):
            print("needs wrk and taskset (Debian: apt-get install wrk util-linux)", file=sys.stderr)
            return 2
        res = {"machine": machine("load_start"), "sizes": [], "index": []}
        res["command"] = " ".join(
            ["python -m bench.compare", *(argv if argv is not None else sys.argv[1:])]
        )
        try:
            for n in args.permits:
                res["sizes"].append(measure_size(args, n))
        except VerificationError as exc:
            print(f"\nVERIFICATION FAILED, nothing measured:\n{exc}", file=sys.stderr)
            return 1
        res["index"] = measure_index(args.index_sizes, args.dict_max)
        res["machine"]["load_end"] = machine("load_end")["load_end"]
        args.results.parent.mkdir(parents=True, exist_ok=True)
        args.results.write_text(json.dumps(res, indent=1))
    print("\n" + report(res))
    for path in plot(res, args.plots):
        print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
