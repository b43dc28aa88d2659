"""CSV import of permits: `permit_id,plate,type,valid_from,valid_to,zones,source,primary`.

One row per (permit, plate); rows sharing a permit_id form one permit with several plates
(a CUDE badge's primary and secondary plate, a request naming several vehicles) and must agree
on everything but plate and primary. Bad rows are rejected with their line number and reason
and counted; the good permits are upserted in one transaction, so a re-import is idempotent.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from tqdm import tqdm

from enforcement.core.permits import (
    MAX_CUDE_PLATES,
    PermitInvalid,
    check_permit,
    check_plate,
    parse_bool,
    parse_instant,
    parse_zones,
)
from enforcement.core.rules import Rules
from enforcement.csvcells import safe_cell

from .feedcsv import Reject  # line, key (the permit_id here), field, reason
from .periods import renewing
from .store import PermitRow, PermitStore

COLUMNS: Final = (
    "permit_id",
    "plate",
    "type",
    "valid_from",
    "valid_to",
    "zones",
    "source",
    "primary",
)


class ImportFileError(Exception):
    """The file as a whole cannot be imported (missing columns, not text)."""


@dataclass(slots=True)
class ImportReport:
    rows: int = 0
    permits: int = 0
    changed: int = 0
    rejects: list[Reject] = field(default_factory=list)
    revision: int = 0


@dataclass(slots=True)
class _Pending:
    line: int
    key: tuple[str, int, int | None, tuple[str, ...], str]
    plates: dict[str, bool]
    lines: dict[str, int]


def _rows(text: str) -> Iterator[tuple[int, dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise ImportFileError(
            f"missing column(s): {', '.join(missing)}; the header must be {','.join(COLUMNS)}"
        )
    extra = [h for h in header if h not in COLUMNS]
    if extra:
        raise ImportFileError(f"unknown column(s): {', '.join(extra)}")
    reader.fieldnames = header
    width = len(header)
    for row in reader:
        if None in row:  # DictReader keeps the fields past the header's under None
            yield reader.line_num, {"__error__": "more fields than the header has"}
            continue
        given = sum(v is not None for v in row.values())  # a short row's missing are None
        if given != width:
            # A row cut short must not read as a permit with defaults (an empty valid_to
            # would make it unlimited).
            yield (
                reader.line_num,
                {
                    "__error__": f"{given} fields where the header has {width}",
                    "permit_id": (row.get("permit_id") or "").strip(),
                },
            )
            continue
        yield reader.line_num, {k: v.strip() for k, v in row.items() if v is not None}


def read_permits_csv(path: Path, rules: Rules, report: ImportReport) -> list[PermitRow]:
    """Parse and validate a permit CSV; rejects go to `report`, good permits are returned."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFileError(f"not UTF-8 text ({exc})") from exc
    total = text.count("\n")
    pending: dict[str, _Pending] = {}
    clock = rules.clock
    for line, row in tqdm(_rows(text), total=total, unit="row", desc="import", disable=None):
        report.rows += 1
        pid = row.get("permit_id", "")
        try:
            if "__error__" in row:
                raise PermitInvalid("row", row["__error__"])
            plate = check_plate(row["plate"])
            valid_from = parse_instant(row["valid_from"], clock, "valid_from")
            valid_to = (
                parse_instant(row["valid_to"], clock, "valid_to") if row["valid_to"] else None
            )
            zones = parse_zones(row["zones"])
            source = row["source"].lower() or "municipal"
            primary = parse_bool(row["primary"], "primary", default=True)
            check_permit(rules, pid, row["type"], valid_from, valid_to, zones, source, 1)
            key = (row["type"], valid_from, valid_to, zones, source)
            p = pending.get(pid)
            if p is None:
                pending[pid] = _Pending(line, key, {plate: primary}, {plate: line})
                continue
            if p.key != key:
                raise PermitInvalid(
                    "permit_id",
                    f"same permit as line {p.line} but different type, validity, zones or source",
                )
            if plate in p.plates:
                raise PermitInvalid("plate", f"duplicate of line {p.lines[plate]}")
            if rules.types[row["type"]].cude and len(p.plates) >= MAX_CUDE_PLATES:
                raise PermitInvalid(
                    "plate",
                    f"a CUDE badge holds at most {MAX_CUDE_PLATES} "
                    f"plates (lines {', '.join(map(str, p.lines.values()))})",
                )
            p.plates[plate] = primary
            p.lines[plate] = line
        except PermitInvalid as exc:
            report.rejects.append(Reject(line, pid, exc.field, exc.reason))
    permits = []
    for pid, p in pending.items():
        type_, valid_from, valid_to, zones, source = p.key
        ptype = rules.types[type_]
        plates = tuple(sorted(p.plates.items()))
        if ptype.cude and sum(pr for _, pr in plates) != 1:
            report.rejects.append(
                Reject(p.line, pid, "primary", "a CUDE badge needs exactly one primary plate")
            )
            continue
        permits.append(PermitRow(pid, type_, valid_from, valid_to, zones, source, plates))
    return permits


def import_csv(path: Path, rules: Rules, db: PermitStore) -> ImportReport:
    """Validate a CSV and upsert its good permits into `db` in one transaction."""
    report = ImportReport()
    permits = read_permits_csv(path, rules, report)
    report.permits = len(permits)
    # A row's validity joins the permit's periods (a renewal adds one: loader/periods.py).
    report.changed = db.upsert(permits, merge=renewing())
    report.revision = db.revision
    return report


def write_rejects(report: ImportReport, path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["line", "permit_id", "field", "reason"])
        for r in report.rejects:  # a rejected row's id is anything the file held
            w.writerow(safe_cell(c) for c in (r.line, r.key, r.field, r.reason))
