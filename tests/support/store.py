"""Permit rows for the permit database's own tests (a plain row per id, on both backends),
and the permit-import CSV."""

from __future__ import annotations

from collections.abc import Callable

from loader.store import PermitRow, PermitStore

# What the `open_store` fixture (tests/loader/conftest.py) gives: a new connection each call.
Opener = Callable[[], PermitStore]


def permit(
    pid: str,
    valid_to: int | None = 2_000_000_000,
    plates: tuple[str, ...] = ("AB123CD",),
    type_: str = "1",
    zones: tuple[str, ...] = (),
) -> PermitRow:
    return PermitRow(
        pid,
        type_,
        1_700_000_000,
        valid_to,
        zones,
        "municipal",
        tuple((p, i == 0) for i, p in enumerate(plates)),
    )


# A permit-import CSV of five good rows (four permits: CUDE-9 has two plates).
HEADER = "permit_id,plate,type,valid_from,valid_to,zones,source,primary\n"
GOOD = HEADER + (
    "PD-1,AB123CD,1,2026-01-01T00:00:00+01:00,,,municipal,true\n"
    "PD-2,ef 456 gh,4,2026-03-01,2027-03-01,ZTL,municipal,\n"
    "CUDE-9,FA001CU,CUDE,2025-06-01 08:00,2030-06-01 08:00,,cude,true\n"
    "CUDE-9,FA002CU,CUDE,2025-06-01 08:00,2030-06-01 08:00,,cude,false\n"
    "WEB-1,ZZ111ZZ,ONLINE,2026-11-22T10:00:00+01:00,2026-11-22T12:00:00+01:00,,online,true\n"
)
