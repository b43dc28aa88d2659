"""`varco`: the command line (serve, watch, import, rebuild, check, demo, migrate)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import sys
import time
from pathlib import Path

import msgspec

from enforcement.config import ConfigError, Settings, load_config
from enforcement.live import IndexHolder
from enforcement.plates import normalise
from enforcement.police import plate_view
from enforcement.rules import Rules
from enforcement.verdicts import Checker
from enforcement.watcher import load_initial

from . import demo
from .db import DatabaseError, open_db
from .importer import ImportFileError, import_csv, write_rejects
from .rebuild import DEFAULT_MAX_SHRINK, ShrinkRefused, rebuild

DEFAULT_CONFIG = "examples/demo.toml"
log = logging.getLogger("varco")


def _config(args: argparse.Namespace) -> tuple[Settings, Rules]:
    path = args.config or os.environ.get("VARCO_CONFIG") or DEFAULT_CONFIG
    try:
        return load_config(path)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def cmd_serve(args: argparse.Namespace) -> int:
    from enforcement.server import serve, serve_workers

    from . import admin

    settings, rules = _config(args)
    if args.port is not None:
        settings = msgspec.structs.replace(settings, port=args.port)
    if args.workers > 1:
        serve_workers(settings, dict(os.environ), args.workers, extend=admin.install)
    else:
        serve(settings, rules, extend=admin.install)
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    """The loader daemon: stream permit changes to Redis, publish snapshots."""
    from enforcement.server import start_redis

    from .watch import run_loader

    settings, rules = _config(args)
    redis_url, embedded = start_redis(settings)
    if redis_url is None:
        print(f"config error: {settings.config_path}: [redis] url: 'off' leaves the loader "
              "nowhere to publish; set a URL or remove the key", file=sys.stderr)  # fmt: skip
        return 2
    try:
        run_loader(settings, rules, redis_url)
    finally:
        if embedded is not None:
            embedded.stop()
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    settings, rules = _config(args)
    path = Path(args.file)
    with open_db(settings) as db:
        try:
            report = import_csv(path, rules, db)
        except (ImportFileError, OSError) as exc:
            print(f"import failed, nothing imported: {path}: {exc}", file=sys.stderr)
            return 2
    print(
        f"{path}: {report.rows} rows, {report.permits} permits valid, {report.changed} "
        f"changed, {len(report.rejects)} rows rejected; database revision {report.revision}"
    )
    for r in report.rejects[:20]:
        print(f"  line {r.line}: {r.field}: {r.reason}", file=sys.stderr)
    if len(report.rejects) > 20:
        print(f"  ... and {len(report.rejects) - 20} more", file=sys.stderr)
    if report.rejects:
        rejects = Path(args.rejects or f"{path}.rejects.csv")
        write_rejects(report, rejects)
        print(f"rejected rows written to {rejects}")
    if not args.no_rebuild:
        code = _rebuild(settings, rules, args.accept_shrink)
        if code:
            return code
    # 0: all imported; 1: some rows rejected (the rest imported); 2: file unusable;
    # 3: rebuild refused. A scheduled import notices rejects by its exit code.
    return 1 if report.rejects else 0


def cmd_sync(args: argparse.Namespace) -> int:
    """Sync configured feeds (all, or those named) into the permit database."""
    from .feedcsv import FeedFileError
    from .sync import SyncHeld, sync_source, write_rejects

    settings, rules = _config(args)
    names = args.sources or list(settings.sources)
    unknown = [n for n in names if n not in settings.sources]
    if unknown or not names:
        known = ", ".join(settings.sources) or "none configured"
        print(f"unknown source(s) {', '.join(unknown)} (configured: {known})" if unknown
              else f"no [sources] in {settings.config_path}", file=sys.stderr)  # fmt: skip
        return 2
    code = 0
    with open_db(settings) as db:
        for name in names:
            source = settings.sources[name]
            try:
                r = sync_source(db, rules, settings, source, accept_shrink=args.accept_shrink)
            except (FeedFileError, OSError) as exc:
                print(f"{name}: {source.path}: nothing changed: {exc}", file=sys.stderr)
                code = max(code, 2)
                continue
            except SyncHeld as exc:
                print(f"held: {exc}", file=sys.stderr)
                code = max(code, 3)
                continue
            feed = r.feed
            print(f"{name}: {feed.rows} rows ({feed.encoding}), {feed.permits} permits, "
                  f"{r.changed} changed, {r.closed} closed (missing from the export), "
                  f"{r.replaced} replaced by duplicates, {len(feed.rejects)} rejected; "
                  f"revision {r.revision}")  # fmt: skip
            rejects = write_rejects(feed, settings.data_dir / "rejects")
            if rejects is not None:
                for rej in feed.rejects[:10]:
                    print(f"  line {rej.line} {rej.key}: {rej.field}: {rej.reason}")
                print(f"  all rejects: {rejects}")
                code = max(code, 1)
    return code


def _rebuild(settings: Settings, rules: Rules, accept_shrink: bool) -> int:
    with open_db(settings) as db:
        try:
            r = rebuild(db, rules, settings.snapshot_dir, settings.history_days,
                        max_shrink=1.0 if accept_shrink else DEFAULT_MAX_SHRINK)  # fmt: skip
        except ShrinkRefused as exc:
            print(f"rebuild refused: {exc}", file=sys.stderr)
            return 3
    print(
        f"snapshot {r.path.name}: revision {r.revision}, {r.permits} permits, {r.plates} "
        f"plates, {r.records} intervals, built in {r.seconds:.1f} s"
    )
    return 0


def cmd_rebuild(args: argparse.Namespace) -> int:
    settings, rules = _config(args)
    return _rebuild(settings, rules, args.accept_shrink)


def cmd_check(args: argparse.Namespace) -> int:
    settings, rules = _config(args)
    holder = IndexHolder()
    if not load_initial(holder, rules, settings.snapshot_dir) or holder.current is None:
        print(
            f"no verified snapshot in {settings.snapshot_dir}; run `varco rebuild`", file=sys.stderr
        )
        return 2
    at = dt.datetime.fromisoformat(args.at) if args.at else dt.datetime.now(dt.UTC)
    if at.tzinfo is None:
        at = at.replace(tzinfo=rules.clock.tz)
    checker = Checker.from_settings(rules, settings)
    plate = normalise(args.plate)
    out: dict[str, object] = {}
    if args.gate:
        gate = rules.gates.get(args.gate)
        if gate is None:
            print(f"unknown gate {args.gate!r} (known: {', '.join(rules.gates)})", file=sys.stderr)
            return 2
        out["verdict"] = checker.check(holder.current, plate, at.timestamp(), gate,
                                       args.confidence, time.time())  # fmt: skip
    if plate.text:
        out["police_view"] = plate_view(checker, holder.current, plate.text, at, list(rules.zones))
    print(json.dumps(msgspec.to_builtins(out), indent=2, ensure_ascii=False))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    settings, rules = _config(args)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with open_db(settings) as db:
        if args.regenerate or db.count() == 0:
            if db.count():
                db.clear()
            t0 = time.perf_counter()
            from tqdm import tqdm

            permits = tqdm(demo.demo_permits(rules, args.permits), total=args.permits,
                           unit="permit", desc="demo data", disable=None)  # fmt: skip
            n = db.bulk_insert_new(permits)
            print(
                f"generated {n} demo permits in {time.perf_counter() - t0:.1f} s "
                f"into {db.location}"
            )
        else:
            print(
                f"using the {db.count()} permits already in {db.location} "
                "(--regenerate to start over)"
            )
    code = _rebuild(settings, rules, accept_shrink=True)
    if code:
        return code
    _print_curls(settings, rules)
    if args.no_serve:
        return 0
    _serve_with_loader(settings, rules)
    return 0


def _serve_with_loader(settings: Settings, rules: Rules) -> None:
    """One process for the demo: Redis (ours unless configured), the loader in a thread, and the
    service with the admin API, so a permit issued over HTTP is enforced a moment later."""
    from enforcement.server import serve, start_redis

    from . import admin
    from .watch import LoaderThread

    redis_url, embedded = start_redis(settings)
    loader = None
    try:
        if redis_url is not None:
            loader = LoaderThread(settings, rules, redis_url).start()
            # serve() finds the server running and follows it; it is ours to stop, below.
            settings = msgspec.structs.replace(settings, redis_url=redis_url)
        serve(settings, rules, extend=admin.install)
    finally:
        if loader is not None:
            loader.stop()
        if embedded is not None:
            embedded.stop()


def cmd_migrate(args: argparse.Namespace) -> int:
    settings, _ = _config(args)
    # SQLite migrates whenever it is opened; PostgreSQL only here, one deliberate step.
    with open_db(settings, check_schema=False) as db:
        version = db.migrate()
        print(f"permit database {db.location}: schema version {version}")
    return 0


def _print_curls(settings: Settings, rules: Rules) -> None:
    base = f"http://{settings.host}:{settings.port}"
    gate = next(
        (g for g in rules.gates.values() if g.zone == "PEDONALE"), next(iter(rules.gates.values()))
    )
    now = dt.datetime.now(rules.clock.tz).replace(microsecond=0).isoformat()

    def transit(plate: str, event: str) -> str:
        body = json.dumps({"event_id": event, "camera": "cam-1", "gate": gate.code,
                           "plate": plate, "ts": now, "confidence": 0.93})  # fmt: skip
        return (
            f"curl -s {base}/v1/transits -H 'Authorization: Bearer demo-camera' "
            f"-H 'Content-Type: application/json' -d '{body}'"
        )

    print(
        f"""
Varco is starting on {base} (docs: {base}/docs). Try, in another terminal:

  # a resident's car at gate {gate.code}: allowed
  {transit(demo.DEMO_RESIDENT, "evt-1")}

  # a plate with no permit: pending until the zone's grace period ends
  {transit(demo.DEMO_UNKNOWN, "evt-2")}

  # the police view of a plate: permits, verdict per zone, near-matches
  curl -s '{base}/v1/plates/{demo.DEMO_CUDE_SECONDARY}' -H 'Authorization: Bearer demo-police'
""",
        flush=True,
    )


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    p = argparse.ArgumentParser(
        prog="varco", description="ZTL gate enforcement and whitelist lookup"
    )
    p.add_argument("--config", help=f"TOML file (default: $VARCO_CONFIG or {DEFAULT_CONFIG})")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="run the HTTP service")
    s.add_argument("--port", type=int)
    s.add_argument("--workers", type=_positive, default=1,
                   help="processes sharing the port (SO_REUSEPORT) and the snapshot's pages")
    s.set_defaults(func=cmd_serve)

    s = sub.add_parser("watch", help="the loader daemon: stream permit changes, publish snapshots")
    s.set_defaults(func=cmd_watch)

    s = sub.add_parser("import", help="import permits from CSV into the permit database")
    s.add_argument("file")
    s.add_argument("--rejects", help="where to write rejected rows (default FILE.rejects.csv)")
    s.add_argument("--no-rebuild", action="store_true", help="do not publish a new snapshot")
    s.add_argument("--accept-shrink", action="store_true")
    s.set_defaults(func=cmd_import)

    s = sub.add_parser("rebuild", help="build and publish a snapshot from the permit database")
    s.add_argument(
        "--accept-shrink",
        action="store_true",
        help="publish even if the index loses more than 10%% of its permits",
    )
    s.set_defaults(func=cmd_rebuild)

    s = sub.add_parser("check", help="verdict and police view of a plate from the current snapshot")
    s.add_argument("plate")
    s.add_argument("--at", help="ISO 8601 instant (naive = city time); default now")
    s.add_argument("--gate", help="also compute a camera verdict at this gate")
    s.add_argument("--confidence", type=float)
    s.set_defaults(func=cmd_check)

    s = sub.add_parser("demo", help="generate demo permits, rebuild, print examples, serve")
    s.add_argument("--permits", type=int, default=200_000)
    s.add_argument("--regenerate", action="store_true")
    s.add_argument("--no-serve", action="store_true")
    s.set_defaults(func=cmd_demo)

    s = sub.add_parser("sync", help="sync the regional circuit and CUDE feeds ([sources])")
    s.add_argument("sources", nargs="*", help="source names (default: all configured)")
    s.add_argument("--accept-shrink", action="store_true",
                   help="apply even if the export closes more than the source's max_close")
    s.set_defaults(func=cmd_sync)

    s = sub.add_parser("migrate", help="create or upgrade the permit database schema")
    s.set_defaults(func=cmd_migrate)

    args = p.parse_args(argv)
    try:
        return int(args.func(args))
    except DatabaseError as exc:  # unreachable, or its schema needs `varco migrate`
        print(f"permit database error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
