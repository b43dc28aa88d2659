"""Camera health: per camera, its last read, reads and share of unreadable reads in the last
hour, the offset between capture and arrival, and a silence alarm during its gate's hours.

The hot path pays a few dict operations per transit and no Redis round trip: `note` counts
into this process's minute buckets (reads, unreadable reads, the sum of arrival minus capture
in milliseconds) and its last-read table. Replicas and workers are summed through Redis only
every FLUSH_S seconds (`flush`: one pipeline of HINCRBY into the minute's hash, which expires
after two hours, and a Lua max for the last read), and whenever the health is asked for. So a
view is exact for the process answering and at most FLUSH_S behind for the others. Without
Redis the process keeps the hour itself and answers for itself only.

Alarms (`alarm`, the first that applies; thresholds from `[camera_health]`):
- `silent`: no read for `silence` (15 min) while the gate was active (its schedule, holidays
  and suspensions: a gate closed at night raises nothing); a camera never heard of since this
  process started is silent too once it has watched that long;
- `unreadable`: at least `min_reads` (20) reads in the hour, and `unreadable_share` (0.5) or
  more of them unreadable (a dirty lens, a misaimed camera);
- `clock_offset`: the hour's mean of arrival minus capture beyond `clock_offset` (2 min)
  either way: a camera clock ahead (negative) or drifting behind, or a backlog sent late.

Camera ids are the registry's (settings) or, in the demo, any a demo key posts, up to
MAX_UNREGISTERED of them. Ids only: never a plate.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import msgspec
import redis.asyncio as aredis

from ..config.settings import CameraHealthSettings
from ..core.rules import Rules
from ..core.verdict import Verdict
from ..keys import Keys
from .record import Transit

FLUSH_S: Final = 5.0
HOUR_MINUTES: Final = 60
MAX_UNREGISTERED: Final = 1000
DEFAULT_LIMITS: Final = CameraHealthSettings()
KEY_TTL_S: Final = 2 * 3600

# KEYS: the last-read hash. ARGV: camera, arrival, camera, arrival, ... : keeps the latest.
_LAST: Final = """
for i = 1, #ARGV, 2 do
  local cur = redis.call('HGET', KEYS[1], ARGV[i])
  if (not cur) or tonumber(cur) < tonumber(ARGV[i + 1]) then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
return 1
"""


class CameraStatus(msgspec.Struct):
    camera: str
    gate: str | None
    last_read_at: dt.datetime | None  # the last read's arrival (local time)
    reads_last_hour: int
    unreadable_last_hour: int
    unreadable_share: float | None  # None: no reads in the hour
    clock_offset_s: float | None  # mean arrival minus capture over the hour
    silent: bool
    alarm: str | None


class CameraHealth:
    def __init__(
        self,
        gates: Mapping[str, str],
        rules: Rules,
        limits: CameraHealthSettings = DEFAULT_LIMITS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.gates = dict(gates)  # registered camera -> its gate
        self.rules, self.limits, self.clock = rules, limits, clock
        self.started = clock()
        # minute -> camera -> [reads, unreadable, offset sum (s), last arrival, last offset]:
        # counted since the last flush; `_retry`, what a failed flush gives back.
        self._delta: dict[int, dict[str, list[float]]] = {}
        self._retry: dict[int, dict[str, list[float]]] = {}
        self._hour: dict[int, dict[str, list[float]]] = {}  # no Redis: the hour, kept here
        # camera -> [reads, unreadable, its last read's offset, its last read's arrival], as
        # of the last flush (at most FLUSH_S behind): /metrics
        self.totals: dict[str, list[float]] = {}
        self._seen_gate: dict[str, str] = {}  # unregistered cameras' gates (demo)
        self.merged_last: dict[str, float] = {}  # across replicas, as of the last flush

    # -- the hot path ----------------------------------------------------------------------

    def note(self, transits: Sequence[Transit], verdicts: Sequence[Verdict], now: float) -> None:
        """Count the posted reads (retries too: a camera retrying is alive): one dict lookup
        and five list updates per read (bench/bench_desk.py)."""
        for i in range(len(transits)):  # an index: zip costs more than the counting here
            t = transits[i]
            self.note_one(t.camera, t.gate, t.ts, now, verdicts[i].reason == "unreadable")

    def note_one(
        self, camera: str, gate: str, ts: float, now: float, unreadable: bool = False
    ) -> None:
        """Count one read of `camera` at `gate`, captured at `ts`, arrived at `now`."""
        bucket = self._delta.get(minute := int(now) // 60)
        if bucket is None:
            bucket = self._delta[minute] = {}
        c = bucket.get(camera)
        if c is None:
            if camera not in self.gates and camera not in self._seen_gate:
                if len(self._seen_gate) >= MAX_UNREGISTERED:
                    return
                self._seen_gate[camera] = gate
            c = bucket[camera] = [0, 0, 0.0, 0.0, 0.0]
        c[0] += 1
        c[1] += unreadable
        c[2] += (offset := now - ts)
        c[3] = now
        c[4] = offset

    @property
    def last_reads(self) -> dict[str, float]:
        """This process's last arrival per camera (as of the last flush)."""
        return {camera: t[3] for camera, t in self.totals.items()}

    # -- summing across processes ----------------------------------------------------------

    def _take(self) -> tuple[dict[int, dict[str, list[float]]], dict[str, float]]:
        """What to flush: the reads counted since the last flush (now in `totals`), and any
        a failed flush gave back; and each camera's last arrival among them."""
        delta, self._delta = self._delta, {}
        for minute in sorted(delta):
            for camera, c in delta[minute].items():
                total = self.totals.get(camera)
                if total is None:
                    total = self.totals[camera] = [0, 0, 0.0, 0.0]
                total[0] += c[0]
                total[1] += c[1]
                if c[3] >= total[3]:
                    total[2], total[3] = c[4], c[3]
        retry, self._retry = self._retry, {}
        _add(retry, delta)
        last: dict[str, float] = {}
        for cams in retry.values():
            for camera, c in cams.items():
                last[camera] = max(c[3], last.get(camera, 0.0))
        return retry, last

    def _keep_hour(self, delta: dict[int, dict[str, list[float]]], now: float) -> None:
        """No Redis: the hour is kept here."""
        _add(self._hour, delta)
        oldest = int(now) // 60 - HOUR_MINUTES
        for minute in [m for m in self._hour if m <= oldest]:
            del self._hour[minute]

    async def flush(self, redis: aredis.Redis | None, keys: Keys) -> None:
        """Add what this process counted since the last flush to Redis (or to its own hour)."""
        delta, last = self._take()
        if redis is None:
            self._keep_hour(delta, self.clock())
            return
        if not delta:
            return
        try:
            async with redis.pipeline(transaction=False) as p:
                for minute, cams in delta.items():
                    key = keys.camera_minute(minute)
                    for camera, (reads, unreadable, offset_s, _, _) in cams.items():
                        p.hincrby(key, f"{camera}:r", int(reads))
                        if unreadable:
                            p.hincrby(key, f"{camera}:u", int(unreadable))
                        p.hincrbyfloat(key, f"{camera}:o", round(offset_s, 3))
                    p.expire(key, KEY_TTL_S)
                if last:
                    args: list[Any] = [x for cam, at in last.items() for x in (cam, repr(at))]
                    p.eval(_LAST, 1, keys.camera_last, *args)
                await p.execute()
        except Exception:
            _add(self._retry, delta)  # flushed again next time, not lost
            raise

    async def tick(self, redis: aredis.Redis, keys: Keys) -> None:
        """The periodic flush; and the replicas' last reads, for /metrics' silence."""
        await self.flush(redis, keys)
        last: dict[bytes, bytes] = await redis.hgetall(keys.camera_last)  # type: ignore[assignment]
        self.merged_last = {k.decode(): float(v) for k, v in last.items()}

    async def _hour_from_redis(
        self, redis: aredis.Redis, keys: Keys, now: float
    ) -> tuple[dict[str, list[float]], dict[str, float]]:
        current = int(now) // 60
        async with redis.pipeline(transaction=False) as p:
            for minute in range(current - HOUR_MINUTES + 1, current + 1):
                p.hgetall(keys.camera_minute(minute))
            p.hgetall(keys.camera_last)
            replies = await p.execute()
        sums: dict[str, list[float]] = {}
        for fields in replies[:-1]:
            for name, value in fields.items():
                camera, _, kind = name.decode().rpartition(":")
                c = sums.setdefault(camera, [0, 0, 0.0])
                c["ruo".index(kind)] += float(value)
        last = {k.decode(): float(v) for k, v in replies[-1].items()}
        return sums, last

    def _hour_here(self, now: float) -> dict[str, list[float]]:
        oldest = int(now) // 60 - HOUR_MINUTES
        sums: dict[str, list[float]] = {}
        for minute, cams in self._hour.items():
            if minute > oldest:
                for camera, c in cams.items():
                    have = sums.setdefault(camera, [0, 0, 0.0])
                    for i in range(3):
                        have[i] += c[i]
        return sums

    # -- the view --------------------------------------------------------------------------

    async def view(self, redis: aredis.Redis | None, keys: Keys) -> list[CameraStatus]:
        """Every known camera's health, summed across processes when there is a Redis."""
        await self.flush(redis, keys)
        now = self.clock()
        if redis is None:
            sums, last = self._hour_here(now), self.last_reads
        else:
            sums, last = await self._hour_from_redis(redis, keys, now)
            self.merged_last = last
        cameras = sorted(set(self.gates) | set(self._seen_gate) | set(sums))
        return [self._status(c, sums.get(c), last.get(c), now) for c in cameras]

    def _status(
        self, camera: str, sums: list[float] | None, last: float | None, now: float
    ) -> CameraStatus:
        reads, unreadable, offset_sum = (int(sums[0]), int(sums[1]), sums[2]) if sums else (0, 0, 0)
        gate = self.gates.get(camera) or self._seen_gate.get(camera)
        share = unreadable / reads if reads else None
        offset = round(offset_sum / reads, 3) if reads else None
        silent = self.silent(camera, gate, last, now)
        alarm = None
        if silent:
            alarm = "silent"
        elif (
            reads >= self.limits.min_reads
            and share is not None
            and share >= self.limits.unreadable_share
        ):
            alarm = "unreadable"
        elif offset is not None and abs(offset) > self.limits.clock_offset_s:
            alarm = "clock_offset"
        at = None if last is None else self.rules.clock.to_datetime(last)
        return CameraStatus(camera, gate, at, reads, unreadable, share, offset, silent, alarm)

    def silent(self, camera: str, gate_code: str | None, last: float | None, now: float) -> bool:
        """No read for `silence`, with the gate active now and that long ago."""
        gate = None if gate_code is None else self.rules.gates.get(gate_code)
        if gate is None:
            return False
        since = last if last is not None else self.started
        silence = self.limits.silence_s
        if now - since < silence:
            return False
        if gate.always_active:
            return True
        return self.rules.gate_active(gate, int(now)) and self.rules.gate_active(
            gate, int(now - silence)
        )

    # -- /metrics --------------------------------------------------------------------------

    def silent_now(self) -> dict[str, float]:
        """Per camera, 1 if silent as of the last flush (the replicas' last reads) and this
        process's own; for /metrics."""
        now, mine = self.clock(), self.last_reads
        out = {}
        for camera in sorted(set(self.gates) | set(self._seen_gate)):
            seen = [x for x in (self.merged_last.get(camera), mine.get(camera)) if x]
            last = max(seen) if seen else None
            gate = self.gates.get(camera) or self._seen_gate.get(camera)
            out[camera] = float(self.silent(camera, gate, last, now))
        return out


def _add(into: dict[int, dict[str, list[float]]], delta: dict[int, dict[str, list[float]]]) -> None:
    """Add minute buckets `delta` to `into`: sums, and the later last read."""
    for minute, cams in delta.items():
        have_cams = into.setdefault(minute, {})
        for camera, c in cams.items():
            have = have_cams.get(camera)
            if have is None:
                have_cams[camera] = list(c)
                continue
            have[0] += c[0]
            have[1] += c[1]
            have[2] += c[2]
            if c[3] >= have[3]:
                have[3], have[4] = c[3], c[4]
