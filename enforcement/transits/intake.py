"""From camera transits to judged, recorded verdicts: the one path every camera post takes.

Native posts (`POST /v1/transits`, `/batch`) and every vendor adapter build `Transit`s and
hand them to `Intake.accept`, which judges them against the live index and records them in
the transit log before anything is answered. A retry of an event already recorded gets the
standing verdict and transit id back; a correction (the same event, another plate) gets its
own verdict under the passage's transit id (passages.py).

A service that records nothing (`create_app(record=False)`) answers a native post's common
cases through `answer_native` instead: one C call from the decoded fields to the encoded
answer (core/judge.py), the same bytes `accept` would give; None sends the post to `accept`.
With the log running, `answer_logged` does the same for the common cases and records them:
judged by the same C call, the record and its Seen encoded into the group straight from the
judged fields (group.py, `Group.add_one`), the answer's bytes given with the transit id. A
retry or a correction gets what `accept` would answer (tests/http/test_logged_natively.py).
"""

from __future__ import annotations

import time
from collections.abc import MutableMapping, Sequence
from typing import Final

import msgspec

from ..core.checker import Checker
from ..core.judge import Judge, judge_for
from ..core.live import IndexHolder, LiveIndex
from ..core.plates import alternatives
from ..core.rules import Gate, Rules, UnknownGate
from ..core.verdict import Verdict
from .camerahealth import CameraHealth
from .group import Read
from .log import TransitLog
from .record import Transit, identity

_ENCODE: Final = msgspec.json.Encoder().encode  # as the HTTP layer's ENCODER encodes


class Intake:
    def __init__(
        self,
        rules: Rules,
        checker: Checker,
        holder: IndexHolder,
        verdicts: MutableMapping[tuple[str, str], int],
    ) -> None:
        self.rules, self.checker, self.holder = rules, checker, holder
        self.gates = rules.gates
        self.transit_log: TransitLog | None = None  # set while it runs; None: judge only
        self.verdicts = verdicts  # (verdict, reason) -> transits, a metric
        self.health: CameraHealth | None = None  # per-camera counters (camerahealth.py)
        # The native Judge of the live index it was bound to (rebound when the index changes).
        self._judged: LiveIndex | None = None
        self._judge: Judge | None = None

    def answer_native(
        self,
        camera: str,
        gate: str,
        event_id: str,
        plate: str,
        ts: float,
        confidence: float | None,
    ) -> bytes | None:
        """The encoded answer to one native transit, judged in one native step, when nothing
        is to be recorded and it is a common case; its verdict and camera are counted as
        `accept` counts them. None: `accept` it (a review, a near-match, an unknown gate, no
        index yet, the transit log running, no C kernel)."""
        judge = self._current_judge() if self.transit_log is None else None
        if judge is None:
            return None
        now = time.time()
        body = judge.native(plate, ts, gate, confidence, now, event_id)
        if body is not None and self.health is not None:
            self.health.note_one(camera, gate, ts, now)
        return body

    async def answer_logged(self, t: Read, ts: float) -> bytes | None:
        """`answer_native` while the transit log runs: one native transit (`ts`: its capture
        instant), judged natively, recorded as `accept` records it, and its encoded answer
        once written, counted as `accept` counts it. None: nothing was recorded or counted;
        `accept` it (the same cases as `answer_native`'s, and the log not running)."""
        transit_log = self.transit_log
        if transit_log is None:
            return None
        judge = self._current_judge()
        if judge is None:
            return None
        now = time.time()
        ident = identity(t.camera, t.event_id, ts)
        judged = judge.logged(t.plate, ts, t.gate, t.confidence, now, t.event_id, ident[0])
        if judged is None:
            return None
        gate = self.gates[t.gate]  # the Judge knows only the rules' gates
        outcome = await transit_log.log_one(t, ts, gate, ident, judged, now)
        body, key = judged[0], judged[1]
        if outcome != ident[0]:  # as _record answers: under the passage's id, or the retry's
            if isinstance(outcome, str):  # a correction: the id ends the body
                body = body[: -len(ident[0]) - 2] + outcome.encode() + b'"}'
            else:
                v = outcome.answer(judged[2], t.event_id, self.rules.clock)
                body, key = _ENCODE(v), (v.verdict, v.reason)
        self.verdicts[key] += 1
        if self.health is not None:
            self.health.note_one(t.camera, t.gate, ts, now, key[1] == "unreadable")
        return body

    def _current_judge(self) -> Judge | None:
        """The Judge of the index being served (bound once per snapshot); None without an
        index or the C kernel."""
        live = self.holder.current
        if live is None:
            return None
        if live is not self._judged:
            self._judged = live
            self._judge = judge_for(live, self.rules, self.checker, self.verdicts)
        return self._judge

    async def accept(
        self, transits: Sequence[Transit], *, field: str | None = None
    ) -> list[Verdict]:
        """Judge camera transits and record them; the verdicts, in order.

        `field` names the list in error messages (`transits` gives `transits[3].gate`; None
        for a single transit). Raises NoIndex, UnknownGate, or SpoolFull (nothing recorded).
        """
        live = self.holder.live()
        gates = []
        for i, t in enumerate(transits):
            gate = self.gates.get(t.gate)
            if gate is None:
                raise UnknownGate(t.gate, "gate" if field is None else f"{field}[{i}].gate")
            gates.append(gate)
        # The camera's alternative reads, normalised as the read itself is when a check
        # needs them (lazily: most transits are covered and never do).
        now = time.time()
        if len(transits) == 1:
            t = transits[0]
            alt = alternatives(t.candidates, t.country, t.plate) if t.candidates else ()
            verdicts = [
                self.checker.check(
                    live, t.plate, t.ts, gates[0], t.confidence, now, t.event_id, alt
                )
            ]
        else:
            alts = [
                alternatives(t.candidates, t.country, t.plate) if t.candidates else ()
                for t in transits
            ]
            items = [
                (t.plate, t.ts, g, t.confidence, t.event_id)
                for t, g in zip(transits, gates, strict=True)
            ]
            verdicts = self.checker.check_batch(live, items, now, alts)
        if self.transit_log is not None:
            verdicts = await self._record(transits, gates, verdicts, now)
        for v in verdicts:
            self.verdicts[(v.verdict, v.reason)] += 1
        if self.health is not None:
            self.health.note(transits, verdicts, now)
        return verdicts

    async def _record(
        self,
        transits: Sequence[Transit],
        gates: Sequence[Gate],
        verdicts: list[Verdict],
        now: float,
    ) -> list[Verdict]:
        """Log the transits before answering; a retry gets its first attempt's verdict."""
        assert self.transit_log is not None
        outcomes = await self.transit_log.log(transits, gates, verdicts, now)
        for i, (v, outcome) in enumerate(zip(verdicts, outcomes, strict=True)):
            if isinstance(outcome, str):  # new, a correction (the passage's id), a new passage
                v.transit_id = outcome
            else:  # a retry: the standing answer, so a camera never gets two verdicts
                verdicts[i] = outcome.answer(v.plate, v.event_id, self.rules.clock)
        return verdicts
