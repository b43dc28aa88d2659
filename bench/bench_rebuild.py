"""Rebuild of the snapshot from the permit database, SQLite and PostgreSQL side by side.

    .venv/bin/python -m bench.bench_rebuild --permits 1000000 --rounds 3

N demo permits (`varco.demo.demo_permits`, the demo configuration's types, generated once)
go into a SQLite file and into a throwaway PostgreSQL database (`varco_bench_<pid>` on
--pg-url, dropped at the end) with `bulk_insert_new`. PostgreSQL then gets `VACUUM ANALYZE`,
what autovacuum does to a freshly loaded table on a default server (timed, reported apart;
--no-vacuum skips it). Each round then runs, for SQLite and then PostgreSQL, a scan of
`index_rows` alone (the only step that differs between the backends) and a full `rebuild`
into a fresh snapshot directory (max_shrink=1.0); rounds interleave the backends so drift
on this noisy 2-core machine hits both alike. Medians are reported with the PG ÷ SQLite
ratio, as a Markdown table on stdout. PostgreSQL runs on the same two cores as this
process. If PostgreSQL does not answer, its column says why and SQLite is still measured.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import os
import pstats
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path

import psycopg
from psycopg import sql
from tqdm import tqdm

from enforcement.config.load import load_config
from enforcement.core.rules import Rules
from loader.postgres import PgPermitDB, describe
from loader.rebuild import rebuild
from loader.sqlite import PermitDB
from loader.store import PermitRow, PermitStore
from varco.demo import demo_permits

CONFIG = Path(__file__).resolve().parent.parent / "examples" / "demo.toml"
PG_ADMIN_URL = os.environ.get("VARCO_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def note(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class Backend:
    """One permit database under test and what was measured on it."""

    def __init__(self, name: str, opener: Callable[[], PermitStore]) -> None:
        self.name = name
        self.opener = opener
        self.fill_s = float("nan")
        self.vacuum_s = float("nan")
        self.db_bytes = float("nan")
        self.scan_s: list[float] = []
        self.rebuild_s: list[float] = []
        self.snapshot_bytes: list[int] = []
        self.counts: tuple[int, int, int] | None = None  # permits, plates, records


def fill(b: Backend, permits: list[PermitRow]) -> None:
    gc.collect()
    with b.opener() as db:
        t0 = time.perf_counter()
        n = db.bulk_insert_new(
            tqdm(permits, unit="permit", desc=f"fill {b.name}", disable=None, leave=False)
        )
        b.fill_s = time.perf_counter() - t0
        assert n == len(permits) == db.count(), (n, len(permits))


def scan(b: Backend, min_end: int) -> None:
    gc.collect()
    with b.opener() as db:
        t0 = time.perf_counter()
        n = sum(1 for _ in db.index_rows(min_end))
        b.scan_s.append(time.perf_counter() - t0)
    assert n > 0


def rebuild_once(b: Backend, rules: Rules, history_days: int, snap_dir: Path) -> None:
    gc.collect()
    with b.opener() as db:
        t0 = time.perf_counter()
        report = rebuild(db, rules, snap_dir, history_days, max_shrink=1.0)
        b.rebuild_s.append(time.perf_counter() - t0)
    b.snapshot_bytes.append(report.path.stat().st_size)
    b.counts = (report.permits, report.plates, report.records)
    shutil.rmtree(snap_dir)


def profile_rebuild(b: Backend, rules: Rules, history_days: int, snap_dir: Path, top: int) -> None:
    gc.collect()
    with b.opener() as db:
        prof = cProfile.Profile()
        prof.enable()
        rebuild(db, rules, snap_dir, history_days, max_shrink=1.0)
        prof.disable()
    shutil.rmtree(snap_dir)
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(top)
    print(
        f"\n### cProfile of one rebuild, {b.name} (by own time)\n\n```\n"
        f"{out.getvalue().strip()}\n```"
    )


def pg_database(admin_url: str) -> tuple[str, Callable[[], None]] | str:
    """(URL of a new empty database, its dropper), or why PostgreSQL cannot be used."""
    try:
        admin = psycopg.connect(admin_url, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        return f"PostgreSQL not reachable at {describe(admin_url)}: {str(exc).strip()}"
    name = f"varco_bench_{os.getpid()}"
    try:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.Error as exc:
        admin.close()
        return f"cannot create database {name} at {describe(admin_url)}: {str(exc).strip()}"
    url = urllib.parse.urlunsplit(urllib.parse.urlsplit(admin_url)._replace(path="/" + name))

    def drop() -> None:
        with admin:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))

    return url, drop


def pg_vacuum(b: Backend, url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        t0 = time.perf_counter()
        conn.execute("VACUUM ANALYZE")
        b.vacuum_s = time.perf_counter() - t0
        row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
        assert row is not None
        b.db_bytes = float(row[0])


def med(xs: list[float] | list[int]) -> float:
    return float(statistics.median(xs)) if xs else float("nan")


def table(backends: list[Backend], n: int, skipped: str | None) -> str:
    lite = backends[0]
    pg = backends[1] if len(backends) > 1 else None

    def num(x: float, spec: str = ".2f") -> str:
        return "–" if x != x else format(x, spec)

    def row(
        label: str, get: Callable[[Backend], float], spec: str = ".2f", with_ratio: bool = True
    ) -> str:
        a = get(lite)
        if pg is None:
            return f"| {label} | {num(a, spec)} | skipped | – |"
        b = get(pg)
        r = num(b / a) if with_ratio and a == a and b == b and a else "–"
        return f"| {label} | {num(a, spec)} | {num(b, spec)} | {r} |"

    def rounds(b: Backend | None) -> str:
        return "skipped" if b is None else ", ".join(f"{x:.2f}" for x in b.rebuild_s)

    ratios = (
        [] if pg is None else [p / s for s, p in zip(lite.rebuild_s, pg.rebuild_s, strict=True)]
    )
    ratio_text = (
        f"{statistics.median(ratios):.2f} ({', '.join(f'{r:.2f}' for r in ratios)})"
        if ratios
        else "–"
    )
    same = pg is None or pg.counts == lite.counts

    def counts(b: Backend | None) -> str:
        if b is None:
            return "skipped"
        if b is not lite and same:
            return "same"
        return " / ".join(f"{c:,}" for c in b.counts) if b.counts else "–"

    lines = [
        f"| {n:,} permits | SQLite | PostgreSQL | PG ÷ SQLite |",
        "|---|---:|---:|---:|",
        row("fill (`bulk_insert_new`), s", lambda b: b.fill_s),
        row("fill, permits/s", lambda b: n / b.fill_s, ",.0f"),
        row("`VACUUM ANALYZE` after the fill, s", lambda b: b.vacuum_s, with_ratio=False),
        row("database on disk, MB", lambda b: b.db_bytes / 1e6, ".0f"),
        row("`index_rows` scan alone, s (median)", lambda b: med(b.scan_s)),
        row("**rebuild**, s (median)", lambda b: med(b.rebuild_s)),
        f"| rebuild, per round, s | {rounds(lite)} | {rounds(pg)} | {ratio_text} |",
        row("snapshot file, MB", lambda b: med(b.snapshot_bytes) / 1e6),
        row("snapshot file, bytes/permit", lambda b: med(b.snapshot_bytes) / n, ".1f"),
        f"| index permits / plates / records | {counts(lite)} | {counts(pg)} | – |",
    ]
    out = "\n".join(lines)
    if ratios:
        out += (
            "\n\nRebuild PG ÷ SQLite: ratio of the medians; per round, the median of "
            "the per-round ratios (each round's)."
        )
    if skipped:
        out += f"\n\nPostgreSQL skipped: {skipped}"
    if not same:
        out += "\n\n**The two backends' indexes differ: check the data.**"
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--permits", type=int, default=1_000_000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument(
        "--pg-url",
        default=PG_ADMIN_URL,
        help="a PostgreSQL URL allowed to create databases (default: "
        "$VARCO_BENCH_PG_URL or the local server, user postgres)",
    )
    p.add_argument(
        "--no-vacuum", action="store_true", help="skip VACUUM ANALYZE on PostgreSQL after the fill"
    )
    p.add_argument(
        "--profile",
        type=int,
        metavar="TOP",
        default=0,
        help="after the rounds, cProfile one more rebuild per backend and print "
        "the TOP functions by own time",
    )
    args = p.parse_args(argv)
    n = args.permits

    with tempfile.TemporaryDirectory(prefix="varco-bench-rebuild-") as tmp:
        tmp_path = Path(tmp)
        settings, rules = load_config(CONFIG, {"VARCO_DATA_DIR": str(tmp_path / "data")})
        sqlite_path = settings.storage.database_path
        backends = [Backend("SQLite", lambda: PermitDB(sqlite_path))]
        created = pg_database(args.pg_url)
        skipped: str | None = None
        drop: Callable[[], None] | None = None
        pg_version = "–"
        if isinstance(created, str):
            skipped = created
            print(f"skipped: {skipped}", flush=True)
        else:
            pg_url, drop = created
            with PgPermitDB(pg_url, check_schema=False) as db:
                db.migrate()
                row = db.conn.execute("SHOW server_version").fetchone()
                pg_version = str(row[0]) if row else "?"
            backends.append(Backend("PostgreSQL", lambda: PgPermitDB(pg_url)))
        try:
            print(
                f"python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}, "
                f"PostgreSQL {pg_version} (psycopg {psycopg.__version__}, "
                f"{psycopg.pq.__impl__}), {os.cpu_count()} cpus",
                flush=True,
            )
            note(f"generating {n:,} demo permits ...")
            t0 = time.perf_counter()
            now = time.time()
            permits = list(demo_permits(rules, n, now=now))
            note(f"  {time.perf_counter() - t0:.1f} s")
            for b in backends:
                note(f"fill {b.name} ...")
                fill(b, permits)
                note(f"  {b.fill_s:.1f} s")
            n = len(permits)
            del permits
            lite = backends[0]
            lite.db_bytes = float(
                sum(f.stat().st_size for f in sqlite_path.parent.glob(sqlite_path.name + "*"))
            )
            if len(backends) > 1:
                pg = backends[1]
                if args.no_vacuum:
                    with psycopg.connect(pg_url) as conn:
                        row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
                        pg.db_bytes = float(row[0]) if row else float("nan")
                else:
                    note("VACUUM ANALYZE PostgreSQL ...")
                    pg_vacuum(pg, pg_url)
                    note(f"  {pg.vacuum_s:.1f} s")
            min_end = int(now - settings.storage.history_days * 86400)
            for r in range(args.rounds):
                for b in backends:
                    scan(b, min_end)
                    rebuild_once(
                        b, rules, settings.storage.history_days, tmp_path / f"snap-{b.name}-{r}"
                    )
                    note(
                        f"round {r + 1}/{args.rounds} {b.name}: scan {b.scan_s[-1]:.2f} s, "
                        f"rebuild {b.rebuild_s[-1]:.2f} s"
                    )
            print()
            print(table(backends, n, skipped))
            if args.profile:
                for b in backends:
                    profile_rebuild(
                        b,
                        rules,
                        settings.storage.history_days,
                        tmp_path / f"snap-profile-{b.name}",
                        args.profile,
                    )
        finally:
            if drop is not None:
                drop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
