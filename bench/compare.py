"""Varco against the alternatives, side by side in one run: will it hold the peak, and why not
just put the permits in PostgreSQL or Redis?

    .venv/bin/python -m bench.compare --permits 1000000 10000000 --rounds 3

Five servers answer the same transit stream (`POST /v1/transits`, a new event id every time):

(a) empty   aiohttp + uvloop reading and decoding the same body, a fixed answer: the ceiling;
(b) check   Varco's check (`create_app(record=False)`): auth, normalisation, gate, index, rules;
(c) logged  the same, each transit written to Redis (append-only, `appendfsync always`)
            before the answer: durable logging;
(d) pg      the ceiling's handler plus the same check from PostgreSQL (btree index on plate,
            asyncpg pool with the per-release reset disabled): bench/peer_server.py;
(e) redis   the same from Redis (one GET per transit; redis-py asyncio + hiredis).

Every server runs pinned to core 0; wrk, the Redis servers and the PostgreSQL backends serving
(d) to core 1 (a database is another machine in production). Before any measurement, the
peers and (c) must give Varco's answers (verdict, reason, permit ids, grace) to every request of
the verification sample; a peer that answers differently stops the run. Then rounds
interleave the servers (each round starts with the next one); per round, 32 connections as
fast as they go and one connection (single-request latency). Reported: medians over rounds of
throughput, p50 and p99, the ratios to (a) and the DESIGN §5 targets; per-round ratios too.
Then the in-process index (bench/bench_index.py) at --index-sizes: lookup time and bytes per
permit. Writes the figures to bench/plots/compare.json and the PNG plots beside it
(`--replot` redraws them and reprints the tables from the JSON); py-spy's stacks go to
bench/results/profiles/.

The dataset: N permits of the demo configuration's types without time slots (so the peers'
rule is exactly Varco's), 8 % of plates with a second permit; 10 % expired, 5 % not yet
valid, and 100 sampled plates at the edges of their validity (start = ts, end = ts, end = ts
+ 1, start = ts + 1). The stream cycles through 1,000 plates: 800 with permits (those edge
plates among them), 200 unknown. Needs wrk, taskset, a PostgreSQL (--pg-dsn: a throwaway
database is created and dropped) and the optional `bench` dependencies (asyncpg, matplotlib).
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from bench import bench_transits
from enforcement.config.load import load_config
from enforcement.core.index import END_UNLIMITED, IndexMeta, build_index
from enforcement.core.rules import zone_mask
from enforcement.replica.redis_server import EmbeddedRedis
from loader.rebuild import publish

from .bench_http import free_port, launch, parse_wrk, wrk_raw
from .bench_index import synthetic_keys
from .peer_server import APP_NAME, TABLE

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "examples" / "demo.toml"
GATE = "PD-03"  # always active, zone PEDONALE: every permit type without slots covers it
KINDS = ("empty", "check", "logged", "pg", "redis")
LABELS = {"empty": "(a) empty handler", "check": "(b) Varco check",
          "logged": "(c) Varco check + durable log", "pg": "(d) PostgreSQL",
          "redis": "(e) Redis"}  # fmt: skip
COLORS = {"empty": "#9e9e9e", "check": "#1f77b4", "logged": "#4a90d9", "pg": "#d62728",
          "redis": "#ff7f0e"}  # fmt: skip
PERCENTILES = (1, 5, 10, 25, 50, 75, 90, 95, 98, 99, 99.5, 99.9, 99.99)
DAY = 86400
PLOTS = ROOT / "bench" / "plots"
RESULTS = PLOTS / "compare.json"  # the figures the plots are drawn from, kept beside them
PROFILES = ROOT / "bench" / "results" / "profiles"  # py-spy's stacks (bench/results: ignored)

# wrk calls done() once at the end: the latency percentiles for the distribution plot.
DONE_LUA = (
    "done = function(summary, latency, requests)\n"
    f"  for _, p in ipairs({{{', '.join(str(p) for p in PERCENTILES)}}}) do\n"
    '    io.write(string.format("PCT %g %d\\n", p, latency:percentile(p)))\n'
    "  end\n"
    "end\n"
)


# -- the dataset -------------------------------------------------------------------------------


@dataclass
class Dataset:
    t: int  # the instant every transit of the stream carries (epoch seconds)
    keys: np.ndarray  # plate key of each permit (int64)
    start: np.ndarray
    end: np.ndarray
    zones: np.ndarray  # zone bits (over the configuration's zone order)
    type_no: np.ndarray  # position in the configuration's types
    sample: list[str]  # the stream's plates, in order

    @property
    def n(self) -> int:
        return len(self.keys)

    def ids(self) -> list[str]:
        return [f"PD-{i:08d}" for i in range(self.n)]  # sorted: the index wants them so


def plate_texts(keys: np.ndarray) -> list[str]:
    """key_plate over an array of 7-character plate keys, vectorised."""
    alphabet = np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", dtype=np.uint8)
    k = np.asarray(keys, dtype=np.int64)
    digits = np.stack([(k // 36**p) % 36 for p in range(6, -1, -1)], axis=1)
    assert np.all(k // 36**7 == 1), "plate keys of 7 characters expected"
    return alphabet[digits].view("S7").ravel().astype("U7").tolist()  # type: ignore[no-any-return]


def make_dataset(n: int, seed: int = 3, t: int | None = None) -> Dataset:
    _, rules = load_config(CONFIG, {})
    rng = np.random.default_rng(seed)
    t = int(time.time()) - 60 if t is None else t
    n_plates = max(200, round(n / 1.08))
    keys = synthetic_keys(n_plates + 200, rng)
    plates, unknown = keys[:n_plates], keys[n_plates:]
    extra = rng.integers(0, n_plates, n - n_plates)  # a second permit for 8 % of plates
    pk = np.concatenate([plates, plates[extra]])
    start = t - rng.integers(DAY, 3 * 365 * DAY, n)
    end = np.where(rng.random(n) < 0.5, END_UNLIMITED, t + rng.integers(DAY, 3 * 365 * DAY, n))
    u = rng.random(n)
    expired, future = u < 0.10, (u >= 0.10) & (u < 0.15)
    start[expired] = t - rng.integers(30 * DAY, 3 * 365 * DAY, expired.sum())
    end[expired] = t - rng.integers(1, 20 * DAY, expired.sum())
    start[future] = t + rng.integers(1, 30 * DAY, future.sum())
    end[future] = start[future] + rng.integers(DAY, 365 * DAY, future.sum())
    edge = rng.choice(n_plates, 100, replace=False)  # their first permit sits on an edge
    for part, (s, e) in zip(np.array_split(edge, 4), ((t, t + DAY), (t - 10 * DAY, t),
                                                      (t - DAY, t + 1), (t + 1, t + DAY)), strict=True):  # fmt: skip
        start[part], end[part] = s, e
    types = tuple(rules.types)
    plain = [i for i, c in enumerate(types) if not rules.types[c].restricted
             and not rules.types[c].cude]  # fmt: skip
    type_no = rng.choice(plain, n)
    masks = np.array([zone_mask(rules.types[c].zones, tuple(rules.zones)) for c in types])
    others = rng.choice(np.setdiff1d(np.arange(n_plates), edge), 700, replace=False)
    chosen = np.concatenate([plates[others], plates[edge], unknown])
    order = np.random.default_rng(seed + 1).permutation(len(chosen))
    return Dataset(t, pk, start, end, masks[type_no], type_no, plate_texts(chosen[order]))


def publish_snapshot(ds: Dataset, data: Path) -> Path:
    settings, rules = load_config(CONFIG, {"VARCO_DATA_DIR": str(data)})
    meta = IndexMeta(1, int(time.time()), tuple(rules.types), tuple(rules.zones))
    index = build_index(meta, ds.keys, ds.start, ds.end, ds.zones, np.arange(ds.n), ds.type_no,
                        np.ones(ds.n), ds.ids())  # fmt: skip
    return publish(index, settings.storage.snapshot_dir, max_shrink=1.0)


# -- the peers' stores -------------------------------------------------------------------------


def _chunks(n: int, size: int) -> Iterator[slice]:
    for i in range(0, n, size):
        yield slice(i, min(i + size, n))


def load_postgres(ds: Dataset, dsn: str) -> dict[str, float]:
    """Fill `bench_permits` (COPY), build the btree index on plate, VACUUM ANALYZE."""
    import psycopg

    t0 = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as con:
        con.execute(f"CREATE TABLE {TABLE} (plate text NOT NULL, permit_id text NOT NULL, "
                    "valid_from bigint NOT NULL, valid_to bigint NOT NULL, zones int NOT NULL)")  # fmt: skip
        with con.cursor() as cur, cur.copy(f"COPY {TABLE} FROM STDIN") as copy:
            for part in _chunks(ds.n, 200_000):
                plates = plate_texts(ds.keys[part])
                rows = zip(plates, range(part.start, part.stop), ds.start[part].tolist(),
                           ds.end[part].tolist(), ds.zones[part].tolist(), strict=True)  # fmt: skip
                copy.write("".join(f"{p}\tPD-{i:08d}\t{s}\t{e}\t{z}\n" for p, i, s, e, z in rows))
        con.execute(f"CREATE INDEX {TABLE}_plate ON {TABLE} (plate)")
        con.execute(f"VACUUM ANALYZE {TABLE}")
        size = con.execute(f"SELECT pg_total_relation_size('{TABLE}')").fetchone()[0]  # type: ignore[index]
        version = con.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
        shared = con.execute("SHOW shared_buffers").fetchone()[0]  # type: ignore[index]
    return {"load_s": time.perf_counter() - t0, "bytes_per_permit": size / ds.n,
            "version": version, "shared_buffers": shared}  # fmt: skip


def load_redis(ds: Dataset, url: str) -> dict[str, float]:
    """One key per plate: the msgpack list of [permit_id, valid_from, valid_to, zones]."""
    import redis

    r = redis.Redis.from_url(url)
    r.config_set("appendonly", "no")  # a read-only lookup store: nothing to make durable
    before = int(r.info("memory")["used_memory"])
    t0 = time.perf_counter()
    order = np.argsort(ds.keys, kind="stable")
    keys = ds.keys[order]
    bounds = np.flatnonzero(np.diff(keys)) + 1
    firsts = np.concatenate([[0], bounds])
    encode = msgspec.msgpack.encode
    pipe = r.pipeline(transaction=False)
    for part in _chunks(len(firsts), 100_000):
        lo, hi = firsts[part.start], (firsts[part.stop] if part.stop < len(firsts) else len(keys))
        rows = order[lo:hi]
        plates = plate_texts(keys[lo:hi])
        starts, ends, zones = (ds.start[rows].tolist(), ds.end[rows].tolist(),
                               ds.zones[rows].tolist())  # fmt: skip
        ids = rows.tolist()
        mapping: dict[str, bytes] = {}
        batch: dict[str, list[tuple[str, int, int, int]]] = {}
        for j, p in enumerate(plates):
            batch.setdefault(p, []).append((f"PD-{ids[j]:08d}", starts[j], ends[j], zones[j]))
        for p, permits in batch.items():
            permits.sort()
            mapping[p] = encode(permits)
        items = list(mapping.items())
        for k in range(0, len(items), 10_000):
            pipe.mset(dict(items[k : k + 10_000]))
        pipe.execute()
    info = r.info("memory")
    version = r.info("server")["redis_version"]
    r.close()
    return {"load_s": time.perf_counter() - t0,
            "bytes_per_permit": (int(info["used_memory"]) - before) / ds.n,
            "version": version}  # fmt: skip


def with_db(dsn: str, db: str, socket_dir: str = "") -> str:
    """`dsn` (a postgresql:// URL) naming database `db`, through `socket_dir` if given."""
    u = urllib.parse.urlsplit(dsn)
    netloc = u.netloc
    query = urllib.parse.parse_qsl(u.query)
    if socket_dir:
        user = netloc.rpartition("@")[0]
        netloc = f"{user}@" if user else ""
        query = [(k, v) for k, v in query if k != "host"] + [("host", socket_dir)]
        if u.port:
            query.append(("port", str(u.port)))
    return urllib.parse.urlunsplit((u.scheme, netloc, f"/{db}", urllib.parse.urlencode(query), ""))


def pin(pid: int, core: int) -> None:
    subprocess.run(["taskset", "-apc", str(core), str(pid)], check=True, capture_output=True)


def pin_pg_backends(dsn: str, core: int) -> int:
    import psycopg

    with psycopg.connect(dsn) as con:
        pids = [r[0] for r in con.execute("SELECT pid FROM pg_stat_activity WHERE "
                                          "application_name = %s", (APP_NAME,))]  # fmt: skip
    for pid in pids:
        pin(pid, core)
    return len(pids)


# -- verification ------------------------------------------------------------------------------


class VerificationError(Exception):
    """A server's answers differ from Varco's on the verification sample."""


def transit_bodies(sample: Sequence[str], t: int, count: int, tag: str) -> list[bytes]:
    ts = dt.datetime.fromtimestamp(t, dt.UTC).isoformat()
    return [json.dumps({"event_id": f"verify-{tag}-{i}", "camera": "cam-1", "gate": GATE,
                        "plate": sample[i % len(sample)], "ts": ts,
                        "confidence": 0.92}).encode() for i in range(count)]  # fmt: skip


def post_all(port: int, bodies: Sequence[bytes]) -> list[dict[str, Any]]:
    """POST each body on one keep-alive connection; the decoded answers (status in `_status`)."""
    con = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    out = []
    headers = {"Content-Type": "application/json", "Authorization": "Bearer demo-camera"}
    try:
        for body in bodies:
            con.request("POST", "/v1/transits", body, headers)
            resp = con.getresponse()
            data = resp.read()
            try:
                answer = json.loads(data)
            except ValueError:
                answer = {"_body": data[:200].decode("utf-8", "replace")}
            answer["_status"] = resp.status
            out.append(answer)
    finally:
        con.close()
    return out


COMPARED = ("_status", "verdict", "reason", "plate", "permits", "grace_until")


def differences(reference: Sequence[dict[str, Any]], answers: Sequence[dict[str, Any]],
                limit: int = 5) -> tuple[int, list[str]]:  # fmt: skip
    """How many answers differ from the reference in a COMPARED field, and the first few."""
    count, shown = 0, []
    if len(reference) != len(answers):
        return max(len(reference), len(answers)), [f"{len(answers)} answers, not {len(reference)}"]
    for i, (ref, got) in enumerate(zip(reference, answers, strict=True)):
        want = {k: ref.get(k, [] if k == "permits" else None) for k in COMPARED}
        have = {k: got.get(k, [] if k == "permits" else None) for k in COMPARED}
        if want != have:
            count += 1
            if len(shown) < limit:
                diff = {k: (want[k], have[k]) for k in COMPARED if want[k] != have[k]}
                shown.append(f"request {i} ({ref.get('plate')}): {diff} (Varco, this server)")
    return count, shown


def verify(reference: Sequence[dict[str, Any]], peers: dict[str, Sequence[dict[str, Any]]]) -> None:
    """Raise VerificationError unless every peer answered every request as Varco did."""
    if any(a.get("_status") != 200 for a in reference):
        raise VerificationError("Varco itself failed requests of the sample")
    problems = []
    for name, answers in peers.items():
        count, shown = differences(reference, answers)
        if count:
            problems.append(f"{name}: {count} of {len(reference)} answers differ from Varco's:\n  "
                            + "\n  ".join(shown))  # fmt: skip
    if problems:
        raise VerificationError("\n".join(problems))


def verify_servers(ports: dict[str, int], ds: Dataset, count: int) -> dict[str, int]:
    """Send the sample to Varco and to every other server (not the ceiling); compare."""
    answers = {k: post_all(p, transit_bodies(ds.sample, ds.t, count, f"{k}-{time.time_ns()}"))
               for k, p in ports.items() if k != "empty"}  # fmt: skip
    reference = answers.pop("check")
    verify(reference, answers)
    return dict(Counter(f"{a['verdict']}/{a['reason']}" for a in reference))


# -- measuring ---------------------------------------------------------------------------------


def cpu_s(pid: int) -> float:
    """CPU time (user + system, all threads) the process has used, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_wrk(port: int, script: Path, duration: int, connections: int,
            pid: int | None = None) -> dict[str, Any]:  # fmt: skip
    """wrk's figures, the latency percentiles, and with `pid` the server's CPU time per
    request: what a request costs the server core whatever else runs on it (on a shared
    host the throughput moves with the neighbours' load; the CPU per request much less)."""
    before = cpu_s(pid) if pid else 0.0
    out = wrk_raw(port, script, duration, connections)
    res: dict[str, Any] = parse_wrk(out)
    res["pct_ms"] = {m.group(1): int(m.group(2)) / 1000
                     for m in re.finditer(r"^PCT (\S+) (\d+)$", out, re.M)}  # fmt: skip
    done = re.search(r"(\d+) requests in", out)
    if pid and done and int(done.group(1)):
        res["cpu_us"] = (cpu_s(pid) - before) / int(done.group(1)) * 1e6
    return res


def rss_mb(pid: int) -> float:
    total = 0
    for child in [pid, *_children(pid)]:
        try:
            with open(f"/proc/{child}/status") as f:
                m = re.search(r"VmRSS:\s+(\d+) kB", f.read())
            total += int(m.group(1)) if m else 0
        except OSError:
            pass
    return total / 1024


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def profile(pid: int, port: int, script: Path, seconds: int,
            out: Path) -> dict[str, list[tuple[str, float]]]:  # fmt: skip
    """py-spy (if installed) on `pid` while wrk loads it: collapsed stacks into `out`, and the
    functions with the largest share of the busy samples (profile_summary)."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        print("py-spy is not installed: no profile", file=sys.stderr)
        return {}
    rec = subprocess.Popen([spy, "record", "-p", str(pid), "-d", str(seconds), "-r", "250",
                            "-f", "raw", "-o", str(out), "--nonblocking"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    time.sleep(0.5)
    wrk_raw(port, script, seconds, 32)
    _, err = rec.communicate(timeout=seconds + 60)
    if rec.returncode or not out.exists():
        print(f"py-spy failed: {err.decode()[-500:]}", file=sys.stderr)
        return {}
    return profile_summary(out.read_text())


def top_frames(collapsed: str, top: int = 25) -> list[tuple[str, float]]:
    """Functions by their share of the samples, inclusive (the frame anywhere on the stack),
    from py-spy's collapsed stacks; file paths shortened to the file name."""
    return _frames(collapsed, top)[0]


def _frames(collapsed: str, top: int) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    total = 0
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        names = [re.sub(r" \((.*?)/([^/]+\.py):\d+\)", r" (\2)", f) for f in stack.split(";")]
        for name in set(names):
            inclusive[name] += n
        own[names[-1]] += n
    if not total:
        return [], []
    return ([(k, v / total) for k, v in inclusive.most_common(top)],
            [(k, v / total) for k, v in own.most_common(top)])  # fmt: skip


def profile_summary(collapsed: str, top: int = 18) -> dict[str, list[tuple[str, float]]]:
    """Inclusive shares below the event loop's own frames (those in nearly every sample),
    and self shares (the innermost Python frame: C code counts for its Python caller)."""
    inclusive, own = _frames(collapsed, 200)
    root = inclusive[0][1] if inclusive else 0.0
    return {"inclusive": [f for f in inclusive if f[1] < 0.97 * root][:top], "self": own[:top]}


def measure_size(args: argparse.Namespace, n: int) -> dict[str, Any]:
    out: dict[str, Any] = {"permits": n}
    with tempfile.TemporaryDirectory(prefix="varco-compare-") as tmp:
        data = Path(tmp)
        t0 = time.perf_counter()
        print(f"\n== {n:,} permits: dataset and Varco snapshot ...", flush=True)
        ds = make_dataset(n)
        snap = publish_snapshot(ds, data)
        out["snapshot_bytes_per_permit"] = snap.stat().st_size / n
        out["prepare_s"] = time.perf_counter() - t0
        db = f"varco_compare_{os.getpid()}"
        import psycopg

        base = args.pg_dsn
        db_dsn = with_db(base, db)
        with psycopg.connect(base, autocommit=True) as con:
            con.execute(f"DROP DATABASE IF EXISTS {db}")
            con.execute(f"CREATE DATABASE {db}")
        log_redis = EmbeddedRedis(data / "log-redis")
        peer_redis = EmbeddedRedis(data / "peer-redis")
        procs: dict[str, Any] = {}
        try:
            print("PostgreSQL: COPY, btree index, VACUUM ANALYZE ...", flush=True)
            out["pg"] = load_postgres(ds, db_dsn)
            print(f"  {out['pg']['load_s']:.1f} s, {out['pg']['bytes_per_permit']:.0f} bytes/permit",
                  flush=True)  # fmt: skip
            log_redis.start()
            peer_redis.start()
            for r in (log_redis, peer_redis):
                assert r.process is not None
                pin(r.process.pid, 1)
            print("Redis: one key per plate ...", flush=True)
            out["redis"] = load_redis(ds, peer_redis.url)
            print(f"  {out['redis']['load_s']:.1f} s, "
                  f"{out['redis']['bytes_per_permit']:.0f} bytes/permit", flush=True)  # fmt: skip
            ports = {k: free_port() for k in KINDS}
            env = dict(os.environ, VARCO_DATA_DIR=str(data), PYTHONPATH=str(ROOT),
                       REDIS_URL="off")  # fmt: skip
            for k in ("empty", "check", "logged"):
                procs[k] = bench_transits.start(k, ports[k], data, log_redis.url)
            peer_dsn = with_db(base, db, args.pg_socket)
            procs["pg"] = launch("pg", [sys.executable, "-m", "bench.peer_server",
                                        str(ports["pg"]), "pg", peer_dsn, "--pool",
                                        str(args.pg_pool)], env, ports["pg"], "healthz")  # fmt: skip
            out["pg"]["pinned_backends"] = pin_pg_backends(db_dsn, 1)
            procs["redis"] = launch("redis", [sys.executable, "-m", "bench.peer_server",
                                              str(ports["redis"]), "redis", peer_redis.url],
                                    env, ports["redis"], "healthz")  # fmt: skip
            print(f"verifying: {args.verify} transits to (b) Varco, (c), (d), (e) ...", flush=True)
            out["verdicts"] = verify_servers(ports, ds, args.verify)
            print("  every answer equal to Varco's; Varco's verdicts: "
                  + ", ".join(f"{k} {v}" for k, v in sorted(out["verdicts"].items())), flush=True)
            ts = dt.datetime.fromtimestamp(ds.t, dt.UTC).isoformat()
            script = data / "stream.lua"
            bench_transits.lua_script(script, ds.sample, None, ts=ts, gate=GATE, tail=DONE_LUA)
            for k in KINDS:  # warm-up: the first requests touch the mapped pages, fill caches
                wrk_raw(ports[k], script, 2, args.connections)
            loads = [("c32", args.connections), ("c1", 1),
                     *((f"c{c}", c) for c in args.also_connections)]  # fmt: skip
            runs: dict[str, dict[str, list[dict[str, Any]]]] = {
                k: {load: [] for load, _ in loads} for k in KINDS}  # fmt: skip
            for r in range(args.rounds):
                order = KINDS[r % len(KINDS):] + KINDS[: r % len(KINDS)]
                for load, conns in loads:
                    for k in order:
                        res = run_wrk(ports[k], script, args.duration, conns,
                                      procs[k].pid)
                        runs[k][load].append(res)
                        print(f"round {r + 1} {load:>4} {k:7} {res['rps']:8.0f} req/s  p50 "
                              f"{res['p50_ms']:6.2f} ms  p99 {res['p99_ms']:6.2f} ms  server CPU "
                              f"{res.get('cpu_us', 0):4.0f} µs/req  non-2xx "
                              f"{res['non_2xx']:.0f}", flush=True)  # fmt: skip
            out["runs"] = runs
            out["rss_mb"] = {k: rss_mb(p.pid) for k, p in procs.items()}
            if args.profile:
                out["profiles"] = {}
                for k in args.profile:
                    path = args.profiles / f"{k}-{n}.txt"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    print(f"profiling {k} under load ({args.profile_seconds} s) ...", flush=True)
                    summary_ = profile(procs[k].pid, ports[k], script, args.profile_seconds,
                                       path)  # fmt: skip
                    out["profiles"][k] = {"file": str(path.relative_to(ROOT))
                                          if path.is_relative_to(ROOT) else str(path), **summary_}  # fmt: skip
        finally:
            for p in procs.values():
                p.terminate()
            for p in procs.values():
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
            log_redis.stop()
            peer_redis.stop()
            with psycopg.connect(base, autocommit=True) as con:
                con.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    return out


def measure_index(sizes: Sequence[int], dict_max: int) -> list[dict[str, float]]:
    rows = []
    for n in sizes:
        print(f"\n== in-process index, {n:,} permits (bench/bench_index.py) ...", flush=True)
        with tempfile.NamedTemporaryFile(suffix=".json") as f:
            cmd = [sys.executable, "-m", "bench.bench_index", "--sizes", str(n), "--json", f.name]
            if n > dict_max:
                cmd.append("--no-dict")
            subprocess.run(["taskset", "-c", "0", *cmd], check=True, cwd=ROOT,
                           stdout=subprocess.DEVNULL)  # fmt: skip
            rows.extend(json.loads(Path(f.name).read_text()))
    return rows


# -- reporting ---------------------------------------------------------------------------------


def med(runs: Sequence[dict[str, Any]], metric: str) -> float:
    return statistics.median(r[metric] for r in runs)


def summary(size: dict[str, Any]) -> dict[str, Any]:
    runs = size["runs"]
    s: dict[str, Any] = {}
    for k in KINDS:
        s[k] = {load: {m: med(runs[k][load], m) for m in ("rps", "p50_ms", "p99_ms", "non_2xx")}
                for load in runs[k]}  # fmt: skip
        for load in runs[k]:
            cpu = [r["cpu_us"] for r in runs[k][load] if "cpu_us" in r]
            s[k][load]["cpu_us"] = statistics.median(cpu) if cpu else float("nan")
    base = s["empty"]["c32"]
    for k in KINDS:
        s[k]["ratio"] = s[k]["c32"]["rps"] / base["rps"]
        s[k]["p99_ratio"] = s[k]["c32"]["p99_ms"] / base["p99_ms"]

    def per_round(a: str, b: str) -> list[float]:
        return [x["rps"] / y["rps"] for x, y in zip(runs[a]["c32"], runs[b]["c32"], strict=True)]

    s["per_round"] = {f"{a}/{b}": per_round(a, b) for a, b in
                      (("check", "empty"), ("logged", "empty"), ("check", "pg"),
                       ("check", "redis"), ("logged", "pg"), ("logged", "redis"))}  # fmt: skip
    return s


TARGETS = (  # (label, numerator, denominator, minimum, DESIGN §5 wording)
    ("check / empty, throughput", "check", "empty", 0.85),
    ("check + log / empty, throughput", "logged", "empty", 0.80),
    ("check / PostgreSQL, throughput", "check", "pg", 2.0),
    ("check / Redis, throughput", "check", "redis", 2.0),
)


def report(res: dict[str, Any]) -> str:
    lines = []
    m = res["machine"]
    lines.append(f"machine: {m['cpu']}, {m['cpus']} cpus; python {m['python']}; "
                 f"load average at start {m['load_start']}, at end {m.get('load_end', '?')}")  # fmt: skip
    for size in res["sizes"]:
        s = summary(size)
        n = size["permits"]
        rounds = len(size["runs"]["empty"]["c32"])
        lines.append(f"\n{n:,} permits: medians of {rounds} rounds; servers on core 0, wrk, Redis "
                     "and the PostgreSQL backends on core 1")  # fmt: skip
        lines.append("| server | req/s (32 conn.) | ÷ (a) | p50 ms | p99 ms | p99 ÷ (a) | "
                     "server CPU µs/req | ÷ (a) | 1 conn.: req/s | p50 ms | p99 ms |")  # fmt: skip
        lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for k in KINDS:
            a, c = s[k]["c32"], s[k]["c1"]
            lines.append(f"| {LABELS[k]} | {a['rps']:,.0f} | {s[k]['ratio']:.2f} | "
                         f"{a['p50_ms']:.2f} | {a['p99_ms']:.2f} | {s[k]['p99_ratio']:.2f} | "
                         f"{a['cpu_us']:.0f} | {a['cpu_us'] / s['empty']['c32']['cpu_us']:.2f} | "
                         f"{c['rps']:,.0f} | {c['p50_ms']:.3f} | {c['p99_ms']:.3f} |")  # fmt: skip
        extra = [load for load in size["runs"]["empty"] if load not in ("c32", "c1")]
        for load in extra:
            lines.append(f"\n{load[1:]} connections | req/s | ÷ (a) | p50 ms | p99 ms |")
            lines.append("|---|---:|---:|---:|---:|")
            for k in KINDS:
                a = s[k][load]
                lines.append(f"| {LABELS[k]} | {a['rps']:,.0f} | "
                             f"{a['rps'] / s['empty'][load]['rps']:.2f} | {a['p50_ms']:.2f} | "
                             f"{a['p99_ms']:.2f} |")  # fmt: skip
        errors = {k: sum(r["non_2xx"] for load in size["runs"][k] for r in size["runs"][k][load])
                  for k in KINDS}  # fmt: skip
        lines.append("non-2xx answers: " + ", ".join(f"{k} {v:.0f}" for k, v in errors.items()))
        lines.append("\n| target (DESIGN §5) | throughput: ratio of medians | per round | met | "
                     "by server CPU per request | met |")  # fmt: skip
        lines.append("|---|---:|---|---|---:|---|")

        def capacity(a: str, b: str, s: dict[str, Any] = s) -> float:
            """The throughput ratio the CPU costs give, each server on a core of its own."""
            return float(s[b]["c32"]["cpu_us"] / s[a]["c32"]["cpu_us"])

        for label, a, b, minimum in TARGETS:
            ratio = s[a]["c32"]["rps"] / s[b]["c32"]["rps"]
            rounds_ = ", ".join(f"{x:.2f}" for x in s["per_round"][f"{a}/{b}"])
            cap = capacity(a, b)
            lines.append(f"| {label} ≥ {minimum:g} | {ratio:.2f} | {rounds_} | "
                         f"{'yes' if ratio >= minimum else '**no**'} | {cap:.2f} | "
                         f"{'yes' if cap >= minimum else '**no**'} |")  # fmt: skip
        p99 = s["check"]["p99_ratio"]
        lines.append(f"| check p99 ÷ empty p99 ≤ 1.5 | {p99:.2f} | | "
                     f"{'yes' if p99 <= 1.5 else '**no**'} | | |")  # fmt: skip
        for label, a, b in (("check + log / PostgreSQL", "logged", "pg"),
                            ("check + log / Redis", "logged", "redis")):  # fmt: skip
            ratio = s[a]["c32"]["rps"] / s[b]["c32"]["rps"]
            lines.append(f"| ({label}) | {ratio:.2f} | | | {capacity(a, b):.2f} | |")
        lines.append(f"\nstores: Varco snapshot {size['snapshot_bytes_per_permit']:.1f} bytes/permit; "
                     f"PostgreSQL {size['pg']['version']} table + index "
                     f"{size['pg']['bytes_per_permit']:.0f} bytes/permit (shared_buffers "
                     f"{size['pg']['shared_buffers']}, {size['pg']['pinned_backends']} pooled "
                     f"backends pinned), Redis {size['redis']['version']} "
                     f"{size['redis']['bytes_per_permit']:.0f} bytes/permit; load "
                     f"{size['pg']['load_s']:.0f} s / {size['redis']['load_s']:.0f} s")  # fmt: skip
        lines.append("server RSS after the rounds, MB: "
                     + ", ".join(f"{k} {v:.0f}" for k, v in size["rss_mb"].items()))
        lines.append("verification: Varco's verdicts on the sample: "
                     + ", ".join(f"{k} {v}" for k, v in sorted(size["verdicts"].items()))
                     + "; (c), (d), (e) answered every request identically")  # fmt: skip
        for k, prof in size.get("profiles", {}).items():
            stored = ROOT / prof.get("file", "-")
            if stored.is_file():  # recomputed, so a change of summary applies on --replot
                prof = {**prof, **profile_summary(stored.read_text())}
            cpu = s[k]["c32"]["cpu_us"]
            lines.append(f"\nprofile of {k}: {prof.get('file')} (py-spy collapsed stacks); µs "
                         f"= share × the median server CPU per request ({cpu:.0f} µs)")  # fmt: skip
            for how in ("inclusive", "self"):
                lines.append(f"\nprofile of {k} under load, share of the busy samples, {how}:")
                lines.extend(f"  {share * 100:5.1f} %  {share * cpu:5.0f} µs  {name}"
                             for name, share in prof.get(how, []))  # fmt: skip
    if res.get("index"):
        rows = res["index"]
        lines.append("\nin-process index (bench/bench_index.py)")
        lines.append("| permits | build s | lookup structure B/permit | with ids B/permit | "
                     "dict B/permit | single lookup ns | dict.get ns | batch ns/plate |")  # fmt: skip
        lines.append("|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in rows:
            d_b = f"{r['dict_bytes_per_permit']:.0f}" if "dict_bytes_per_permit" in r else "–"
            d_g = f"{r['dict_get_ns']:.0f}" if "dict_get_ns" in r else "–"
            lines.append(f"| {r['permits']:,} | {r['build_s']:.1f} | "
                         f"{r['index_bytes_per_permit']:.1f} | {r['with_ids_bytes_per_permit']:.1f} "
                         f"| {d_b} | {r['single_records_ns']:.0f} | {d_g} | "
                         f"{r['batch_find_ns_per_plate']:.0f} |")  # fmt: skip
    return "\n".join(lines)


def plot(res: dict[str, Any], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    out.mkdir(parents=True, exist_ok=True)

    def save(fig: Any, path: Path) -> Path:
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return path

    written = []
    sizes = res["sizes"]
    if sizes:
        # Latency distribution per backend: a panel per size (columns) and load (rows).
        loads = (("c32", "32 connections"), ("c1", "1 connection"))
        fig, axes = plt.subplots(len(loads), len(sizes), figsize=(6.5 * len(sizes), 4.2 * len(loads)),
                                 squeeze=False)  # fmt: skip
        for row, (load, what) in enumerate(loads):
            for ax, size in zip(axes[row], sizes, strict=True):
                for k in KINDS:
                    runs = size["runs"][k][load]
                    pcts = list(runs[0]["pct_ms"])
                    xs = [1 / (1 - float(p) / 100) for p in pcts]
                    ys = [statistics.median(r["pct_ms"][p] for r in runs) for p in pcts]
                    ax.plot(xs, ys, marker="o", ms=3, label=LABELS[k], color=COLORS[k])
                ax.set_xscale("log")
                if load == "c1":
                    ax.set_yscale("log")
                ticks = [1 / (1 - p / 100) for p in (50, 90, 99, 99.9, 99.99)]
                ax.set_xticks(ticks, ["p50", "p90", "p99", "p99.9", "p99.99"])
                ax.set_xlim(1, None)
                ax.set_ylabel("latency, ms (median over rounds)")
                ax.set_title(f"{size['permits']:,} permits, {what}, server on 1 core", fontsize=10)
                ax.grid(True, which="both", alpha=0.3)
                ax.legend(fontsize=7)
        written.append(save(fig, out / "latency.png"))
        # Throughput bars (left) and the server's CPU per request (right), min-max over
        # rounds as error bars, ratios to (a) in the bars, the targets as lines.
        fig, axes2 = plt.subplots(1, 2, figsize=(13, 4.8))
        width = 0.8 / len(sizes)
        names = [LABELS[k].replace(" + ", "\n+ ").replace(") ", ")\n") for k in KINDS]
        for ax, metric, title, ylabel in (
            (axes2[0], "rps", "Throughput, 32 connections, server on one core",
             "requests/s (median; whiskers: min-max of rounds)"),
            (axes2[1], "cpu_us", "Server CPU per request (robust to the neighbours' load)",
             "µs of server CPU per request (median)"),
        ):  # fmt: skip
            for j, size in enumerate(sizes):
                runs = {k: [r[metric] for r in size["runs"][k]["c32"] if metric in r] for k in KINDS}
                if not all(runs.values()):
                    continue
                meds = [statistics.median(runs[k]) for k in KINDS]
                lo = [m - min(runs[k]) for m, k in zip(meds, KINDS, strict=True)]
                hi = [max(runs[k]) - m for m, k in zip(meds, KINDS, strict=True)]
                xs = [i + (j - (len(sizes) - 1) / 2) * width for i in range(len(KINDS))]
                bars = ax.bar(xs, meds, width * 0.95, yerr=[lo, hi], capsize=3,
                              color=[COLORS[k] for k in KINDS], alpha=1.0 - 0.35 * j,
                              edgecolor="k", linewidth=0.3,
                              label=f"{size['permits']:,} permits")  # fmt: skip
                for b, m in zip(bars, meds, strict=True):
                    ax.text(b.get_x() + b.get_width() / 2, m * 0.05, f"{m / meds[0]:.2f}",
                            ha="center", fontsize=8, color="white", rotation=90)  # fmt: skip
                if j == 0 and metric == "rps":
                    for frac, style in ((0.85, "--"), (0.80, ":")):
                        ax.axhline(meds[0] * frac, color="k", ls=style, lw=0.8,
                                   label=f"{frac:.2f} × (a), {size['permits']:,}")  # fmt: skip
            ax.set_xticks(range(len(KINDS)), names, fontsize=8)
            ax.set_ylabel(ylabel)
            ax.set_title(title, fontsize=10)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=7)
        written.append(save(fig, out / "throughput.png"))
    # Memory per permit by size.
    fig, ax = plt.subplots(figsize=(9.5, 4.5))
    idx = res.get("index") or []
    if idx:
        xs = [r["permits"] for r in idx]
        ax.plot(xs, [r["index_bytes_per_permit"] for r in idx], "o-", color=COLORS["check"],
                label="Varco index (lookup structure)")  # fmt: skip
        ax.plot(xs, [r["with_ids_bytes_per_permit"] for r in idx], "o--", color=COLORS["check"],
                label="Varco index with permit ids")  # fmt: skip
        dx = [r for r in idx if "dict_bytes_per_permit" in r]
        if dx:
            ax.plot([r["permits"] for r in dx], [r["dict_bytes_per_permit"] for r in dx], "s-",
                    color="#2ca02c", label="Python dict of the same plates")  # fmt: skip
    if sizes:
        xs = [s["permits"] for s in sizes]
        ax.plot(xs, [s["snapshot_bytes_per_permit"] for s in sizes], "^:", color=COLORS["logged"],
                label="Varco snapshot file (benchmark data)")  # fmt: skip
        ax.plot(xs, [s["pg"]["bytes_per_permit"] for s in sizes], "D-", color=COLORS["pg"],
                label="PostgreSQL table + btree index")  # fmt: skip
        ax.plot(xs, [s["redis"]["bytes_per_permit"] for s in sizes], "v-", color=COLORS["redis"],
                label="Redis used_memory")  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(
        lambda x, _: f"{x / 1e6:g} M" if x >= 1e6 else f"{x / 1e3:g} k"))  # fmt: skip
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda y, _: f"{y:g}"))
    ax.yaxis.set_minor_formatter(matplotlib.ticker.FuncFormatter(
        lambda y, _: f"{y:g}" if str(round(y))[0] in "25" else ""))  # fmt: skip
    for i, line in enumerate(ax.get_lines()):  # the value at each point, lines alternating
        for x, y in zip(line.get_xdata(), line.get_ydata(), strict=True):
            ax.annotate(f"{y:.0f}", (x, y), textcoords="offset points",
                        xytext=(4, 3 if i % 2 else -10), fontsize=7, color=line.get_color())  # fmt: skip
    sizes_seen = sorted({r["permits"] for r in idx} | {x["permits"] for x in sizes})
    ax.set_xticks(sizes_seen, [f"{x / 1e6:g} M" if x >= 1e6 else f"{x / 1e3:g} k"
                               for x in sizes_seen])  # fmt: skip
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("permits")
    ax.set_ylabel("bytes per permit")
    ax.set_title("Memory per permit by size")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    written.append(save(fig, out / "memory.png"))
    return written


def machine(load_key: str) -> dict[str, Any]:
    cpu = "?"
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        found = re.search(r"Model name:\s+(.+)", lscpu)
        cpu = found.group(1).strip() if found else cpu
    except OSError:
        pass
    return {"cpu": cpu, "cpus": os.cpu_count(), "python": platform.python_version(),
            "numpy": np.__version__, "date": dt.datetime.now().isoformat(timespec="seconds"),
            load_key: " ".join(f"{x:.2f}" for x in os.getloadavg())}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--permits", type=int, nargs="*", default=[1_000_000],
                   help="sizes for the HTTP figures (default 1000000; none: skip them)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--also-connections", type=int, nargs="*", default=[],
                   help="more loads per round, e.g. 128: with more requests in flight the "
                   "durable log's group commit gathers more transits per fsync")  # fmt: skip
    p.add_argument("--verify", type=int, default=1000, help="requests in the verification sample")
    p.add_argument("--index-sizes", type=int, nargs="*",
                   default=[1_000_000, 10_000_000, 30_000_000],
                   help="sizes for the in-process lookup time and memory (none: skip)")  # fmt: skip
    p.add_argument("--dict-max", type=int, default=10_000_000,
                   help="measure the dict baseline up to this size (~300 bytes a permit)")
    p.add_argument("--pg-dsn", default=os.environ.get("BENCH_PG_DSN",
                                                      "postgresql://postgres@127.0.0.1:5432/postgres"),
                   help="a PostgreSQL where a throwaway database may be created")  # fmt: skip
    p.add_argument("--pg-socket", default="/var/run/postgresql" if Path(
        "/var/run/postgresql").is_dir() else "", help="peer (d) connects through this Unix "
        "socket directory, as (c) and (e) reach Redis ('' for the DSN's TCP address)")  # fmt: skip
    p.add_argument("--pg-pool", type=int, default=16, help="asyncpg pool size of peer (d)")
    p.add_argument("--profile", nargs="*", choices=KINDS, default=[],
                   help="after the rounds, py-spy these servers under load")
    p.add_argument("--profile-seconds", type=int, default=10)
    p.add_argument("--results", type=Path, default=RESULTS)
    p.add_argument("--plots", type=Path, default=PLOTS)
    p.add_argument("--profiles", type=Path, default=PROFILES)
    p.add_argument("--replot", action="store_true",
                   help="only redraw the plots and reprint the tables from --results")
    args = p.parse_args(argv)
    if args.replot:
        res = json.loads(args.results.read_text())
    else:
        if args.permits and (not shutil.which("wrk") or not shutil.which("taskset")):
            print("needs wrk and taskset (Debian: apt-get install wrk util-linux)", file=sys.stderr)
            return 2
        res = {"machine": machine("load_start"), "sizes": [], "index": []}
        res["command"] = " ".join(["python -m bench.compare", *(argv if argv is not None
                                                                else sys.argv[1:])])  # fmt: skip
        try:
            for n in args.permits:
                res["sizes"].append(measure_size(args, n))
        except VerificationError as exc:
            print(f"\nVERIFICATION FAILED, nothing measured:\n{exc}", file=sys.stderr)
            return 1
        res["index"] = measure_index(args.index_sizes, args.dict_max)
        res["machine"]["load_end"] = machine("load_end")["load_end"]
        args.results.parent.mkdir(parents=True, exist_ok=True)
        args.results.write_text(json.dumps(res, indent=1))
    print("\n" + report(res))
    for path in plot(res, args.plots):
        print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
