"""What one worker remembers of the camera events it recorded: retries answered without a round
trip, and decided while Redis is away (log.py writes to the spool then, against this memory).

Per event its dedup key's digest -> (when it was remembered, the encoded `Seen`): bytes, not
the Seen, because a Seen holds a list, and with 200,000 lists to walk the collector's full
collections set the p99 under load (40-120 ms; bench/README.md) and cost every post up to 8 us.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from itertools import repeat
from typing import Final

from .record import DECODE_SEEN, Seen

LOCAL_SEEN_MAX: Final = 200_000  # retries answered from memory while Redis is away


class Recent:
    def __init__(self, window_s: float, most: int = LOCAL_SEEN_MAX) -> None:
        self.window_s, self.most = window_s, most
        self._seen: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    def get(self, digest: str, now: float) -> Seen | None:
        """What is remembered of the event (within the window), or None."""
        hit = self._seen.get(digest)
        if hit is None or hit[0] < now - self.window_s:
            return None
        return DECODE_SEEN(hit[1])

    def knows_any(self, digests: Iterable[str]) -> bool:
        """Whether any of the events is remembered at all (in C: the common group knows
        none, and then asks nothing per transit)."""
        return not self._seen.keys().isdisjoint(digests)

    def remember(self, digest: str, seen: bytes, now: float) -> None:
        self._seen[digest] = (now, seen)
        if len(self._seen) > self.most:
            self._seen.popitem(last=False)

    def remember_all(self, digests: Sequence[str], seens: Sequence[bytes], now: float) -> None:
        """A whole group at once (the iteration in C)."""
        self._seen.update(
            zip(digests, zip(repeat(now, len(seens)), seens, strict=True), strict=True)
        )
        for _ in range(len(self._seen) - self.most):
            self._seen.popitem(last=False)
