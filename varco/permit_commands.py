"""The commands on the permit data: `import`, `sync`, `rebuild`, `check` and `migrate`."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

import msgspec

from enforcement.config.load import make_checker
from enforcement.config.settings import Settings
from enforcement.core.live import IndexHolder
from enforcement.core.plates import normalise
from enforcement.core.police import plate_view
from enforcement.core.rules import Rules
from enforcement.replica.watcher import load_initial
from loader.database import open_db
from loader.importer import ImportFileError, import_csv, write_rejects
from loader.rebuild import DEFAULT_MAX_SHRINK, ShrinkRefused, rebuild
from loader.watch import change_of


def cmd_import(args: argparse.Namespace, settings: Settings, rules: Rules) -> int:
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
        code = rebuild_snapshot(settings, rules, args.accept_shrink)
        if code:
            return code
    # 0: all imported; 1: some rows rejected (the rest imported); 2: file unusable;
    # 3: rebuild refused. A scheduled import notices rejects by its exit code.
    return 1 if report.rejects else 0


def cmd_sync(args: argparse.Namespace, settings: Settings, rules: Rules) -> int:
    """Sync configured feeds (all, or those named) into the permit database."""
    from loader.feedcsv import FeedFileError
    from loader.sync import SyncHeld, sync_source, write_rejects

    names = args.sources or list(settings.sources)
    unknown = [n for n in names if n not in settings.sources]
    if unknown or not names:
        known = ", ".join(settings.sources) or "none configured"
        print(
            f"unknown source(s) {', '.join(unknown)} (configured: {known})"
            if unknown
            else f"no [sources] in {settings.config_path}",
            file=sys.stderr,
        )
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
            print(
                f"{name}: {feed.rows} rows ({feed.encoding}), {feed.permits} permits, "
                f"{r.changed} changed, {r.closed} closed (missing from the export), "
                f"{r.replaced} replaced by duplicates, {len(feed.rejects)} rejected; "
                f"revision {r.revision}"
            )
            rejects = write_rejects(feed, settings.storage.data_dir / "rejects")
            if rejects is not None:
                for rej in feed.rejects[:10]:
                    print(f"  line {rej.line} {rej.key}: {rej.field}: {rej.reason}")
                print(f"  all rejects: {rejects}")
                code = max(code, 1)
    return code


def rebuild_snapshot(settings: Settings, rules: Rules, accept_shrink: bool) -> int:
    """Build and publish a snapshot from the permit database; the exit code (3: refused)."""
    with open_db(settings) as db:
        try:
            r = rebuild(
                db,
                rules,
                settings.storage.snapshot_dir,
                settings.storage.history_days,
                max_shrink=1.0 if accept_shrink else DEFAULT_MAX_SHRINK,
            )
        except ShrinkRefused as exc:
            print(f"rebuild refused: {exc}", file=sys.stderr)
            return 3
    print(
        f"snapshot {r.path.name}: revision {r.revision}, {r.permits} permits, {r.plates} "
        f"plates, {r.records} intervals, built in {r.seconds:.1f} s"
    )
    return 0


def cmd_rebuild(args: argparse.Namespace, settings: Settings, rules: Rules) -> int:
    return rebuild_snapshot(settings, rules, args.accept_shrink)


def cmd_check(args: argparse.Namespace, settings: Settings, rules: Rules) -> int:
    holder = IndexHolder()
    if not load_initial(holder, rules, settings.storage.snapshot_dir) or holder.current is None:
        print(
            f"no verified snapshot in {settings.storage.snapshot_dir}; run `varco rebuild`",
            file=sys.stderr,
        )
        return 2
    live = holder.current
    # The snapshot plus every change the permit database has since: what a replica following
    # the loader enforces now (an import or a sync is judged before any rebuild).
    read_at = time.time()
    with open_db(settings) as db:
        prev = live.snapshot_revision
        while batch := db.changes_since(prev):
            for revision, row in batch:
                live.overlay.apply(change_of(row, revision, prev))
                prev = revision
    live.overlay.fresh_at = read_at
    at = dt.datetime.fromisoformat(args.at) if args.at else dt.datetime.now(dt.UTC)
    if at.tzinfo is None:
        at = at.replace(tzinfo=rules.clock.tz)
    checker = make_checker(rules, settings)
    plate = normalise(args.plate)
    out: dict[str, object] = {
        "judged_on": {
            "snapshot_revision": live.snapshot_revision,
            "permit_database_revision": live.revision,
            "changes_since_snapshot": len(live.overlay),
        }
    }
    if args.gate:
        gate = rules.gates.get(args.gate)
        if gate is None:
            print(f"unknown gate {args.gate!r} (known: {', '.join(rules.gates)})", file=sys.stderr)
            return 2
        out["verdict"] = checker.check(
            holder.current, plate, at.timestamp(), gate, args.confidence, time.time()
        )
    if plate.text:
        out["police_view"] = plate_view(checker, holder.current, plate.text, at, list(rules.zones))
    print(json.dumps(msgspec.to_builtins(out), indent=2, ensure_ascii=False))
    return 0


def cmd_migrate(args: argparse.Namespace, settings: Settings, rules: Rules) -> int:
    # SQLite migrates whenever it is opened; PostgreSQL only here, one deliberate step.
    with open_db(settings, check_schema=False) as db:
        version = db.migrate()
        print(f"permit database {db.location}: schema version {version}")
    return 0
