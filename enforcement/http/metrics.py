"""Prometheus metrics, hand-rolled: a few counters and histograms cheap enough for the hot path.

Labels are verdicts, reasons, routes and status codes only: never plates or API keys.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Callable
from typing import Final

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


class Metrics:
    def __init__(self) -> None:
        self.verdicts: defaultdict[tuple[str, str], int] = defaultdict(int)
        self.requests: defaultdict[tuple[str, int], int] = defaultdict(int)
        self.latency: defaultdict[str, Histogram] = defaultdict(Histogram)
        self.gauges: dict[str, tuple[str, Callable[[], float]]] = {}
        self.labelled: dict[str, tuple[str, str, Callable[[], dict[str, float]]]] = {}
        self.counted: dict[str, tuple[str, str, Callable[[], dict[str, float]]]] = {}

    def gauge(self, name: str, help_: str, fn: Callable[[], float]) -> None:
        self.gauges[name] = (help_, fn)

    def gauge_by(
        self, name: str, help_: str, label: str, fn: Callable[[], dict[str, float]]
    ) -> None:
        """A gauge per label value (feed names: configuration, never data)."""
        self.labelled[name] = (help_, label, fn)

    def counter_by(
        self, name: str, help_: str, label: str, fn: Callable[[], dict[str, float]]
    ) -> None:
        """A counter per label value, read from its owner at render time (outcomes such as
        ok/failed: never data)."""
        self.counted[name] = (help_, label, fn)

    def render(self) -> str:
        out = [
            "# HELP varco_transits_total Transit verdicts by verdict and reason.",
            "# TYPE varco_transits_total counter",
        ]
        for (verdict, reason), n in sorted(self.verdicts.items()):
            out.append(f'varco_transits_total{{verdict="{verdict}",reason="{reason}"}} {n}')
        out += [
            "# HELP varco_http_requests_total HTTP requests by route and status.",
            "# TYPE varco_http_requests_total counter",
        ]
        for (route, status), n in sorted(self.requests.items()):
            out.append(f'varco_http_requests_total{{route="{route}",status="{status}"}} {n}')
        out += [
            "# HELP varco_http_request_seconds Time spent in the handler.",
            "# TYPE varco_http_request_seconds histogram",
        ]
        for route, h in sorted(self.latency.items()):
            acc = 0
            for bound, c in zip(LATENCY_BUCKETS_S, h.counts, strict=False):
                acc += c
                out.append(
                    f'varco_http_request_seconds_bucket{{route="{route}",le="{bound}"}} {acc}'
                )
            acc += h.counts[-1]
            out.append(f'varco_http_request_seconds_bucket{{route="{route}",le="+Inf"}} {acc}')
            out.append(f'varco_http_request_seconds_sum{{route="{route}"}} {h.total:.6f}')
            out.append(f'varco_http_request_seconds_count{{route="{route}"}} {acc}')
        for name, (help_, fn) in sorted(self.gauges.items()):
            out += [f"# HELP {name} {help_}", f"# TYPE {name} gauge", f"{name} {_number(fn())}"]
        for name, (help_, label, values) in sorted(self.labelled.items()):
            out += [f"# HELP {name} {help_}", f"# TYPE {name} gauge"]
            out += [f'{name}{{{label}="{k}"}} {_number(v)}' for k, v in sorted(values().items())]
        for name, (help_, label, values) in sorted(self.counted.items()):
            out += [f"# HELP {name} {help_}", f"# TYPE {name} counter"]
            out += [f'{name}{{{label}="{k}"}} {_number(v)}' for k, v in sorted(values().items())]
        return "\n".join(out) + "\n"
