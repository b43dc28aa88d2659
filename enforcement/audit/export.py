"""Exporting audit records for whoever audits the police (`varco audit export`): CSV or JSON.

CSV rows name the record's fields; a cell a spreadsheet would run as a formula (a reason
starting with `=`) gets a leading quote (csvcells.py). JSON rows add each record's stored
body, so that anyone can recompute the chain over an export (`chain.link_of`).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Callable
from typing import Final, TextIO

from ..csvcells import safe_cell
from .chain import Entry, decode_record


def local_time(t_ms: int, tz: dt.tzinfo) -> str:
    return dt.datetime.fromtimestamp(t_ms / 1000, tz).isoformat(timespec="milliseconds")


EXPORT_COLUMNS: Final = (
    "seq",
    "time",
    "key_id",
    "role",
    "plate",
    "at",
    "zone",
    "reason",
    "results",
    "host",
    "pid",
    "t_ms",
    "prev",
    "link",
    "action",
    "person",
    "target",
    "detail",
)


def export_row(e: Entry, tz: dt.tzinfo) -> dict[str, object]:
    """An entry as an export row (EXPORT_COLUMNS; unreadable bodies leave the record's fields
    empty)."""
    r = decode_record(e.body)
    return {
        "seq": e.seq,
        "time": local_time(e.t_ms, tz),
        "key_id": r and r.key_id,
        "role": r and r.role,
        "plate": r and r.plate,
        "at": r and r.at.isoformat(),
        "zone": r and r.zone,
        "reason": r and r.reason,
        "results": r and r.results,
        "host": r and r.host,
        "pid": r and r.pid,
        "t_ms": e.t_ms,
        "prev": e.prev,
        "link": e.link,
        "action": r and r.action,
        "person": r and r.person,
        "target": r and r.target,
        "detail": r and r.detail and json.dumps(r.detail, ensure_ascii=False, sort_keys=True),
    }


def export_writer(out: TextIO, fmt: str, tz: dt.tzinfo) -> Callable[[Entry | None], None]:
    """A function writing one entry to `out` as CSV or JSON (`fmt`); None ends the export."""
    if fmt == "csv":
        rows = csv.DictWriter(out, EXPORT_COLUMNS)
        rows.writeheader()

        def write_csv(entry: Entry | None) -> None:
            if entry is not None:
                rows.writerow({k: safe_cell(v) for k, v in export_row(entry, tz).items()})

        return write_csv
    first = True

    def write_json(entry: Entry | None) -> None:
        nonlocal first
        if entry is None:
            out.write("[]\n" if first else "\n]\n")
            return
        # `body` is the record exactly as stored: with t_ms, prev and link, anyone can
        # recompute the chain over an export (chain.link_of).
        row = {**export_row(entry, tz), "body": entry.body.decode("utf-8", "replace")}
        out.write(("[\n" if first else ",\n") + json.dumps(row, ensure_ascii=False))
        first = False

    return write_json
