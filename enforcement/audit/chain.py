"""The police audit trail: every plate lookup is recorded, hash-chained, before it is answered.

A lookup (`GET /v1/plates/{plate}`) must give a reason (header `X-Reason`, or query parameter
`reason`). Once the view is computed and before it is sent, one record is written: who (API
key id and role), what was asked (the normalised plate, `at`, `zone`), why (the reason), what
came back (`results`: permits found), and which process answered (`host`, `pid`). If the
record cannot be written the lookup fails with 503: nothing is answered without its record.
A record whose write timed out may still land; an unanswered lookup with a record is harmless,
an answered one without is what must never happen.

Chain. Records are numbered `seq` = 1, 2, ... and stamped `t` (milliseconds since the epoch,
never less than the record before's), and each carries the link of the one before (`prev`;
record 1: forty "0") and its own:

    link = SHA-1( prev "\\n" seq "\\n" t "\\n" SHA-256(body) )      (lower-case hex)

where `body` is the record's JSON exactly as stored. An altered record no longer matches its
link; a removed or moved one leaves a gap in `seq` and a `prev` that does not match.

Why this construction. Several worker processes and replicas append to one chain, so reading
the head and appending after it must be one atomic step. In Redis that step is a Lua script
(read the stream's last record, compute the link, XADD): one round trip, no lost update, and no
retry loop. The alternative, SHA-256 in Python under WATCH/MULTI, retries under contention,
and on the request path a retry is either a wait or a spurious 503. Redis's Lua offers only
`redis.sha1hex`, hence SHA-1 for the link. Tampering with a stored record needs a second
preimage, which SHA-1 still resists (its practical attacks are collisions between two inputs
crafted together); and the body enters through its SHA-256 digest (computed by the writer,
recomputed by the verifier), so no attacker-chosen bytes reach SHA-1 directly. What no unkeyed
chain can stop: whoever can write the store can rewrite every link after the record they
change. Anchor the head against that: `varco audit verify` prints it (seq and link); kept
elsewhere (a ticket, the daily operations log), a rewritten history no longer matches it.

Redis (`redis_url` set): the stream `{p}:audit` (`enforcement.keys`), never trimmed.
Entry id `<t>-<seq>`, so a date range is an XRANGE and the ids are covered by the links;
fields `prev`, `link`, `body`. The script takes `seq` from the stream's last generated id, so a
record deleted at the end leaves a gap the next record exposes, and `verify` compares the last
record with that id too. The record is only "written" when Redis would keep it through a
crash: `appendfsync always`, or `WAITAOF` (Redis 7.2+) after the write; any other persistence
setting (read at the first write, after a failure, and every minute) refuses lookups, saying
why in /readyz.

File (`redis = "off"`): `<data_dir>/audit/audit.log`, one line per record,
`seq TAB t TAB prev TAB link TAB body`, appended under an exclusive flock (the workers of
`varco serve --workers` share it) and fdatasync'ed before the lookup is answered. A last line
without its line break is a write cut short by a crash, so never acknowledged: the next writer
cuts it off. The writes run on one thread of their own, never on the event loop.

Timeouts are explicit (TIMEOUT_S for the whole write, the same for connecting, no client
retries): the request path never waits on a reconnect loop. Neither the reason nor the plate
is ever logged; metrics count writes and failures only.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import fcntl
import hashlib
import logging
import os
import socket
import time
import traceback
import unicodedata
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import msgspec
import redis
import redis.asyncio as aredis
from aiohttp import web
from multidict import MultiMapping
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from ..core.snapshot import fsync_dir
from ..http import errors
from ..http.metrics import Metrics

log = logging.getLogger(__name__)

GENESIS: Final = "0" * 40  # `prev` of record 1
REASON_MAX: Final = 500  # characters: a case number and a sentence, not a report
TIMEOUT_S: Final = 1.0  # the whole write, connecting included
RECHECK_S: Final = 60.0  # Redis's persistence settings are read again this often
TAIL_BYTES: Final = 64 << 10  # a record line is a few KiB at most (REASON_MAX bounds it)
HOST: Final = socket.gethostname()


class AuditRecord(msgspec.Struct, kw_only=True):
    """One police lookup. The field order is the stored JSON's: append fields at the end."""

    key_id: str
    role: str
    plate: str  # normalised
    at: dt.datetime  # the instant asked about (default: the lookup's)
    zone: str | None  # None: every zone
    reason: str
    results: int  # permits found
    host: str
    pid: int


_ENCODE: Final = msgspec.json.Encoder().encode
_DECODE: Final = msgspec.json.Decoder(AuditRecord).decode


def link_of(prev: str, seq: int, t_ms: int, body: bytes) -> str:
    """The record's link (see the module docstring); the Lua script computes the same."""
    digest = hashlib.sha256(body).hexdigest()
    return hashlib.sha1(f"{prev}\n{seq}\n{t_ms}\n{digest}".encode()).hexdigest()


class AuditUnavailable(errors.ApiError):
    """The record could not be written: the lookup is refused (fail closed)."""

    status, code, retry_after = 503, "audit_unavailable", 1


class NotDurable(Exception):
    """Redis answers but would not keep a record through a crash."""


class AuditCorrupt(Exception):
    """The chain's last record is unreadable: appending after it would hide the damage."""


def reason_of(headers: MultiMapping[str], query: MultiMapping[str]) -> str:
    """The lookup's reason, from header X-Reason or query parameter `reason`; 422 naming
    `reason` when missing, empty, given twice, too long, or with control characters. Free text
    from the police: error details never echo it."""
    given = [*headers.getall("X-Reason", ()), *query.getall("reason", ())]
    if len(given) > 1:
        raise errors.Invalid("give the reason once: header X-Reason or query parameter reason",
                             "reason")  # fmt: skip
    text = given[0].strip() if given else ""
    if not text:
        # The header is the better channel: a query string ends up in proxies' access logs.
        raise errors.Invalid("a police lookup needs a reason: send header X-Reason (or query "
                             "parameter reason)", "reason")  # fmt: skip
    if len(text) > REASON_MAX:
        raise errors.Invalid(f"the reason has {len(text)} characters; at most {REASON_MAX}",
                             "reason")  # fmt: skip
    # Cc/Zl/Zp: control characters and line breaks (they would forge lines in exports);
    # Cs: undecodable header bytes, which aiohttp hands over as lone surrogates.
    if any(unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp") for c in text):
        raise errors.Invalid("the reason must be one line of text, without control characters "
                             "(UTF-8)", "reason")  # fmt: skip
    return text


def _describe(exc: BaseException) -> str:
    """An error for logs and /readyz: ours and the client libraries' messages name hosts,
    sockets and settings, never the record; anything else is reduced to its type."""
    if isinstance(exc, TimeoutError):
        return f"no answer within {TIMEOUT_S:g} s"
    if isinstance(exc, RedisError | OSError | NotDurable | AuditCorrupt):
        return f"{type(exc).__name__}: {exc}"
    return type(exc).__name__


class AuditLog:
    """The writer; `RedisAudit` or `FileAudit` supply `_append`."""

    backend = ""

    def __init__(self) -> None:
        self.writes = 0
        self.failures = 0
        self.writable: bool | None = None  # as of the last write; None before the first
        self.last_error: str | None = None

    async def _append(self, body: bytes) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        pass

    async def write(self, record: AuditRecord) -> None:
        """Append `record` to the chain, or raise AuditUnavailable (503)."""
        try:
            body = _ENCODE(record)
            async with asyncio.timeout(TIMEOUT_S):
                await self._append(body)
        except Exception as exc:  # whatever went wrong, the lookup must not be answered
            was_writable = self.writable is not False
            self.failures += 1
            self.writable, self.last_error = False, _describe(exc)
            if not isinstance(exc, RedisError | OSError | TimeoutError | NotDurable | AuditCorrupt):
                # A bug: where it happened, without the message (it could quote the record).
                log.error("audit record not written (%s): lookup refused\n%s", self.last_error,
                          "".join(traceback.format_tb(exc.__traceback__)))  # fmt: skip
            elif was_writable:  # once per outage; /readyz and the metrics count the rest
                log.warning("audit records cannot be written (%s): police lookups are refused "
                            "until they can", self.last_error)  # fmt: skip
            raise AuditUnavailable("the lookup cannot be recorded in the audit trail right "
                                   "now, so it is refused; retry shortly") from None  # fmt: skip
        if self.writable is False:
            log.info("audit records are written again: police lookups resume")
        self.writes += 1
        self.writable, self.last_error = True, None

    def status(self) -> dict[str, object]:
        return {"backend": self.backend, "writable": self.writable, "last_error": self.last_error,
                "writes": self.writes, "failures": self.failures}  # fmt: skip


# -- Redis ----------------------------------------------------------------------------------

# KEYS: the stream. ARGV: body, SHA-256 hex of the body, GENESIS. Returns {id, link}.
# `seq` continues from the stream's last generated id (`<t>-<seq>`), which a deleted entry
# does not roll back; `t` never goes below it, so the explicit id always increases.
_APPEND: Final = """
local stream = KEYS[1]
local seq, floor, prev = 0, 0, ARGV[3]
if redis.call('EXISTS', stream) == 1 then
  local info = redis.call('XINFO', 'STREAM', stream)
  local lastgen, last = nil, nil
  for i = 1, #info, 2 do
    if info[i] == 'last-generated-id' then lastgen = info[i + 1]
    elseif info[i] == 'last-entry' then last = info[i + 1] end
  end
  local dash = string.find(lastgen, '-', 1, true)
  floor = tonumber(string.sub(lastgen, 1, dash - 1))
  seq = tonumber(string.sub(lastgen, dash + 1))
  if last then
    prev = nil
    local fields = last[2]
    for i = 1, #fields, 2 do
      if fields[i] == 'link' then prev = fields[i + 1] end
    end
    if not prev then
      return redis.error_reply('AUDIT the last audit record has no link: run varco audit verify')
    end
  end
end
local now = redis.call('TIME')
local t = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
if t < floor then t = floor end
seq = seq + 1
local s, ts = string.format('%d', seq), string.format('%d', t)
local link = redis.sha1hex(prev .. '\\n' .. s .. '\\n' .. ts .. '\\n' .. ARGV[2])
local id = redis.call('XADD', stream, ts .. '-' .. s, 'prev', prev, 'link', link,
                      'body', ARGV[1])
return {id, link}
"""


async def _needs_waitaof(r: aredis.Redis) -> bool:
    """False: Redis fsyncs before replying. True: only WAITAOF makes a write durable.
    Raises NotDurable when neither holds."""
    try:
        cfg: Any = await r.config_get("append*")
    except redis.ResponseError as exc:  # CONFIG renamed or disabled (a managed Redis)
        raise NotDurable(f"cannot read Redis's persistence settings ({exc})") from None
    if cfg.get("appendonly") != "yes":
        raise NotDurable("Redis has appendonly=no: a crash would lose audit records "
                         "(set appendonly yes, appendfsync always)")  # fmt: skip
    if cfg.get("appendfsync") == "always":
        return False
    info: Any = await r.info("server")
    version = str(info.get("redis_version", "0"))
    if tuple(int(x) for x in version.split(".")[:2]) >= (7, 2):
        return True
    raise NotDurable(f"Redis {version} has appendfsync={cfg.get('appendfsync')} and no "
                     "WAITAOF: set appendfsync always")  # fmt: skip


class RedisAudit(AuditLog):
    backend = "redis"

    def __init__(self, url: str, key: str) -> None:
        super().__init__()
        self.key = key
        # No client retries: one attempt per lookup, bounded by TIMEOUT_S.
        self.redis = aredis.Redis.from_url(url, socket_timeout=TIMEOUT_S,
                                           socket_connect_timeout=TIMEOUT_S,
                                           retry=Retry(NoBackoff(), 0))  # fmt: skip
        self._script = self.redis.register_script(_APPEND)
        self._waitaof: bool | None = None  # None: persistence to be checked (again)
        self._checked_at = 0.0

    async def _append(self, body: bytes) -> None:
        try:
            # Checked again now and then: CONFIG SET changes it without a reconnect.
            if self._waitaof is None or time.monotonic() - self._checked_at > RECHECK_S:
                self._waitaof = await _needs_waitaof(self.redis)
                self._checked_at = time.monotonic()
            args: list[bytes | str] = [body, hashlib.sha256(body).hexdigest(), GENESIS]
            if not self._waitaof:
                await self._script(keys=[self.key], args=args)
                return
            # WAITAOF waits for the writes of its own connection: one pipeline, one connection.
            async with self.redis.pipeline(transaction=False) as pipe:
                await self._script(keys=[self.key], args=args, client=pipe)
                pipe.execute_command("WAITAOF", 1, 0, int(TIMEOUT_S * 1000))
                _, (local, _) = await pipe.execute()
            if int(local) < 1:
                raise NotDurable("WAITAOF: the audit record was not fsynced in time")
        except BaseException:
            self._waitaof = None  # Redis may come back restarted with other settings
            raise

    async def close(self) -> None:
        await self.redis.aclose()


# -- file -----------------------------------------------------------------------------------


def audit_file(data_dir: Path) -> Path:
    return data_dir / "audit" / "audit.log"


@dataclass(frozen=True, slots=True)
class Entry:
    """A stored record, as read back for verification and export."""

    position: int  # 1-based, in stored order among the entries read
    where: str  # "line 12" or "id 1795438827800-12"
    seq: int
    t_ms: int
    prev: str
    link: str
    body: bytes
    problem: str | None = None  # unreadable: why
    context: bool = False  # the record just before a range: anchors it, not itself checked


def _hex40(value: bytes) -> bool:
    return len(value) == 40 and all(c in b"0123456789abcdef" for c in value)


def parse_line(line: bytes, number: int) -> Entry:
    """A file line (without its line break) as an Entry; `problem` says what is wrong."""
    parts = line.split(b"\t", 4)
    where = f"line {number}"
    if len(parts) != 5 or not parts[0].isdigit() or not parts[1].isdigit():
        return Entry(number, where, 0, 0, "", "", line, "unreadable: not seq, t, prev, link "
                     "and body separated by tabs")  # fmt: skip
    seq, t, prev, link, body = parts
    problem = None if _hex40(prev) and _hex40(link) else "unreadable: prev or link is not a link"
    return Entry(number, where, int(seq), int(t), prev.decode("ascii", "replace"),
                 link.decode("ascii", "replace"), body, problem)  # fmt: skip


class FileAudit(AuditLog):
    backend = "file"

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        # One thread: this process's writes are serial, and fsync never blocks the event loop.
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="varco-audit")
        self._fd: int | None = None
        self._head: tuple[int, int, int, str] | None = None  # (file size, seq, t, link)

    async def _append(self, body: bytes) -> None:
        deadline = time.monotonic() + TIMEOUT_S
        await asyncio.get_running_loop().run_in_executor(self._thread, self._append_sync, body,
                                                         deadline)  # fmt: skip

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._thread, self._close_sync)
        self._thread.shutdown(wait=True)

    def _close_sync(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd, self._head = None, None

    def _open(self) -> int:
        """The file, (re)opened if it is not open or was replaced under its name (writing
        into an unlinked file would lose every record from then on)."""
        try:
            same = self._fd is not None and os.stat(self.path).st_ino == os.fstat(self._fd).st_ino
        except FileNotFoundError:
            same = False
        if not same:
            self._close_sync()
            self.path.parent.mkdir(parents=True, exist_ok=True)
            created = not self.path.exists()
            self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                               0o600)  # fmt: skip
            if created:
                fsync_dir(self.path.parent)
        assert self._fd is not None
        return self._fd

    def _append_sync(self, body: bytes, deadline: float) -> None:
        if time.monotonic() > deadline:  # waited behind a slow write: the caller gave up
            raise TimeoutError
        fd = self._open()
        while True:  # an exclusive lock shared with the other workers, polled to a deadline
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError from None
                time.sleep(0.002)
        try:
            if os.stat(self.path).st_ino != os.fstat(fd).st_ino:
                raise OSError(f"{self.path} was replaced while waiting for its lock")
            size = os.fstat(fd).st_size
            if self._head is None or self._head[0] != size:  # another worker appended
                self._head = self._read_head(fd, size)
            size, seq, t, prev = self._head
            seq, t = seq + 1, max(time.time_ns() // 1_000_000, t)
            link = link_of(prev, seq, t, body)
            line = b"%d\t%d\t%s\t%s\t%s\n" % (seq, t, prev.encode(), link.encode(), body)
            self._head = None  # unknown until the write is whole and on disk
            view = memoryview(line)
            while view:
                view = view[os.write(fd, view) :]
            os.fdatasync(fd)
            self._head = (size + len(line), seq, t, link)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def _read_head(self, fd: int, size: int) -> tuple[int, int, int, str]:
        """(size, seq, t, link) of the last record; cuts off an incomplete last line."""
        if size == 0:
            return 0, 0, 0, GENESIS
        n = min(size, TAIL_BYTES)
        tail = os.pread(fd, n, size - n)
        if not tail.endswith(b"\n"):
            cut = tail.rfind(b"\n")
            if cut < 0 and n < size:
                raise AuditCorrupt(f"{self.path}: no line break in the last {TAIL_BYTES} bytes")
            keep = size - n + cut + 1
            os.ftruncate(fd, keep)
            os.fsync(fd)
            log.warning("audit: cut an incomplete last line off %s (a write interrupted by a "
                        "crash, never acknowledged)", self.path)  # fmt: skip
            return self._read_head(fd, keep)
        start = tail.rfind(b"\n", 0, len(tail) - 1) + 1
        if start == 0 and n < size:
            raise AuditCorrupt(f"{self.path}: the last line is longer than {TAIL_BYTES} bytes")
        entry = parse_line(tail[start:-1], 0)
        if entry.problem is not None:
            raise AuditCorrupt(f"{self.path}: the last record is {entry.problem}; run "
                               "`varco audit verify`")  # fmt: skip
        return size, entry.seq, entry.t_ms, entry.link


# -- the service's side ---------------------------------------------------------------------


def audit_writer(data_dir: Path, redis_url: str | None, key: str,
                 adopt: Callable[[AuditLog | None], None],
                 ) -> Callable[[web.Application], AsyncIterator[None]]:  # fmt: skip
    """A cleanup_ctx resource: the audit log in Redis at `redis_url` (stream `key`), else in
    the data directory's file; handed to `adopt` while the app runs."""

    async def resource(app: web.Application) -> AsyncIterator[None]:
        audit: AuditLog = (RedisAudit(redis_url, key) if redis_url is not None
                           else FileAudit(audit_file(data_dir)))  # fmt: skip
        adopt(audit)
        try:
            yield
        finally:
            adopt(None)
            await audit.close()

    return resource


def register_metrics(metrics: Metrics, current: Callable[[], AuditLog | None]) -> None:
    def counts() -> dict[str, float]:
        audit = current()
        return {"ok": audit.writes if audit else 0, "failed": audit.failures if audit else 0}

    metrics.counter_by("varco_audit_writes_total",
                       "Police-lookup audit records written (ok) or not (failed: lookup refused).",
                       "result", counts)  # fmt: skip


# -- reading back: verify and export (the command line) -------------------------------------


def file_entries(path: Path, start_ms: int | None = None, end_ms: int | None = None,
                 notes: list[str] | None = None) -> Iterator[Entry]:  # fmt: skip
    """The file's records with start_ms <= t < end_ms, preceded by the record just before the
    range (`context`). An incomplete last line is left out, with a note in `notes`."""
    before: Entry | None = None
    inside = start_ms is None
    with open(path, "rb") as f:
        for number, line in enumerate(f, 1):
            if not line.endswith(b"\n"):
                if notes is not None:
                    notes.append(f"line {number} is incomplete: a write cut short by a crash, "
                                 "never acknowledged (the next write removes it)")  # fmt: skip
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


def _redis_entry(position: int, entry_id: bytes, fields: Mapping[bytes, bytes],
                 context: bool = False) -> Entry:  # fmt: skip
    where = f"id {entry_id.decode()}"
    t, _, seq = entry_id.partition(b"-")
    prev, link, body = fields.get(b"prev"), fields.get(b"link"), fields.get(b"body")
    problem = None
    if prev is None or link is None or body is None:
        problem = "unreadable: prev, link or body missing"
    elif not (_hex40(prev) and _hex40(link)):
        problem = "unreadable: prev or link is not a link"
    return Entry(position, where, int(seq), int(t), (prev or b"").decode("ascii", "replace"),
                 (link or b"").decode("ascii", "replace"), body or b"", problem,
                 context)  # fmt: skip


def redis_entries(r: redis.Redis, key: str, start_ms: int | None = None,
                  end_ms: int | None = None, page: int = 1000) -> Iterator[Entry]:  # fmt: skip
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
        return (f"records after seq {last.seq} were deleted (the last written was seq {seq}, "
                f"id {lastgen})")
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
                problem = (f"seq {e.seq} where {seq + 1} was expected: record(s) {missing} "
                           "deleted or moved")  # fmt: skip
            elif e.seq <= seq:
                problem = f"seq {e.seq} after seq {seq}: moved out of order, or duplicated"
            elif e.prev != link:
                problem = ("it does not link to the record before it: that one was altered "
                           "or replaced")  # fmt: skip
            elif e.t_ms < t:
                problem = "its time is earlier than the record before it"
        if e.problem is None:
            self._anchor = (e.seq, e.link, e.t_ms)
            self.last = e
        if problem is None:
            return None
        found = Break(self.records, e.where, e.seq if e.problem is None else None,
                      e.t_ms if e.problem is None else None, problem)  # fmt: skip
        self.breaks.append(found)
        return found

    def tail(self, problem: str | None) -> None:
        if problem is not None:
            last = self.last
            self.breaks.append(Break(self.records + 1, "after the last record",
                                     None if last is None else last.seq,
                                     None if last is None else last.t_ms, problem))  # fmt: skip


def decode_record(body: bytes) -> AuditRecord | None:
    try:
        return _DECODE(body)
    except msgspec.DecodeError:
        return None


def local_time(t_ms: int, tz: dt.tzinfo) -> str:
    return dt.datetime.fromtimestamp(t_ms / 1000, tz).isoformat(timespec="milliseconds")


EXPORT_COLUMNS: Final = ("seq", "time", "key_id", "role", "plate", "at", "zone", "reason",
                         "results", "host", "pid", "t_ms", "prev", "link")  # fmt: skip


def export_row(e: Entry, tz: dt.tzinfo) -> dict[str, object]:
    """An entry as an export row (EXPORT_COLUMNS; unreadable bodies leave the record's fields
    empty)."""
    r = decode_record(e.body)
    return {
        "seq": e.seq, "time": local_time(e.t_ms, tz),
        "key_id": r and r.key_id, "role": r and r.role, "plate": r and r.plate,
        "at": r and r.at.isoformat(), "zone": r and r.zone, "reason": r and r.reason,
        "results": r and r.results, "host": r and r.host, "pid": r and r.pid,
        "t_ms": e.t_ms, "prev": e.prev, "link": e.link,
    }  # fmt: skip


__all__ = ["GENESIS", "AuditLog", "AuditRecord", "AuditUnavailable", "Entry", "FileAudit",
           "RedisAudit", "Verifier", "audit_file", "audit_writer", "file_entries", "link_of",
           "reason_of", "redis_entries", "redis_tail_problem", "register_metrics"]  # fmt: skip
