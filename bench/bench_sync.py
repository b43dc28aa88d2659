"""A regional circuit export of 1 M rows synchronised into the permit database (issue 4's
figure: ≤ 30 s), into an empty database and again unchanged (the nightly case), with the
parse timed apart; wall-clock and CPU seconds of this process (on a shared host the CPU
figure moves less; a PostgreSQL server's own CPU is not in it).

    .venv/bin/python -m bench.bench_sync --rows 1000000
    .venv/bin/python -m bench.bench_sync --rows 1000000 --repeat 3   # three runs, one line each
    .venv/bin/python -m bench.bench_sync --rows 1000000 \\
        --postgres postgresql://postgres@127.0.0.1:5432/postgres    # a throwaway database

It measures the sync as the code stands. The figures of the sync before its parse and write
paths were made fast (measured side by side by a `--compare` mode that patched the old code
back in, since removed: a benchmark does not patch production code) are in
bench/results/2026-11.md, "A regional circuit export of 1 M rows synchronised"; that the fast
parser reads as the plain one does is tests/loader/test_fast_parse.py's to check.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import secrets
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from enforcement.config.load import load_config
from enforcement.config.settings import Settings, Source
from loader import regional, sync
from loader.database import open_db
from loader.feedcsv import FeedReport
from loader.store import PermitStore

ROOT = Path(__file__).resolve().parent.parent
HEADER = (
    "numero_pass;comune;targa;principale;tipo_pass;inizio;fine;stato;data_revoca;pass_precedente"
)
LETTERS = "ABCDEFGHJKLMNPRSTVWXYZ"


def export(rows: int, seed: int = 5) -> bytes:
    """`rows` rows: passes of the circuit's comuni, 10 % with a second plate, 3 % revoked."""
    rng = random.Random(seed)
    comuni = ["G224", "L736", "L781", "L840", "L407", "H620", "A757"]
    out = [HEADER]
    progressive: dict[tuple[str, int], int] = {}  # per comune and year, as ViviPass numbers
    while len(out) <= rows:
        comune, year = rng.choice(comuni), rng.randint(2018, 2026)
        n = progressive[comune, year] = progressive.get((comune, year), 0) + 1
        number = f"{comune}_{year}_{n:05d}"
        start = f"{rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}/{year}"
        end = f"{rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}/{year + 5}"
        state, revoked = (
            ("revocato", f"01/06/{year + 1}") if rng.random() < 0.03 else ("attivo", "")
        )
        plates = 2 if rng.random() < 0.1 and len(out) < rows else 1
        for k in range(plates):
            plate = (
                rng.choice(LETTERS)
                + rng.choice(LETTERS)
                + f"{rng.randint(0, 999):03d}"
                + rng.choice(LETTERS)
                + rng.choice(LETTERS)
            )
            out.append(
                f"{number};{comune};{plate};{'S' if k == 0 else 'N'};DISABILI;{start};"
                f"{end};{state};{revoked};"
            )
    return ("\r\n".join(out[: rows + 1]) + "\r\n").encode("cp1252")


@contextlib.contextmanager
def _database(tmp: str, postgres: str | None) -> Iterator[dict[str, str]]:
    """The environment for load_config: an empty SQLite file in `tmp`, or a new PostgreSQL
    database on the server of the admin URL `postgres`, dropped afterwards."""
    if postgres is None:
        yield {"VARCO_DATA_DIR": tmp}
        return
    import psycopg
    from psycopg import sql

    name = f"varco_bench_{secrets.token_hex(4)}"
    with psycopg.connect(postgres, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            url = urllib.parse.urlunsplit(urllib.parse.urlsplit(postgres)._replace(path="/" + name))
            yield {"VARCO_DATA_DIR": tmp, "DATABASE_URL": url}
        finally:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


Figures = dict[str, tuple[float, float]]  # phase -> (wall s, CPU s)


def _timed(f: Any, *args: Any, **kwargs: Any) -> tuple[Any, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = f(*args, **kwargs)
    return out, time.perf_counter() - wall, time.process_time() - cpu


def run(data: bytes, postgres: str | None) -> tuple[Figures, str]:
    """The three phases, on a new database; (figures, a summary line)."""
    with tempfile.TemporaryDirectory(prefix="varco-sync-") as tmp, _database(tmp, postgres) as env:
        settings, rules = load_config(ROOT / "examples" / "demo.toml", env)
        assert settings.circuit is not None
        # The demo city's circuit; the export handed over directly (no file to schedule).
        source = Source(
            "vivipass", "regional_csv", Path(tmp) / "unused.csv", 3600, 1.0, None, 86400
        )
        report = FeedReport("vivipass")
        passes, *parse_t = _timed(regional.parse_regional, data, rules, settings.circuit, report)
        n_passes = len(passes)
        del passes
        with _open(settings) as db:
            first, *first_t = _timed(sync.sync_source, db, rules, settings, source, data=data)
            again, *again_t = _timed(sync.sync_source, db, rules, settings, source, data=data)
            summary = (
                f"{report.rows:,} rows, {n_passes:,} passes, "
                f"{len(report.rejects)} rejected; changed {first.changed:,} then "
                f"{again.changed:,}, closed {first.closed} then {again.closed}; "
                f"revision {again.revision:,}"
            )
    figures = {
        "parse": (parse_t[0], parse_t[1]),
        "first": (first_t[0], first_t[1]),
        "again": (again_t[0], again_t[1]),
    }
    return figures, summary


def _open(settings: Settings) -> PermitStore:
    db = open_db(settings, check_schema=False)
    db.migrate()
    return db


ROWS = {
    "parse": "parse and validate only",
    "first": "sync into an empty database",
    "again": "sync again, unchanged",
}


def _load() -> str:
    """The load average and, where Linux says, the share of the last minute in which some
    runnable task waited for a CPU."""
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    with contextlib.suppress(OSError, ValueError, IndexError):
        some = Path("/proc/pressure/cpu").read_text().split("\n")[0].split()
        load += f"; CPU pressure (some, 60 s) {float(some[2].split('=')[1]):.0f} %"
    return load


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.bench_sync")
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--repeat", type=int, default=1, help="runs, each on a new database")
    p.add_argument("--postgres", metavar="ADMIN_URL", help="on a throwaway PostgreSQL database")
    args = p.parse_args(argv)
    data = export(args.rows)
    backend = "PostgreSQL" if args.postgres else "SQLite"
    results: list[Figures] = []
    print(f"export: {len(data) / 1e6:.0f} MB; load average {_load()}", file=sys.stderr)
    for i in range(args.repeat):
        figures, summary = run(data, args.postgres)
        results.append(figures)
        line = "; ".join(f"{k} {w:.1f} s (CPU {c:.1f})" for k, (w, c) in figures.items())
        print(f"run {i + 1}: {line}\n    {summary}; load average {_load()}", file=sys.stderr)

    def cell(phase: str, k: int) -> str:
        return " / ".join(f"{r[phase][k]:.1f}" for r in results)

    print(f"\n| {args.rows:,} rows, {backend} | wall s | CPU s | target |\n|---|---:|---:|---|")
    for phase, title in ROWS.items():
        target = "≤ 30" if phase == "first" else "–"
        print(f"| {title} | {cell(phase, 0)} | {cell(phase, 1)} | {target} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
