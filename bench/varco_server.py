"""The service for bench_transits: `varco serve`'s app on local snapshot files, with the
durable transit log on the Redis at --redis (or, with --no-log, judging without recording:
the difference between the two is what the log costs). `bench_app` is the same app for the
workers of `varco serve --workers N` (bench/compare_servers.py starts the supervisor)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

from enforcement.config.load import load_config
from enforcement.config.settings import Settings, with_changes
from enforcement.core.rules import Rules
from enforcement.http.app import create_app
from enforcement.http.server import run_app

if TYPE_CHECKING:
    from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent


def bench_app(
    settings: Settings,
    rules: Rules,
    redis_url: str | None,
    *,
    record: bool,
    log_redis: str | None,
) -> web.Application:
    """A worker's app (server.AppFactory): what main() serves, on the local snapshot files
    (the supervisor runs with --redis off: `redis_url` is None)."""
    return create_app(settings, rules, record=record, transit_redis_url=log_redis)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("port", type=int)
    p.add_argument("--redis", help="Redis URL for the transit log")
    p.add_argument("--no-log", action="store_true")
    p.add_argument("--max-in-flight", type=int, help="server.max_in_flight (default: config)")
    p.add_argument("--queue-wait-ms", type=float, help="server.max_queue_wait_ms")
    p.add_argument("--target-latency-ms", type=float, help="server.target_latency_ms (0: fixed)")
    args = p.parse_args()
    settings, rules = load_config(ROOT / "examples" / "demo.toml", os.environ)
    server: dict[str, object] = {"host": "127.0.0.1", "port": args.port}
    if args.max_in_flight is not None:
        server["max_in_flight"] = args.max_in_flight
    if args.queue_wait_ms is not None:
        server["max_queue_wait_s"] = args.queue_wait_ms / 1000
    if args.target_latency_ms is not None:
        server["target_latency_s"] = args.target_latency_ms / 1000
    settings = with_changes(settings, server=server)
    app = create_app(settings, rules, record=not args.no_log, transit_redis_url=args.redis)
    run_app(app, settings)  # as `varco serve` serves it


if __name__ == "__main__":
    main()
