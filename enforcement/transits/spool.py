"""The local spool: an append-only, fsynced file log of transit records for when Redis
cannot take them (down, too slow, or not configured to make writes durable).

A spool is a directory of segment files `000000000001.seg`, ... holding frames
`<u32 length><u32 crc32><payload>`. Each process claims one spool directory with an exclusive
lock (`spool/0`, `spool/1`, ...: the first free one), so workers never share a file, and a
worker that restarts after a crash claims a free directory again and replays what the dead
one left. A frame is acknowledged only after its write and fsync return, so a torn frame at
the end of the last segment (power cut, kill -9 mid-write) was never acknowledged and is
ignored.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import struct
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final

log = logging.getLogger(__name__)

HEADER: Final = struct.Struct("<II")
SEGMENT_BYTES: Final = 4 << 20  # replay works a segment at a time; keep that short
SUFFIX: Final = ".seg"


class SpoolFull(Exception):
    """The spool reached its configured size: refuse (503), never drop."""


class Spool:
    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self._lock_fd: int | None = None
        self._active: Path | None = None
        self._active_fd: int | None = None
        self._active_size = 0
        self.bytes_used = 0

    # -- claiming --------------------------------------------------------------------------

    @classmethod
    def claim(cls, root: Path, max_bytes: int) -> Spool:
        """The first spool directory under `root` no other live process holds."""
        root.mkdir(parents=True, exist_ok=True)
        for n in range(1024):
            directory = root / str(n)
            directory.mkdir(exist_ok=True)
            fd = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            spool = cls(directory, max_bytes)
            spool._lock_fd = fd
            spool.recount()
            return spool
        raise RuntimeError(f"no free spool directory under {root} (1024 taken)")

    def release(self) -> None:
        self._close_active()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # -- writing ---------------------------------------------------------------------------

    def append(self, payloads: list[bytes]) -> None:
        """Write and fsync the frames; when this returns they survive a crash. Blocking: the
        caller runs it in a thread."""
        data = b"".join(HEADER.pack(len(p), zlib.crc32(p)) + p for p in payloads)
        if self.bytes_used + len(data) > self.max_bytes:
            raise SpoolFull(
                f"spool full ({self.bytes_used >> 20} MiB of {self.max_bytes >> 20} MiB)"
            )
        if self._active_fd is None or self._active_size >= SEGMENT_BYTES:
            self._open_next()
        assert self._active_fd is not None
        written = os.write(self._active_fd, data)
        while written < len(data):  # a regular file writes everything, barring a full disk
            written += os.write(self._active_fd, data[written:])
        os.fsync(self._active_fd)
        self._active_size += len(data)
        self.bytes_used += len(data)

    def _open_next(self) -> None:
        self._close_active()
        existing = self.segments()
        seq = int(existing[-1].stem) + 1 if existing else 1
        path = self.directory / f"{seq:012d}{SUFFIX}"
        self._active_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._active, self._active_size = path, 0
        fd = os.open(self.directory, os.O_RDONLY)  # the new name must survive a crash too
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _close_active(self) -> None:
        if self._active_fd is not None:
            os.close(self._active_fd)
        self._active_fd, self._active, self._active_size = None, None, 0

    def seal(self) -> None:
        """Close the segment being written, so that every segment can be replayed."""
        self._close_active()

    # -- reading ---------------------------------------------------------------------------

    def segments(self) -> list[Path]:
        return sorted(self.directory.glob(f"*{SUFFIX}"))

    def sealed_segments(self) -> list[Path]:
        return [p for p in self.segments() if p != self._active]

    def is_empty(self) -> bool:
        return not self.segments()

    def recount(self) -> None:
        """Re-read the size from disk (appends and removals run on different threads)."""
        self.bytes_used = sum(p.stat().st_size for p in self.segments())

    def remove(self, path: Path) -> None:
        size = path.stat().st_size
        path.unlink()
        self.bytes_used = max(0, self.bytes_used - size)

    def prune(self, keep: Callable[[bytes], bool]) -> int:
        """Drop the frames `keep` rejects from every segment (retention), the active one
        sealed first; the number dropped. Blocking, and the caller holds writes back."""
        self.seal()
        return sum(self.rewrite(path, keep) for path in self.segments())

    def rewrite(self, path: Path, keep: Callable[[bytes], bool]) -> int:
        """Drop the frames `keep` rejects from a sealed segment (retention); the number
        dropped. Atomic: a crash leaves the old or the new file, never half of one."""
        frames = list(read_frames(path))
        kept = [f for f in frames if keep(f)]
        if len(kept) == len(frames):
            return 0
        old_size = path.stat().st_size
        if not kept:
            self.remove(path)
            return len(frames)
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            f.write(b"".join(HEADER.pack(len(p), zlib.crc32(p)) + p for p in kept))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        self.bytes_used = max(0, self.bytes_used - old_size + path.stat().st_size)
        return len(frames) - len(kept)


def read_frames(path: Path) -> Iterator[bytes]:
    """The frames of a segment, stopping at a torn or corrupt frame (never acknowledged)."""
    with contextlib.suppress(FileNotFoundError), open(path, "rb") as f:
        data = f.read()
        pos = 0
        while pos + HEADER.size <= len(data):
            length, crc = HEADER.unpack_from(data, pos)
            start = pos + HEADER.size
            payload = data[start : start + length]
            if len(payload) < length or zlib.crc32(payload) != crc:
                log.warning(
                    "spool segment %s: torn or corrupt frame at byte %d ignored", path.name, pos
                )
                return
            yield payload
            pos = start + length


def all_frames(root: Path) -> Iterator[bytes]:
    """Every frame under a spool root, all directories (reconciliation, retention scans)."""
    for directory in sorted(p for p in root.glob("*") if p.is_dir()):
        for path in sorted(directory.glob(f"*{SUFFIX}")):
            yield from read_frames(path)
