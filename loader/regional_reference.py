"""The regional circuit's parser written plainly, one row at a time: the specification that
`regional.parse_regional` (which caches what rows share) is property-tested against
(tests/loader/test_fast_parse.py). Not used by the loader."""

from __future__ import annotations

from collections.abc import Iterable

from enforcement.config.settings import Circuit
from enforcement.core.permits import PermitInvalid
from enforcement.core.rules import Rules

from .feedcsv import FeedReport, decode, rows, with_plates
from .regional import COLUMNS, REQUIRED, RegionalPass, parse_row


def parse_regional_reference(
    data: bytes | Iterable[tuple[int, dict[str, str]]],
    rules: Rules,
    circuit: Circuit,
    report: FeedReport,
) -> list[RegionalPass]:
    """`parse_regional` (bytes) or `parse_regional_rows` (rows) written plainly, one
    `parse_row` per row: the specification the cached version is tested against. Not used by
    the loader."""
    numbered_rows = (
        rows(decode(data, report), COLUMNS, REQUIRED) if isinstance(data, bytes) else data
    )
    passes: dict[str, RegionalPass] = {}
    plates: dict[str, dict[str, bool]] = {}
    bad: set[str] = set()
    for line, row in numbered_rows:
        report.rows += 1
        number = row.get("numero_pass", "")
        try:
            if "__error__" in row:
                raise PermitInvalid("row", row["__error__"])
            p = parse_row(row, rules, circuit)
            p.line = line
            seen = passes.get(number)
            plate, primary = p.permit.plates[0]
            if seen is None:
                passes[number], plates[number] = p, {plate: primary}
                continue
            if not _same_pass(seen, p):
                raise PermitInvalid(
                    "numero_pass",
                    f"pass {number} appears with other dates, type or state on line {seen.line}",
                )
            if plate in plates[number]:
                raise PermitInvalid("targa", f"plate listed twice for pass {number}")
            plates[number][plate] = primary
        except PermitInvalid as exc:
            report.reject(line, number, exc)
            bad.add(number)
    out = []
    for number, p in passes.items():
        if number in bad:
            continue
        try:
            permit = with_plates(rules, p.permit, plates[number], report.source)
        except PermitInvalid as exc:
            report.reject(p.line, number, exc)
            continue
        out.append(RegionalPass(permit, p.replaces, p.line, p.revoked_at))
    report.permits = len(out)
    return out


def _same_pass(a: RegionalPass, b: RegionalPass) -> bool:
    """Rows of one pass agree on its type, dates and revocation."""
    return (a.permit.type, a.permit.valid_from, a.permit.valid_to, a.revoked_at) == (
        b.permit.type,
        b.permit.valid_from,
        b.permit.valid_to,
        b.revoked_at,
    )
