"""A regional circuit export of 1 M rows synchronised into the permit database (issue 4's
figure: ≤ 30 s), into an empty database and again unchanged (the nightly case), with the
parse timed apart; wall-clock and CPU seconds of this process (on a shared host the CPU
figure moves less; a PostgreSQL server's own CPU is not in it).

    .venv/bin/python -m bench.bench_sync --rows 1000000
    .venv/bin/python -m bench.bench_sync --rows 1000000 --compare   # the code before, too
    .venv/bin/python -m bench.bench_sync --rows 1000000 \\
        --postgres postgresql://postgres@127.0.0.1:5432/postgres    # a throwaway database

`--compare` also runs the sync as it was before the parse and write paths were made fast
(`_before`: the plain row-by-row parser, csv.reader for every file, the garbage collector on,
the previous database lookups), alternating the two `--repeat` times in one process, and
checks that both read the export into the same passes and rejects.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import msgspec

from enforcement.config.load import load_config
from enforcement.config.settings import Settings, Source
from loader import feedcsv, regional, sync
from loader import store as dbmod
from loader.database import open_db
from loader.feedcsv import FeedReport
from loader.sqlite import PermitDB
from loader.store import Change, PermitRow

ROOT = Path(__file__).resolve().parent.parent
HEADER = "numero_pass;comune;targa;principale;tipo_pass;inizio;fine;stato;data_revoca;pass_precedente"
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
        state, revoked = ("revocato", f"01/06/{year + 1}") if rng.random() < 0.03 else ("attivo", "")
        plates = 2 if rng.random() < 0.1 and len(out) < rows else 1
        for k in range(plates):
            plate = (rng.choice(LETTERS) + rng.choice(LETTERS) + f"{rng.randint(0, 999):03d}"
                     + rng.choice(LETTERS) + rng.choice(LETTERS))  # fmt: skip
            out.append(f"{number};{comune};{plate};{'S' if k == 0 else 'N'};DISABILI;{start};"
                       f"{end};{state};{revoked};")  # fmt: skip
    return ("\r\n".join(out[: rows + 1]) + "\r\n").encode("cp1252")


# The code before, kept here to measure against (`--compare`): what `_before` puts back.


def _old_canonical(p: PermitRow) -> PermitRow:
    plates = tuple(sorted(p.plates))
    zones = tuple(" ".join(p.zones).split())
    if plates == p.plates and zones == p.zones:
        return p
    return msgspec.structs.replace(p, plates=plates, zones=zones)


def _old_plan(chunk: list[PermitRow], stored: dict[str, tuple[int, PermitRow]],
              revision: int) -> tuple[list[Change], int, int]:  # fmt: skip
    latest: dict[str, PermitRow] = {}
    for p in chunk:
        latest.pop(p.permit_id, None)
        latest[p.permit_id] = _old_canonical(p)
    changes: list[Change] = []
    last = revision
    for pid, p in latest.items():
        old = stored.get(pid)
        if old is not None and old[1] == p:
            last = old[0]
            continue
        revision += 1
        last = revision
        changes.append(Change(revision, p, old))
    return changes, revision, last


def _old_current(self: PermitDB, permit_ids: Sequence[str]) -> dict[str, tuple[int, PermitRow]]:
    rows = self.conn.execute(
        dbmod.PERMIT_SELECT + " WHERE p.permit_id IN (SELECT value FROM json_each(?))"
        " ORDER BY p.permit_id", (json.dumps(list(permit_ids)),)
    )  # fmt: skip
    return {p.permit_id: (rev, p) for rev, p in dbmod.group(rows)}


def _old_pg_apply(self: Any, changes: list[Change], now: int) -> None:
    from loader.postgres import _COPY_PERMITS, _PERMIT_COLUMNS
    from loader.store import history_json

    replaced = [ch.permit.permit_id for ch in changes if ch.previous is not None]
    with self.conn.cursor() as cur:
        cur.execute("CREATE TEMP TABLE IF NOT EXISTS varco_staged_permits"
                    " (LIKE permits) ON COMMIT DELETE ROWS")  # fmt: skip
        with cur.copy(_COPY_PERMITS.format(table="varco_staged_permits")) as copy:
            for rev, p, _ in changes:
                copy.write_row((p.permit_id, p.type, p.valid_from, p.valid_to,
                                " ".join(p.zones), p.source, rev, now))  # fmt: skip
        cur.execute(
            f"INSERT INTO permits ({_PERMIT_COLUMNS}) SELECT {_PERMIT_COLUMNS}"
            " FROM varco_staged_permits"
            " ON CONFLICT (permit_id) DO UPDATE SET type = excluded.type,"
            " valid_from = excluded.valid_from, valid_to = excluded.valid_to,"
            " zones = excluded.zones, source = excluded.source,"
            " revision = excluded.revision, updated_at = excluded.updated_at"
        )
        cur.execute("TRUNCATE varco_staged_permits")
        if replaced:
            cur.execute("DELETE FROM permit_plates WHERE permit_id = ANY(%s)", (replaced,))
            with cur.copy("COPY permit_history (permit_id, revision, old_row, changed_at)"
                          " FROM STDIN") as copy:  # fmt: skip
                for ch in changes:
                    if ch.previous is not None:
                        copy.write_row((ch.permit.permit_id, ch.previous[0],
                                        history_json(ch.previous[1]), now))  # fmt: skip
        self._copy_plates(cur, [p for _, p, _ in changes])


@contextlib.contextmanager
def _before() -> Iterator[None]:
    """The sync as it was before: every change of the fast paths undone, by patching."""
    patches: list[tuple[Any, str, Any]] = [
        (feedcsv, "_split_records", feedcsv._csv_records),  # csv.reader for every file
        (sync, "parse_regional", regional.parse_regional_reference),
        (sync, "gc_paused", contextlib.nullcontext),
        (dbmod, "plan", _old_plan),
        (PermitDB, "_current", _old_current),
    ]
    with contextlib.suppress(ImportError):
        from loader.postgres import PgPermitDB

        patches += [(PgPermitDB, "_apply", _old_pg_apply),
                    (PgPermitDB, "_written", lambda self, changed: None)]  # fmt: skip
    saved = [(obj, name, getattr(obj, name)) for obj, name, _ in patches]
    for obj, name, value in patches:
        setattr(obj, name, value)
    try:
        yield
    finally:
        for obj, name, value in saved:
            setattr(obj, name, value)


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


def run(data: bytes, postgres: str | None, before: bool) -> tuple[Figures, str, str]:
    """The three phases, on a new database; (figures, a summary line, a digest of the passes
    and rejects read)."""
    with tempfile.TemporaryDirectory(prefix="varco-sync-") as tmp, \
            _database(tmp, postgres) as env, (_before() if before else contextlib.nullcontext()):  # fmt: skip
        settings, rules = load_config(ROOT / "examples" / "demo.toml", env)
        assert settings.circuit is not None
        # The demo city's circuit; the export handed over directly (no file to schedule).
        source = Source("vivipass", "regional_csv", Path(tmp) / "unused.csv", 3600, 1.0, None,
                        86400)  # fmt: skip
        parse = regional.parse_regional_reference if before else regional.parse_regional
        report = FeedReport("vivipass")
        passes, *parse_t = _timed(parse, data, rules, settings.circuit, report)
        n_passes = len(passes)
        digest = hashlib.sha256(msgspec.json.encode([passes, report.rows, report.rejects]))
        del passes
        with _open(settings) as db:
            first, *first_t = _timed(sync.sync_source, db, rules, settings, source, data=data)
            again, *again_t = _timed(sync.sync_source, db, rules, settings, source, data=data)
            summary = (f"{report.rows:,} rows, {n_passes:,} passes, "
                       f"{len(report.rejects)} rejected; changed {first.changed:,} then "
                       f"{again.changed:,}, closed {first.closed} then {again.closed}; "
                       f"revision {again.revision:,}")  # fmt: skip
    figures = {"parse": (parse_t[0], parse_t[1]), "first": (first_t[0], first_t[1]),
               "again": (again_t[0], again_t[1])}  # fmt: skip
    return figures, summary, digest.hexdigest()


def _open(settings: Settings) -> dbmod.PermitStore:
    db = open_db(settings, check_schema=False)
    db.migrate()
    return db


ROWS = {"parse": "parse and validate only", "first": "sync into an empty database",
        "again": "sync again, unchanged"}  # fmt: skip


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
    p.add_argument("--compare", action="store_true", help="also run the code before")
    p.add_argument("--repeat", type=int, default=1, help="runs of each variant (alternating)")
    p.add_argument("--postgres", metavar="ADMIN_URL", help="on a throwaway PostgreSQL database")
    args = p.parse_args(argv)
    data = export(args.rows)
    backend = "PostgreSQL" if args.postgres else "SQLite"
    variants = [False, True] if args.compare else [False]
    results: dict[bool, list[Figures]] = {v: [] for v in variants}
    parsed: dict[bool, str] = {}
    print(f"export: {len(data) / 1e6:.0f} MB; load average {_load()}", file=sys.stderr)
    for i in range(args.repeat):
        for before in variants if i % 2 == 0 else variants[::-1]:
            figures, summary, parsed[before] = run(data, args.postgres, before)
            results[before].append(figures)
            line = "; ".join(f"{k} {w:.1f} s (CPU {c:.1f})" for k, (w, c) in figures.items())
            print(f"{'before' if before else 'after '} run {i + 1}: {line}\n    {summary}; "
                  f"load average {_load()}", file=sys.stderr)  # fmt: skip
        if args.compare and parsed[True] != parsed[False]:
            raise AssertionError("before and after read the export into different passes")
    n = f"{args.rows:,} rows, {backend}"

    def cell(runs: list[Figures], phase: str, k: int) -> str:
        return " / ".join(f"{r[phase][k]:.1f}" for r in runs)

    if not args.compare:
        print(f"\n| {n} | wall s | CPU s | target |\n|---|---:|---:|---|")
        for phase, title in ROWS.items():
            target = "≤ 30" if phase == "first" else "–"
            print(f"| {title} | {cell(results[False], phase, 0)} | "
                  f"{cell(results[False], phase, 1)} | {target} |")  # fmt: skip
        return 0
    print(f"\n| {n} | before, wall s | after, wall s | before/after (medians) | before, CPU s "
          "| after, CPU s | before/after (medians) |\n|---|---:|---:|---:|---:|---:|---:|")  # fmt: skip
    for phase, title in ROWS.items():
        ratios = []
        for k in (0, 1):
            old = statistics.median(r[phase][k] for r in results[True])
            new = statistics.median(r[phase][k] for r in results[False])
            ratios.append(f"{old / new:.2f}")
        print(f"| {title} | {cell(results[True], phase, 0)} | {cell(results[False], phase, 0)} "
              f"| {ratios[0]} | {cell(results[True], phase, 1)} | "
              f"{cell(results[False], phase, 1)} | {ratios[1]} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
