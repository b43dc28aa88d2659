"""The service for bench_transits: `varco serve`'s app on local snapshot files, with the
durable transit log on the Redis at --redis (or, with --no-log, judging without recording:
the difference between the two is what the log costs)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from enforcement.config.load import load_config
from enforcement.config.settings import with_changes
from enforcement.http.app import create_app
from enforcement.http.server import run_app

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("port", type=int)
    p.add_argument("--redis", help="Redis URL for the transit log")
    p.add_argument("--no-log", action="store_true")
    args = p.parse_args()
    settings, rules = load_config(ROOT / "examples" / "demo.toml", os.environ)
    settings = with_changes(settings, server={"host": "127.0.0.1", "port": args.port})
    app = create_app(settings, rules, record=not args.no_log, transit_redis_url=args.redis)
    run_app(app, settings)  # as `varco serve` serves it


if __name__ == "__main__":
    main()
