"""The loader's lease: one active loader at a time, a hot standby taking over within a lease.

Taken by one Lua call: when the lease is free (or still ours) it becomes ours, valued with a
fencing token, the next step of a counter in Redis (`{p}:loader:epoch`) and the holder's name.
A standby is told how long the lease has left and asks again just as it would expire, so a
loader killed with -9 is replaced within `lease_ms` plus a round trip (default 500 ms: a
permit issued meanwhile reaches the replicas within a second).

Renewed every `lease_ms / 5` by a thread of its own, over a connection of its own with short
timeouts: a rebuild, a feed sync or a slow database read in the loader's main loop never lets
the lease lapse. (Python switches threads every 5 ms; SQLite and numpy release the GIL.)

Fenced writes: every write the replicas depend on (stream entries, the heartbeat, feed
statuses, the snapshot switch in distribution.py) checks in the same Lua call that the lease
still holds this loader's token. A loader paused past its lease (a stall, SIGSTOP, a VM
migration) and resumed cannot write once another took over: its token is no longer the
lease's value. The local deadline (`token` is None once it passes unrenewed) only spares a
round trip bound to fail; the check in Redis is what fences.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Any, Final

import redis

from enforcement.keys import Keys
from enforcement.replica.distribution import LeaseLost

__all__ = ["LEASE_MS", "Lease", "LeaseLost"]

log = logging.getLogger(__name__)

LEASE_MS: Final = 500
RENEWALS_PER_LEASE: Final = 5

# KEYS: lease, epoch; ARGV: our current token ('' if none), our name, lease ms.
# Returns {1, token} when the lease is ours, {0, ms it has left} when another loader holds it.
_ACQUIRE: Final = """
local held = redis.call('get', KEYS[1])
if held and held == ARGV[1] then
    redis.call('pexpire', KEYS[1], ARGV[3])
    return {1, held}
end
if held then return {0, redis.call('pttl', KEYS[1])} end
local token = redis.call('incr', KEYS[2]) .. ' ' .. ARGV[2]
redis.call('set', KEYS[1], token, 'PX', ARGV[3])
return {1, token}
"""
_RENEW: Final = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end"
)
_RELEASE: Final = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "return redis.call('del', KEYS[1]) else return 0 end"
)
# One write, only while the lease holds the token. KEYS: lease, the key written;
# ARGV: token, command, its arguments after the key.
_FENCED: Final = """
if redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call(ARGV[2], KEYS[2], unpack(ARGV, 3))
return 1
"""
# Stream entries in order, only while the lease holds the token. KEYS: lease, stream;
# ARGV: token, field, then (entry id, value) pairs. A duplicate id fails the call: the entries
# before it stay (they are in order), and the loader re-reads the stream's end.
_APPEND: Final = """
if redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end
for i = 3, #ARGV, 2 do
    redis.call('xadd', KEYS[2], ARGV[i], ARGV[2], ARGV[i + 1])
end
return 1
"""


def _own_client(r: redis.Redis, timeout_s: float) -> redis.Redis:
    """A client to the same server with its own connections and a short timeout: a renewal
    never queues behind the main loop's calls nor waits out their 5 s timeout."""
    pool = r.connection_pool
    kwargs = {
        **pool.connection_kwargs,
        "socket_timeout": timeout_s,
        "socket_connect_timeout": timeout_s,
    }
    return redis.Redis(
        connection_pool=redis.ConnectionPool(connection_class=pool.connection_class, **kwargs)
    )


class Lease:
    def __init__(self, r: redis.Redis, keys: Keys, name: str, lease_ms: int = LEASE_MS) -> None:
        self.r, self.keys, self.name, self.lease_ms = r, keys, name, lease_ms
        # A renewal answered after the lease has passed is worthless: time out there.
        self._renewer = _own_client(r, lease_ms / 1000)
        self._lock = threading.Lock()
        self._token: bytes | None = None
        self._valid_until = 0.0  # monotonic; a renewal's send time + the lease
        self._renewed_at = 0.0
        self.standby_wait_s = 0.0  # after a refused acquire: how long the lease has left
        self.max_renew_gap_s = 0.0  # the longest time between two renewals while held
        self.renewals = 0
        self.renew_errors = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- holding it --------------------------------------------------------------------------

    @property
    def token(self) -> bytes | None:
        """Our fencing token while the lease is ours (renewed within the lease), else None."""
        with self._lock:
            if self._token is not None and time.monotonic() < self._valid_until:
                return self._token
            return None

    @property
    def epoch(self) -> int:
        token = self._token
        return int(token.split(b" ", 1)[0]) if token else 0

    def acquire(self) -> bool:
        """Take the lease if it is free (or keep it if still ours); False while another loader
        holds it, with `standby_wait_s` set to how long it has left."""
        with self._lock:
            mine = self._token or b""
        sent = time.monotonic()
        reply: Any = self.r.eval(
            _ACQUIRE, 2, self.keys.lease, self.keys.lease_epoch, mine, self.name, self.lease_ms
        )
        got, value = int(reply[0]), reply[1]
        if not got:
            with self._lock:
                self._token = None
            left = int(value)
            # -1: a lease without expiry, set by hand; keep asking at the lease's pace
            self.standby_wait_s = left / 1000 if left >= 0 else self.lease_ms / 1000
            return False
        with self._lock:
            self._token = bytes(value)
            self._valid_until = sent + self.lease_ms / 1000
            self._renewed_at = sent
        self._start_renewing()
        return True

    def drop(self) -> None:
        """Forget the token (a fenced write was refused: another loader holds the lease)."""
        with self._lock:
            self._token = None

    def release(self) -> None:
        """On a clean stop, so a standby takes over at once instead of when the lease expires."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        with self._lock:
            token, self._token = self._token, None
        if token is not None:
            with contextlib.suppress(redis.RedisError, OSError):
                self.r.eval(_RELEASE, 1, self.keys.lease, token)
        self._renewer.close()

    def _start_renewing(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._renew_loop, name="lease", daemon=True)
            self._thread.start()

    def _renew_loop(self) -> None:
        interval = self.lease_ms / 1000 / RENEWALS_PER_LEASE
        while not self._stop.wait(interval):
            with self._lock:
                token = self._token
            if token is None:
                continue
            sent = time.monotonic()
            try:
                ok = self._renewer.eval(_RENEW, 1, self.keys.lease, token, self.lease_ms)
            except (redis.RedisError, OSError):
                self.renew_errors += 1
                continue  # again next tick; past the local deadline the main loop stands by
            with self._lock:
                if self._token != token:
                    continue
                if not ok:
                    self._token = None
                else:
                    self.max_renew_gap_s = max(self.max_renew_gap_s, sent - self._renewed_at)
                    self._renewed_at, self._valid_until = sent, sent + self.lease_ms / 1000
                    self.renewals += 1
            if not ok:
                log.warning("the loader lease expired unrenewed or was taken by another loader")

    # -- fenced writes -----------------------------------------------------------------------

    def _mine(self) -> bytes:
        token = self.token
        if token is None:
            raise LeaseLost("this loader does not hold the lease")
        return token

    def _refused(self) -> LeaseLost:
        self.drop()
        return LeaseLost("the loader lease expired or was taken: write refused")

    def write(self, command: str, key: str, *args: Any) -> None:
        """`command key args...` in Redis, only while the lease is ours (else LeaseLost)."""
        if not self.r.eval(_FENCED, 2, self.keys.lease, key, self._mine(), command, *args):
            raise self._refused()

    def append(self, stream: str, field: bytes, entries: list[tuple[str, bytes]]) -> None:
        """Stream entries (id, value), in order, only while the lease is ours."""
        flat = [x for entry in entries for x in entry]
        if not self.r.eval(_APPEND, 2, self.keys.lease, stream, self._mine(), field, *flat):
            raise self._refused()

    def fence_token(self) -> bytes:
        """The token to hand a fenced write elsewhere (the snapshot switch)."""
        return self._mine()
