"""Locust load for a running Varco: a day of a large ZTL, compressed. The users are
bench/locustfile.py's; this file adds the day-shaped load (a locust `LoadTestShape`, which
takes over from -u, -r and -t: so it lives apart, and a plain `-f bench/locustfile.py` run
does as locust's flags say).

Start the service (`make run`, i.e. `varco demo`), then, from the checkout:

    .venv/bin/locust -f bench/locust_day.py --host http://127.0.0.1:8080 --headless \\
        --day-seconds 8640 --csv data/locust-day --csv-full-history

which replays Milan Area B's day (~820,000 transits, morning and evening peaks) ten times
faster: a day in 8,640 s, ~95 transits/s on average and ~210/s at the 8-9 peak (real time:
9.5/s and 21/s; the default `--day-seconds 1440`, sixty times, peaks at ~1,280/s, more than
one locust process on a shared 2-core machine sends: add `--processes N` or workers), and writes
`data/locust-day_stats.csv` (per request kind), `_stats_history.csv` (every few seconds: the
shape over the day), `_failures.csv` and `_exceptions.csv`. Only part of the day:
`--start-hour 7 --hours 3` (the morning peak).
"""

from __future__ import annotations

import math
from typing import Any

from locust import LoadTestShape, events

# The users and what they send, picked up by locust from this module's names (locust puts
# the working directory, the checkout, on the path).
from bench.locustfile import TRANSITS_PER_TASK, Camera, Police  # noqa: F401

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


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    g = parser.add_argument_group("Varco day shape (bench/locust_day.py)")
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


def transit_rate(hour: float, day_transits: int = DAY_TRANSITS) -> float:
    """Transits per real second at `hour` (0-24, wraps), linear between hour midpoints."""
    x = (hour - 0.5) % 24
    h = int(x)
    frac = x - h
    share = SHARES[h] * (1 - frac) + SHARES[(h + 1) % 24] * frac
    return day_transits * share / 3600


class MilanDay(LoadTestShape):
    """Camera users for the compressed day's transit rate, plus the police users."""

    def tick(self) -> tuple[int, float] | None:
        opts = self.runner.environment.parsed_options if self.runner else None
        if opts is None:
            return None
        run_time = self.get_run_time()
        per_hour = opts.day_seconds / 24  # seconds of the run per hour of the day
        if run_time > opts.hours * per_hour:
            return None
        hour = opts.start_hour + run_time / per_hour
        rate = transit_rate(hour, opts.day_transits) * 86400 / opts.day_seconds
        cameras = max(1, math.ceil(rate / TRANSITS_PER_TASK))
        step = 10 ** max(0, len(str(cameras)) - 2)  # two significant digits: fewer re-spawns
        users = max(1, round(cameras / step)) * step + opts.police_users
        return users, float(max(users, 10))
