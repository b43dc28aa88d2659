"""With the transit log running, a native post's common cases are judged by the C Judge and
recorded straight from its fields (Intake.answer_logged, Group.add_one): over random
transits, retries and corrections among them, the answer's bytes, the stream's records, the
events' standing reads and the counters must be those of the Python path (`Intake.accept`),
which a second service, its Judge declining everything, takes for the same posts."""

from __future__ import annotations

import datetime as dt
import itertools
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest
import redis
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from enforcement.config.settings import Settings, with_changes
from enforcement.core.judge import Judge, Limits, judge_for
from enforcement.core.live import LiveIndex
from enforcement.core.rules import Rules
from enforcement.http.app import create_app
from enforcement.http.service import SERVICE, Service
from enforcement.keys import Keys
from enforcement.replica.redis_server import EmbeddedRedis
from enforcement.transits import intake
from enforcement.transits.record import dedup_key

from ..support.api import CAMERA, PERMITS, Client, ServiceServer, stream
from ..support.common import eventually, publish_permits

READS = ["AB123CD", "ab123cd", "FA001CU", "FA002CU", "ZZ999ZZ", "XY456ZW", "AB123C0"]
READS += ["AB 123 CD", "A8123CD", "", "unknown", "M1234", "ZZ99", "АВ123СD", "ZZ9999999ZZZ"]
# Per example; repeated: retries and corrections (and ids the Judge leaves to Python).
EVENTS = ["e1", "e2", "e3", "e1", "e2", 'q"uote', "é"]
_EXAMPLES = itertools.count()


class Declines:
    """A Judge that judges nothing: its service takes the Python path for every post."""

    def logged(self, *args: object) -> None:
        return None

    native = logged


class Counting:
    """The service's own Judge, counting the posts it judged (the common cases must be)."""

    judge: Judge
    judged = 0

    def logged(self, *args: Any) -> Any:
        out = self.judge.logged(*args)
        self.judged += out is not None
        return out

    def native(self, *args: Any) -> Any:
        return self.judge.native(*args)


async def _start(base: Settings, rules: Rules, url: str, name: str, tmp: Path) -> Any:
    settings = with_changes(
        base,
        redis={"url": url, "prefix": name},
        storage={"data_dir": tmp / name, "database_path": tmp / name / "permits.db"},
    )
    publish_permits(settings, rules, PERMITS)
    server = ServiceServer(create_app(settings, rules, transit_redis_url=url))
    await server.start_server()
    return server


@pytest.fixture
async def pair(
    demo: tuple[Settings, Rules],
    redis_server: EmbeddedRedis,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[tuple[Client, Service, Client, Service, Counting]]:
    """(client, service) judging natively, then (client, service) taking the Python path."""
    base, rules = demo
    servers = [await _start(base, rules, redis_server.url, n, tmp_path) for n in ("a", "b")]
    a, b = (s.app[SERVICE] for s in servers)
    counting = Counting()

    def bound(live: LiveIndex, rules: Rules, limits: Limits, verdicts: Any) -> Any:
        """Whenever an intake binds its Judge: a's counts, b's declines."""
        judge = judge_for(live, rules, limits, verdicts)
        if judge is None:
            pytest.skip("C kernel not built")
        if verdicts is b.intake.verdicts:
            return Declines()
        counting.judge = judge
        return counting

    monkeypatch.setattr(intake, "judge_for", bound)
    async with aiohttp.ClientSession() as session:
        clients = [Client(session, str(s.make_url("")).rstrip("/")) for s in servers]

        async def ready() -> bool:
            for c in clients:
                status, body, _ = await c.request("GET", "/readyz")
                if status != 200 or body["transit_log"]["target"] != "redis":
                    return False
            return True

        await eventually(ready)
        assert a.holder.current is not None and b.holder.current is not None
        assert a.holder.current.revision == b.holder.current.revision
        yield clients[0], a, clients[1], b, counting
    for s in servers:
        await s.close()


posts = st.fixed_dictionaries(
    {
        "event": st.sampled_from(EVENTS),
        "camera": st.sampled_from(["cam-1", "cam-2"]),
        "gate": st.sampled_from(["PD-01", "PD-02", "PD-03", "PD-03", "PD-03", "PD-09"]),
        "plate": st.one_of(*[st.sampled_from(READS)] * 3, st.text(max_size=12)),
        # Seconds before now: mostly delivered in time (the common cases), some past the
        # limits, some in the future.
        "ago": st.one_of(
            st.integers(0, 3600),
            st.integers(0, 3600),
            st.sampled_from([-1000, -10, 7 * 3600]),
            st.integers(-400, 40 * 86400),
        ),
        "ms": st.sampled_from([0, 250, 999]),
        "confidence": st.sampled_from([None, 0.1, 0.59, 0.6, 0.9, 0.9, 1.0]),
        "country": st.sampled_from([None, "IT", "D", "f"]),
    }
)


def _body(p: dict[str, Any], example: int, now: float) -> dict[str, Any]:
    ts = dt.datetime.fromtimestamp(int(now) - p["ago"] + p["ms"] / 1000, dt.UTC)
    body = {
        "event_id": f"x{example}-{p['event']}",
        "camera": p["camera"],
        "gate": p["gate"],
        "plate": p["plate"],
        "ts": ts.isoformat(),
    }
    for key in ("confidence", "country"):
        if p[key] is not None:
            body[key] = p[key]
    return body


async def _post(client: Client, body: dict[str, Any]) -> tuple[int, bytes]:
    async with client.session.post(client.base + "/v1/transits", json=body, headers=CAMERA) as r:
        return r.status, await r.read()


def _seen(service: Service, camera: str, event: str) -> bytes | None:
    keys = Keys(service.settings.redis.prefix)
    r = redis.Redis.from_url(service.settings.redis.url or "")
    try:
        return r.get(keys.transit_seen(dedup_key(camera, event)))  # type: ignore[return-value]
    finally:
        r.close()


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batch=st.lists(posts, min_size=1, max_size=4))
async def test_logged_native_answers_and_records_equal_the_python_paths(
    pair: tuple[Client, Service, Client, Service, Counting], batch: list[dict[str, Any]]
) -> None:
    native, a, python, b, _ = pair
    c = a.checker
    now = time.time()
    for p in batch:  # clear of the limits: the two posts are judged a few ms apart
        for limit in (-c.max_clock_skew_s, c.max_delivery_delay_s, c.max_transit_age_s):
            assume(abs(p["ago"] - limit) > 5)
    example = next(_EXAMPLES)
    for p in batch:
        body = _body(p, example, now)
        got, want = await _post(native, body), await _post(python, body)
        assert got == want, body
        if got[0] == 200:
            assert msgspec.json.decode(got[1])["transit_id"], body
    records = [stream(s.settings) for s in (a, b)]
    assert len(records[0]) == len(records[1])
    for x, y in zip(*records, strict=True):
        assert msgspec.structs.replace(x, received=0.0) == msgspec.structs.replace(y, received=0.0)
    for p in batch:
        event = f"x{example}-{p['event']}"
        assert _seen(a, p["camera"], event) == _seen(b, p["camera"], event)
    assert a.intake.verdicts == b.intake.verdicts  # counted alike (/metrics)
    la, lb = a.intake.transit_log, b.intake.transit_log
    assert la is not None and lb is not None
    assert (la.duplicates, la.corrections, la.new_passages) == (
        lb.duplicates,
        lb.corrections,
        lb.new_passages,
    )


async def test_the_common_cases_are_logged_natively_and_counted(
    pair: tuple[Client, Service, Client, Service, Counting],
) -> None:
    native, a, python, b, counting = pair
    ts = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=1)
    later = (ts + dt.timedelta(seconds=2)).isoformat()
    bodies = [  # PD-03 is always enforced
        {"plate": "AB123CD"},  # allowed
        {"plate": "ZZ999ZZ"},  # pending
        {"plate": "ZZ999ZZ", "event_id": "n-1"},  # a retry of the pending read
        {"plate": "ZZ999ZZ", "event_id": "n-1", "ts": later},  # again, captured later
        {"plate": "ZZ999ZY", "event_id": "n-1", "ts": later},  # a correction
        {"plate": "ZZ999ZZ", "event_id": "n-1", "ts": (ts - dt.timedelta(hours=1)).isoformat()},
        {"plate": "AB123C0"},  # a near-match: the Python path
        {"plate": ""},  # unreadable: the Python path
    ]
    answers = []
    for i, extra in enumerate(bodies):
        body = {"event_id": f"n-{i}", "camera": "cam-1", "gate": "PD-03", "ts": ts.isoformat()}
        body |= {"confidence": 0.9, **extra}
        got, want = await _post(native, body), await _post(python, body)
        assert got == want, body
        answers.append(msgspec.json.decode(got[1]))
    assert counting.judged == 6  # all but the near-match and the unreadable read
    # The retries and the correction under the passage's id (the correction's own would be
    # another: captured later), the reused event id an hour off a transit of its own.
    passage = answers[1]["transit_id"]
    assert [x["transit_id"] == passage for x in answers[1:6]] == [True] * 4 + [False]
    assert answers[4]["plate"] == "ZZ999ZY" and answers[3]["plate"] == "ZZ999ZZ"
    assert a.intake.verdicts == b.intake.verdicts
    assert sum(a.intake.verdicts.values()) == len(bodies)
    la, lb = a.intake.transit_log, b.intake.transit_log
    assert la is not None and lb is not None
    counters = [(x.duplicates, x.corrections, x.new_passages) for x in (la, lb)]
    assert counters == [(2, 1, 1)] * 2
    for s in (a, b):
        assert s.health is not None
        await s.health.flush(None, Keys(s.settings.redis.prefix))
    assert a.health.totals["cam-1"][:2] == b.health.totals["cam-1"][:2] == [8, 1]  # type: ignore[union-attr]
