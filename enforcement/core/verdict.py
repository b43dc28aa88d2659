"""Verdicts: did this plate hold a valid permit at this instant at this gate?

- `allowed`: at least one permit covers the transit (its ids are returned).
- `not_enforced`: the gate was not active at that instant; no permit is needed.
- `pending`: no permit covers it now; a violation candidate until the zone's grace period
  ends (`grace_until`), because permits may still be registered after the fact.
- `review`: a person must look: unreadable or low-confidence read, a near-match with a
  permitted plate, a camera clock that cannot be right, a transit older than the index's
  history (ended permits older than that are not in it), or an index too old to trust.

A camera must never receive a verdict that could turn into an unlawful fine, so every doubt
ends in `review`, never `pending`. Intervals are [valid_from, valid_to); windows and schedules
are evaluated in local time (`Rules`).
"""

from __future__ import annotations

import datetime as dt
from typing import Final

import msgspec

ALLOWED: Final = "allowed"
NOT_ENFORCED: Final = "not_enforced"
PENDING: Final = "pending"
REVIEW: Final = "review"


# Why a plate's permits do not cover a transit; higher = closer to covering it. Plain ints,
# not an IntEnum: enum member access costs more than the comparison on the hot path.
NO_PERMIT, NOT_YET_VALID, EXPIRED, WRONG_ZONE, UNKNOWN_TYPE, OUTSIDE_WINDOW, NOT_PRIMARY = range(7)
MISS_REASONS: Final = (
    "no_permit",
    "not_yet_valid",
    "expired",
    "wrong_zone",
    "unknown_type",
    "outside_window",
    "not_primary_plate",
)


class Verdict(msgspec.Struct, omit_defaults=True, gc=False):
    """The answer to one transit (also the JSON body returned to cameras)."""

    verdict: str
    reason: str
    plate: str  # normalised plate the verdict is about ("" when unreadable)
    permits: list[str] = []
    index_revision: int = 0
    grace_until: dt.datetime | None = None
    event_id: str | None = None
    transit_id: str | None = None  # the log's id: a retry of the same event gets the same one
