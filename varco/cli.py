"""`varco`: the command line (serve, watch, import, rebuild, check, demo, migrate, audit)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import msgspec

from enforcement.config.load import ConfigError, load_config
from enforcement.config.settings import Settings, with_changes
from enforcement.core.live import IndexHolder
from enforcement.core.plates import normalise
from enforcement.core.police import plate_view
from enforcement.core.rules import Rules
from enforcement.core.verdicts import Checker
from enforcement.replica.watcher import load_initial
from loader.database import open_db
from loader.importer import ImportFileError, import_csv, write_rejects
from loader.rebuild import DEFAULT_MAX_SHRINK, ShrinkRefused, rebuild
from loader.store import DatabaseError

from . import demo

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
    from enforcement.http.server import serve, serve_workers

    from . import admin

    settings, rules = _config(args)
    if args.port is not None:
        settings = with_changes(settings, server={"port": args.port})
    if args.workers > 1:
        serve_workers(settings, dict(os.environ), args.workers, extend=admin.install,
                      followup=args.followup)  # fmt: skip
    else:
        serve(settings, rules, extend=admin.install, followup=args.followup)
    return 0


def cmd_violations(args: argparse.Namespace) -> int:
    """Export the violations whose first transit falls in [--from, --to)."""
    import asyncio

    import redis.asyncio as aredis

    from enforcement.transits.violations import Violations, as_json, csv_header, to_csv_rows

    settings, rules = _config(args)
    start = _cli_instant(args.start, "--from", rules)
    end = _cli_instant(args.end, "--to", rules)
    if end <= start:
        print("varco: --to must be after --from", file=sys.stderr)
        return 2
    redis_url, embedded = _redis_for_cli(settings)

    async def export(out: Any) -> int:
        from tqdm import tqdm

        r = aredis.Redis.from_url(redis_url, socket_timeout=10, socket_connect_timeout=2)
        n = 0
        try:
            store = Violations(r, settings.redis.prefix, rules.clock)
            total = await r.zcount(store.index, start, f"({end}")
            bar = tqdm(total=total, unit="violation", desc="export", disable=None, file=sys.stderr)
            out.write(csv_header() if args.format == "csv" else "[\n")
            async for v in store.all(start, end):
                if args.format == "csv":
                    out.write(to_csv_rows([v]))
                else:
                    out.write(("" if n == 0 else ",\n") + json.dumps(as_json(v), default=str))
                n += 1
                bar.update()
            if args.format == "json":
                out.write("\n]\n")
            bar.close()
        finally:
            await r.aclose()
        return n

    try:
        if args.output:
            with open(args.output, "w", encoding="utf-8", newline="") as f:
                n = asyncio.run(export(f))
        else:
            n = asyncio.run(export(sys.stdout))
    finally:
        if embedded is not None:
            embedded.stop()
    print(f"{n} violations exported", file=sys.stderr)
    return 0


def _cli_instant(text: str, option: str, rules: Rules) -> float:
    try:
        if len(text) == 10:
            return float(rules.clock.from_local(dt.datetime.fromisoformat(text)))
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise SystemExit(f"varco: {option} {text!r} is neither YYYY-MM-DD nor RFC 3339") from None
    if value.tzinfo is None:
        raise SystemExit(f"varco: {option} needs an offset, e.g. 2026-11-22T10:00:00+01:00")
    return value.timestamp()


def _redis_for_cli(settings: Settings) -> tuple[str, Any]:
    """The configured Redis, or our embedded one (started for the command if not running)."""
    from enforcement.http.server import start_redis

    redis_url, embedded = start_redis(settings)
    if redis_url is None:
        raise SystemExit("varco: violations live in Redis, and redis.url is \"off\"")
    return redis_url, embedded


def cmd_watch(args: argparse.Namespace) -> int:
    """The loader daemon: stream permit changes to Redis, publish snapshots."""
    from enforcement.http.server import start_redis
    from loader.watch import run_loader

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
    from loader.feedcsv import FeedFileError
    from loader.sync import SyncHeld, sync_source, write_rejects

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
            rejects = write_rejects(feed, settings.storage.data_dir / "rejects")
            if rejects is not None:
                for rej in feed.rejects[:10]:
                    print(f"  line {rej.line} {rej.key}: {rej.field}: {rej.reason}")
                print(f"  all rejects: {rejects}")
                code = max(code, 1)
    return code


def _rebuild(settings: Settings, rules: Rules, accept_shrink: bool) -> int:
    with open_db(settings) as db:
        try:
            r = rebuild(db, rules, settings.storage.snapshot_dir, settings.storage.history_days,
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
    if not load_initial(holder, rules, settings.storage.snapshot_dir) or holder.current is None:
        print(
            f"no verified snapshot in {settings.storage.snapshot_dir}; run `varco rebuild`", file=sys.stderr
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
    settings.storage.data_dir.mkdir(parents=True, exist_ok=True)
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
    from enforcement.http.server import serve, start_redis
    from loader.watch import LoaderThread

    from . import admin

    redis_url, embedded = start_redis(settings)
    loader = None
    try:
        if redis_url is not None:
            loader = LoaderThread(settings, rules, redis_url).start()
            # serve() finds the server running and follows it; it is ours to stop, below.
            settings = with_changes(settings, redis={"url": redis_url})
        serve(settings, rules, extend=admin.install, followup=True)
    finally:
        if loader is not None:
            loader.stop()
        if embedded is not None:
            embedded.stop()


class _AuditUsage(Exception):
    """A bad --from/--to, or no audit where the configuration says it is: exit code 2."""


def _audit_instant(text: str, tz: dt.tzinfo, option: str) -> int:
    """Epoch ms of --from/--to: the range is [from, to), as for `varco violations`. A bare
    date is local midnight; a date-time without offset is local time."""
    try:
        if len(text) == 10:
            value = dt.datetime.combine(dt.date.fromisoformat(text), dt.time(), tzinfo=tz)
        else:
            value = dt.datetime.fromisoformat(text)
            value = value if value.tzinfo is not None else value.replace(tzinfo=tz)
    except ValueError:
        raise _AuditUsage(f"{option}: {text!r} is not a date (2026-11-23) or a date-time "
                          "(2026-11-23T08:00, 2026-11-23T08:00:00+01:00)") from None  # fmt: skip
    return int(value.timestamp() * 1000)


def _audit(args: argparse.Namespace, export: bool) -> int:
    """`varco audit verify|export`: read the audit trail (Redis, or the file when Redis is
    off or --file names one) over the range, checking the chain as it goes."""
    import redis
    from tqdm import tqdm

    from enforcement.audit import chain as audit
    from enforcement.http.server import start_redis
    from enforcement.keys import Keys

    settings, rules = _config(args)
    tz = rules.clock.tz
    try:
        start = _audit_instant(args.start, tz, "--from") if args.start else None
        end = _audit_instant(args.end, tz, "--to") if args.end else None
        if start is not None and end is not None and end <= start:
            raise _AuditUsage("--to must be after --from")
        path = Path(args.file) if args.file else None
        if path is None and settings.redis.url == "off":
            path = audit.audit_file(settings.storage.data_dir)
        if path is not None and not path.is_file():
            raise _AuditUsage(f"no audit file at {path}")
    except _AuditUsage as exc:
        print(f"varco audit: {exc}", file=sys.stderr)
        return 2
    verifier = audit.Verifier()
    notes: list[str] = []
    out = sys.stdout
    if export and args.output:
        out = open(args.output, "w", encoding="utf-8", newline="")  # noqa: SIM115
    writer = _audit_writer(out, args.format, tz) if export else None
    embedded = None
    try:
        if path is not None:
            where = str(path)
            entries = audit.file_entries(path, start, end, notes)
            total = None
        else:
            redis_url, embedded = start_redis(settings)
            assert redis_url is not None
            r = redis.Redis.from_url(redis_url, socket_timeout=30, socket_connect_timeout=5)
            key = Keys(settings.redis.prefix).audit
            where = f"Redis stream {key}"
            total = r.xlen(key) if start is None and end is None else None
            entries = audit.redis_entries(r, key, start, end)
        # A progress bar on a terminal only (disable=None): a year of lookups takes a while.
        for entry in tqdm(entries, total=total, unit="record", desc="audit", disable=None):
            verifier.feed(entry)
            if writer is not None and not entry.context:
                writer(entry)
        if path is None and end is None:  # to the end: records deleted there show only now
            verifier.tail(audit.redis_tail_problem(r, key, verifier.last))
        if writer is not None:
            writer(None)
    except BrokenPipeError:  # `varco audit export ... | head`: the reader has had enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except (redis.RedisError, OSError) as exc:
        print(f"varco audit: {where if 'where' in locals() else 'Redis'}: {exc}", file=sys.stderr)
        return 2
    finally:
        if out is not sys.stdout:
            out.close()
        if embedded is not None:
            embedded.stop()
    return _audit_report(verifier, where, notes, tz, export, args)


def _audit_writer(out: Any, fmt: str, tz: dt.tzinfo) -> Any:
    """A function writing one entry (None: the end) as CSV or JSON to `out`."""
    import csv

    from enforcement.audit import chain as audit

    if fmt == "csv":
        rows = csv.DictWriter(out, audit.EXPORT_COLUMNS)
        rows.writeheader()

        def write_csv(entry: Any) -> None:
            if entry is not None:
                row = audit.export_row(entry, tz)
                reason = row["reason"]
                # A spreadsheet would run a reason starting with = + - @ as a formula.
                if isinstance(reason, str) and reason[:1] in ("=", "+", "-", "@"):
                    row["reason"] = "'" + reason
                rows.writerow(row)

        return write_csv
    first = True

    def write_json(entry: Any) -> None:
        nonlocal first
        if entry is None:
            out.write("[]\n" if first else "\n]\n")
            return
        # `body` is the record exactly as stored: with t_ms, prev and link, anyone can
        # recompute the chain over an export (audit.link_of).
        row = {**audit.export_row(entry, tz), "body": entry.body.decode("utf-8", "replace")}
        out.write(("[\n" if first else ",\n") + json.dumps(row, ensure_ascii=False))
        first = False

    return write_json


def _audit_report(verifier: Any, where: str, notes: list[str], tz: dt.tzinfo, export: bool,
                  args: argparse.Namespace) -> int:  # fmt: skip
    from enforcement.audit.chain import local_time

    v = verifier
    report = sys.stderr if export else sys.stdout
    for note in notes:
        print(f"note: {note}", file=report)
    span = ""
    if v.first is not None and v.last is not None:
        span = (f" (seq {v.first.seq}-{v.last.seq}, {local_time(v.first.t_ms, tz)} to "
                f"{local_time(v.last.t_ms, tz)})")
    if export:
        print(f"exported {v.records} audit records{span} from {where} into "
              f"{args.output or 'standard output'} as {args.format}", file=report)  # fmt: skip
    if not v.breaks:
        if not export:
            print(f"audit chain intact: {v.records} records{span} in {where}")
            if v.last is not None:
                # Kept elsewhere, this line exposes a history rewritten from some record on.
                print(f"last record: seq {v.last.seq}, link {v.last.link}")
        return 0
    b = v.breaks[0]
    at = ", ".join(x for x in (b.where, None if b.seq is None else f"seq {b.seq}",
                               None if b.t_ms is None else local_time(b.t_ms, tz)) if x)
    print(f"audit chain BROKEN in {where}: first break at record {b.position} checked ({at}): "
          f"{b.problem}", file=report)  # fmt: skip
    print(f"{len(v.breaks)} break(s) in {v.records} records checked", file=report)
    return 1


def cmd_audit_verify(args: argparse.Namespace) -> int:
    return _audit(args, export=False)


def cmd_audit_export(args: argparse.Namespace) -> int:
    return _audit(args, export=True)


def cmd_migrate(args: argparse.Namespace) -> int:
    settings, _ = _config(args)
    # SQLite migrates whenever it is opened; PostgreSQL only here, one deliberate step.
    with open_db(settings, check_schema=False) as db:
        version = db.migrate()
        print(f"permit database {db.location}: schema version {version}")
    return 0


def _print_curls(settings: Settings, rules: Rules) -> None:
    base = f"http://{settings.server.host}:{settings.server.port}"
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

    police = (f"curl -s '{base}/v1/plates/{demo.DEMO_CUDE_SECONDARY}' "
              "-H 'Authorization: Bearer demo-police' -H 'X-Reason: demo: CUDE badge check'")
    print(
        f"""
Varco is starting on {base} (docs: {base}/docs). Try, in another terminal:

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
    s.add_argument("--followup", action="store_true",
                   help="also run the violation follow-up worker and retention (safe on "
                        "several replicas at once: they share the work)")
    s.set_defaults(func=cmd_serve)

    s = sub.add_parser("violations", help="export confirmed violations (CSV or JSON)")
    s.add_argument("--from", dest="start", required=True, help="YYYY-MM-DD (local) or RFC 3339")
    s.add_argument("--to", dest="end", required=True, help="YYYY-MM-DD (local, exclusive) or "
                                                            "RFC 3339")
    s.add_argument("--format", choices=("csv", "json"), default="csv")
    s.add_argument("--output", help="file to write (default: standard output)")
    s.set_defaults(func=cmd_violations)

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

    s = sub.add_parser("audit", help="the police-lookup audit trail: verify, export")
    audit_sub = s.add_subparsers(dest="audit_command", required=True)
    dates = ("a date (local midnight) or a date-time (no offset: local time); the range is "
             "[--from, --to)")
    s = audit_sub.add_parser("verify", help="check the hash chain; exit 1 at a break")
    s.add_argument("--from", dest="start", metavar="DATE", help=dates)
    s.add_argument("--to", dest="end", metavar="DATE")
    s.add_argument("--file", help="an audit file to check (default: the configured audit)")
    s.set_defaults(func=cmd_audit_verify)
    s = audit_sub.add_parser("export", help="write a date range's records as CSV or JSON "
                             "(checking the chain: exit 1 at a break)")  # fmt: skip
    s.add_argument("--from", dest="start", metavar="DATE", required=True, help=dates)
    s.add_argument("--to", dest="end", metavar="DATE", required=True)
    s.add_argument("--format", choices=("csv", "json"), default="csv",
                   help="csv (a reason starting with = + - @ gets a leading ') or json (with "
                   "each record's stored body, to recompute the chain)")  # fmt: skip
    s.add_argument("--output", metavar="FILE", help="default: standard output")
    s.add_argument("--file", help="an audit file to read (default: the configured audit)")
    s.set_defaults(func=cmd_audit_export)

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
