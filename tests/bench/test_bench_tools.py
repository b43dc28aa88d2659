"""The benchmark tools load, and bench.compare's verification (bench/compare_verify.py) rejects
a peer that answers differently from Varco (no benchmark runs here)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from bench import (
    bench_log,
    compare_data,
    compare_profile,
    compare_run,
    compare_verify,
    peer_server,
)
from enforcement.config.load import load_config, make_checker
from enforcement.core.index import IndexMeta, build_index
from enforcement.core.live import bind
from enforcement.core.plates import key_plate, normalise
from enforcement.http.schemas import ENCODER
from enforcement.replica.redis_server import EmbeddedRedis

ROOT = Path(__file__).resolve().parent.parent.parent


def test_locustfiles_load() -> None:
    # Locust patches the standard library with gevent on import: never in the test process.
    check = (
        "import bench.locustfile as lf, bench.locust_day as day\n"
        "assert {'Camera', 'Police'} <= set(vars(lf)) and 'MilanDay' not in vars(lf)\n"
        "assert {'Camera', 'Police', 'MilanDay'} <= set(vars(day))\n"
        "total = sum(day.transit_rate(h / 60) * 60 for h in range(24 * 60))\n"
        "assert abs(total - day.DAY_TRANSITS) / day.DAY_TRANSITS < 0.01, total\n"
        "peak = max(range(24), key=lambda h: day.transit_rate(h + 0.5))\n"
        "assert peak in (7, 8, 17, 18), peak\n"
    )
    subprocess.run([sys.executable, "-c", check], cwd=ROOT, check=True, timeout=60)
    for locustfile in ("bench/locustfile.py", "bench/locust_day.py"):
        out = subprocess.run(
            [str(Path(sys.executable).with_name("locust")), "-f", locustfile, "--list"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        assert "Camera" in out.stdout and "Police" in out.stdout


def test_compare_helpers() -> None:
    ds = compare_data.make_dataset(3000, t=1_790_000_000)
    assert ds.n == 3000 and len(ds.sample) == 1000
    assert compare_data.plate_texts(ds.keys[:50]) == [key_plate(int(k)) for k in ds.keys[:50]]
    assert compare_data.with_db("postgresql://u@h:5432/postgres", "x", "/run/pg") == (
        "postgresql://u@/x?host=%2Frun%2Fpg&port=5432"
    )
    assert "PCT" in compare_run.DONE_LUA


def _answers(
    ds: compare_data.Dataset, rows_of: dict[str, list[tuple[str, int, int, int]]]
) -> tuple[list[dict], list[dict]]:
    """Varco's answers (the real checker over the dataset's index) and the peer's (its rule
    over `rows_of`, what the peer's database holds), to the dataset's sample, as JSON."""
    settings, rules = load_config(compare_data.CONFIG, {})
    meta = IndexMeta(1, int(time.time()), tuple(rules.types), tuple(rules.zones))
    index = build_index(
        meta,
        ds.keys,
        ds.start,
        ds.end,
        ds.zones,
        np.arange(ds.n),
        ds.type_no,
        np.ones(ds.n),
        ds.ids(),
    )
    live, checker = bind(index, rules), make_checker(rules, settings)
    gate = rules.gates[compare_data.GATE]
    mask = live.gate_masks[gate.code]
    grace = rules.zones[gate.zone].grace_s
    varco, peer = [], []
    for i, text in enumerate(ds.sample):
        v = checker.check(live, normalise(text), ds.t, gate, 0.92, time.time(), f"e{i}")
        p = peer_server.judge(
            rows_of.get(text, []),
            text,
            ds.t,
            mask,
            lambda x: rules.clock.to_datetime(x + grace),
            f"e{i}",
        )
        varco.append({**json.loads(ENCODER.encode(v)), "_status": 200})
        peer.append({**json.loads(ENCODER.encode(p)), "_status": 200})
    return varco, peer


def test_verification_accepts_the_peer_rule_and_rejects_a_different_answer() -> None:
    ds = compare_data.make_dataset(3000, t=int(time.time()) - 60)
    ids = ds.ids()
    rows_of: dict[str, list[tuple[str, int, int, int]]] = defaultdict(list)
    for i, text in enumerate(compare_data.plate_texts(ds.keys)):
        rows_of[text].append((ids[i], int(ds.start[i]), int(ds.end[i]), int(ds.zones[i])))
    varco, peer = _answers(ds, rows_of)
    kinds = {(a["verdict"], a["reason"]) for a in varco}
    assert {
        ("allowed", "permit"),
        ("pending", "no_permit"),
        ("pending", "expired"),
        ("pending", "not_yet_valid"),
    } <= kinds
    compare_verify.verify(varco, {"pg": peer, "redis": peer})  # the same rule: accepted

    # A peer whose store lost one permit of an allowed plate answers differently: rejected.
    allowed = next(a["plate"] for a in varco if a["verdict"] == "allowed")
    lossy = {k: (v[1:] if k == allowed else v) for k, v in rows_of.items()}
    _, wrong = _answers(ds, lossy)
    with pytest.raises(compare_verify.VerificationError, match=r"pg: \d+ of 1000 answers differ"):
        compare_verify.verify(varco, {"pg": wrong, "redis": peer})

    # Off by one at an edge (valid_to inclusive instead of exclusive): rejected too.
    edge = [dict(a) for a in peer]
    k = next(i for i, a in enumerate(varco) if a["verdict"] == "pending")
    edge[k].update(verdict="allowed", reason="permit", permits=["PD-00000001"])
    edge[k].pop("grace_until", None)
    count, shown = compare_verify.differences(varco, edge)
    assert count == 1 and "verdict" in shown[0]
    with pytest.raises(compare_verify.VerificationError):
        compare_verify.verify(varco, {"redis": edge})
    # A failed request is a difference; so is a missing answer.
    failed = [dict(a) for a in peer]
    failed[0]["_status"] = 500
    with pytest.raises(compare_verify.VerificationError):
        compare_verify.verify(varco, {"pg": failed})
    with pytest.raises(compare_verify.VerificationError):
        compare_verify.verify(varco, {"pg": peer[:-1]})


def test_top_frames_reads_collapsed_stacks() -> None:
    stacks = (
        "main (a/app.py:1);handler (a/app.py:9);check (enf/verdicts.py:90) 30\n"
        "main (a/app.py:1);read (x/streams.py:5) 10\n"
    )
    top = dict(compare_profile.top_frames(stacks))
    assert top["main (app.py)"] == 1.0 and top["check (verdicts.py)"] == 0.75


def test_camera_bench_posts_are_all_new_events() -> None:
    """bench_cameras --log is valid only if no post is a retry of another: every post
    of an endpoint, across its runs, must carry a distinct event id as Varco derives it."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    from bench.cameras_posts import post_builders, unique_bodies
    from bench.cameras_server import CONFIG
    from enforcement.core.plates import normalise as norm
    from enforcement.http.cameras import ids
    from enforcement.http.cameras.reads import Context
    from enforcement.http.cameras.routes import VENDORS

    settings, _ = load_config(CONFIG, {})
    cameras = {c.vendor: c for c in settings.cameras.values()}
    plates = [f"AB{i:03d}CD" for i in range(50)]
    at = dt.datetime(2026, 11, 23, 17, 0, 30, tzinfo=dt.UTC)
    for name, (_, _, build) in post_builders().items():
        # Two runs in a row, and one a day of capture minutes later (runs go back in time
        # by the minute: an id made of the hour and minute alone repeated there).
        posts = (
            unique_bodies(build, plates, at, 0, 400)
            + unique_bodies(build, plates, at, 400, 400)
            + unique_bodies(build, plates, at, 1440 * len(plates), 400)
        )
        seen = set()
        for body in posts:
            if name == "native":
                seen.add(json.loads(body)["event_id"])
                continue
            camera = cameras[name]
            ctx = Context(camera, ZoneInfo(camera.timezone), 1 << 20, at.timestamp())
            (read,) = VENDORS[name].from_body(body, ctx).reads
            seen.add(
                ids.vendor(read.event_id)
                if read.event_id is not None
                else ids.synthetic(camera.id, norm(read.plate, read.country).text, read.ts)
            )
        assert len(seen) == len(posts), name


def test_handler_bench_runs_every_endpoint(capsys: pytest.CaptureFixture[str]) -> None:
    """bench_handlers calls each endpoint's handler directly: every post must answer 200
    without waiting (it raises otherwise), and every endpoint gets its line."""
    from bench import bench_handlers
    from bench.cameras_posts import post_builders

    assert bench_handlers.main(["--posts", "20", "--rounds", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    shown = {line.split()[0] for line in lines[2:]}
    assert shown == set(post_builders()), lines


def test_log_bench_measures_a_source_tree(redis_server: EmbeddedRedis) -> None:
    # The child imports `enforcement` from the tree it is given (here this one) and records
    # new transits through Intake._record: its figures are those of a working log.
    res = bench_log._run(ROOT, redis_server.url, 4, 40)
    assert res["cpu_us"] > 0 and res["per_s"] > 0
    assert 1 <= res["per_group"] <= 4  # four in flight: at most four per group commit
