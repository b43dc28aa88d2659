"""Prometheus metrics, hand-rolled: a few counters and histograms cheap enough for the hot path.

Labels are verdicts, reasons, routes and status codes only: never plates or API keys. A
process's metrics are `Family` records first (rendered, or sent to a sibling worker that adds
them to its own: `merge`, siblings.py), so one scrape of `serve --workers N` is the service.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Callable
from typing import Final, Literal

import msgspec

LATENCY_BUCKETS_S: Final = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
)


def _number(v: float) -> str:
    """A sample's value, whole numbers exactly (bytes: `:g` would keep 6 digits)."""
    return str(int(v)) if float(v).is_integer() else repr(float(v))


class Histogram:
    def __init__(self) -> None:
        self.counts = [0] * (len(LATENCY_BUCKETS_S) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(LATENCY_BUCKETS_S, value)] += 1
        self.total += value


# How one metric of several worker processes makes the service's (`serve --workers`,
# siblings.py): counters add up; a gauge takes the worst worker's value, which is its
# largest (a lag, an age, a stale flag) or, for how current the index is, its smallest.
Merge = Literal["sum", "min", "max"]


class Family(msgspec.Struct, array_like=True):
    """One metric as rendered: its samples are (name suffix and labels, value), e.g.
    ('_bucket{route="/v1/transits",le="0.001"}', 12.0)."""

    name: str
    kind: str  # counter, gauge or histogram
    help: str
    merge: str  # a Merge
    samples: list[tuple[str, float]]


class Metrics:
    def __init__(self) -> None:
        self.verdicts: defaultdict[tuple[str, str], int] = defaultdict(int)
        self.requests: defaultdict[tuple[str, int], int] = defaultdict(int)
        self.latency: defaultdict[str, Histogram] = defaultdict(Histogram)
        self.gauges: dict[str, tuple[str, Merge, Callable[[], float]]] = {}
        self.labelled: dict[str, tuple[str, str, Merge, Callable[[], dict[str, float]]]] = {}
        self.counted: dict[str, tuple[str, str, Callable[[], dict[str, float]]]] = {}

    def gauge(self, name: str, help_: str, fn: Callable[[], float], merge: Merge = "max") -> None:
        """A value read at render time; `merge` says how workers' values combine (a count
        kept by its owner, `..._total`, is "sum")."""
        self.gauges[name] = (help_, merge, fn)

    def gauge_by(
        self,
        name: str,
        help_: str,
        label: str,
        fn: Callable[[], dict[str, float]],
        merge: Merge = "max",
    ) -> None:
        """A gauge per label value (feed names: configuration, never data)."""
        self.labelled[name] = (help_, label, merge, fn)

    def counter_by(
        self, name: str, help_: str, label: str, fn: Callable[[], dict[str, float]]
    ) -> None:
        """A counter per label value, read from its owner at render time (outcomes such as
        ok/failed: never data)."""
        self.counted[name] = (help_, label, fn)

    def families(self) -> list[Family]:
        """Every metric of this process, as `render` writes it and workers exchange it."""
        out = [
            Family(
                "varco_workers",
                "gauge",
                "Worker processes whose metrics this scrape adds up.",
                "sum",
                [("", 1.0)],
            ),
            Family(
                "varco_transits_total",
                "counter",
                "Transit verdicts by verdict and reason.",
                "sum",
                [
                    (f'{{verdict="{verdict}",reason="{reason}"}}', n)
                    for (verdict, reason), n in sorted(self.verdicts.items())
                ],
            ),
            Family(
                "varco_http_requests_total",
                "counter",
                "HTTP requests by route and status.",
                "sum",
                [
                    (f'{{route="{route}",status="{status}"}}', n)
                    for (route, status), n in sorted(self.requests.items())
                ],
            ),
        ]
        latency: list[tuple[str, float]] = []
        for route, h in sorted(self.latency.items()):
            acc = 0
            for bound, c in zip(LATENCY_BUCKETS_S, h.counts, strict=False):
                acc += c
                latency.append((f'_bucket{{route="{route}",le="{bound}"}}', acc))
            acc += h.counts[-1]
            latency.append((f'_bucket{{route="{route}",le="+Inf"}}', acc))
            latency.append((f'_sum{{route="{route}"}}', round(h.total, 6)))
            latency.append((f'_count{{route="{route}"}}', acc))
        out.append(
            Family(
                "varco_http_request_seconds",
                "histogram",
                "Time spent in the handler.",
                "sum",
                latency,
            )
        )
        for name, (help_, merge, fn) in sorted(self.gauges.items()):
            out.append(Family(name, "gauge", help_, merge, [("", float(fn()))]))
        for name, (help_, label, merge, values) in sorted(self.labelled.items()):
            samples = [(f'{{{label}="{k}"}}', float(v)) for k, v in sorted(values().items())]
            out.append(Family(name, "gauge", help_, merge, samples))
        for name, (help_, label, values) in sorted(self.counted.items()):
            samples = [(f'{{{label}="{k}"}}', float(v)) for k, v in sorted(values().items())]
            out.append(Family(name, "counter", help_, "sum", samples))
        return out

    def render(self) -> str:
        return render(self.families())


def render(families: list[Family]) -> str:
    """The Prometheus text format."""
    out = []
    for f in families:
        out += [f"# HELP {f.name} {f.help}", f"# TYPE {f.name} {f.kind}"]
        out += [f"{f.name}{key} {_number(value)}" for key, value in f.samples]
    return "\n".join(out) + "\n"


def merge(workers: list[list[Family]]) -> list[Family]:
    """The service's metrics from its workers' (each a `families()`), sample by sample."""
    combine: dict[str, Callable[[float, float], float]] = {
        "sum": lambda a, b: a + b,
        "min": min,
        "max": max,
    }
    merged: dict[str, tuple[Family, dict[str, float]]] = {}
    for families in workers:
        for f in families:
            if f.name not in merged:
                merged[f.name] = (f, {})
            first, values = merged[f.name]
            op = combine.get(first.merge, combine["max"])
            for key, value in f.samples:
                values[key] = op(values[key], value) if key in values else value
    return [
        Family(f.name, f.kind, f.help, f.merge, list(values.items()))
        for f, values in merged.values()
    ]
