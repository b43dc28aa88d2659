"""Transit search for the desk: by plate and day, or by gate and a window of at most 24 hours.

Transits live in the stream `{p}:transits` (log.py) for `retention.allowed`; its entry ids
are the instants they reached Redis, which is never before their capture minus the camera's
allowed clock skew, and (but for a spool replayed after a long Redis outage) never later than
the capture plus `enforcement.max_delivery_delay`. A search reads only the stream ids of that
span (XRANGE by id), in chunks, and never more than `MAX_SCANNED` entries: a Milan-sized day
(~820,000 transits) plus the delivery margin fits; beyond, the answer says `truncated`.

The filtering runs in Redis: a Lua script reads one chunk and returns only the entries whose
record holds the plate (or gate) as MessagePack encodes it, so a search moves the matches over
the network, not the day. Each call covers SCAN_CHUNK entries (a few milliseconds of Redis
time, so cameras' writes are never held up for long). Matches are then decoded and checked
exactly (capture instant in the window; the plate the standing read or one it replaced).
A correction is a later entry with the same transit id: the last one found stands.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, NamedTuple

import redis.asyncio as aredis

from ..keys import Keys
from .record import DECODE_RECORD, ENCODE, TransitRecord

SCAN_CHUNK: Final = 1000
MAX_SCANNED: Final = 2_000_000

# KEYS: the stream. ARGV: first id (inclusive, or "(id" exclusive), last id, count, needle.
# Returns {last id read ("" for none), entries read, id1, record1, id2, record2, ...}.
_SCAN: Final = """
local entries = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[2], 'COUNT', tonumber(ARGV[3]))
local out = {'', #entries}
local needle = ARGV[4]
for i = 1, #entries do
  local e = entries[i]
  out[1] = e[1]
  local f = e[2]
  for j = 1, #f, 2 do
    if f[j] == 'r' and string.find(f[j + 1], needle, 1, true) then
      out[#out + 1] = e[1]
      out[#out + 1] = f[j + 1]
    end
  end
end
return out
"""


class Found(NamedTuple):
    records: list[TransitRecord]  # by capture instant
    truncated: bool  # the result cap or the scan bound was reached: narrow the search
    scanned: int  # stream entries read


class TransitSearch:
    def __init__(
        self, redis: aredis.Redis, keys: Keys, *, skew_s: float, delivery_s: float
    ) -> None:
        self.redis, self.stream = redis, keys.transits
        self.skew_s, self.delivery_s = skew_s, delivery_s
        self._scan = redis.register_script(_SCAN)

    async def by_plate(self, plate: str, start: float, end: float, limit: int) -> Found:
        def match(r: TransitRecord) -> bool:
            return r.plate == plate or plate in r.earlier

        return await self._search(ENCODE(plate), match, start, end, limit)

    async def by_gate(self, gate: str, start: float, end: float, limit: int) -> Found:
        return await self._search(ENCODE(gate), lambda r: r.gate == gate, start, end, limit)

    async def _search(
        self,
        needle: bytes,
        match: Callable[[TransitRecord], bool],
        start: float,
        end: float,
        limit: int,
    ) -> Found:
        """Records captured in [start, end) that `match`, reading the stream ids that can
        hold them (see the module docstring)."""
        first = f"{max(0, int((start - self.skew_s - 60) * 1000))}-0"
        last = str(int((end + self.delivery_s + 60) * 1000))
        found: dict[str, TransitRecord] = {}
        scanned, truncated = 0, False
        while True:
            reply = await self._scan(keys=[self.stream], args=[first, last, SCAN_CHUNK, needle])
            last_id, n = reply[0], int(reply[1])
            scanned += n
            for i in range(2, len(reply), 2):
                rec = DECODE_RECORD(reply[i + 1])
                if start <= rec.ts < end and match(rec):
                    found.pop(rec.id, None)
                    found[rec.id] = rec  # a correction, later in the stream, stands
            if n < SCAN_CHUNK:
                break
            if scanned >= MAX_SCANNED or len(found) > limit:
                truncated = True
                break
            first = "(" + (last_id.decode() if isinstance(last_id, bytes) else str(last_id))
        records = sorted(found.values(), key=lambda r: (r.ts, r.id))
        if len(records) > limit:
            records, truncated = records[:limit], True
        return Found(records, truncated, scanned)
