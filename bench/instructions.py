"""Instructions per request of a server process, counted by valgrind's callgrind.

Throughput on this host swings by up to 1.5x between runs seconds apart (its vCPUs are shared
with other machines, and it has no hardware counters to read), so a ratio of two throughputs
needs many interleaved rounds to settle. An instruction count does not move: the same build,
requests and environment give the same total whatever else the machine is doing. It is the
steady complement to a throughput ratio, not a substitute: it does not weigh cache misses or
system calls by their cost. Where two endpoints run the same lookups and the same system
calls (a vendor adapter in front of the native check), their instruction ratio is close to
what their throughput ratio would be on a quiet core.

The server starts under `valgrind --tool=callgrind --instr-atstart=no` (start-up runs
uninstrumented, about 5x slower than native); `Callgrind.count` zeroes the counters, sends
the requests, dumps, and reads the dump's total (`callgrind_control`, which talks to the
process through vgdb). Needs valgrind (Debian: apt-get install valgrind).
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

_TOTALS = re.compile(rb"^totals:\s*(\d+)", re.MULTILINE)


def available() -> bool:
    return bool(shutil.which("valgrind") and shutil.which("callgrind_control"))


def under_callgrind(cmd: Sequence[str], out_dir: Path) -> list[str]:
    """`cmd` run under callgrind, counting nothing until `Callgrind.start_counting`."""
    return [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        "--dump-instr=no",
        f"--callgrind-out-file={out_dir}/callgrind.out",
        *cmd,
    ]


class Callgrind:
    """Counts the instructions a process started with `under_callgrind` runs between two
    points. `pid` is the valgrind process's pid (valgrind execs the program in place)."""

    def __init__(self, pid: int, out_dir: Path) -> None:
        self.pid = pid
        self.out_dir = out_dir

    def _control(self, *args: str) -> None:
        subprocess.run(
            ["callgrind_control", *args, str(self.pid)],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=60,
        )

    def start_counting(self) -> None:
        self._control("--instr=on")

    def count(self, work: Callable[[], None], keep: Path | None = None) -> int:
        """Instructions the process ran while `work()` ran (the dump moved to `keep`, for
        callgrind_annotate, if given)."""
        before = set(self.out_dir.glob("callgrind.out.*"))
        self._control("--zero")
        work()
        self._control("--dump")
        (dump,) = set(self.out_dir.glob("callgrind.out.*")) - before
        found = _TOTALS.search(dump.read_bytes())
        if found is None:
            raise RuntimeError(f"no totals in {dump}")
        if keep is None:
            dump.unlink()
        else:
            dump.replace(keep)
        return int(found.group(1))


async def _post_share(port: int, requests: Sequence[bytes]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for raw in requests:
            writer.write(raw)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = re.search(rb"(?i)content-length:\s*(\d+)", head)
            if length is None:
                raise RuntimeError("answer without Content-Length")
            body = await reader.readexactly(int(length.group(1)))
            if status != 200:
                raise RuntimeError(f"HTTP {status}: {body[:300]!r}")
    finally:
        writer.close()


def post(
    port: int, path: str, headers: dict[str, str], bodies: Sequence[bytes], connections: int
) -> None:
    """POST every body once over `connections` keep-alive connections, each 200 or raise."""
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    raw = [
        (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{head}Content-Length: {len(b)}\r\n\r\n"
        ).encode()
        + b
        for b in bodies
    ]

    async def run() -> None:
        await asyncio.gather(*(_post_share(port, raw[i::connections]) for i in range(connections)))

    asyncio.run(run())
