"""The national CUDE whitelist export (badges for disabled people's vehicles) as permits.

One row per (badge, plate), `;`-separated, header (any order, case-insensitive):

    codice_cude;targa;tipo_targa;inizio;fine;data_revoca

- `codice_cude`: the badge code (the permit id);
- `tipo_targa`: `P`/`principale` or `S`/`secondaria`. The national platform keeps at most
  two plates per badge, one primary: only the primary may transit; the secondary is visible to
  police (`not_primary_plate`);
- `inizio`, `fine`: `dd/mm/yyyy [hh:mm]` (or ISO 8601), local time; `data_revoca`: the badge
  was revoked then and ends there.

A badge with more than two plates or not exactly one primary is rejected whole, each of its
rows named.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from tqdm import tqdm

from enforcement.core.permits import MAX_CUDE_PLATES, PermitInvalid, check_plate
from enforcement.core.rules import Rules

from .feedcsv import FeedReport, decode, parse_date, rows, with_plates
from .store import PermitRow

COLUMNS: Final = ("codice_cude", "targa", "tipo_targa", "inizio", "fine", "data_revoca")
REQUIRED: Final = ("codice_cude", "targa", "tipo_targa", "inizio", "fine")
# `tipo_targa`: P (principale) or S (secondaria), any case; nothing else.
_KIND: Final = {"p": True, "s": False}


@dataclass(slots=True)
class _Badge:
    first: PermitRow
    plates: dict[str, bool] = field(default_factory=dict)
    lines: list[int] = field(default_factory=list)


def parse_cude(
    data: bytes,
    rules: Rules,
    type_: str,
    report: FeedReport,
    revocations: dict[str, int] | None = None,
) -> list[PermitRow]:
    """The export's badges, validated; `revocations` (if given) gets badge -> the instant
    it was revoked, for a sync to end the badge's other periods there too."""
    text = decode(data, report)
    badges: dict[str, _Badge] = {}
    bad: set[str] = set()
    for line, row in tqdm(
        rows(text, COLUMNS, REQUIRED), unit="row", desc=report.source, disable=None
    ):
        report.rows += 1
        code = row.get("codice_cude", "")
        try:
            if "__error__" in row:
                raise PermitInvalid("row", row["__error__"])
            permit = _parse_row(row, rules, type_)
            if revocations is not None and row.get("data_revoca"):
                revocations[code] = parse_date(row["data_revoca"], rules.clock, "data_revoca")
            badge = badges.setdefault(code, _Badge(permit))
            if (badge.first.valid_from, badge.first.valid_to) != (
                permit.valid_from,
                permit.valid_to,
            ):
                raise PermitInvalid(
                    "inizio", f"badge {code} appears with other dates on line {badge.lines[0]}"
                )
            plate, primary = permit.plates[0]
            if plate in badge.plates:
                raise PermitInvalid("targa", f"plate listed twice for badge {code}")
        except PermitInvalid as exc:
            report.reject(line, code, exc)
            bad.add(code)
            continue
        badge.plates[plate] = primary
        badge.lines.append(line)
    out = []
    for code, badge in badges.items():
        if code in bad:
            continue
        try:
            if len(badge.plates) > MAX_CUDE_PLATES:
                raise PermitInvalid(
                    "targa",
                    f"badge {code} has {len(badge.plates)} plates; the "
                    f"national platform allows {MAX_CUDE_PLATES}",
                )
            if sum(badge.plates.values()) != 1:
                raise PermitInvalid("tipo_targa", f"badge {code} needs exactly one primary plate")
            permit = with_plates(rules, badge.first, badge.plates, report.source)
        except PermitInvalid as exc:
            for line in badge.lines:  # every row of the badge, so none goes unexplained
                report.reject(line, code, exc)
            continue
        out.append(permit)
    report.permits = len(out)
    return out


def _parse_row(row: dict[str, str], rules: Rules, type_: str) -> PermitRow:
    code = row["codice_cude"]
    if not code or not code.isprintable() or len(code) > 64:
        raise PermitInvalid("codice_cude", f"{code!r} is not a badge code")
    plate = check_plate(row["targa"], "targa")
    primary = _KIND.get(row["tipo_targa"].lower())
    if primary is None:
        raise PermitInvalid(
            "tipo_targa", f"{row['tipo_targa']!r} is not P (principale) or S (secondaria)"
        )
    start = parse_date(row["inizio"], rules.clock, "inizio")
    end = parse_date(row["fine"], rules.clock, "fine", end=True) if row["fine"] else None
    if end is not None and end <= start:
        raise PermitInvalid("fine", "the badge ends before it starts")
    if row.get("data_revoca"):  # checked here; the sync cuts every period there
        parse_date(row["data_revoca"], rules.clock, "data_revoca")
    return PermitRow(code, type_, start, end, (), "cude", ((plate, primary),))
