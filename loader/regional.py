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

import enum
import operator
import re
from collections.abc import Iterable
from typing import Any, Final, Literal

import msgspec
from tqdm import tqdm

from enforcement.config.settings import Circuit
from enforcement.core.localtime import LocalClock
from enforcement.core.permits import PermitInvalid, check_permit, check_plate
from enforcement.core.rules import Rules

from .feedcsv import (
    FeedReport,
    _row,
    decode,
    gc_paused,
    parse_date,
    records,
)
from .store import PermitRow

COLUMNS: Final = (
    "numero_pass",
    "comune",
    "targa",
    "principale",
    "tipo_pass",
    "inizio",
    "fine",
    "stato",
    "data_revoca",
    "pass_precedente",
)
REQUIRED: Final = ("numero_pass", "comune", "targa", "tipo_pass", "inizio", "fine", "stato")
PASS_NUMBER: Final = re.compile(r"[A-Z]\d{3}_\d{4}_\d{5}")
_STATES: Final = {
    "attivo": "active",
    "active": "active",
    "revocato": "revoked",
    "revoked": "revoked",
    "duplicato": "duplicate",
    "duplicate": "duplicate",
}
# `principale`: S or N (any case), empty meaning S; nothing else (a "si" or "y" is refused).
_YES_NO: Final = {"s": True, "n": False, "": True}


class RegionalPass(msgspec.Struct, gc=False):
    """A pass as read. gc=False (it cannot be part of a reference cycle): a million of them
    are not for the cyclic garbage collector to walk."""

    permit: PermitRow
    replaces: str | None  # a duplicate: the pass number it replaces
    line: int
    # A revoked pass: when. The permit keeps the period the export lists; a sync cuts every
    # period of the pass there (loader/periods.py), a renewed one revoked before it began too.
    revoked_at: int | None = None


def parse_regional(
    data: bytes, rules: Rules, circuit: Circuit, report: FeedReport
) -> list[RegionalPass]:
    """The CSV export's passes, validated; bad rows go to `report.rejects` with line and
    reason, and a pass with one bad row is rejected whole (half a pass is a wrong pass)."""
    header, found = records(decode(data, report), COLUMNS, REQUIRED)
    # A row's fields in COLUMNS order; a missing (optional) column reads the "" appended.
    at = [header.index(c) if c in header else len(header) for c in COLUMNS]
    with gc_paused():
        return _parse(found, header, operator.itemgetter(*at), rules, circuit, report)


def parse_regional_rows(
    numbered_rows: Iterable[tuple[int, dict[str, str]]],
    rules: Rules,
    circuit: Circuit,
    report: FeedReport,
) -> list[RegionalPass]:
    """The same from rows already split into fields (the CSV, or the circuit's JSON feed,
    whose items carry the CSV's column names; there `line` is the item's position)."""
    with gc_paused():
        return _parse(numbered_rows, list(COLUMNS), _FIELDS, rules, circuit, report)


class _Cached(enum.Enum):
    BAD = enum.auto()  # an invalid field value: `parse_row` says why
    MISS = enum.auto()  # not looked at yet


_Bad = Literal[_Cached.BAD]
# Module constants: reading an Enum member off its class costs ~0.35 µs in Python 3.11.
_BAD: Final = _Cached.BAD
_MISS: Final = _Cached.MISS
_FIELDS: Final = operator.itemgetter(*COLUMNS)
# A row as read: (type, valid_from, valid_to, replaces, plate, primary).
_Read = tuple[str, int, int | None, str | None, str, bool]
# A pass so far: [type, valid_from, valid_to, replaces, line of its first row, its plates:
# the one (plate, primary) pair, or a dict of them once it has a second].
_Pass = list[Any]


def _parse(
    numbered_rows: Iterable[tuple[int, list[str] | dict[str, str]]],
    header: list[str],
    fields: operator.itemgetter[Any],
    rules: Rules,
    circuit: Circuit,
    report: FeedReport,
) -> list[RegionalPass]:
    """Rows are CSV fields as read (a list, in `header` order, not stripped) or a row by
    column name (a dict, stripped). Each row is checked as `parse_row` checks it, through
    caches of what repeats: a million-row export has a handful of comuni, types and states
    and a few thousand dates. The caches only say "valid, and this is the value" or "not
    valid"; a row with anything not valid goes through `parse_row` itself, which rejects it
    with the reason (the outcome is `parse_row`'s either way). Property-tested against
    `regional_reference.parse_regional_reference`."""
    clock = rules.clock
    is_number = PASS_NUMBER.fullmatch
    strip = str.strip
    width = len(header)
    pad = not set(COLUMNS) <= set(header)  # an optional column is missing: it reads ""
    kinds: dict[tuple[str, str, str, str], _Attributes | _Bad] = {}  # raw fields
    starts: dict[str, int | _Bad] = {}  # raw inizio and data_revoca: instant or BAD
    ends: dict[str, int | _Bad | None] = {}  # raw fine: instant, None (empty) or BAD
    passes: dict[str, _Pass] = {}
    revocations: dict[str, int] = {}  # pass number -> instant revoked
    bad: set[str] = set()
    n = 0
    # A progress bar on a terminal only (tqdm's disable=None): `varco sync` of a large export.
    bar = tqdm(numbered_rows, unit="row", desc=report.source, disable=None)
    try:
        for line, row in numbered_rows if bar.disable else bar:
            n += 1
            got: _Read | None = None
            revoked: int | None = None  # this row's revocation instant (state revocato)
            if type(row) is list:
                if len(row) == width:
                    values: tuple[str, ...] | None = fields([*row, ""] if pad else row)
                else:
                    values, row = None, _row(line, row, header)[1]  # an `__error__` row
            else:
                assert isinstance(row, dict)
                values = None if "__error__" in row else _dict_fields(row)
            if values is None:
                assert isinstance(row, dict)
                number = row.get("numero_pass", "")
                seen = passes.get(number)
            else:
                (
                    raw_number,
                    comune,
                    targa,
                    principale,
                    kind,
                    inizio,
                    fine,
                    stato,
                    revoca,
                    precedente,
                ) = values
                number = strip(raw_number)
                seen = passes.get(number)
                attrs = kinds.get(key := (comune, kind, principale, stato))
                if attrs is None:
                    attrs = kinds[key] = _attributes(comune, kind, principale, stato, circuit)
                start = starts.get(inizio, _MISS)
                if start is _MISS:
                    start = starts[inizio] = _date(inizio, clock, end=False)
                end = ends.get(fine, _MISS)
                if end is _MISS:
                    end = ends[fine] = _date(fine, clock, end=True) if strip(fine) else None
                if (
                    attrs is not _BAD
                    and start is not _BAD
                    and end is not _BAD
                    and (end is None or end > start)
                    and (seen is not None or is_number(number))
                ):
                    type_, primary, state = attrs
                    try:
                        plate = check_plate(strip(targa), "targa")
                    except PermitInvalid:
                        pass  # `parse_row` says why, after what it checks first
                    else:
                        if state == "active":
                            if seen is None:  # the common case, inline: a pass's first row
                                passes[number] = [type_, start, end, None, line, (plate, primary)]
                                continue
                            got = (type_, start, end, None, plate, primary)
                        else:
                            got = _ended_or_replacing(
                                number, attrs, start, end, plate, revoca, precedente, starts, clock
                            )
                            if got is not None and state == "revoked":
                                when = starts[revoca]  # cached by _ended_or_replacing
                                revoked = None if when is _BAD else when
            try:
                if got is None:  # a row the caches do not vouch for
                    if isinstance(row, list):
                        row = dict(zip(COLUMNS, map(strip, fields([*row, ""])), strict=True))
                    if "__error__" in row:
                        raise PermitInvalid("row", row["__error__"])
                    p = parse_row(row, rules, circuit)
                    revoked = p.revoked_at
                    got = (
                        p.permit.type,
                        p.permit.valid_from,
                        p.permit.valid_to,
                        p.replaces,
                        *p.permit.plates[0],
                    )
                if seen is None:
                    passes[number] = [got[0], got[1], got[2], got[3], line, got[4:]]
                    if revoked is not None:
                        revocations[number] = revoked
                    continue
                if (
                    seen[0] != got[0]
                    or seen[1] != got[1]
                    or seen[2] != got[2]
                    or revocations.get(number) != revoked
                ):
                    raise PermitInvalid(
                        "numero_pass",
                        f"pass {number} appears with other dates, type or state on line {seen[4]}",
                    )
                plates = seen[5]
                if type(plates) is tuple:
                    plates = seen[5] = dict((plates,))
                if got[4] in plates:
                    raise PermitInvalid("targa", f"plate listed twice for pass {number}")
                plates[got[4]] = got[5]
            except PermitInvalid as exc:
                report.reject(line, number, exc)
                bad.add(number)
    finally:
        report.rows += n
    out = []
    for number, (type_, valid_from, valid_to, replaces, line, plates) in passes.items():
        if bad and number in bad:
            continue
        permit = PermitRow(
            number,
            type_,
            valid_from,
            valid_to,
            (),
            "regional",
            (plates,) if type(plates) is tuple else tuple(sorted(plates.items())),
            feed=report.source,
        )
        try:
            check_permit(
                rules,
                number,
                type_,
                valid_from,
                valid_to,
                permit.zones,
                permit.source,
                len(permit.plates),
            )
        except PermitInvalid as exc:
            report.reject(line, number, exc)
            continue
        out.append(RegionalPass(permit, replaces, line, revocations.get(number)))
    report.permits = len(out)
    return out


def _dict_fields(row: dict[str, str]) -> tuple[str, ...] | None:
    """A row dict's fields in COLUMNS order, "" for a missing optional one (what `parse_row`
    reads for it); None without a required one (`parse_row` then fails as it always has)."""
    try:
        return tuple(_FIELDS(row))
    except KeyError:
        if any(c not in row for c in REQUIRED):
            return None
        return tuple(row.get(c, "") for c in COLUMNS)


_Attributes = tuple[str, bool, str]  # (our permit type, primary, state)


def _attributes(
    comune: str, kind: str, principale: str, stato: str, circuit: Circuit
) -> _Attributes | _Bad:
    """(type, primary, state) as `parse_row` reads them from these raw fields, or BAD."""
    type_ = circuit.types.get(kind.strip())
    primary = _YES_NO.get(principale.strip().lower())
    state = _STATES.get(stato.strip().lower())
    if (
        comune.strip().upper() not in circuit.comuni
        or type_ is None
        or primary is None
        or state is None
    ):
        return _BAD
    return type_, primary, state


def _date(raw: str, clock: LocalClock, *, end: bool) -> int | _Bad:
    try:
        return parse_date(raw.strip(), clock, "", end=end)
    except PermitInvalid:
        return _BAD


def _ended_or_replacing(
    number: str,
    attrs: _Attributes,
    start: int,
    end: int | None,
    plate: str,
    revoca: str,
    precedente: str,
    starts: dict[str, int | _Bad],
    clock: LocalClock,
) -> _Read | None:
    """A revoked pass (ends at its revocation) or a duplicate (names the pass it replaces),
    as `parse_row` reads it, or None where `parse_row` must say what is wrong."""
    type_, primary, state = attrs
    replaces = None
    if state == "revoked":
        revoked = starts.get(revoca, _MISS)
        if revoked is _MISS:
            revoked = starts[revoca] = _date(revoca, clock, end=False) if revoca.strip() else _BAD
        if revoked is _BAD:
            return None
    elif state == "duplicate":
        replaces = precedente.strip()
        if not PASS_NUMBER.fullmatch(replaces) or replaces == number:
            return None
    return type_, start, end, replaces, plate, primary


def parse_row(row: dict[str, str], rules: Rules, circuit: Circuit) -> RegionalPass:
    number = row["numero_pass"]
    if not PASS_NUMBER.fullmatch(number):
        raise PermitInvalid("numero_pass", f"{number!r} is not a pass number like L736_2024_00015")
    comune = row["comune"].upper()
    if comune not in circuit.comuni:
        raise PermitInvalid("comune", f"{comune!r} is not a comune of the circuit")
    kind = row["tipo_pass"]
    type_ = circuit.types.get(kind)
    if type_ is None:
        raise PermitInvalid(
            "tipo_pass", f"unknown pass type {kind!r} (known: {', '.join(circuit.types)})"
        )
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
    elif state == "duplicate":
        replaces = row.get("pass_precedente", "")
        if not PASS_NUMBER.fullmatch(replaces):
            raise PermitInvalid(
                "pass_precedente", "a duplicate names the pass it replaces (like L736_2024_00015)"
            )
        if replaces == number:
            raise PermitInvalid("pass_precedente", "a duplicate cannot replace itself")
    permit = PermitRow(number, type_, start, end, (), "regional", ((plate, primary),))
    return RegionalPass(permit, replaces, 0, revoked if state == "revoked" else None)
