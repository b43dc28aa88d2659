"""Locust load for a running Varco: gate cameras and police officers, as locust runs any load.

Start the service (`make run`, i.e. `varco demo`), then, from the checkout:

    .venv/bin/locust -f bench/locustfile.py --host http://127.0.0.1:8080 --headless \
        -u 50 -r 10 -t 1m --csv data/locust

`-u` users (the `--police-users`, default 2, among them), spawned `-r` a second, for `-t`,
as with any locustfile. A day of Milan Area B's traffic, compressed (morning and evening
peaks) instead: `-f bench/locust_day.py`, the same users under a day-shaped load.

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
import os
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from locust import FastHttpUser, between, constant_throughput, events, task
from locust.env import Environment

ROOT = Path(__file__).resolve().parent.parent
CONFIG = os.environ.get("VARCO_CONFIG", str(ROOT / "examples" / "demo.toml"))

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
    g = parser.add_argument_group("Varco users (bench/locustfile.py)")
    g.add_argument(
        "--police-users", type=int, default=2, help="police users, counted in -u (default 2)"
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
    wait_time = constant_throughput(1.0)  # one task a second: -u (or the day shape) sets the rate
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
