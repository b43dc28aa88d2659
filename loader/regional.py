"""The regional circuit's export (Veneto's ZTL network, ViviPass) as permits.

One row per (pass, plate), `;`-separated, header (any order, case-insensitive):

    numero_pass;comune;targa;principale;tipo_pass;inizio;fine;stato;data_revoca;pass_precedente

- `numero_pass`: cadastral code + year + progressive, `L736_2024_00015`; unique in the circuit.
- `comune`: the issuing comune's cadastral code; it must be a member of the configured circuit.
- `targa`; `principale` `S`/`N` (empty: `S`).
- `tipo_pass`: the circuit's pass type, mapped to one of our permit types by `[circuit.types]`.
- `inizio`, `fine`: `dd/mm/yyyy` or `dd/mm/yyyy hh:mm`, local time; a bare `fine` date covers
  that whole day; empty `fine`: unlimited (where the permit type allows it).
- `stato`: `attivo`, `revocato` (needs `data_revoca`: the pass ends then, history kept) or
  `duplicato` (this pass replaces `pass_precedente`, lost or stolen: that one is revoked
  from this one's start). Also `active`, `revoked`, `duplicate`.

Semantics: several passes may hold one plate with overlapping validity, and all count. A
renewal keeps the number with new dates: the sync replaces the validity and the database keeps
the earlier version. Rows of one pass must agree on everything but the plate.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

import msgspec
from tqdm import tqdm

from enforcement.config import Circuit
from enforcement.permits import PermitInvalid, check_plate
from enforcement.rules import Rules

from .db import PermitRow
from .feedcsv import FeedReport, decode, parse_date, rows, with_plates

COLUMNS: Final = ("numero_pass", "comune", "targa", "principale", "tipo_pass", "inizio", "fine",
                  "stato", "data_revoca", "pass_precedente")  # fmt: skip
REQUIRED: Final = ("numero_pass", "comune", "targa", "tipo_pass", "inizio", "fine", "stato")
PASS_NUMBER: Final = re.compile(r"[A-Z]\d{3}_\d{4}_\d{5}")
_STATES: Final = {
    "attivo": "active", "active": "active", "revocato": "revoked", "revoked": "revoked",
    "duplicato": "duplicate", "duplicate": "duplicate",
}  # fmt: skip
_YES_NO: Final = {"s": True, "si": True, "sì": True, "y": True, "n": False, "no": False, "": True}


@dataclass(slots=True)
class RegionalPass:
    permit: PermitRow
    replaces: str | None  # a duplicate: the pass number it replaces
    line: int


def parse_regional(data: bytes, rules: Rules, circuit: Circuit,
                   report: FeedReport) -> list[RegionalPass]:  # fmt: skip
    """The CSV export's passes, validated; bad rows go to `report.rejects` with line and
    reason, and a pass with one bad row is rejected whole (half a pass is a wrong pass)."""
    return parse_regional_rows(rows(decode(data, report), COLUMNS, REQUIRED), rules, circuit,
                               report)  # fmt: skip


def parse_regional_rows(numbered_rows: Iterable[tuple[int, dict[str, str]]], rules: Rules,
                        circuit: Circuit, report: FeedReport) -> list[RegionalPass]:  # fmt: skip
    """The same from rows already split into fields (the CSV, or the circuit's JSON feed,
    whose items carry the CSV's column names; there `line` is the item's position)."""
    passes: dict[str, RegionalPass] = {}
    plates: dict[str, dict[str, bool]] = {}
    bad: set[str] = set()
    # A progress bar on a terminal only (tqdm's disable=None): `varco sync` of a large export.
    for line, row in tqdm(numbered_rows, unit="row", desc=report.source, disable=None):
        report.rows += 1
        number = row.get("numero_pass", "")
        try:
            if "__error__" in row:
                raise PermitInvalid("row", row["__error__"])
            p = _parse_row(row, rules, circuit)
            p.line = line
            seen = passes.get(number)
            plate, primary = p.permit.plates[0]
            if seen is None:
                passes[number], plates[number] = p, {plate: primary}
                continue
            if not _same_pass(seen.permit, p.permit):
                raise PermitInvalid("numero_pass", f"pass {number} appears with other dates, "
                                    f"type or state on line {seen.line}")  # fmt: skip
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
            permit = with_plates(rules, p.permit, plates[number])
        except PermitInvalid as exc:
            report.reject(p.line, number, exc)
            continue
        out.append(RegionalPass(permit, p.replaces, p.line))
    report.permits = len(out)
    return out


def _same_pass(a: PermitRow, b: PermitRow) -> bool:
    return (a.type, a.valid_from, a.valid_to) == (b.type, b.valid_from, b.valid_to)


def _parse_row(row: dict[str, str], rules: Rules, circuit: Circuit) -> RegionalPass:
    number = row["numero_pass"]
    if not PASS_NUMBER.fullmatch(number):
        raise PermitInvalid("numero_pass", f"{number!r} is not a pass number like L736_2024_00015")
    comune = row["comune"].upper()
    if comune not in circuit.comuni:
        raise PermitInvalid("comune", f"{comune!r} is not a comune of the circuit")
    kind = row["tipo_pass"]
    type_ = circuit.types.get(kind)
    if type_ is None:
        raise PermitInvalid("tipo_pass", f"unknown pass type {kind!r} (known: "
                                         f"{', '.join(circuit.types)})")  # fmt: skip
    plate = check_plate(row["targa"], "targa")
    primary = _YES_NO.get(row.get("principale", "").lower())
    if primary is None:
        raise PermitInvalid("principale", f"{row['principale']!r} is not S or N")
    state = _STATES.get(row["stato"].lower())
    if state is None:
        raise PermitInvalid("stato", f"{row['stato']!r} is not attivo, revocato or duplicato")
    start = parse_date(row["inizio"], rules.clock, "inizio")
    end = parse_date(row["fine"], rules.clock, "fine", end=True) if row["fine"] else None
    if end is not None and end <= start:
        raise PermitInvalid("fine", "the pass ends before it starts")
    replaces = None
    if state == "revoked":
        if not row.get("data_revoca"):
            raise PermitInvalid("data_revoca", "a revoked pass needs its revocation date")
        revoked = parse_date(row["data_revoca"], rules.clock, "data_revoca")
        end = max(start, revoked if end is None else min(end, revoked))
    elif state == "duplicate":
        replaces = row.get("pass_precedente", "")
        if not PASS_NUMBER.fullmatch(replaces):
            raise PermitInvalid("pass_precedente", "a duplicate names the pass it replaces "
                                                   "(like L736_2024_00015)")  # fmt: skip
        if replaces == number:
            raise PermitInvalid("pass_precedente", "a duplicate cannot replace itself")
    permit = PermitRow(number, type_, start, end, (), "regional", ((plate, primary),))
    return RegionalPass(permit, replaces, 0)


def revoke_replaced(passes: Iterable[RegionalPass],
                    current: dict[str, PermitRow]) -> list[PermitRow]:  # fmt: skip
    """The passes that duplicates replace, ended at the duplicate's start. `current` maps
    pass numbers to their version in this export or, failing that, in the database."""
    out = []
    for p in passes:
        if p.replaces is None:
            continue
        old = current.get(p.replaces)
        if old is None:
            continue  # never known here: nothing to revoke
        cut = p.permit.valid_from
        if old.valid_to is not None and old.valid_to <= cut:
            continue
        out.append(msgspec.structs.replace(old, valid_to=max(old.valid_from, cut)))
    return out
