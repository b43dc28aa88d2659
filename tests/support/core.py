"""What the core and config tests share: an index built straight from rows (no database), and
a small city whose rules cover every kind of schedule, window and suspension."""

from __future__ import annotations

from pathlib import Path

from enforcement.config.load import load_config
from enforcement.core.index import IndexMeta, PermitIndex, build_index
from enforcement.core.plates import plate_key
from enforcement.core.rules import Rules

META = IndexMeta(7, 1_700_000_000, ("1", "4", "CUDE"), ("ZTL", "PEDONALE"))


def build(
    rows: list[tuple[str, int, int, int, int, int]],
    ids: list[str] | None = None,
    use_kernel: bool = True,
) -> PermitIndex:
    ids = ids if ids is not None else [f"P{i:05d}" for i in range(len(rows))]  # sorted
    idx = build_index(
        META,
        [plate_key(r[0]) for r in rows],
        [r[1] for r in rows],
        [r[2] for r in rows],
        [r[3] for r in rows],
        list(range(len(rows))),
        [r[4] for r in rows],
        [r[5] for r in rows],
        ids,
    )
    if use_kernel:
        return idx
    return PermitIndex(
        idx.meta,
        idx.keys,
        idx.offsets,
        idx.records,
        idx.buckets,
        idx.order,
        idx.id_blob,
        idx.id_offsets,
        use_kernel=False,
    )


# -- a small city (tests/core/test_rules.py, tests/config/test_load.py) --------------------

BASE = """
[city]
patron_saint = "06-13"

[zones.A]
grace = "72h"
covers = ["B"]

[zones.B]
grace = "24h"

[gates.DAY]
zone = "A"
schedule = [{ days = "mon-fri", from = "07:30", to = "19:30" }]
holidays = "inactive"

[gates.NIGHT]
zone = "A"
schedule = [{ days = "fri-sat", from = "23:00", to = "03:00" }]

[gates.SUNDAYLIKE]
zone = "A"
schedule = [{ days = "mon-sat", from = "08:00", to = "20:00" }, { days = "sun", from = "10:00", to = "12:00" }]
holidays = "as_sunday"

[gates.AUGUST]
zone = "B"
suspended = [{ from = "08-10", to = "08-24" }]

[gates.XMAS]
zone = "B"
suspended = [{ from = "12-20", to = "01-06" }]

[types.LOAD]
zones = ["A"]
windows = [{ days = "mon-sun", from = "04:00", to = "11:00" }, { days = "mon-sun", from = "15:00", to = "16:00" }]
max_duration = "1y"

[types.WEEKDAY]
zones = ["B"]
windows = [{ days = "mon-fri", from = "00:00", to = "24:00" }]
holidays = "inactive"

[types.ONLINE]
zones = ["A"]
max_duration = "2h"

[types.TEMP]
zones = ["A"]
max_duration = "6mo"
"""


def load(tmp_path: Path, text: str = BASE) -> Rules:
    path = tmp_path / "city.toml"
    path.write_text(text)
    return load_config(path, {"VARCO_DATA_DIR": str(tmp_path)})[1]
