"""`Group.add_one` (a native transit judged natively, encoded from the Judge's fields) against
`Group.add` (the Transit and Verdict `Intake.accept` builds for it): over random transits,
the same transit id, dedup key, record frame and Seen, byte for byte; and `TransitLog.log_one`
where the group is decided one by one (the spool)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from enforcement.config.settings import Settings
from enforcement.core.plates import normalise
from enforcement.core.rules import Rules
from enforcement.core.verdict import MISS_REASONS, Verdict
from enforcement.http.schemas import TransitIn
from enforcement.http.transits import native_transit
from enforcement.keys import Keys
from enforcement.transits.group import Group
from enforcement.transits.log import TransitLog
from enforcement.transits.record import Seen, identity
from enforcement.transits.spool import all_frames

texts = st.text(max_size=20)
judged = st.one_of(
    st.tuples(st.just("allowed"), st.just("permit"), st.lists(texts, min_size=1, max_size=4)),
    st.tuples(st.just("pending"), st.sampled_from(MISS_REASONS), st.just([])),
    st.tuples(st.just("not_enforced"), st.just("gate_inactive"), st.just([])),
)


@settings(
    max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    event_id=st.text(min_size=1, max_size=128),
    camera=st.text(min_size=1, max_size=64),
    gate=st.sampled_from(["PD-01", "PD-02", "PD-03"]),
    raw=st.text(max_size=64),
    ts=st.one_of(
        st.floats(0, 4e9, allow_nan=False),
        st.integers(0, 4_000_000_000).map(lambda s: s + 0.25),
    ),
    received=st.floats(0, 4e9, allow_nan=False),
    confidence=st.one_of(st.none(), st.floats(0, 1), st.sampled_from([0.0, 1.0])),
    country=st.one_of(st.none(), st.text(max_size=3)),
    verdict=judged,
    revision=st.integers(0, 2**62),
    grace=st.one_of(st.none(), st.integers(0, 4_000_000_000)),
)
def test_add_one_encodes_what_add_encodes(
    demo: tuple[Settings, Rules],
    event_id: str,
    camera: str,
    gate: str,
    raw: str,
    ts: float,
    received: float,
    confidence: float | None,
    country: str | None,
    verdict: tuple[str, str, list[str]],
    revision: int,
    grace: int | None,
) -> None:
    rules = demo[1]
    g = rules.gates[gate]
    at = dt.datetime.fromtimestamp(ts, dt.UTC)
    t = TransitIn(event_id, camera, gate, raw, at, confidence, country)
    kind, reason, permits = verdict
    until = grace if kind == "pending" else None
    plate = normalise(raw, country).text
    # What accept builds: the Transit and the Verdict (grace_until a datetime at `until`).
    v = Verdict(
        kind,
        reason,
        plate,
        list(permits),
        revision,
        None if until is None else rules.clock.to_datetime(until),
        event_id,
    )
    reference, one = Group(), Group()
    ids = reference.add([native_transit(t, ts)], [g], [v], received)
    ident = identity(camera, event_id, ts)
    fields: Any = (b"", (kind, reason), plate, permits, revision, until)
    assert one.add_one(t, ts, g, ident, fields, received) == 0
    assert one.ids == ids == reference.ids == [ident[0]]
    assert one.digests == reference.digests
    assert one.frames == reference.frames
    assert one.seens == reference.seens


def test_add_one_appends_after_what_the_group_holds(demo: tuple[Settings, Rules]) -> None:
    g = demo[1].gates["PD-03"]
    group = Group()
    at = dt.datetime(2026, 12, 8, 9, 0, tzinfo=dt.UTC)
    t = TransitIn("e1", "cam-1", "PD-03", "AB123CD", at, 0.9, None)
    v = Verdict("allowed", "permit", "AB123CD", ["P-1"], 3, None, "e1")
    group.add([native_transit(t)], [g], [v], 1.0)
    ident = identity("cam-1", "e2", at.timestamp())
    fields = (b"", ("allowed", "permit"), "AB123CD", ["P-1"], 3, None)
    assert group.add_one(t, at.timestamp(), g, ident, fields, 1.0) == 1
    assert len(group) == 2 and group.ids[1] == ident[0]
    assert msgspec.msgpack.decode(group.frames[1])[0] == ident[0]


async def test_log_one_through_the_spool_answers_as_log(
    demo: tuple[Settings, Rules], tmp_path: Path
) -> None:
    """No Redis: the group is decided one by one, to the spool (`_write`): the outcome is the
    transit id, then a retry's standing read; the spooled frame is add_one's."""
    g = demo[1].gates["PD-03"]
    tl = TransitLog(
        redis_url=None,
        keys=Keys("s"),
        spool_root=tmp_path / "spool",
        spool_max_bytes=1 << 20,
        write_timeout_s=1,
        dedup_window_s=3600,
    )
    await tl.start()
    try:
        at = dt.datetime(2026, 12, 8, 9, 0, tzinfo=dt.UTC)
        ts = at.timestamp()
        t = TransitIn("e1", "cam-1", "PD-03", "ZZ999ZZ", at, None, "IT")
        ident = identity("cam-1", "e1", ts)
        fields = (b"", ("pending", "no_permit"), "ZZ999ZZ", [], 4, int(ts) + 259200)
        expected = Group()
        expected.add_one(t, ts, g, ident, fields, 5.0)
        assert await tl.log_one(t, ts, g, ident, fields, 5.0) == ident[0]
        retry = await tl.log_one(t, ts, g, ident, fields, 6.0)
        assert isinstance(retry, Seen) and retry.id == ident[0]
        assert (retry.verdict, retry.reason, retry.grace_until) == (
            "pending",
            "no_permit",
            fields[5],
        )
        assert (tl.written_spool, tl.duplicates) == (1, 1)
    finally:
        await tl.stop()
    assert list(all_frames(tmp_path / "spool")) == expected.frames
