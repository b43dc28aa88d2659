"""A regional circuit export of 1 M rows synchronised into the permit database (issue 4's
figure: ≤ 30 s), into an empty database and again unchanged (the nightly case), with the
parse and the database write timed apart.

    .venv/bin/python -m bench.bench_sync --rows 1000000
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

from enforcement.config import Source, load_config
from loader.db import open_db
from loader.feedcsv import FeedReport
from loader.regional import parse_regional
from loader.sync import sync_source

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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.bench_sync")
    p.add_argument("--rows", type=int, default=1_000_000)
    args = p.parse_args(argv)
    data = export(args.rows)
    with tempfile.TemporaryDirectory(prefix="varco-sync-") as tmp:
        settings, rules = load_config(ROOT / "examples" / "demo.toml", {"VARCO_DATA_DIR": tmp})
        assert settings.circuit is not None
        # The demo city's circuit; the export handed over directly (no file to schedule).
        source = Source("vivipass", "regional_csv", Path(tmp) / "unused.csv", 3600, 1.0, None,
                        86400)  # fmt: skip
        t0 = time.perf_counter()
        report = FeedReport("vivipass")
        passes = parse_regional(data, rules, settings.circuit, report)
        parse_s = time.perf_counter() - t0
        print(f"export: {len(data) / 1e6:.0f} MB, {report.rows} rows, {len(passes)} passes, "
              f"{len(report.rejects)} rejected", file=sys.stderr)  # fmt: skip
        with open_db(settings) as db:
            t0 = time.perf_counter()
            first = sync_source(db, rules, settings, source, data=data)
            first_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            again = sync_source(db, rules, settings, source, data=data)
            again_s = time.perf_counter() - t0
    print(f"""
| {args.rows:,} rows ({len(passes):,} passes), SQLite | s | target |
|---|---:|---|
| parse and validate only | {parse_s:.1f} | – |
| sync into an empty database | **{first_s:.1f}** | ≤ 30 |
| sync again, unchanged | {again_s:.1f} | – |

changed {first.changed:,} then {again.changed:,}; closed {first.closed} then {again.closed}
""")
    return 0


if __name__ == "__main__":
    sys.exit(main())
