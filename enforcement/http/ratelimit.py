"""Per-key rate limits: a token bucket per API key id (vendor camera routes: per camera id),
`server.key_rate` requests a second with bursts of `server.key_burst`; past it, 429
`rate_limited` with Retry-After.

Charged after authentication, so an unknown key costs no bucket and cannot spend another's.
Buckets are named by key or camera id, which come from the configuration (a bounded set, and
not secrets); the key itself is never a name, a label or a log line. One process's buckets:
with `--workers N` or N replicas each holds its own, so the service-wide rate is up to N times
the configured one (the proxy's limit, if any, is the global one).
"""

from __future__ import annotations

import math
import time
from collections import defaultdict

from ..config.settings import ServerSettings
from . import errors


class RateLimited(errors.ApiError):
    status, code = 429, "rate_limited"


class KeyRates:
    def __init__(self, limits: ServerSettings) -> None:
        self.rate = limits.key_rate  # 0: no limit
        self.burst = float(limits.key_burst)
        self._buckets: dict[str, list[float]] = {}  # id -> [tokens, when last filled]
        self.limited: defaultdict[str, int] = defaultdict(int)  # 429s by key id

    def charge(self, key_id: str) -> None:
        """Take one request from `key_id`'s bucket; RateLimited when it is empty."""
        short = self._take(key_id)
        if short is None:
            return
        self.limited[key_id] += 1
        exc = RateLimited(
            f"key {key_id!r} is over its rate limit (server.key_rate {self.rate:g} requests/s, "
            f"server.key_burst {self.burst:g}); retry after the Retry-After seconds"
        )
        exc.retry_after = max(1, math.ceil((1.0 - short) / self.rate))
        raise exc

    def take(self, key_id: str) -> bool:
        """`charge` without the refusal: whether a request was taken (False: `charge` would
        refuse it, and count that)."""
        return self._take(key_id) is None

    def refund(self, key_id: str) -> None:
        """Give back a request `take` took: its request is charged elsewhere."""
        bucket = self._buckets.get(key_id)
        if bucket is not None:
            bucket[0] = min(self.burst, bucket[0] + 1.0)

    def _take(self, key_id: str) -> float | None:
        """Take one request from the bucket: None if taken, else the tokens in it (< 1)."""
        if not self.rate:
            return None
        now = time.monotonic()
        bucket = self._buckets.get(key_id)
        if bucket is None:
            bucket = self._buckets[key_id] = [self.burst, now]
        tokens = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
        bucket[1] = now
        if tokens >= 1.0:
            bucket[0] = tokens - 1.0
            return None
        bucket[0] = tokens
        return tokens
