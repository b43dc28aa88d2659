"""Locust load for a running Varco: a day of a large ZTL, compressed.

Start the service (`make run`, i.e. `varco demo`), then, from the checkout:

    .venv/bin/locust -f bench/locustfile.py --host http://127.0.0.1:8080 --headless \\
        --day-seconds 8640 --csv data/locust-day --csv-full-history

which replays Milan Area B's day (~820,000 transits, morning and evening peaks) ten times
faster: a day in 8,640 s, ~95 transits/s on average and ~210/s at the 8-9 peak (real time:
9.5/s and 21/s; the default `--day-seconds 1440`, sixty times, peaks at ~1,280/s, more than
one locust process on a shared 2-core machine sends: add `--processes N` or workers), and writes
`data/locust-day_stats.csv` (per request kind), `_stats_history.csv` (every few seconds: the
shape over the day), `_failures.csv` and `_exceptions.csv`. Only part of the day:
`--start-hour 7 --hours 3` (the morning peak). A flat load instead of the day:
`--flat -u 50 -r 10 -t 1m`.

Users:
- `Camera`: a gate camera posting plate reads to `POST /v1/transits`, one read at a time,
  gates weighted (the first gate of the configuration busiest: weights n, n-1, ..., 1), and now
  and then a backlog of 20-50 reads to `POST /v1/transits/batch` (a camera back after a
  network outage). The plate mix is drawn from the permit database (`VARCO_CONFIG`,
  `VARCO_DATA_DIR` or `DATABASE_URL`, as for the service): 70 % plates a permit covers now,
  15 % unknown plates, 5 % near-misses (one OCR confusion from a permitted plate), 5 % reads at
  the edge of a permit's window (one second before and at the start or end of its validity,
  or of a time slot of a type with slots), 5 % secondary plates of CUDE badges. Requests are
  named by kind (`/v1/transits [near-miss]`), so the CSV has a line per kind.
- `Police`: `GET /v1/plates/{plate}` with the reason every lookup must give (`X-Reason`;
  the service audits it before answering), `--police-users` of them (default 2), one lookup
  every 1-5 s.

Answers are checked: a transit must come back 200 with a verdict, a lookup 200.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import os
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from locust import FastHttpUser, LoadTestShape, between, constant_throughput, events, task
from locust.env import Environment

ROOT = Path(__file__).resolve().parent.parent
CONFIG = os.environ.get("VARCO_CONFIG", str(ROOT / "examples" / "demo.toml"))

# Milan Area B: ~820,000 transits a day through its ~190 gates (Comune di Milano's reported
# order of magnitude). Share of the day's transits in each hour, a commuter profile with the
# morning peak at 8-9 and the evening one at 17-19; normalised below.
DAY_TRANSITS = 820_000
HOURLY = (
    0.6,
    0.4,
    0.3,
    0.3,
    0.5,
    1.2,
    3.0,
    7.0,
    9.0,
    7.0,
    5.2,
    5.0,
    4.8,
    4.6,
    4.8,
    5.2,
    6.2,
    7.8,
    8.4,
    6.2,
    3.8,
    2.4,
    1.6,
    1.0,
)
SHARES = tuple(h / sum(HOURLY) for h in HOURLY)

MIX = (
    ("permitted", 0.70),
    ("unknown", 0.15),
    ("near-miss", 0.05),
    ("edge", 0.05),
    ("cude-secondary", 0.05),
)
SINGLE_WEIGHT, BATCH_WEIGHT, BATCH_SIZES = 199, 1, (20, 50)
# Transits one camera user sends per task: the shape turns a transit rate into users.
TRANSITS_PER_TASK = (SINGLE_WEIGHT + BATCH_WEIGHT * sum(BATCH_SIZES) / 2) / (
    SINGLE_WEIGHT + BATCH_WEIGHT
)
SAMPLE = 5000  # plates kept per kind
_LETTERS = "ABCDEFGHJKLMNPRSTVWXYZ"


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    g = parser.add_argument_group("Varco day shape (bench/locustfile.py)")
    g.add_argument(
        "--day-seconds",
        type=float,
        default=1440,
        help="length of the compressed day in seconds (86400: real time)",
    )
    g.add_argument(
        "--day-transits",
        type=int,
        default=DAY_TRANSITS,
        help="transits in a whole day (Milan Area B: ~820,000)",
    )
    g.add_argument("--start-hour", type=float, default=0, help="replay from this hour")
    g.add_argument("--hours", type=float, default=24, help="replay this many hours")
    g.add_argument("--police-users", type=int, default=2)
    g.add_argument(
        "--flat", action="store_true", help="no day shape: -u users, -r spawn rate, -t run time"
    )


# -- the plate mix, drawn from the permit database ----------------------------------------------


@dataclass
class PlateMix:
    """Reads to send, by kind; `edge` reads carry their own instant (epoch seconds)."""

    gates: list[str]
    gate_weights: list[int]
    edge_gate: str  # an always-active gate, so edge reads are judged rather than not enforced
    tz: Any
    plates: dict[str, list[str]] = field(default_factory=dict)
    edges: list[tuple[str, int]] = field(default_factory=list)
    foreign: set[str] = field(default_factory=set)  # reads of foreign plates: country "D"

    def draw(self, rng: random.Random) -> tuple[str, str, int | None]:
        """(kind, plate, instant or None for now)."""
        kind = rng.choices([k for k, _ in MIX], [w for _, w in MIX])[0]
        if kind == "edge" and self.edges:
            plate, ts = rng.choice(self.edges)
            return kind, plate, ts
        pool = self.plates.get(kind) or self.plates["permitted"] or self.plates["unknown"]
        return kind, rng.choice(pool), None


def _keep(bucket: list[Any], item: Any, seen: int, rng: random.Random) -> None:
    """Reservoir sampling: `bucket` stays a uniform sample of SAMPLE of the `seen` items."""
    if len(bucket) < SAMPLE:
        bucket.append(item)
    else:
        j = rng.randrange(seen)
        if j < SAMPLE:
            bucket[j] = item


def _slot_edge(rules: Any, ptype: Any, before: int) -> int | None:
    """The latest minute boundary before `before` where a type's time slots open or close."""
    t = before - before % 60
    inside = rules.in_window(ptype, t)
    for _ in range(7 * 24 * 60):
        t -= 60
        if rules.in_window(ptype, t) != inside:
            return t + 60
    return None


def load_mix(seed: int = 7) -> PlateMix:
    from enforcement.config.load import load_config
    from enforcement.core.plates import confusable_variants, is_italian
    from loader.database import open_db

    settings, rules = load_config(CONFIG, os.environ)
    rng = random.Random(seed)
    now = int(time.time())
    gates = list(rules.gates)
    always = [g for g, gate in rules.gates.items() if gate.always_active]
    mix = PlateMix(
        gates,
        [len(gates) - i for i in range(len(gates))],
        always[0] if always else gates[0],
        rules.clock.tz,
    )
    permitted: list[str] = []
    secondary: list[str] = []
    edges: list[tuple[str, int]] = []
    known: set[str] = set()
    seen: Counter[str] = Counter()
    slot_edges = {c: _slot_edge(rules, t, now - 60) for c, t in rules.types.items() if t.restricted}
    oldest = now - (settings.storage.history_days - 2) * 86400  # edges the index still judges
    with open_db(settings) as db:
        rows = db.index_rows(now - settings.storage.history_days * 86400)
        for _pid, start, end, type_, _zones, _source, primary, plate, _periods in rows:
            known.add(plate)
            ptype = rules.types.get(type_)
            if ptype is None:
                continue
            active = start <= now and (end is None or now < end)
            if active and ptype.cude and not primary:
                seen["secondary"] += 1
                _keep(secondary, plate, seen["secondary"], rng)
            elif active and not ptype.restricted:
                seen["permitted"] += 1
                _keep(permitted, plate, seen["permitted"], rng)
            if ptype.cude and not primary:
                continue
            for edge in (start, end, slot_edges.get(type_)):
                if edge is not None and oldest < edge <= now - 60:
                    seen["edge"] += 1
                    _keep(edges, (plate, edge), seen["edge"], rng)
    mix.edges = [(p, e - d) for p, e in edges for d in (1, 0)]  # just before, and at the edge
    near = []
    for p in permitted:
        variants = [v for v in confusable_variants(p) if v not in known]
        if variants:
            near.append(rng.choice(variants))
            if not is_italian(p):
                mix.foreign.add(near[-1])
    # A camera tells a foreign plate's country; an Italian read it may leave out.
    mix.foreign.update(
        p for p in itertools.chain(permitted, secondary, (e[0] for e in edges)) if not is_italian(p)
    )
    unknown: list[str] = []
    while len(unknown) < min(SAMPLE, max(len(permitted), 100)):
        p = (
            rng.choice(_LETTERS)
            + rng.choice(_LETTERS)
            + f"{rng.randrange(1000):03d}"
            + rng.choice(_LETTERS)
            + rng.choice(_LETTERS)
        )
        if p not in known:
            unknown.append(p)
    mix.plates = {
        "permitted": permitted,
        "unknown": unknown,
        "near-miss": near,
        "cude-secondary": secondary,
    }
    return mix


MIX_STATE: dict[str, PlateMix] = {}


@events.init.add_listener
def _load(environment: Environment, **_: Any) -> None:
    if environment.parsed_options is not None:
        Police.fixed_count = environment.parsed_options.police_users
    t0 = time.perf_counter()
    mix = MIX_STATE["mix"] = load_mix()
    sizes = ", ".join(f"{k} {len(v)}" for k, v in mix.plates.items())
    print(
        f"plate mix from the permit database in {time.perf_counter() - t0:.1f} s: {sizes}, "
        f"edge {len(mix.edges)}; gates {dict(zip(mix.gates, mix.gate_weights, strict=True))}",
        flush=True,
    )


# -- users --------------------------------------------------------------------------------------

_PREFIX = f"lc-{uuid.uuid4().hex[:8]}"  # unique per locust process: every event id is new
_events = itertools.count()


def _transit(
    mix: PlateMix, rng: random.Random, gate: str, at: int | None = None
) -> tuple[str, dict[str, object]]:
    kind, plate, ts = mix.draw(rng)
    if ts is not None:
        gate = mix.edge_gate
    instant = dt.datetime.fromtimestamp(ts if ts is not None else (at or time.time()), mix.tz)
    body: dict[str, object] = {
        "event_id": f"{_PREFIX}-{next(_events)}",
        "camera": f"cam-{gate}",
        "gate": gate,
        "plate": plate,
        "ts": instant.isoformat(),
        "confidence": round(rng.uniform(0.7, 0.99), 2),
    }
    if plate in mix.foreign:
        body["country"] = "D"
    return kind, body


class Camera(FastHttpUser):
    wait_time = constant_throughput(1.0)  # at most one task a second: the shape sets the rate
    headers: ClassVar = {"Authorization": "Bearer demo-camera"}

    def on_start(self) -> None:
        self.rng = random.Random()
        mix = MIX_STATE["mix"]
        self.gate = self.rng.choices(mix.gates, mix.gate_weights)[0]

    @task(SINGLE_WEIGHT)
    def one(self) -> None:
        kind, body = _transit(MIX_STATE["mix"], self.rng, self.gate)
        with self.client.post(
            "/v1/transits",
            json=body,
            headers=self.headers,
            name=f"/v1/transits [{kind}]",
            catch_response=True,
        ) as resp:
            if resp.status_code != 200 or "verdict" not in (resp.json() or {}):
                resp.failure(f"{resp.status_code}: {resp.text[:200] if resp.text else ''}")

    @task(BATCH_WEIGHT)
    def backlog(self) -> None:
        """A camera back online sends what it queued over the last ten minutes."""
        mix, now = MIX_STATE["mix"], time.time()
        n = self.rng.randint(*BATCH_SIZES)
        items = [
            _transit(mix, self.rng, self.gate, int(now - self.rng.uniform(0, 600)))[1]
            for _ in range(n)
        ]
        with self.client.post(
            "/v1/transits/batch",
            json={"transits": items},
            headers=self.headers,
            catch_response=True,
        ) as resp:
            results = (resp.json() or {}).get("results") if resp.status_code == 200 else None
            if not results or len(results) != n:
                resp.failure(f"{resp.status_code}: {resp.text[:200] if resp.text else ''}")


class Police(FastHttpUser):
    fixed_count = 2  # --police-users sets it
    wait_time = between(1, 5)
    # Every lookup gives a reason; the service writes it to the audit trail before answering.
    headers: ClassVar = {
        "Authorization": "Bearer demo-police",
        "X-Reason": "locust: load test, patrol check",
    }

    def on_start(self) -> None:
        self.rng = random.Random()

    @task
    def lookup(self) -> None:
        _, plate, _ = MIX_STATE["mix"].draw(self.rng)
        self.client.get(f"/v1/plates/{plate}", headers=self.headers, name="/v1/plates/{plate}")


# -- the day ------------------------------------------------------------------------------------


def transit_rate(hour: float, day_transits: int = DAY_TRANSITS) -> float:
    """Transits per real second at `hour` (0-24, wraps), linear between hour midpoints."""
    x = (hour - 0.5) % 24
    h = int(x)
    frac = x - h
    share = SHARES[h] * (1 - frac) + SHARES[(h + 1) % 24] * frac
    return day_transits * share / 3600


class MilanDay(LoadTestShape):
    """Camera users for the compressed day's transit rate, plus the police users."""

    use_common_options = True  # --flat: -u, -r and -t as usual

    def tick(self) -> tuple[int, float] | None:
        opts = self.runner.environment.parsed_options if self.runner else None
        run_time = self.get_run_time()
        police = getattr(opts, "police_users", 2)
        if opts is None or opts.flat:
            limit = getattr(opts, "run_time", None)
            if limit and run_time > limit:
                return None
            users = getattr(opts, "num_users", None) or 10
            return users + police, float(getattr(opts, "spawn_rate", None) or users)
        per_hour = opts.day_seconds / 24  # seconds of the run per hour of the day
        if run_time > opts.hours * per_hour:
            return None
        hour = opts.start_hour + run_time / per_hour
        rate = transit_rate(hour, opts.day_transits) * 86400 / opts.day_seconds
        cameras = max(1, math.ceil(rate / TRANSITS_PER_TASK))
        step = 10 ** max(0, len(str(cameras)) - 2)  # two significant digits: fewer re-spawns
        users = max(1, round(cameras / step)) * step + police
        return users, float(max(users, 10))
