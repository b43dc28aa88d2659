"""A camera event's reads: a retry, a correction, a new passage (transits/passages.py)."""

from __future__ import annotations

import pytest

from enforcement.transits.passages import Kind, resolve
from enforcement.transits.record import Seen, TransitRecord

T = 1_800_000_000.0
WINDOW = 600


def read(plate: str, ts: float, id_: str = "t-new") -> TransitRecord:
    return TransitRecord(
        id_,
        "cam-1",
        "car-17",
        "PD-03",
        "PEDONALE",
        plate,
        plate,
        ts,
        ts + 1,
        "pending",
        "no_permit",
    )


def standing(plate: str, ts: float, earlier: tuple[str, ...] = ()) -> Seen:
    return Seen("t-first", "pending", "no_permit", [], 1, None, plate, ts, list(earlier))


@pytest.mark.parametrize(
    ("prior", "incoming", "kind", "id_", "earlier"),
    [
        (None, read("AB123CD", T), Kind.NEW, "t-new", []),
        (standing("AB123CD", T), read("AB123CD", T), Kind.RETRY, None, None),
        (standing("AB123CD", T), read("AB123CD", T + WINDOW), Kind.RETRY, None, None),
        # Another plate, moments later: the camera corrects its read.
        (standing("ZZ999ZZ", T), read("AB123CD", T + 2), Kind.CORRECTION, "t-first", ["ZZ999ZZ"]),
        (
            standing("AB123CD", T, ("ZZ999ZZ",)),
            read("AB123CE", T + 3),
            Kind.CORRECTION,
            "t-first",
            ["ZZ999ZZ", "AB123CD"],
        ),
        # A read it replaced, posted again: a late retry, answered with the standing verdict.
        (standing("AB123CD", T, ("ZZ999ZZ",)), read("ZZ999ZZ", T), Kind.RETRY, None, None),
        # Past the window the name was reused: another car, its own transit, whatever plate.
        (standing("AB123CD", T), read("ZZ999ZZ", T + WINDOW + 1), Kind.NEW_PASSAGE, "t-new", []),
        (standing("AB123CD", T), read("AB123CD", T + 6 * 3600), Kind.NEW_PASSAGE, "t-new", []),
        (standing("AB123CD", T), read("ZZ999ZZ", T - 3600), Kind.NEW_PASSAGE, "t-new", []),
        # Remembered before the read was kept (an upgrade within the dedup window): a retry.
        (standing("", 0.0), read("ZZ999ZZ", T), Kind.RETRY, None, None),
    ],
)
def test_a_read_of_a_remembered_event(
    prior: Seen | None,
    incoming: TransitRecord,
    kind: Kind,
    id_: str | None,
    earlier: list[str] | None,
) -> None:
    got, write = resolve(prior, incoming, WINDOW)
    assert got is kind
    if id_ is None:
        assert write is None
    else:
        assert write is not None and (write.id, write.earlier, write.plate) == (
            id_,
            earlier,
            incoming.plate,
        )
