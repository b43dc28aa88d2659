"""A permit's validity periods: a renewal adds one, only a revocation ends them early.

Residents may renew four months before expiry, keeping the permit's number: the period being
renewed stays enforceable until it ends, and the new one follows. So a permit is a set of
periods [start, end) (end None: unlimited), not one validity that each renewal replaces.

- `renewed(stored, incoming)`: what an import or a feed sync writes when it reads a permit
  with one period: that period replaces the stored period with the same start (an extension,
  a correction of its end) or is added beside the others (a renewal); the other stored
  periods stay, whatever their dates (an export sent again after a renewal must not undo
  it). The permit's other attributes (type, zones, plates, source) are the incoming ones.
- `cut(permit, at)`: a revocation (decadenza), a pass closed because its source no longer
  lists it, a lost pass replaced by a duplicate: every period ends at `at` at the latest.

A permit with one period stores it in `valid_from`/`valid_to` and no `periods`; with more,
`periods` lists them by start and `valid_from`/`valid_to` span them all (what the database
filters on).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import msgspec

from .store import Merge, Period, PermitRow


def spans(p: PermitRow) -> tuple[Period, ...]:
    """The permit's periods, by start."""
    return p.periods or ((p.valid_from, p.valid_to),)


def with_spans(p: PermitRow, periods: Iterable[Period]) -> PermitRow:
    """`p` valid over `periods` (deduplicated, by start; at least one)."""
    ordered = tuple(sorted(set(periods), key=lambda s: (s[0], _end(s[1]))))
    if not ordered:
        raise ValueError("a permit keeps at least one period")
    kept: tuple[Period, ...]
    if len(ordered) == 1:
        (start, end), kept = ordered[0], ()
    else:
        start = ordered[0][0]
        end = None if any(e is None for _, e in ordered) else max(_end(e) for _, e in ordered)
        kept = ordered
    if (start, end, kept) == (p.valid_from, p.valid_to, p.periods):
        return p
    return msgspec.structs.replace(p, valid_from=start, valid_to=end, periods=kept)


def renewed(stored: PermitRow | None, incoming: PermitRow) -> PermitRow:
    """`incoming`'s period joins `stored`'s: it replaces the one with the same start, or is
    added; `incoming`'s attributes win."""
    if stored is None:
        return incoming
    if not stored.periods and not incoming.periods and stored.valid_from == incoming.valid_from:
        return incoming  # one period, the same start: the nightly export, an end corrected
    new = spans(incoming)
    starts = {s for s, _ in new}
    return with_spans(incoming, [*(s for s in spans(stored) if s[0] not in starts), *new])


def cut(p: PermitRow, at: int) -> PermitRow:
    """Every period ends at `at` at the latest; one that starts at or after it is gone (a
    permit revoked before it began keeps one empty period: [start, start) covers nothing)."""
    kept = [(s, e if e is not None and e <= at else at) for s, e in spans(p) if s < at]
    if not kept:
        first = spans(p)[0][0]
        kept = [(first, first)]
    return with_spans(p, kept)


def renewing(cuts: Mapping[str, int] | None = None, *, cut_only: Iterable[str] = ()) -> Merge:
    """The merge an import or a feed sync writes with (`PermitStore.upsert(merge=...)`): the
    incoming period joins the stored ones (`renewed`), then the permits in `cuts` are cut at
    their instant (a revocation read in the export). For the ids in `cut_only` the incoming
    version only names the permit: the stored one is cut, nothing is added."""
    cuts = cuts or {}
    only = frozenset(cut_only)

    def merge(stored: PermitRow | None, incoming: PermitRow) -> PermitRow:
        pid = incoming.permit_id
        # A permit only to be cut: its stored version, however the caller last saw it.
        result = stored if pid in only and stored is not None else renewed(stored, incoming)
        at = cuts.get(pid)
        return result if at is None else cut(result, at)

    return merge


def _end(end: int | None) -> int:
    return 1 << 62 if end is None else end
