"""The commands that run something: `serve`, `watch` (the loader daemon) and `demo`.

The service (aiohttp, the admin API and psycopg with it) is imported when a command serves,
not when `varco` starts: the other commands start in half the time."""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import sys
import time
from typing import TYPE_CHECKING

from enforcement.config.settings import Settings, with_changes
from enforcement.core.rules import Rules
from loader.database import open_db

from . import demo
from .permit_commands import rebuild_snapshot

if TYPE_CHECKING:
    from aiohttp import web


def service_app(
    settings: Settings, rules: Rules, redis_url: str | None, *, followup: bool
) -> web.Application:
    """The service with the admin API (server.AppFactory; module-level, so that worker
    processes can be handed it)."""
    from enforcement.http.app import create_app

    from . import admin

    return create_app(settings, rules, redis_url=redis_url, extend=admin.install, followup=followup)


def cmd_serve(args: argparse.Namespace, settings: Settings, rules: Rules) -> int:
    from enforcement.http.ports import PortInUse
    from enforcement.http.supervisor import exec_supervisor
    from enforcement.memory import EvictingRedis, check_at_startup

    if args.port is not None:
        settings = with_changes(settings, server={"port": args.port})
    if args.workers > 1:  # this process becomes the supervisor, which imports none of this
        if settings.redis.url not in (None, "off"):  # checked here: the supervisor stays lean
            try:
                check_at_startup(settings.redis.url, settings.redis.max_memory)
            except EvictingRedis as exc:
                print(f"varco serve: {exc}", file=sys.stderr)
                return 2
        exec_supervisor(
            settings.config_path,
            settings.server.host,
            settings.server.port,
            args.workers,
            settings.redis.url,
            settings.storage.redis_dir,
            settings.redis.max_memory,
            f"{__name__}:service_app",
            {"followup": args.followup},
        )
    from enforcement.http.server import serve

    try:
        serve(settings, rules, functools.partial(service_app, followup=args.followup))
    except (PortInUse, EvictingRedis) as exc:
        print(f"varco serve: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_watch(args: argparse.Namespace, settings: Settings, rules: Rules) -> int:
    """The loader daemon: stream permit changes to Redis, publish snapshots."""
    from enforcement.replica.redis_server import start_redis
    from loader.watch import run_loader

    redis_url, embedded = start_redis(settings)
    if redis_url is None:
        print(
            f"config error: {settings.config_path}: [redis] url: 'off' leaves the loader "
            "nowhere to publish; set a URL or remove the key",
            file=sys.stderr,
        )
        return 2
    try:
        run_loader(settings, rules, redis_url)
    finally:
        if embedded is not None:
            embedded.stop()
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings, rules: Rules) -> int:
    settings.storage.data_dir.mkdir(parents=True, exist_ok=True)
    with open_db(settings) as db:
        if args.regenerate or db.count() == 0:
            if db.count():
                db.clear()
            t0 = time.perf_counter()
            from tqdm import tqdm

            permits = tqdm(
                demo.demo_permits(rules, args.permits),
                total=args.permits,
                unit="permit",
                desc="demo data",
                disable=None,
            )
            n = db.bulk_insert_new(permits)
            print(
                f"generated {n} demo permits in {time.perf_counter() - t0:.1f} s into {db.location}"
            )
        else:
            print(
                f"using the {db.count()} permits already in {db.location} "
                "(--regenerate to start over)"
            )
    code = rebuild_snapshot(settings, rules, accept_shrink=True)
    if code:
        return code
    _print_curls(settings, rules, serving=not args.no_serve)
    if args.no_serve:
        return 0
    from enforcement.http.ports import PortInUse
    from enforcement.memory import EvictingRedis

    try:
        _serve_with_loader(settings, rules)
    except (PortInUse, EvictingRedis) as exc:
        print(f"varco demo: {exc}", file=sys.stderr)
        return 2
    return 0


def _serve_with_loader(settings: Settings, rules: Rules) -> None:
    """One process for the demo: Redis (ours unless configured), the loader in a thread, and the
    service with the admin API, so a permit issued over HTTP is enforced a moment later."""
    from enforcement.http.server import serve
    from enforcement.replica.redis_server import start_redis
    from loader.watch import LoaderThread

    redis_url, embedded = start_redis(settings)
    loader = None
    try:
        if redis_url is not None:
            loader = LoaderThread(settings, rules, redis_url).start()
            # serve() finds the server running and follows it; it is ours to stop, below.
            settings = with_changes(settings, redis={"url": redis_url})
        serve(settings, rules, functools.partial(service_app, followup=True))
    finally:
        if loader is not None:
            loader.stop()
        if embedded is not None:
            embedded.stop()


def _print_curls(settings: Settings, rules: Rules, *, serving: bool) -> None:
    base = f"http://{settings.server.host}:{settings.server.port}"
    gate = next(
        (g for g in rules.gates.values() if g.zone == "PEDONALE"), next(iter(rules.gates.values()))
    )
    now = dt.datetime.now(rules.clock.tz).replace(microsecond=0).isoformat()

    def transit(plate: str, event: str) -> str:
        body = json.dumps(
            {
                "event_id": event,
                "camera": "cam-1",
                "gate": gate.code,
                "plate": plate,
                "ts": now,
                "confidence": 0.93,
            }
        )
        return (
            f"curl -s {base}/v1/transits -H 'Authorization: Bearer demo-camera' "
            f"-H 'Content-Type: application/json' -d '{body}'"
        )

    police = (
        f"curl -s '{base}/v1/plates/{demo.DEMO_CUDE_SECONDARY}' "
        "-H 'Authorization: Bearer demo-police' -H 'X-Reason: demo: CUDE badge check'"
    )
    # --no-serve starts nothing: say what to start instead of announcing a service.
    opening = (
        f"Varco is starting on {base} (docs: {base}/docs). Try, in another terminal:"
        if serving
        else "Demo data ready; nothing is serving. Start the loader and the service "
        f"(`varco watch` and `varco serve`, on {base}), then try:"
    )
    print(
        f"""
{opening}

  # a resident's car at gate {gate.code}: allowed
  {transit(demo.DEMO_RESIDENT, "evt-1")}

  # a plate with no permit: pending until the zone's grace period ends
  {transit(demo.DEMO_UNKNOWN, "evt-2")}

  # the police view of a plate: permits, verdict per zone, near-matches
  # (each lookup gives a reason and is recorded in the audit trail before it is answered)
  {police}
""",
        flush=True,
    )
