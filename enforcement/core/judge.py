"""A native transit's answer in one native step, for the common cases.

`_lookup.Judge` (_judge.c) takes a transit's decoded fields and returns the JSON body
`ENCODER.encode(Checker.check(...))` would give (plate normalisation, gate schedule, index
lookup, rule scan, permit ids, grace period, the bytes), or None for anything unusual: a read
that needs normalising, a review, a near-match, a plate with changed permits, an event id
needing escapes. None sends the caller down the Checker's path, which stays the reference
(tests/core/test_judge.py compares the two over random transits).

Why: on the Python path the glue around the lookup (a Plate, a Verdict, permit-id strings, a
datetime, then encoding them) costs several times the lookup; served by one C call, a judged
transit costs little more than decoding its body (bench/README.md, "Against the
alternatives"). A Judge is bound to one live index (its scanner, id table and overlay) and
counts the verdicts it gives in the metrics' counter, as `Intake.accept` does for its own.

With the transit log running, `Judge.logged` judges the same cases and gives the answer with
its transit id and what the record needs (transits/group.py: `Judged`, `Group.add_one`);
the caller counts it once the record is written.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Protocol

from .live import HOLIDAY_CODES, LiveIndex
from .plates import SENTINELS
from .rules import Gate, Rules
from .verdict import MISS_REASONS

try:
    from ._lookup import Judge
except ImportError:  # not built: every transit takes the Checker's path
    Judge = None  # type: ignore[assignment,misc]

__all__ = ["Judge", "Limits", "judge_for"]


class Limits(Protocol):
    """The Checker's limits (checker.py says what each means): a Checker is one."""

    @property
    def review_confidence(self) -> float: ...
    @property
    def max_clock_skew_s(self) -> float: ...
    @property
    def max_transit_age_s(self) -> float: ...
    @property
    def max_delivery_delay_s(self) -> float: ...
    @property
    def index_max_age_s(self) -> float: ...


def _suspended(gate: Gate) -> bytes:
    """A byte per (month * 32 + day): 1 when one of the gate's suspensions holds that day."""
    table = bytearray(13 * 32)
    for month in range(1, 13):
        for day in range(1, 32):
            if any(s.contains((month, day)) for s in gate.suspensions):
                table[month * 32 + day] = 1
    return bytes(table)


def judge_for(
    live: LiveIndex, rules: Rules, limits: Limits, verdicts: MutableMapping[tuple[str, str], int]
) -> Judge | None:
    """The Judge of `live` under the city's rules and the limits of `limits` (the Checker;
    None without the kernel); it counts its answers in `verdicts`, which must be a dict."""
    if Judge is None or live.scanner is None:
        return None
    gates = {
        code: (
            gate.always_active,
            HOLIDAY_CODES[gate.holidays],
            live.gate_masks[code],
            rules.zones[gate.zone].grace_s,
            bytes(gate.schedule),
            _suspended(gate),
        )
        for code, gate in rules.gates.items()
    }
    index = live.index
    return Judge(
        live.scanner,
        live.overlay,
        index.id_blob,
        index.id_offsets,
        float(index.meta.built_at),
        gates,
        (
            float(limits.review_confidence),
            float(limits.max_clock_skew_s),
            float(limits.max_transit_age_s),
            float(limits.max_delivery_delay_s),
            float(limits.index_max_age_s),
        ),
        verdicts,
        tuple(SENTINELS),
        MISS_REASONS,
    )
