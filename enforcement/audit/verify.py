"""Reading the audit trail back and checking its chain (`varco audit verify`).

Entries come in stored order from the file or the Redis stream, over a time range, preceded
by the record just before the range so that its first record can be checked too. The
verifier reports each break once and carries on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from .chain import GENESIS, Entry, hex40, link_of, parse_line


def file_entries(
    path: Path,
    start_ms: int | None = None,
    end_ms: int | None = None,
    notes: list[str] | None = None,
) -> Iterator[Entry]:
    """The file's records with start_ms <= t < end_ms, preceded by the record just before the
    range (`context`). An incomplete last line is left out, with a note in `notes`."""
    before: Entry | None = None
    inside = start_ms is None
    with open(path, "rb") as f:
        for number, line in enumerate(f, 1):
            if not line.endswith(b"\n"):
                if notes is not None:
                    notes.append(
                        f"line {number} is incomplete: a write cut short by a crash, "
                        "never acknowledged (the next write removes it)"
                    )
                break
            entry = parse_line(line[:-1], number)
            if entry.problem is None:
                if end_ms is not None and entry.t_ms >= end_ms:
                    break
                if not inside and start_ms is not None and entry.t_ms >= start_ms:
                    inside = True
                    if before is not None:
                        yield dataclasses.replace(before, context=True)
                if not inside:
                    before = entry
                    continue
            elif not inside:  # unreadable before the range: it cannot anchor the range
                before = entry
                continue
            yield entry


def _redis_entry(
    position: int, entry_id: bytes, fields: Mapping[bytes, bytes], context: bool = False
) -> Entry:
    where = f"id {entry_id.decode()}"
    t, _, seq = entry_id.partition(b"-")
    prev, link, body = fields.get(b"prev"), fields.get(b"link"), fields.get(b"body")
    problem = None
    if prev is None or link is None or body is None:
        problem = "unreadable: prev, link or body missing"
    elif not (hex40(prev) and hex40(link)):
        problem = "unreadable: prev or link is not a link"
    return Entry(
        position,
        where,
        int(seq),
        int(t),
        (prev or b"").decode("ascii", "replace"),
        (link or b"").decode("ascii", "replace"),
        body or b"",
        problem,
        context,
    )


def redis_entries(
    r: redis.Redis,
    key: str,
    start_ms: int | None = None,
    end_ms: int | None = None,
    page: int = 1000,
) -> Iterator[Entry]:
    """The stream's records with start_ms <= t < end_ms, preceded by the record just before
    the range (`context`)."""
    if start_ms is not None:
        before: Any = r.xrevrange(key, f"({start_ms}-0", "-", count=1)
        if before:
            yield _redis_entry(0, before[0][0], before[0][1], context=True)
    low = "-" if start_ms is None else f"{start_ms}-0"
    high = "+" if end_ms is None else f"{end_ms - 1}-18446744073709551615"
    position = 0
    while True:
        batch: Any = r.xrange(key, low, high, count=page)
        for entry_id, fields in batch:
            position += 1
            yield _redis_entry(position, entry_id, fields)
        if len(batch) < page:
            return
        low = "(" + batch[-1][0].decode()


def redis_tail_problem(r: redis.Redis, key: str, last: Entry | None) -> str | None:
    """Records deleted at the end of the stream show only here: its last generated id is
    past the last record present."""
    if not r.exists(key):
        return None
    info: Any = r.xinfo_stream(key)
    lastgen = info["last-generated-id"]
    lastgen = lastgen.decode() if isinstance(lastgen, bytes) else str(lastgen)
    t, _, seq = lastgen.partition("-")
    if last is None:
        return f"the stream is empty but records up to seq {seq} were written: all deleted"
    if int(seq) != last.seq or int(t) != last.t_ms:
        return (
            f"records after seq {last.seq} were deleted (the last written was seq {seq}, "
            f"id {lastgen})"
        )
    return None


@dataclass
class Break:
    position: int  # among the records checked, from 1
    where: str  # line number or stream id
    seq: int | None
    t_ms: int | None
    problem: str


@dataclass
class Verifier:
    """Checks entries in stored order: each must match its own link, and follow the one
    before it (seq + 1, prev = its link, t not earlier). After a break it carries on from the
    broken record, so one damage is reported once (a swap shows at both records)."""

    records: int = 0
    breaks: list[Break] = field(default_factory=list)
    first: Entry | None = None
    last: Entry | None = None
    _anchor: tuple[int, str, int] | None = (0, GENESIS, 0)  # (seq, link, t); None: unknown

    def feed(self, e: Entry) -> Break | None:
        if e.context:
            self._anchor = None if e.problem else (e.seq, e.link, e.t_ms)
            return None
        self.records += 1
        self.first = self.first or e
        problem = e.problem
        if problem is None and link_of(e.prev, e.seq, e.t_ms, e.body) != e.link:
            problem = "altered: its content does not match its link (or it was moved here)"
        if problem is None and self._anchor is not None:
            seq, link, t = self._anchor
            if e.seq > seq + 1:
                missing = f"{seq + 1}" if e.seq == seq + 2 else f"{seq + 1}-{e.seq - 1}"
                problem = (
                    f"seq {e.seq} where {seq + 1} was expected: record(s) {missing} "
                    "deleted or moved"
                )
            elif e.seq <= seq:
                problem = f"seq {e.seq} after seq {seq}: moved out of order, or duplicated"
            elif e.prev != link:
                problem = (
                    "it does not link to the record before it: that one was altered or replaced"
                )
            elif e.t_ms < t:
                problem = "its time is earlier than the record before it"
        if e.problem is None:
            self._anchor = (e.seq, e.link, e.t_ms)
            self.last = e
        if problem is None:
            return None
        found = Break(
            self.records,
            e.where,
            e.seq if e.problem is None else None,
            e.t_ms if e.problem is None else None,
            problem,
        )
        self.breaks.append(found)
        return found

    def tail(self, problem: str | None) -> None:
        if problem is not None:
            last = self.last
            self.breaks.append(
                Break(
                    self.records + 1,
                    "after the last record",
                    None if last is None else last.seq,
                    None if last is None else last.t_ms,
                    problem,
                )
            )
