"""The transit log's writes to Redis: one Lua call per group of records, on a connection of
its own (log.py decides what to write and when; this is how).

RECORD writes each record whose `(camera, event_id)` is not remembered and returns, for the
others, what is (`Seen`): log.py then tells a retry from a correction or a new passage
(passages.py) and writes those with REPLACE, which writes only where the remembered `Seen`
is still the one the decision was made on, so two replicas never both replace it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Sequence
from typing import Any, Final, NamedTuple

import hiredis
import redis.asyncio as aredis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import NoScriptError

from ..durable import NotDurable

# KEYS: stream, then one dedup key per record. ARGV: ttl, then the records, then their Seen.
# Returns, per record, the earlier Seen (a retry: nothing written) or false (written).
_RECORD: Final = """
local n = #KEYS - 1
local ttl = ARGV[1]
local out = {}
for i = 1, n do
  local prior = redis.call('GET', KEYS[i + 1])
  if prior then
    out[i] = prior
  else
    redis.call('SET', KEYS[i + 1], ARGV[1 + n + i], 'EX', ttl)
    redis.call('XADD', KEYS[1], '*', 'r', ARGV[1 + i])
    out[i] = false
  end
end
return out
"""

# KEYS: stream, then one dedup key per record. ARGV: ttl, then per record the Seen the decision
# was made on ("" for none), then the new Seen, then the record. Returns, per record, 1
# (written), or what the key holds instead (0 for nothing): the caller decides again.
_REPLACE: Final = """
local n = #KEYS - 1
local ttl = ARGV[1]
local out = {}
for i = 1, n do
  local current = redis.call('GET', KEYS[i + 1]) or ''
  if current == ARGV[1 + i] then
    redis.call('SET', KEYS[i + 1], ARGV[1 + n + i], 'EX', ttl)
    redis.call('XADD', KEYS[1], '*', 'r', ARGV[1 + 2 * n + i])
    out[i] = 1
  elseif current == '' then
    out[i] = 0
  else
    out[i] = current
  end
end
return out
"""


class Script(NamedTuple):
    text: str
    sha: str


RECORD: Final = Script(_RECORD, hashlib.sha1(_RECORD.encode()).hexdigest())
REPLACE: Final = Script(_REPLACE, hashlib.sha1(_REPLACE.encode()).hexdigest())


def _pack(*parts: str | bytes | int) -> bytes:
    """A command in RESP, packed in C. (hiredis's stub types its argument as a 1-tuple.)"""
    return hiredis.pack_command(parts)  # type: ignore[arg-type,no-any-return]


class GroupWriter:
    """The log's own Redis connection for its one hot command, the group's Lua call (and
    WAITAOF, which must follow the write on the same connection to wait for it).

    Not redis-py's client path: per call it takes a connection from the pool, packs the
    command in Python, runs retry and observability hooks and gives the connection back,
    which cost more server CPU than a whole group's records (profiled at ~100 us a call).
    Here one connection is kept, the command is packed by hiredis in C, and any failure
    drops the connection (a reply half read must not be read by the next call); the log's
    replay loop owns reconnecting, so the next call simply opens a new one."""

    def __init__(self, redis: aredis.Redis) -> None:
        self._pool = redis.connection_pool
        self._conn: AbstractConnection | None = None
        self._lock = asyncio.Lock()  # the writer and the replay never overlap; be sure

    async def call(
        self, script: Script, keys: Sequence[str], args: Sequence[Any], waitaof_ms: int | None
    ) -> list[Any]:
        """The Lua call's replies; with `waitaof_ms`, only once the write is fsynced."""
        async with self._lock:
            conn = self._conn
            if conn is None:
                conn = self._conn = self._pool.make_connection()  # type: ignore[no-untyped-call]
                await conn.connect()
            call = _pack("EVALSHA", script.sha, len(keys), *keys, *args)
            try:
                try:
                    replies = await self._round_trip(conn, call)
                except NoScriptError:  # a restarted Redis has an empty script cache
                    await self._round_trip(conn, _pack("SCRIPT", "LOAD", script.text))
                    replies = await self._round_trip(conn, call)
                if waitaof_ms is not None:
                    local, _ = await self._round_trip(conn, _pack("WAITAOF", 1, 0, waitaof_ms))
                    if local < 1:
                        raise NotDurable("WAITAOF: the write was not fsynced in time")
            except BaseException:
                self._conn = None
                with contextlib.suppress(Exception):
                    await conn.disconnect()
                raise
            return replies  # type: ignore[no-any-return]

    @staticmethod
    async def _round_trip(conn: AbstractConnection, packed: bytes) -> Any:
        await conn.send_packed_command(packed, check_health=False)
        return await conn.read_response()

    async def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.disconnect()
            self._conn = None
