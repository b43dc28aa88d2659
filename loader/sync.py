"""A feed synchronised into the permit database (source `regional` or `cude`, upsert by pass
or badge number), so one revision sequence and one change stream cover every source.

An export is complete: a permit of that source still open in the database but missing from
the export is closed (its validity ends now; the row and its history stay), never deleted.
A sync that would close more than the source's `max_close` share is held for an operator
(`--accept-shrink`): a truncated or partial export must not end the permits of a circuit.
A file that cannot be trusted as a whole (feedcsv.py) changes nothing. A row rejected for a
mistake does not close its permit either: the pass is still in the export, just unreadable.
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass, field
from pathlib import Path

from enforcement.config.settings import Settings, Source
from enforcement.core.rules import Rules
from enforcement.csvcells import safe_cell

from .cude import parse_cude
from .feedcsv import FeedReport, gc_paused
from .httpfeed import NotModified, fetch_regional_feed
from .periods import cut, renewing
from .regional import parse_regional, parse_regional_rows
from .store import PermitRow, PermitStore


class SyncHeld(Exception):
    """The sync would close too many permits; nothing was written."""


@dataclass(slots=True)
class SyncReport:
    feed: FeedReport
    changed: int = 0
    closed: int = 0
    replaced: int = 0  # passes revoked because a duplicate replaced them
    revision: int = 0
    etag: str | None = None  # regional_http: to send next time
    not_modified: bool = False  # regional_http: the feed answered 304, nothing was read


Data = bytes | list[tuple[int, dict[str, str]]]  # a file's bytes, or the JSON feed's rows


@dataclass(slots=True)
class Export:
    """What an export says, ready to write: the permits it lists (one period each, which
    joins the stored ones: loader/periods.py), the instants at which some are cut (a
    revocation, a lost pass replaced by a duplicate), and permits only to be cut."""

    report: FeedReport
    source: str  # the database's source name: regional or cude
    permits: dict[str, PermitRow]
    cuts: dict[str, int] = field(default_factory=dict)
    cut_only: set[str] = field(default_factory=set)
    replaced: int = 0  # passes cut because a duplicate replaced them


def _permit_source(source: Source) -> str:
    """The `permits.source` of what a configured feed brings."""
    return "cude" if source.kind == "cude_csv" else "regional"


def read_source(
    db: PermitStore, rules: Rules, settings: Settings, source: Source, data: Data
) -> Export:
    """The export, parsed and validated, with what it revokes."""
    report = FeedReport(source.name)
    if source.kind == "cude_csv":
        # The configuration requires a type for a CUDE source (config/load.py).
        assert source.type is not None and isinstance(data, bytes)
        revoked: dict[str, int] = {}
        permits = parse_cude(data, rules, source.type, report, revoked)
        by_id = {p.permit_id: p for p in permits}
        return Export(
            report, _permit_source(source), by_id, {k: v for k, v in revoked.items() if k in by_id}
        )
    assert settings.circuit is not None  # config/load.py requires one for regional sources
    if isinstance(data, bytes):
        passes = parse_regional(data, rules, settings.circuit, report)
    else:
        report.encoding = "json"
        passes = parse_regional_rows(data, rules, settings.circuit, report)
    out = Export(report, _permit_source(source), {p.permit.permit_id: p.permit for p in passes})
    for p in passes:
        if p.revoked_at is not None:
            out.cuts[p.permit.permit_id] = p.revoked_at
    for p in passes:  # a duplicate replaces a lost pass: that one ends where it starts
        if p.replaces is None:
            continue
        old = out.permits.get(p.replaces)
        if old is None:
            old = db.get(p.replaces)
            if old is None:
                continue  # never known here: nothing to revoke
            out.permits[p.replaces] = old
            out.cut_only.add(p.replaces)
        at = p.permit.valid_from
        if cut(old, at) != old:
            out.replaced += 1
        out.cuts[p.replaces] = min(at, out.cuts.get(p.replaces, at))
    return out


def sync_source(
    db: PermitStore,
    rules: Rules,
    settings: Settings,
    source: Source,
    *,
    data: Data | None = None,
    etag: str | None = None,
    accept_shrink: bool = False,
    now: int | None = None,
) -> SyncReport:
    """Read the source's export (or `data`) and apply it in one transaction. A feed that
    cannot be read whole raises FeedFileError (FeedFetchError for HTTP): nothing changes.
    An HTTP feed is asked with `etag`, by default its last synced answer's (kept in the
    permit database, so that a sync run by cron gets its 304 too)."""
    now = int(time.time()) if now is None else now
    new_etag = None
    fetched = data is None and source.kind == "regional_http"
    if fetched:
        assert source.url is not None
        if etag is None:  # the ETag of the feed's last synced answer, kept in the database
            etag = db.feed_etag(source.name)
        got = fetch_regional_feed(source.url, etag=etag, token=source.token)
        if isinstance(got, NotModified):
            return SyncReport(FeedReport(source.name), etag=got.etag, not_modified=True)
        data, new_etag = got.rows, got.etag
    elif data is None:
        data = source.path.read_bytes()
    # A million permits read, compared and written: no cyclic garbage collection meanwhile
    # (see gc_paused); the work's objects are gone by the time it is back on.
    with gc_paused():
        report = _sync(db, rules, settings, source, data, new_etag, accept_shrink, now)
    if fetched:
        db.set_feed_etag(source.name, new_etag)  # applied: the next sync may get a 304
    return report


def _sync(
    db: PermitStore,
    rules: Rules,
    settings: Settings,
    source: Source,
    data: Data,
    etag: str | None,
    accept_shrink: bool,
    now: int,
) -> SyncReport:
    export = read_source(db, rules, settings, source, data)
    report, by_id = export.report, export.permits
    out = SyncReport(report, replaced=export.replaced, etag=etag)
    # A pass written before Varco recorded its feed is this feed's to close only when no
    # other configured feed brings passes of the same source: else it waits to be claimed.
    sole = all(
        other.name == source.name or _permit_source(other) != export.source
        for other in settings.sources.values()
    )
    existing = db.open_ids(export.source, now, feed=source.name, unclaimed=sole)
    unreadable = {r.key for r in report.rejects}
    missing = sorted(existing - by_id.keys() - unreadable)
    if existing and len(missing) > source.max_close * len(existing) and not accept_shrink:
        raise SyncHeld(
            f"{source.name}: the export would close {len(missing)} of "
            f"{len(existing)} open permits (more than {source.max_close:.0%}); "
            "check the export, then sync with --accept-shrink"
        )
    for pid in missing:  # closed: every period ends now
        old = db.get(pid)
        if old is not None:
            by_id[pid] = old
            export.cut_only.add(pid)
            export.cuts[pid] = now
            out.closed += 1
    out.changed = db.upsert(by_id.values(), merge=renewing(export.cuts, cut_only=export.cut_only))
    out.revision = db.revision
    return out


def write_rejects(report: FeedReport, directory: Path, now: float | None = None) -> Path | None:
    """The run's rejects as CSV (line, key, field, reason), or None when there are none."""
    if not report.rejects:
        return None
    directory.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(time.time() if now is None else now))
    path = directory / f"{report.source}-{stamp}.rejects.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["line", "key", "field", "reason"])
        for r in report.rejects:  # a rejected row's pass number is anything the feed sent
            w.writerow(safe_cell(c) for c in (r.line, r.key, r.field, r.reason))
    return path
