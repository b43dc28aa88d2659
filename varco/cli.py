"""`varco`: the command line. Loads the configuration, then runs one command (the commands
live in running.py, permit_commands.py and reports.py)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from enforcement.config.load import ConfigError, load_config
from enforcement.config.settings import Settings
from enforcement.core.rules import Rules
from enforcement.logs import configure as configure_logging
from loader.store import DatabaseError

from . import users
from .permit_commands import cmd_check, cmd_import, cmd_migrate, cmd_rebuild, cmd_sync
from .reports import cmd_audit_export, cmd_audit_verify, cmd_violations
from .running import cmd_demo, cmd_serve, cmd_watch

DEFAULT_CONFIG = "examples/demo.toml"
Command = Callable[[argparse.Namespace, Settings, Rules], int]


def _config(path: str | None) -> tuple[Settings, Rules]:
    path = path or os.environ.get("VARCO_CONFIG") or DEFAULT_CONFIG
    try:
        return load_config(path)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    configure_logging("%(asctime)s %(levelname)s %(name)s: %(message)s")
    p = argparse.ArgumentParser(
        prog="varco", description="ZTL gate enforcement and whitelist lookup"
    )
    p.add_argument("--config", help=f"TOML file (default: $VARCO_CONFIG or {DEFAULT_CONFIG})")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="run the HTTP service")
    s.add_argument("--port", type=int)
    s.add_argument(
        "--workers",
        type=_positive,
        default=1,
        help="processes sharing the port (SO_REUSEPORT) and the snapshot's pages",
    )
    s.add_argument(
        "--followup",
        action="store_true",
        help="also run the violation follow-up worker and retention (safe on "
        "several replicas at once: they share the work)",
    )
    s.set_defaults(func=cmd_serve)

    s = sub.add_parser("violations", help="export confirmed violations (CSV or JSON)")
    s.add_argument("--from", dest="start", required=True, help="YYYY-MM-DD (local) or RFC 3339")
    s.add_argument(
        "--to", dest="end", required=True, help="YYYY-MM-DD (local, exclusive) or RFC 3339"
    )
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
    s.add_argument(
        "--accept-shrink",
        action="store_true",
        help="apply even if the export closes more than the source's max_close",
    )
    s.set_defaults(func=cmd_sync)

    s = sub.add_parser("audit", help="the police-lookup audit trail: verify, export")
    audit_sub = s.add_subparsers(dest="audit_command", required=True)
    dates = (
        "a date (local midnight) or a date-time (no offset: local time); the range is "
        "[--from, --to)"
    )
    s = audit_sub.add_parser("verify", help="check the hash chain; exit 1 at a break")
    s.add_argument("--from", dest="start", metavar="DATE", help=dates)
    s.add_argument("--to", dest="end", metavar="DATE")
    s.add_argument("--file", help="an audit file to check (default: the configured audit)")
    s.set_defaults(func=cmd_audit_verify)
    s = audit_sub.add_parser(
        "export",
        help="write a date range's records as CSV or JSON (checking the chain: exit 1 at a break)",
    )
    s.add_argument("--from", dest="start", metavar="DATE", required=True, help=dates)
    s.add_argument("--to", dest="end", metavar="DATE", required=True)
    s.add_argument(
        "--format",
        choices=("csv", "json"),
        default="csv",
        help="csv (a cell starting with = + - @ gets a leading ') or json (with "
        "each record's stored body, to recompute the chain)",
    )
    s.add_argument("--output", metavar="FILE", help="default: standard output")
    s.add_argument("--file", help="an audit file to read (default: the configured audit)")
    s.set_defaults(func=cmd_audit_export)

    s = sub.add_parser("migrate", help="create or upgrade the permit database schema")
    s.set_defaults(func=cmd_migrate)

    users.add_parser(sub)

    args = p.parse_args(argv)
    settings, rules = _config(args.config)
    command: Command = args.func
    try:
        return int(command(args, settings, rules))
    except DatabaseError as exc:  # unreachable, or its schema needs `varco migrate`
        print(f"permit database error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
