"""The commands that report: `violations` (for the fines office) and `audit verify|export`."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from pathlib import Path
from typing import Any

from enforcement.audit.export import export_writer, local_time
from enforcement.audit.verify import Verifier, file_entries, redis_entries, redis_tail_problem
from enforcement.audit.writer import audit_file
from enforcement.config.settings import Settings
from enforcement.core.rules import Rules
from enforcement.keys import Keys
from enforcement.replica.redis_server import start_redis


def cmd_violations(args: argparse.Namespace, settings: Settings, rules: Rules) -> int:
    """Export the violations whose first transit falls in [--from, --to)."""
    import asyncio

    import redis.asyncio as aredis

    from enforcement.transits.violations import Violations, as_json, csv_header, to_csv_rows

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
            store = Violations(r, Keys(settings.redis.prefix), rules.clock)
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

    redis_url, embedded = start_redis(settings)
    if redis_url is None:
        raise SystemExit('varco: violations live in Redis, and redis.url is "off"')
    return redis_url, embedded


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
        raise _AuditUsage(
            f"{option}: {text!r} is not a date (2026-11-23) or a date-time "
            "(2026-11-23T08:00, 2026-11-23T08:00:00+01:00)"
        ) from None
    return int(value.timestamp() * 1000)


def _audit(args: argparse.Namespace, settings: Settings, rules: Rules, export: bool) -> int:
    """`varco audit verify|export`: read the audit trail (Redis, or the file when Redis is
    off or --file names one) over the range, checking the chain as it goes."""
    import redis
    from tqdm import tqdm

    tz = rules.clock.tz
    try:
        start = _audit_instant(args.start, tz, "--from") if args.start else None
        end = _audit_instant(args.end, tz, "--to") if args.end else None
        if start is not None and end is not None and end <= start:
            raise _AuditUsage("--to must be after --from")
        path = Path(args.file) if args.file else None
        if path is None and settings.redis.url == "off":
            path = audit_file(settings.storage.data_dir)
        if path is not None and not path.is_file():
            raise _AuditUsage(f"no audit file at {path}")
    except _AuditUsage as exc:
        print(f"varco audit: {exc}", file=sys.stderr)
        return 2
    verifier = Verifier()
    notes: list[str] = []
    out = sys.stdout
    if export and args.output:
        out = open(args.output, "w", encoding="utf-8", newline="")  # noqa: SIM115
    writer = export_writer(out, args.format, tz) if export else None
    embedded = None
    try:
        if path is not None:
            where = str(path)
            entries = file_entries(path, start, end, notes)
            total = None
        else:
            redis_url, embedded = start_redis(settings)
            assert redis_url is not None
            r = redis.Redis.from_url(redis_url, socket_timeout=30, socket_connect_timeout=5)
            key = Keys(settings.redis.prefix).audit
            where = f"Redis stream {key}"
            total = r.xlen(key) if start is None and end is None else None
            entries = redis_entries(r, key, start, end)
        # A progress bar on a terminal only (disable=None): a year of lookups takes a while.
        for entry in tqdm(entries, total=total, unit="record", desc="audit", disable=None):
            verifier.feed(entry)
            if writer is not None and not entry.context:
                writer(entry)
        if path is None and end is None:  # to the end: records deleted there show only now
            verifier.tail(redis_tail_problem(r, key, verifier.last))
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


def _audit_report(
    verifier: Verifier,
    where: str,
    notes: list[str],
    tz: dt.tzinfo,
    export: bool,
    args: argparse.Namespace,
) -> int:

    v = verifier
    report = sys.stderr if export else sys.stdout
    for note in notes:
        print(f"note: {note}", file=report)
    span = ""
    if v.first is not None and v.last is not None:
        span = (
            f" (seq {v.first.seq}-{v.last.seq}, {local_time(v.first.t_ms, tz)} to "
            f"{local_time(v.last.t_ms, tz)})"
        )
    if export:
        print(
            f"exported {v.records} audit records{span} from {where} into "
            f"{args.output or 'standard output'} as {args.format}",
            file=report,
        )
    if not v.breaks:
        if not export:
            print(f"audit chain intact: {v.records} records{span} in {where}")
            if v.last is not None:
                # Kept elsewhere, this line exposes a history rewritten from some record on.
                print(f"last record: seq {v.last.seq}, link {v.last.link}")
        return 0
    b = v.breaks[0]
    at = ", ".join(
        x
        for x in (
            b.where,
            None if b.seq is None else f"seq {b.seq}",
            None if b.t_ms is None else local_time(b.t_ms, tz),
        )
        if x
    )
    print(
        f"audit chain BROKEN in {where}: first break at record {b.position} checked ({at}): "
        f"{b.problem}",
        file=report,
    )
    print(f"{len(v.breaks)} break(s) in {v.records} records checked", file=report)
    return 1


def cmd_audit_verify(args: argparse.Namespace, settings: Settings, rules: Rules) -> int:
    return _audit(args, settings, rules, export=False)


def cmd_audit_export(args: argparse.Namespace, settings: Settings, rules: Rules) -> int:
    return _audit(args, settings, rules, export=True)
