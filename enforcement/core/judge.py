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
"""

from __future__ import annotations

from collections.abc import MutableMapping

from .checker import Checker
from .live import HOLIDAY_CODES, LiveIndex
from .plates import SENTINELS
from .rules import Gate
from .verdict import MISS_REASONS

try:
    from ._lookup import Judge
except ImportError:  # not built: every transit takes the Checker's path
    Judge = None  # type: ignore[assignment,misc]


def _suspended(gate: Gate) -> bytes:
    """A byte per (month * 32 + day): 1 when one of the gate's suspensions holds that day."""
    table = bytearray(13 * 32)
    for month in range(1, 13):
        for day in range(1, 32):
            if any(s.contains((month, day)) for s in gate.suspensions):
                table[month * 32 + day] = 1
    return bytes(table)


def judge_for(
    checker: Checker, live: LiveIndex, verdicts: MutableMapping[tuple[str, str], int]
) -> Judge | None:
    """The Judge of `live` under the checker's rules and limits (None without the kernel);
    it counts its answers in `verdicts`, which must be a dict."""
    if Judge is None or live.scanner is None:
        return None
    rules = checker.rules
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
    limits = (
        float(checker.review_confidence),
        float(checker.max_clock_skew_s),
        float(checker.max_transit_age_s),
        float(checker.max_delivery_delay_s),
        float(checker.index_max_age_s),
    )
    index = live.index
    return Judge(
        live.scanner,
        live.overlay,
        index.id_blob,
        index.id_offsets,
        float(index.meta.built_at),
        gates,
        limits,
        verdicts,
        tuple(SENTINELS),
        MISS_REASONS,
    )
