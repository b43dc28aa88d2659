"""The state of the loader's permit feeds (regional circuit, CUDE), as replicas report it.

The loader writes one SourceStatus per feed to Redis after each attempt; every replica reads
them and shows each feed's age, last error and reject count in `/readyz` and `/metrics`, so
whoever watches a replica sees a feed that stopped, without access to the loader. A feed older
than its `max_age` is a warning, not unreadiness: its last good permits still count.
"""

from __future__ import annotations

import msgspec


class SourceStatus(msgspec.Struct, frozen=True, omit_defaults=True):
    name: str
    max_age_s: int
    last_attempt: float = 0.0
    last_success: float = 0.0  # 0: never synced
    last_error: str | None = None  # the last attempt's error (None when it succeeded)
    rows: int = 0  # of the last good sync
    permits: int = 0
    rejected: int = 0
    changed: int = 0
    closed: int = 0
    held: bool = False  # the last attempt would close too many permits: an operator decides

    def age_s(self, now: float) -> float | None:
        return None if not self.last_success else now - self.last_success

    def too_old(self, now: float) -> bool:
        age = self.age_s(now)
        return age is None or age > self.max_age_s


ENCODER = msgspec.json.Encoder()
DECODER = msgspec.json.Decoder(SourceStatus)
