"""A stable event id per physical transit, so every retry, update and preview of one vehicle
at one camera is one transit (the transit log answers a retry with the standing verdict and
takes an update with another plate as a correction: enforcement/transits/passages.py).

Where the vendor identifies the vehicle (Axis car id, Rekor plate group) its id is used.
Where it does not, the id is derived from the camera, the normalised plate and the minute
window of the capture instant: a camera's retry carries the same capture time and a second
read of the same car falls in the same window. Two reads straddling a window edge make two
transits; that costs nothing a fine could rest on (at most one fine per plate, zone and day).
A no-read has no plate to tell two cars apart, so its id uses the exact capture instant. Ids
are hashes: an event id is logged and echoed, a plate must not be.
"""

from __future__ import annotations

from hashlib import blake2b
from typing import Final

WINDOW_S: Final = 60
MAX_ID: Final = 128  # TransitIn.event_id


_BLAKE2B: Final = blake2b(digest_size=12)  # copied: cheaper than a new one with parameters


def _digest(text: str) -> str:
    h = _BLAKE2B.copy()
    h.update(text.encode())
    return h.hexdigest()


def synthetic(camera: str, plate: str, ts: float) -> str:
    """The id of a read without a vendor id: camera + normalised plate + time window."""
    if plate:  # most posts: _digest inlined
        h = _BLAKE2B.copy()
        h.update(f"{camera}\x00{plate}\x00{int(ts) // WINDOW_S}".encode())  # (ts > 0)
        return "w-" + h.hexdigest()
    return "n-" + _digest(f"{camera}\x00\x00{round(ts * 1000)}")


def vendor(value: str) -> str:
    """A vendor's own id as an event id (hashed when too long for one)."""
    return value if 0 < len(value) <= MAX_ID else "h-" + _digest(value)
