"""The Checker: computes a transit's verdict from the rules and the live index (verdict.py
says what each verdict and reason means).

The hot path is one scan of a plate's permit records, in C when the kernel is built
(`_lookup.Scanner`) with `scan_python` as its reference; batches are vectorised with numpy.
Every doubt ends in `review`, never `pending`: a camera must never receive a verdict that
could turn into an unlawful fine.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from .live import LiveIndex
from .overlay import OverlayRecord
from .plates import Plate, confusable_variants, normalise_text, plate_key
from .rules import Gate, Rules
from .verdict import (
    ALLOWED,
    EXPIRED,
    MISS_REASONS,
    NO_PERMIT,
    NOT_ENFORCED,
    NOT_PRIMARY,
    NOT_YET_VALID,
    OUTSIDE_WINDOW,
    PENDING,
    REVIEW,
    UNKNOWN_TYPE,
    WRONG_ZONE,
    Verdict,
)


class Checker:
    """Computes verdicts from the rules and whatever index is live when called."""

    def __init__(
        self,
        rules: Rules,
        *,
        review_confidence: float,
        max_clock_skew_s: int,
        index_max_age_s: int,
        max_transit_age_s: int,
        max_delivery_delay_s: int,
    ) -> None:
        self.rules = rules
        self.review_confidence = review_confidence
        self.max_clock_skew_s = max_clock_skew_s
        self.index_max_age_s = index_max_age_s
        # A transit received this long after its capture instant is no ground for a fine by
        # itself: a camera's backlog after days offline looks the same as a clock fault or a
        # forged post. Uncovered, it is `review` (`late_delivery`); covered, still `allowed`.
        self.max_delivery_delay_s = max_delivery_delay_s
        # Older transits cannot be judged: the index keeps ended permits only this long.
        self.max_transit_age_s = max_transit_age_s
        self._always_active = frozenset(c for c, g in rules.gates.items() if g.always_active)

    # -- one transit -----------------------------------------------------------------------

    def check(
        self,
        live: LiveIndex,
        plate: Plate,
        ts: float,
        gate: Gate,
        confidence: float | None,
        now: float,
        event_id: str | None = None,
        candidates: Iterable[str] = (),
    ) -> Verdict:
        """The verdict for one transit at epoch seconds `ts` (camera time). `candidates` are
        the camera's alternative reads (normalised): one that a permit covers makes an
        uncovered read a near-match."""
        t = int(ts)
        early = self._precheck(live, plate, t, gate, now, event_id)
        if early is not None:
            return early
        covering, miss = self.cover(live, plate.text, t, live.gate_masks[gate.code])
        if covering:
            return Verdict(ALLOWED, "permit", plate.text, covering, live.revision, None, event_id)
        return self._uncovered(live, plate, t, gate, confidence, now, miss, event_id, candidates)

    def _precheck(
        self,
        live: LiveIndex,
        plate: Plate,
        t: int,
        gate: Gate,
        now: float,
        event_id: str | None,
    ) -> Verdict | None:
        if gate.code not in self._always_active and not self.rules.gate_active(gate, t):
            return Verdict(
                NOT_ENFORCED,
                "gate_inactive",
                plate.text,
                index_revision=live.revision,
                event_id=event_id,
            )
        if not plate.text:
            return Verdict(
                REVIEW, "unreadable", "", index_revision=live.revision, event_id=event_id
            )
        if t > now + self.max_clock_skew_s:
            return Verdict(
                REVIEW, "clock_skew", plate.text, index_revision=live.revision, event_id=event_id
            )
        if t < now - self.max_transit_age_s:  # a camera clock reset to 1970 lands here too
            return Verdict(
                REVIEW, "too_old", plate.text, index_revision=live.revision, event_id=event_id
            )
        return None

    def cover(self, live: LiveIndex, text: str, t: int, mask: int) -> tuple[list[str], int]:
        """Ids of the permits of plate `text` that cover instant `t` for zone bits `mask`
        (snapshot and change overlay), and else the closest miss."""
        rows, miss = self.scan_mask(live, text, t, mask)
        return self._with_overlay(live, text, t, mask, self._ids(live, rows), miss)

    def _with_overlay(
        self, live: LiveIndex, text: str, t: int, mask: int, ids: list[str], miss: int
    ) -> tuple[list[str], int]:
        """The snapshot's covering `ids` and `miss` for `text`, with the overlay's added."""
        if live.overlay.by_plate and (records := live.overlay.by_plate.get(text)):
            more, miss_overlay = self.scan_overlay(records, t, mask)
            ids += more
            miss = max(miss, miss_overlay)
        if len(ids) > 1:
            # Sorted: the same answer whether a permit is in the snapshot or the overlay;
            # once each: two periods of one renewed permit may both cover the instant.
            ids = sorted(set(ids))
        return ids, miss

    def scan_mask(self, live: LiveIndex, text: str, t: int, mask: int) -> tuple[list[int], int]:
        """Snapshot permit rows of `text` covering `t` for zone bits `mask`, and else the
        closest miss; rows the overlay supersedes are skipped. The hot loop: in C when the
        kernel is built (`_lookup.Scanner`), else `scan_python`, its reference."""
        if live.scanner is not None:
            return live.scanner.scan(text, t, mask)
        return self.scan_python(live, text, t, mask)

    def scan_overlay(
        self, records: Sequence[OverlayRecord], t: int, mask: int
    ) -> tuple[list[str], int]:
        """`scan_python`'s rules over a plate's changed permits (the overlay)."""
        ids: list[str] = []
        miss = NO_PERMIT
        for r in records:
            if t < r.start:
                why = NOT_YET_VALID
            elif t >= r.end:
                why = EXPIRED
            elif not r.zones & mask:
                why = WRONG_ZONE
            elif r.ptype is None:
                why = UNKNOWN_TYPE
            elif not self.rules.in_window(r.ptype, t):  # its own fast path for "always"
                why = OUTSIDE_WINDOW
            elif r.ptype.cude and not r.primary:
                why = NOT_PRIMARY
            else:
                ids.append(r.permit_id)
                continue
            if why > miss:
                miss = why
        return ids, miss

    def scan_python(self, live: LiveIndex, text: str, t: int, mask: int) -> tuple[list[int], int]:
        """The record scan in Python; `_lookup.Scanner.scan` must give the same answers."""
        covering: list[int] = []
        miss = NO_PERMIT
        types, always = live.types, live.type_always
        masked = live.overlay.masked if live.overlay.masked_rows else None
        for start, end, zones, permit, type_no, flags in live.index.plate_records(plate_key(text)):
            if masked is not None and masked[permit >> 3] >> (permit & 7) & 1:
                continue  # superseded by a newer version in the overlay
            if t < start:
                why = NOT_YET_VALID
            elif t >= end:
                why = EXPIRED
            elif not zones & mask:
                why = WRONG_ZONE
            elif (ptype := types[type_no]) is None:
                why = UNKNOWN_TYPE
            elif not always[type_no] and not self.rules.in_window(ptype, t):
                why = OUTSIDE_WINDOW
            elif ptype.cude and not flags & 1:
                why = NOT_PRIMARY
            else:
                covering.append(permit)
                continue
            if why > miss:
                miss = why
        return covering, miss

    def _uncovered(
        self,
        live: LiveIndex,
        plate: Plate,
        t: int,
        gate: Gate,
        confidence: float | None,
        now: float,
        miss: int,
        event_id: str | None,
        candidates: Iterable[str] = (),
    ) -> Verdict:
        rev = live.revision
        if confidence is not None and confidence < self.review_confidence:
            return Verdict(
                REVIEW, "low_confidence", plate.text, index_revision=rev, event_id=event_id
            )
        if self.near_matches(live, plate, t, gate) or self._candidate_covered(
            live, plate.text, t, gate, candidates
        ):
            return Verdict(REVIEW, "near_match", plate.text, index_revision=rev, event_id=event_id)
        if now - t > self.max_delivery_delay_s:
            return Verdict(
                REVIEW, "late_delivery", plate.text, index_revision=rev, event_id=event_id
            )
        if live.overlay.stale is not None or now - live.fresh_at > self.index_max_age_s:
            return Verdict(REVIEW, "index_stale", plate.text, index_revision=rev, event_id=event_id)
        grace = self.rules.zones[gate.zone].grace_s
        return Verdict(
            PENDING,
            MISS_REASONS[miss],
            plate.text,
            index_revision=rev,
            grace_until=self.rules.clock.to_datetime(t + grace),
            event_id=event_id,
        )

    def near_matches(self, live: LiveIndex, plate: Plate, t: int, gate: Gate) -> list[str]:
        """Plates one OCR confusion away (or the uncorrected read) whose permits cover `t`."""
        mask = live.gate_masks[gate.code]
        if live.scanner is not None:
            found = live.scanner.near(plate.text, t, mask)
        else:
            found = self.near_python(live, plate.text, t, mask)
        by_plate = live.overlay.by_plate
        if by_plate:
            for variant in confusable_variants(plate.text):
                if (
                    variant in by_plate
                    and variant not in found
                    and self.scan_overlay(by_plate[variant], t, mask)[0]
                ):
                    found.append(variant)
        if plate.corrected:
            raw = normalise_text(plate.raw)
            if raw and raw != plate.text and self.cover(live, raw, t, mask)[0]:
                found.append(raw)
        return found

    def _candidate_covered(
        self, live: LiveIndex, text: str, t: int, gate: Gate, candidates: Iterable[str]
    ) -> bool:
        """Whether a permit covers one of the camera's alternative reads: the camera itself
        was unsure between them, so the uncovered best read is no ground for a fine."""
        if not candidates:
            return False
        mask = live.gate_masks[gate.code]
        return any(c != text and self.cover(live, c, t, mask)[0] for c in candidates if c)

    def near_python(self, live: LiveIndex, text: str, t: int, mask: int) -> list[str]:
        """Reference for `_lookup.Scanner.near`: covered single-confusion variants, in order."""
        # Most variants are no plate at all: probe positions before scanning.
        position = live.index.position
        scan = self.scan_python
        return [
            c
            for c in confusable_variants(text)
            if position(plate_key(c)) >= 0 and scan(live, c, t, mask)[0]
        ]

    @staticmethod
    def _ids(live: LiveIndex, rows: Sequence[int]) -> list[str]:
        return [live.index.permit_id(r) for r in rows]

    # -- many transits -----------------------------------------------------------------------

    def check_batch(
        self,
        live: LiveIndex,
        items: Sequence[tuple[Plate, float, Gate, float | None, str | None]],
        now: float,
        candidates: Sequence[Iterable[str]] | None = None,
    ) -> list[Verdict]:
        """Verdicts for many transits; the permit scan is vectorised with numpy.

        Gate schedules and plate reads are screened one by one (cheap); plates still in play
        are looked up together; only transits no permit covers take the scalar path, which
        explains the miss and looks for near-matches.
        """
        out: list[Verdict | None] = [None] * len(items)
        todo: list[int] = []
        for i, (plate, ts, gate, _conf, event_id) in enumerate(items):
            early = self._precheck(live, plate, int(ts), gate, now, event_id)
            if early is None:
                todo.append(i)
            else:
                out[i] = early
        if todo:
            covering = self._cover_vectorised(live, [items[i] for i in todo])
            for i, rows in zip(todo, covering, strict=True):
                plate, ts, gate, conf, event_id = items[i]
                t, mask = int(ts), live.gate_masks[gate.code]
                ids, miss = self._with_overlay(
                    live, plate.text, t, mask, self._ids(live, rows), NO_PERMIT
                )
                if ids:
                    out[i] = Verdict(
                        ALLOWED, "permit", plate.text, ids, live.revision, event_id=event_id
                    )
                else:  # the snapshot's miss, for the reason (the overlay's is in `miss`)
                    miss = max(miss, self.scan_mask(live, plate.text, t, mask)[1])
                    out[i] = self._uncovered(
                        live,
                        plate,
                        t,
                        gate,
                        conf,
                        now,
                        miss,
                        event_id,
                        candidates[i] if candidates else (),
                    )
        return out  # type: ignore[return-value]

    def _cover_vectorised(
        self, live: LiveIndex, items: Sequence[tuple[Plate, float, Gate, float | None, str | None]]
    ) -> list[list[int]]:
        n = len(items)
        keys = np.fromiter((plate_key(it[0].text) for it in items), dtype=np.int64, count=n)
        ts = np.fromiter((int(it[1]) for it in items), dtype=np.int64, count=n)
        masks = np.fromiter((live.gate_masks[it[2].code] for it in items), dtype=np.uint32, count=n)
        clock, holidays = self.rules.clock, self.rules.holidays
        day_min = [clock.day_and_minute_of_week(int(t)) for t in ts.tolist()]
        minute = np.fromiter((m for _, m in day_min), dtype=np.intp, count=n)
        holiday = np.fromiter((holidays.is_holiday(d) for d, _ in day_min), dtype=bool, count=n)

        index = live.index
        lo, hi = index.find_batch(keys)
        counts = hi - lo
        item = np.repeat(np.arange(n), counts)
        first = np.cumsum(counts) - counts
        rec = np.arange(len(item)) - np.repeat(first, counts) + np.repeat(lo, counts)
        r = index.records[rec]
        t = ts[item]
        tno = r["type"].astype(np.intp)
        mode = live.type_modes[tno]
        hol = holiday[item]
        m = minute[item]
        m = np.where((mode == 2) & hol, 6 * 1440 + m % 1440, m)
        ok = (r["start"] <= t) & (t < r["end"])  # END_UNLIMITED exceeds any uint32 instant
        ok &= (r["zones"] & masks[item]) != 0
        ok &= live.type_known[tno] & (live.type_windows[tno, m] == 1) & ~((mode == 1) & hol)
        ok &= ~live.type_cude[tno] | ((r["flags"] & 1) == 1)
        if live.overlay.masked_rows:  # rows superseded by the overlay are invisible
            masked = np.frombuffer(live.overlay.masked, dtype=np.uint8)
            p = r["permit"]
            ok &= ((masked[p >> 3] >> (p & 7)) & 1) == 0
        result: list[list[int]] = [[] for _ in range(n)]
        for i, p in zip(item[ok].tolist(), r["permit"][ok].tolist(), strict=True):
            result[i].append(p)
        return result
