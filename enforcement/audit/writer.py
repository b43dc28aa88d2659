"""Writing audit records: to a Redis stream, or to a file when there is no Redis.

Redis (`redis_url` set): the stream `{p}:audit` (`enforcement.keys`), never trimmed.
Entry id `<t>-<seq>`, so a date range is an XRANGE and the ids are covered by the links;
fields `prev`, `link`, `body`. The script takes `seq` from the stream's last generated id, so a
record deleted at the end leaves a gap the next record exposes, and `verify` compares the last
record with that id too. The record is only "written" when Redis would keep it through a
crash: `appendfsync always`, or `WAITAOF` (Redis 7.2+) after the write; any other persistence
setting (read at the first write, after a failure, and every minute) refuses lookups, saying
why in /readyz.

File (`[redis] url = "off"`): `<data_dir>/audit/audit.log`, one line per record,
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
import fcntl
import hashlib
import logging
import os
import socket
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Final

import msgspec
import redis.asyncio as aredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from ..core.snapshot import fsync_dir
from ..durable import NotDurable, needs_waitaof
from ..keys import Keys
from .chain import GENESIS, AuditRecord, link_of, parse_line

log = logging.getLogger(__name__)

TIMEOUT_S: Final = 1.0  # the whole write, connecting included
RECHECK_S: Final = 60.0  # Redis's persistence settings are read again this often
TAIL_BYTES: Final = 64 << 10  # a record line is a few KiB at most (REASON_MAX bounds it)
HOST: Final = socket.gethostname()
_ENCODE: Final = msgspec.json.Encoder().encode


class AuditWriteFailed(Exception):
    """The record could not be written, so the lookup must be refused (fail closed)."""


class AuditCorrupt(Exception):
    """The chain's last record is unreadable: appending after it would hide the damage."""


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
        """Append `record` to the chain, or raise AuditWriteFailed (the lookup is refused, 503)."""
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
                log.error(
                    "audit record not written (%s): lookup refused\n%s",
                    self.last_error,
                    "".join(traceback.format_tb(exc.__traceback__)),
                )
            elif was_writable:  # once per outage; /readyz and the metrics count the rest
                log.warning(
                    "audit records cannot be written (%s): police lookups are refused "
                    "until they can",
                    self.last_error,
                )
            raise AuditWriteFailed(self.last_error) from None
        if self.writable is False:
            log.info("audit records are written again: police lookups resume")
        self.writes += 1
        self.writable, self.last_error = True, None

    def status(self) -> dict[str, object]:
        return {
            "backend": self.backend,
            "writable": self.writable,
            "last_error": self.last_error,
            "writes": self.writes,
            "failures": self.failures,
        }


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


class RedisAudit(AuditLog):
    backend = "redis"

    def __init__(self, url: str, keys: Keys) -> None:
        super().__init__()
        self.key = keys.audit
        # No client retries: one attempt per lookup, bounded by TIMEOUT_S.
        self.redis = aredis.Redis.from_url(
            url,
            socket_timeout=TIMEOUT_S,
            socket_connect_timeout=TIMEOUT_S,
            retry=Retry(NoBackoff(), 0),
        )
        self._script = self.redis.register_script(_APPEND)
        self._waitaof: bool | None = None  # None: persistence to be checked (again)
        self._checked_at = 0.0

    async def _append(self, body: bytes) -> None:
        try:
            # Checked again now and then: CONFIG SET changes it without a reconnect.
            if self._waitaof is None or time.monotonic() - self._checked_at > RECHECK_S:
                self._waitaof = await needs_waitaof(self.redis, "audit records")
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


def audit_file(data_dir: Path) -> Path:
    return data_dir / "audit" / "audit.log"


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
        await asyncio.get_running_loop().run_in_executor(
            self._thread, self._append_sync, body, deadline
        )

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
            self._fd = os.open(
                self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600
            )
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
            log.warning(
                "audit: cut an incomplete last line off %s (a write interrupted by a "
                "crash, never acknowledged)",
                self.path,
            )
            return self._read_head(fd, keep)
        start = tail.rfind(b"\n", 0, len(tail) - 1) + 1
        if start == 0 and n < size:
            raise AuditCorrupt(f"{self.path}: the last line is longer than {TAIL_BYTES} bytes")
        entry = parse_line(tail[start:-1], 0)
        if entry.problem is not None:
            raise AuditCorrupt(
                f"{self.path}: the last record is {entry.problem}; run `varco audit verify`"
            )
        return size, entry.seq, entry.t_ms, entry.link
