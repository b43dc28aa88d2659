"""One physical passage, one transit: a camera's retries, its corrections and a reused event id.

A camera names each event (the native `event_id`, Axis's car id, Rekor's group); the transit
log remembers, per (camera, event id), the passage's standing read (`Seen`). A new read with
the same name is, by its capture instant and plate:

- a retry: the standing read (or one it replaced) again, captured within `window_s` of it:
  answered with the standing verdict, nothing written;
- a correction: another plate within `window_s` (Axis updates a read it got wrong, Rekor sends
  a better group, a native camera posts the same event id with the corrected plate): judged
  anew, and recorded under the passage's transit id with the reads it replaces (`earlier`);
  the answer is the new verdict, and the follow-up judges the read that stands;
- a new passage: captured further than `window_s` from the standing read, whatever its plate:
  the camera reused the name (Axis car ids restart with the camera's application), so it
  gets a transit of its own. Never is one car answered with another car's verdict.
"""

from __future__ import annotations

from enum import Enum

import msgspec

from .record import Seen, TransitRecord


class Kind(Enum):
    NEW = "new"  # no read of this name is remembered
    RETRY = "retry"
    CORRECTION = "correction"
    NEW_PASSAGE = "new_passage"


def classify(prior: Seen | None, rec: TransitRecord, window_s: float) -> Kind:
    if prior is None:
        return Kind.NEW
    if not prior.ts:  # remembered before Varco kept the read: a retry, as it was then
        return Kind.RETRY
    if abs(rec.ts - prior.ts) > window_s:
        return Kind.NEW_PASSAGE
    if rec.plate == prior.plate or rec.plate in prior.earlier:
        return Kind.RETRY
    return Kind.CORRECTION


def resolve(
    prior: Seen | None, rec: TransitRecord, window_s: float
) -> tuple[Kind, TransitRecord | None]:
    """What to write for `rec` given the passage's `prior` standing read (None: nothing)."""
    kind = classify(prior, rec, window_s)
    if kind is Kind.RETRY:
        return kind, None
    if kind is Kind.CORRECTION:
        assert prior is not None
        earlier = [*prior.earlier, prior.plate]
        return kind, msgspec.structs.replace(rec, id=prior.id, earlier=earlier)
    return kind, rec
