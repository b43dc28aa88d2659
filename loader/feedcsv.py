"""Reading the feeds' CSV exports: `;`-separated, UTF-8 or Windows-1252, Italian dates.

A whole file is refused (FeedFileError, nothing changes) when it cannot be trusted as a
whole: not text in either encoding, a header without the required columns, or truncated (its
last line lacks fields or its final newline, as when a download or a copy stopped midway).
A bad row in the middle is a reject with its line number; the rest of the file counts.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import gc
import io
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Final

import msgspec

from enforcement.core.localtime import LocalClock
from enforcement.core.permits import PermitInvalid, check_permit
from enforcement.core.rules import Rules

from .store import PermitRow

_DATE: Final = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})(?:[ T](\d{1,2})[:.](\d{2}))?")


class FeedFileError(Exception):
    """The file as a whole is unusable; nothing of it is applied."""


@dataclass(frozen=True, slots=True)
class Reject:
    line: int
    key: str  # the pass or badge number, as far as it could be read
    field: str
    reason: str


@dataclass(slots=True)
class FeedReport:
    source: str  # the feed's name ([sources.NAME]): its permits carry it (PermitRow.feed)
    rows: int = 0
    permits: int = 0
    rejects: list[Reject] = field(default_factory=list)
    encoding: str = "utf-8"

    def reject(self, line: int, key: str, exc: PermitInvalid) -> None:
        self.rejects.append(Reject(line, key, exc.field, exc.reason))


def with_plates(rules: Rules, first: PermitRow, plates: dict[str, bool], feed: str) -> PermitRow:
    """A feed's permit from its first row and all its rows' plates, brought by `feed`,
    checked against the city's rules (duration, type); PermitInvalid otherwise."""
    permit = msgspec.structs.replace(first, plates=tuple(sorted(plates.items())), feed=feed)
    check_permit(
        rules,
        permit.permit_id,
        permit.type,
        permit.valid_from,
        permit.valid_to,
        permit.zones,
        permit.source,
        len(permit.plates),
    )
    return permit


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off meanwhile. Reading and syncing a large export
    allocates millions of tuples, lists and dicts, none of them in a reference cycle, and the
    collector would walk the growing pile again and again for nothing (measured: ~4 s of a
    15 s parse of a million rows). Reference counting still frees everything as usual; the
    switch is process-wide, so other threads' cycles wait until it is back on."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def decode(data: bytes, report: FeedReport) -> str:
    """UTF-8 (with or without BOM), else Windows-1252 (what a spreadsheet on Windows saves)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = data.decode("cp1252")
        except UnicodeDecodeError as exc:
            raise FeedFileError(f"neither UTF-8 nor Windows-1252 text: {exc}") from None
        report.encoding = "cp1252"
    if "\x00" in text:
        raise FeedFileError("binary content (NUL bytes): not a CSV export")
    return text


def rows(
    text: str, columns: Sequence[str], required: Sequence[str]
) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row by lower-case column name) for each data row."""
    header, found = records(text, columns, required)
    width = len(header)
    for line, values in found:
        if len(values) == width:  # the common case, inline
            yield line, dict(zip(header, map(str.strip, values), strict=True))
        else:
            yield _row(line, values, header)


Records = Iterator[tuple[int, list[str]]]  # (line number, a row's fields as read)


def records(
    text: str, columns: Sequence[str], required: Sequence[str]
) -> tuple[list[str], Records]:
    """The header (lower-case column names) and (line number, fields as read, not stripped)
    for each data row: `rows` without the dicts, for a parser that reads fields by position.
    The header is checked at once; truncation when the iterator reaches the end."""
    if text and not text.endswith(("\n", "\r")):
        raise FeedFileError("truncated: the file does not end with a line break")
    numbered = _csv_records(text) if '"' in text else _split_records(text)
    try:
        header = [h.strip().lower() for h in next(numbered)[1]]
    except StopIteration:
        raise FeedFileError("empty file: no header") from None
    missing = [c for c in required if c not in header]
    if missing:
        raise FeedFileError(
            f"missing column(s): {', '.join(missing)}; expected {';'.join(columns)}"
        )
    unknown = [h for h in header if h not in columns]
    if unknown:
        raise FeedFileError(f"unknown column(s): {', '.join(unknown)}")
    return header, _records(numbered, len(header))


def _csv_records(text: str) -> Records:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=";")
    return ((reader.line_num, values) for values in reader)


def _split_records(text: str) -> Records:
    """What `_csv_records` reads from a text without a quote character (exports usually have
    none), in half the time: each line is a record (lines end at \\r\\n, \\r or \\n, as
    csv.reader reads them through io.StringIO(newline="")) and its fields are what lies
    between the `;`. An empty line reads [""] where csv.reader says []: blank either way."""
    limit = csv.field_size_limit()
    for number, line in enumerate(io.StringIO(text, newline=""), 1):
        if len(line) <= limit:
            yield number, line.rstrip("\r\n").split(";")
        else:  # csv.reader raises csv.Error for a field over the limit: let it
            yield number, next(csv.reader((line,), delimiter=";"))


def _records(numbered: Records, width: int) -> Records:
    pending: tuple[int, list[str]] | None = None
    strip = str.strip
    for record in numbered:  # one row behind: the last row is judged for truncation first
        if pending is not None:
            yield pending
        # A blank row (also the ;;;; rows spreadsheets leave) is skipped; the first field is
        # usually enough to tell it is not one.
        values = record[1]
        pending = record if (values and strip(values[0])) or any(map(strip, values)) else None
    if pending is not None:
        line, values = pending
        if len(values) < width:
            raise FeedFileError(
                f"truncated: the last row (line {line}) has {len(values)} of {width} fields"
            )
        yield pending


def _row(line: int, values: list[str], header: list[str]) -> tuple[int, dict[str, str]]:
    if len(values) != len(header):  # the fields it has still name the pass in the reject
        return line, {
            **{h: v.strip() for h, v in zip(header, values, strict=False)},
            "__error__": f"{len(values)} fields where the header has {len(header)}",
        }
    return line, {h: v.strip() for h, v in zip(header, values, strict=True)}


def parse_date(text: str, clock: LocalClock, name: str, *, end: bool = False) -> int:
    """`dd/mm/yyyy` or `dd/mm/yyyy hh:mm`, local city time, as epoch seconds. A bare end date
    means the whole of that day (validity up to the next midnight, exclusive)."""
    key = (text, clock, end)
    found = _DATES.get(key)  # an export of a million rows has a few thousand dates
    if found is None:
        try:
            found = _parse_date(text.strip(), clock, end)
        except ValueError as exc:
            raise PermitInvalid(name, str(exc)) from None
        if len(_DATES) > 100_000:
            _DATES.clear()
        _DATES[key] = found
    return found


_DATES: dict[tuple[str, LocalClock, bool], int] = {}


def _parse_date(text: str, clock: LocalClock, end: bool) -> int:
    m = _DATE.fullmatch(text)
    if m is None:
        raise ValueError(f"{text!r} is not a date dd/mm/yyyy [hh:mm]")
    d, mo, y, hh, mm = m.groups()
    try:
        day = dt.date(int(y), int(mo), int(d))
    except ValueError as exc:
        raise ValueError(f"{text!r}: {exc}") from None
    if hh is None:
        if end:
            day += dt.timedelta(days=1)
        return clock.from_local(dt.datetime.combine(day, dt.time()))
    try:
        at = dt.time(int(hh), int(mm))
    except ValueError as exc:
        raise ValueError(f"{text!r}: {exc}") from None
    return clock.from_local(dt.datetime.combine(day, at))
