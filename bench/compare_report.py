"""bench.compare's tables: per size, medians over rounds, ratios to the ceiling, issue 23's
goals (Varco against the ceiling and against its peers, like for like), the scale-out ratios,
the stores, the profiles; then the in-process index."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from .compare_data import ROOT
from .compare_profile import profile_summary
from .compare_servers import KINDS, LABELS


def med(runs: Sequence[dict[str, Any]], metric: str) -> float:
    return statistics.median(r[metric] for r in runs)


def kinds_of(size: dict[str, Any]) -> list[str]:
    """The kinds a size was run with, in KINDS order (older results: the first five)."""
    return [k for k in KINDS if k in size["runs"]]


def summary(size: dict[str, Any]) -> dict[str, Any]:
    runs = size["runs"]
    kinds = kinds_of(size)
    s: dict[str, Any] = {}
    for k in kinds:
        s[k] = {
            load: {m: med(runs[k][load], m) for m in ("rps", "p50_ms", "p99_ms", "non_2xx")}
            for load in runs[k]
        }
        for load in runs[k]:
            cpu = [r["cpu_us"] for r in runs[k][load] if "cpu_us" in r]
            s[k][load]["cpu_us"] = statistics.median(cpu) if cpu else float("nan")
    base = s["empty"]["c32"]
    for k in kinds:
        s[k]["ratio"] = s[k]["c32"]["rps"] / base["rps"]
        s[k]["p99_ratio"] = s[k]["c32"]["p99_ms"] / base["p99_ms"]

    def per_round(a: str, b: str) -> list[float]:
        return [x["rps"] / y["rps"] for x, y in zip(runs[a]["c32"], runs[b]["c32"], strict=True)]

    pairs = [(a, b) for _, a, b, _ in TARGETS] + [(a, b) for _, a, b in OTHER_RATIOS]
    s["per_round"] = {f"{a}/{b}": per_round(a, b) for a, b in pairs if a in runs and b in runs}
    return s


TARGETS = (  # (label, numerator, denominator, minimum): issue 23's goals
    ("check / empty, throughput", "check", "empty", 0.85),
    ("check + log / empty, throughput", "logged", "empty", 0.80),
    ("check / PostgreSQL, throughput", "check", "pg", 2.0),
    ("check / Redis, throughput", "check", "redis", 2.0),
    ("check + log / PostgreSQL + INSERT, throughput", "logged", "pg-logged", 2.0),
    ("check + log / Redis + XADD, throughput", "logged", "redis-logged", 2.0),
)
OTHER_RATIOS = (  # (label, numerator, denominator): no goal, reported
    ("empty + durable log / empty: the most (c) could reach", "floor", "empty"),
    ("check + log / empty + durable log", "logged", "floor"),
    ("check + log / PostgreSQL, a peer that logs nothing", "logged", "pg"),
    ("check + log / Redis, a peer that logs nothing", "logged", "redis"),
    ("check, 2 workers / 1 worker", "check-w2", "check"),
    ("check + log, 2 workers / 1 worker", "logged-w2", "logged"),
)


def goals(s: dict[str, Any], kinds: list[str]) -> list[str]:
    """Issue 23's goals met or not, by throughput and by server CPU per request; then the
    ratios without a goal (Varco logging against peers that log nothing; scale-out)."""
    lines = [
        "\n| goal (issue 23) | throughput: ratio of medians | per round | met | "
        "by server CPU per request | met |",
        "|---|---:|---|---|---:|---|",
    ]

    def capacity(a: str, b: str) -> float:
        """The throughput ratio the CPU costs give, each server on a core of its own."""
        return float(s[b]["c32"]["cpu_us"] / s[a]["c32"]["cpu_us"])

    def ratio(a: str, b: str) -> tuple[float, str]:
        rounds_ = ", ".join(f"{x:.2f}" for x in s["per_round"][f"{a}/{b}"])
        return s[a]["c32"]["rps"] / s[b]["c32"]["rps"], rounds_

    for label, a, b, minimum in TARGETS:
        if a not in kinds or b not in kinds:
            lines.append(f"| {label} ≥ {minimum:g} | not run | | | | |")
            continue
        r, rounds_ = ratio(a, b)
        cap = capacity(a, b)
        lines.append(
            f"| {label} ≥ {minimum:g} | {r:.2f} | {rounds_} | "
            f"{'yes' if r >= minimum else '**no**'} | {cap:.2f} | "
            f"{'yes' if cap >= minimum else '**no**'} |"
        )
    p99 = s["check"]["p99_ratio"]
    lines.append(
        f"| check p99 ÷ empty p99 ≤ 1.5 | {p99:.2f} | | {'yes' if p99 <= 1.5 else '**no**'} | | |"
    )
    for label, a, b in OTHER_RATIOS:
        if a in kinds and b in kinds:
            r, rounds_ = ratio(a, b)
            lines.append(f"| ({label}) | {r:.2f} | {rounds_} | | {capacity(a, b):.2f} | |")
    if "check-w2" in kinds or "logged-w2" in kinds:
        lines.append(
            "2 workers on a 2-core host: the workers share the cores with wrk, the Redis "
            "servers and the PostgreSQL backends (one worker: core 0 alone), so the "
            "throughput ratio is what a second process buys here, not a second core's worth; "
            "by CPU, the ratio is 1 worker's µs/request ÷ 2 workers' (both processes summed)."
        )
    return lines


def report(res: dict[str, Any]) -> str:
    lines = []
    m = res["machine"]
    lines.append(
        f"machine: {m['cpu']}, {m['cpus']} cpus; python {m['python']}; "
        f"load average at start {m['load_start']}, at end {m.get('load_end', '?')}"
    )
    for size in res["sizes"]:
        s = summary(size)
        n = size["permits"]
        rounds = len(size["runs"]["empty"]["c32"])
        kinds = kinds_of(size)
        lines.append(
            f"\n{n:,} permits: medians of {rounds} rounds; servers on core 0, wrk, Redis "
            "and the PostgreSQL backends on core 1; the 2-worker servers on both cores"
        )
        lines.append(
            "| server | 2xx/s (32 conn.) | ÷ (a) | p50 ms | p99 ms | p99 ÷ (a) | "
            "server CPU µs/req | ÷ (a) | 1 conn.: req/s | p50 ms | p99 ms |"
        )
        lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for k in kinds:
            a, c = s[k]["c32"], s[k]["c1"]
            lines.append(
                f"| {LABELS[k]} | {a['rps']:,.0f} | {s[k]['ratio']:.2f} | "
                f"{a['p50_ms']:.2f} | {a['p99_ms']:.2f} | {s[k]['p99_ratio']:.2f} | "
                f"{a['cpu_us']:.0f} | {a['cpu_us'] / s['empty']['c32']['cpu_us']:.2f} | "
                f"{c['rps']:,.0f} | {c['p50_ms']:.3f} | {c['p99_ms']:.3f} |"
            )
        extra = [load for load in size["runs"]["empty"] if load not in ("c32", "c1")]
        for load in extra:
            lines.append(f"\n{load[1:]} connections | req/s | ÷ (a) | p50 ms | p99 ms |")
            lines.append("|---|---:|---:|---:|---:|")
            for k in kinds:
                a = s[k][load]
                lines.append(
                    f"| {LABELS[k]} | {a['rps']:,.0f} | "
                    f"{a['rps'] / s['empty'][load]['rps']:.2f} | {a['p50_ms']:.2f} | "
                    f"{a['p99_ms']:.2f} |"
                )
        errors = {
            k: sum(r["non_2xx"] for load in size["runs"][k] for r in size["runs"][k][load])
            for k in kinds
        }
        lines.append(
            "non-2xx answers: "
            + ", ".join(f"{k} {v:.0f}" for k, v in errors.items())
            + (
                ""
                if not any(errors.values())
                else " (req/s and CPU µs/req count 2xx answers only: refusals are not throughput)"
                if "wrk_rps" in size["runs"]["empty"]["c32"][0]
                else " (**counted in req/s**: results from before the 2xx-only count)"
            )
        )
        lines.extend(goals(s, kinds))
        lines.append(
            f"\nstores: Varco snapshot {size['snapshot_bytes_per_permit']:.1f} bytes/permit; "
            f"PostgreSQL {size['pg']['version']} table + index "
            f"{size['pg']['bytes_per_permit']:.0f} bytes/permit (shared_buffers "
            f"{size['pg']['shared_buffers']}, {size['pg']['pinned_backends']} pooled "
            f"backends pinned), Redis {size['redis']['version']} "
            f"{size['redis']['bytes_per_permit']:.0f} bytes/permit; load "
            f"{size['pg']['load_s']:.0f} s / {size['redis']['load_s']:.0f} s"
        )
        if "appendfsync" in size["redis"]:
            lines.append(
                f"durability of the logging peers: PostgreSQL synchronous_commit on, fsync "
                f"{size['pg']['fsync']}, wal_sync_method {size['pg']['wal_sync_method']}, "
                f"commit_delay {size['pg']['commit_delay']}; Redis appendfsync "
                f"{size['redis']['appendfsync']} (Varco's log Redis: always)"
            )
        lines.append(
            "server RSS after the rounds, MB: "
            + ", ".join(f"{k} {v:.0f}" for k, v in size["rss_mb"].items())
        )
        lines.append(
            "verification: Varco's verdicts on the sample: "
            + ", ".join(f"{k} {v}" for k, v in sorted(size["verdicts"].items()))
            + "; "
            + ", ".join(LABELS[k].split()[0] for k in kinds if k not in ("empty", "check"))
            + " answered every request identically"
            + "".join(
                f"; {LABELS[k].split()[0]} logged {v} of them as answered"
                for k, v in size.get("logged_rows", {}).items()
            )
        )
        for k, prof in size.get("profiles", {}).items():
            stored = ROOT / prof.get("file", "-")
            if stored.is_file():  # recomputed, so a change of summary applies on --replot
                prof = {**prof, **profile_summary(stored.read_text())}
            cpu = s[k]["c32"]["cpu_us"]
            lines.append(
                f"\nprofile of {k}: {prof.get('file')} (py-spy collapsed stacks); µs "
                f"= share × the median server CPU per request ({cpu:.0f} µs)"
            )
            for how in ("inclusive", "self"):
                lines.append(f"\nprofile of {k} under load, share of the busy samples, {how}:")
                lines.extend(
                    f"  {share * 100:5.1f} %  {share * cpu:5.0f} µs  {name}"
                    for name, share in prof.get(how, [])
                )
    if res.get("index"):
        rows = res["index"]
        lines.append("\nin-process index (bench/bench_index.py)")
        lines.append(
            "| permits | build s | lookup structure B/permit | with ids B/permit | "
            "dict B/permit | single lookup ns | dict.get ns | batch ns/plate |"
        )
        lines.append("|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in rows:
            d_b = f"{r['dict_bytes_per_permit']:.0f}" if "dict_bytes_per_permit" in r else "–"
            d_g = f"{r['dict_get_ns']:.0f}" if "dict_get_ns" in r else "–"
            lines.append(
                f"| {r['permits']:,} | {r['build_s']:.1f} | "
                f"{r['index_bytes_per_permit']:.1f} | {r['with_ids_bytes_per_permit']:.1f} "
                f"| {d_b} | {r['single_records_ns']:.0f} | {d_g} | "
                f"{r['batch_find_ns_per_plate']:.0f} |"
            )
    return "\n".join(lines)
