"""The port a service listens on is its own: a port already in use is refused (PortInUse),
never shared. SO_REUSEPORT would let a second service, judging on another permit database,
take half the traffic without a word. So one process binds without it (server.py), and a set
of workers first claims the port for itself (`claim_port`, held by their supervisor) and checks
that nothing else listens there.
"""

from __future__ import annotations

import errno
import socket


class PortInUse(Exception):
    """The configured address is taken: by another Varco, or another program."""


def in_use(host: str, port: int) -> PortInUse:
    return PortInUse(
        f"{host}:{port} is already in use (another varco serve, or another program); "
        "stop it, or choose another [server] port / --port"
    )


def claim_port(host: str, port: int) -> socket.socket:
    """Hold the port for one set of workers: a lock named after it (a Linux abstract socket,
    gone with the process), then a bind without SO_REUSEPORT, which fails if anything
    listens there. The workers then bind with SO_REUSEPORT, and only they can."""
    lock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        lock.bind(f"\0varco-serve-port-{port}")
    except OSError:
        lock.close()
        raise in_use(host, port) from None
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            lock.close()
            if exc.errno == errno.EADDRINUSE:
                raise in_use(host, port) from None
            raise
    return lock
