"""Scheduled feed syncs inside `varco watch`: each configured source on its schedule, when
its export changed, with its outcome kept as a SourceStatus for the replicas to show.

A failed sync (file missing or unusable, database error) or a held one (too many closes)
changes nothing: the source keeps its last good data and its age grows until `max_age` makes
it a warning. Rejected rows are reported per run (data/rejects/) and counted.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from msgspec.structs import replace

from enforcement.config.settings import Settings, Source
from enforcement.core.rules import Rules
from enforcement.replica.sources import SourceStatus

from .feedcsv import FeedFileError
from .store import DatabaseError, PermitStore
from .sync import SyncHeld, sync_source, write_rejects

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _State:
    status: SourceStatus
    next_at: float = 0.0  # due at once on start-up
    seen: tuple[int, int] | None = None  # (mtime_ns, size) of the export last synced


class FeedRunner:
    def __init__(self, settings: Settings, rules: Rules) -> None:
        self.settings, self.rules = settings, rules
        self.states = {
            name: _State(SourceStatus(name, s.max_age_s)) for name, s in settings.sources.items()
        }

    def run_due(self, db: PermitStore, now: float | None = None) -> list[SourceStatus]:
        """Sync every source whose time has come; the statuses that changed."""
        now = time.time() if now is None else now
        changed = []
        for name, source in self.settings.sources.items():
            state = self.states[name]
            if now < state.next_at:
                continue
            state.next_at = now + source.schedule_s
            state.status = self._attempt(db, source, state, now)
            changed.append(state.status)
        return changed

    def _attempt(self, db: PermitStore, source: Source, state: _State, now: float) -> SourceStatus:
        status = state.status
        mark = None
        try:
            if source.kind != "regional_http":
                st = source.path.stat()
                mark = (st.st_mtime_ns, st.st_size)
                if mark == state.seen and status.last_error is None:
                    # The same export again: nothing to apply, the data as fresh as it was.
                    return replace(status, last_attempt=now)
            report = sync_source(db, self.rules, self.settings, source, now=int(now))
        except SyncHeld as exc:
            log.error("feed %s held: %s", source.name, exc)
            return replace(status, last_attempt=now, last_error=str(exc), held=True)
        except (FeedFileError, OSError, DatabaseError) as exc:
            log.error("feed %s failed, keeping its last good data: %s", source.name, exc)
            return replace(
                status, last_attempt=now, held=False, last_error=f"{type(exc).__name__}: {exc}"
            )
        if report.not_modified:  # the feed's server vouches that nothing changed: fresh
            return replace(status, last_attempt=now, last_success=now, last_error=None)
        state.seen = mark
        feed = report.feed
        rejects = write_rejects(feed, self.settings.storage.data_dir / "rejects", now)
        if rejects is not None:
            log.warning(
                "feed %s: %d rows rejected, listed in %s", source.name, len(feed.rejects), rejects
            )
        log.info(
            "feed %s synced: %d rows, %d permits, %d changed, %d closed",
            source.name,
            feed.rows,
            feed.permits,
            report.changed,
            report.closed,
        )
        return SourceStatus(
            source.name,
            source.max_age_s,
            last_attempt=now,
            last_success=now,
            rows=feed.rows,
            permits=feed.permits,
            rejected=len(feed.rejects),
            changed=report.changed,
            closed=report.closed,
        )
