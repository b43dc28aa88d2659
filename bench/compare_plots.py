"""bench.compare's plots (matplotlib): latency distributions, throughput and server CPU per
request, memory per permit by size."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from .compare_servers import KINDS, LABELS

COLORS = {
    "empty": "#9e9e9e",
    "check": "#1f77b4",
    "logged": "#4a90d9",
    "floor": "#7f7f7f",
    "pg": "#d62728",
    "redis": "#ff7f0e",
    "pg-logged": "#8c1c13",
    "redis-logged": "#b35900",
    "check-w2": "#17becf",
    "logged-w2": "#2ca02c",
}


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
    # The kinds every size was run with (older results: the first five).
    kinds = [k for k in KINDS if all(k in size["runs"] for size in sizes)]
    if sizes:
        # Latency distribution per backend: a panel per size (columns) and load (rows).
        loads = (("c32", "32 connections"), ("c1", "1 connection"))
        fig, axes = plt.subplots(
            len(loads), len(sizes), figsize=(6.5 * len(sizes), 4.2 * len(loads)), squeeze=False
        )
        for row, (load, what) in enumerate(loads):
            for ax, size in zip(axes[row], sizes, strict=True):
                for k in kinds:
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
                ax.set_title(
                    f"{size['permits']:,} permits, {what}, servers on 1 core (-w2: 2)", fontsize=10
                )
                ax.grid(True, which="both", alpha=0.3)
                ax.legend(fontsize=7)
        written.append(save(fig, out / "latency.png"))
        # Throughput bars (left) and the server's CPU per request (right), min-max over
        # rounds as error bars, ratios to (a) in the bars, the targets as lines.
        fig, axes2 = plt.subplots(2, 1, figsize=(max(9.0, 1.3 * len(kinds) + 2), 9.6))
        width = 0.8 / len(sizes)
        names = [
            LABELS[k].replace(" + ", "\n+ ").replace(") ", ")\n").replace(", ", ",\n")
            for k in kinds
        ]
        for ax, metric, title, ylabel in (
            (
                axes2[0],
                "rps",
                "Throughput, 32 connections, servers on one core (2 workers: both)",
                "requests/s (median; whiskers: min-max of rounds)",
            ),
            (
                axes2[1],
                "cpu_us",
                "Server CPU per request (robust to the neighbours' load)",
                "µs of server CPU per request (median)",
            ),
        ):
            for j, size in enumerate(sizes):
                runs = {
                    k: [r[metric] for r in size["runs"][k]["c32"] if metric in r] for k in kinds
                }
                if not all(runs.values()):
                    continue
                meds = [statistics.median(runs[k]) for k in kinds]
                lo = [m - min(runs[k]) for m, k in zip(meds, kinds, strict=True)]
                hi = [max(runs[k]) - m for m, k in zip(meds, kinds, strict=True)]
                xs = [i + (j - (len(sizes) - 1) / 2) * width for i in range(len(kinds))]
                bars = ax.bar(
                    xs,
                    meds,
                    width * 0.95,
                    yerr=[lo, hi],
                    capsize=3,
                    color=[COLORS[k] for k in kinds],
                    alpha=1.0 - 0.35 * j,
                    edgecolor="k",
                    linewidth=0.3,
                    label=f"{size['permits']:,} permits",
                )
                for b, m in zip(bars, meds, strict=True):
                    ax.text(
                        b.get_x() + b.get_width() / 2,
                        m * 0.05,
                        f"{m / meds[0]:.2f}",
                        ha="center",
                        fontsize=8,
                        color="white",
                        rotation=90,
                    )
                if j == 0 and metric == "rps":
                    for frac, style in ((0.85, "--"), (0.80, ":")):
                        ax.axhline(
                            meds[0] * frac,
                            color="k",
                            ls=style,
                            lw=0.8,
                            label=f"{frac:.2f} × (a), {size['permits']:,}",
                        )
            ax.set_xticks(range(len(kinds)), names, fontsize=7)
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
        ax.plot(
            xs,
            [r["index_bytes_per_permit"] for r in idx],
            "o-",
            color=COLORS["check"],
            label="Varco index (lookup structure)",
        )
        ax.plot(
            xs,
            [r["with_ids_bytes_per_permit"] for r in idx],
            "o--",
            color=COLORS["check"],
            label="Varco index with permit ids",
        )
        dx = [r for r in idx if "dict_bytes_per_permit" in r]
        if dx:
            ax.plot(
                [r["permits"] for r in dx],
                [r["dict_bytes_per_permit"] for r in dx],
                "s-",
                color="#2ca02c",
                label="Python dict of the same plates",
            )
    if sizes:
        xs = [s["permits"] for s in sizes]
        ax.plot(
            xs,
            [s["snapshot_bytes_per_permit"] for s in sizes],
            "^:",
            color=COLORS["logged"],
            label="Varco snapshot file (benchmark data)",
        )
        ax.plot(
            xs,
            [s["pg"]["bytes_per_permit"] for s in sizes],
            "D-",
            color=COLORS["pg"],
            label="PostgreSQL table + btree index",
        )
        ax.plot(
            xs,
            [s["redis"]["bytes_per_permit"] for s in sizes],
            "v-",
            color=COLORS["redis"],
            label="Redis used_memory",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.xaxis.set_major_formatter(
        matplotlib.ticker.FuncFormatter(
            lambda x, _: f"{x / 1e6:g} M" if x >= 1e6 else f"{x / 1e3:g} k"
        )
    )
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda y, _: f"{y:g}"))
    ax.yaxis.set_minor_formatter(
        matplotlib.ticker.FuncFormatter(lambda y, _: f"{y:g}" if str(round(y))[0] in "25" else "")
    )
    for i, line in enumerate(ax.get_lines()):  # the value at each point, lines alternating
        for x, y in zip(line.get_xdata(), line.get_ydata(), strict=True):
            ax.annotate(
                f"{y:.0f}",
                (x, y),
                textcoords="offset points",
                xytext=(4, 3 if i % 2 else -10),
                fontsize=7,
                color=line.get_color(),
            )
    sizes_seen = sorted({r["permits"] for r in idx} | {x["permits"] for x in sizes})
    ax.set_xticks(
        sizes_seen, [f"{x / 1e6:g} M" if x >= 1e6 else f"{x / 1e3:g} k" for x in sizes_seen]
    )
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("permits")
    ax.set_ylabel("bytes per permit")
    ax.set_title("Memory per permit by size")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    written.append(save(fig, out / "memory.png"))
    return written
