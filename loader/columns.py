"""How a `PermitRow` is kept in SQL columns, the same in both backends: a permit joined
with its plates (one row per plate), its periods as text, a previous version as JSON."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Final

import msgspec

from .store import Period, PermitRow

# A permit with its plates, one row per plate (`group` folds them); both backends' dialect.
PERMIT_SELECT: Final = (
    "SELECT p.permit_id, p.type, p.valid_from, p.valid_to, p.zones,"
    " p.source, p.revision, p.periods, p.feed, pp.plate, pp.is_primary FROM permits p"
    " LEFT JOIN permit_plates pp USING (permit_id)"
)


def group(rows: Iterable[Sequence[Any]]) -> Iterator[tuple[int, PermitRow]]:
    """(revision, permit) from joined rows (permit_id, type, valid_from, valid_to, zones,
    source, revision, periods, feed, plate, is_primary), a permit's rows adjacent; plate is
    NULL for a permit without plates (a LEFT JOIN)."""
    head: Sequence[Any] | None = None
    plates: list[tuple[str, bool]] = []
    for r in rows:
        if head is None or r[0] != head[0]:
            if head is not None:
                yield _permit(head, plates)
            head, plates = r, []
        if r[9] is not None:
            plates.append((str(r[9]), bool(r[10])))
    if head is not None:
        yield _permit(head, plates)


def _permit(r: Sequence[Any], plates: list[tuple[str, bool]]) -> tuple[int, PermitRow]:
    return int(r[6]), PermitRow(
        str(r[0]),
        str(r[1]),
        int(r[2]),
        None if r[3] is None else int(r[3]),
        tuple(str(r[4]).split()),
        str(r[5]),
        tuple(sorted(plates)),
        parse_periods(r[7]),
        str(r[8]),
    )


def periods_text(p: PermitRow) -> str:
    """`permits.periods`: "" for one period (valid_from/valid_to hold it), else
    "start:end,start:end" by start, an empty end meaning unlimited."""
    return ",".join(f"{s}:{'' if e is None else e}" for s, e in p.periods)


def parse_periods(text: str | None) -> tuple[Period, ...]:
    if not text:
        return ()
    out = []
    for part in text.split(","):
        start, _, end = part.partition(":")
        out.append((int(start), int(end) if end else None))
    return tuple(out)


_HISTORY: Final = msgspec.json.Decoder(PermitRow)


def history_json(p: PermitRow) -> str:
    return msgspec.json.encode(p).decode()


def from_history_json(text: str | bytes) -> PermitRow:
    return _HISTORY.decode(text)
