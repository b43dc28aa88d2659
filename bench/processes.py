"""What the benches read about processes from /proc: CPU time, children, process groups,
listening sockets, memory (with the snapshot's share), and reaping orphans. Linux only."""

from __future__ import annotations

import contextlib
import ctypes
import os

from enforcement.core.snapshot import SUFFIX


def proc_stat(pid: int) -> list[str]:
    """Fields of /proc/<pid>/stat after the command name (index 0 = state, 1 = ppid)."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rpartition(")")[2].split()


def children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                if int(proc_stat(int(entry))[1]) == pid:
                    out.append(int(entry))
    return sorted(out)


def group_members(pgid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                st = proc_stat(int(entry))
                if int(st[2]) == pgid and st[0] != "Z":
                    out.append(int(entry))
    return out


def cmdline(pid: int) -> str:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().replace(b"\0", b" ").decode()


def cpu_s(pid: int) -> float:
    st = proc_stat(pid)
    return (int(st[11]) + int(st[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def listeners(port: int) -> int:
    """Listening TCP sockets on `port` (with SO_REUSEPORT, one per worker that is up)."""
    n = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as f:
            for line in f.readlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                n += state == "0A" and int(local.rpartition(":")[2], 16) == port
    return n


def become_subreaper() -> None:
    """Orphans of the service (multiprocessing's resource tracker outlives the supervisor)
    become our children rather than init's, so `stop` can reap them: no zombies left."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def rollup(pid: int) -> dict[str, int]:
    """/proc/<pid>/smaps_rollup in bytes, plus `Snapshot_Rss`/`Snapshot_Pss`: the .vidx
    mappings' share, from /proc/<pid>/smaps."""
    out: dict[str, int] = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f.readlines()[1:]:
            name, value = line.split(":")
            out[name] = int(value.split()[0]) * 1024
    out["Snapshot_Rss"] = out["Snapshot_Pss"] = 0
    in_snapshot = False
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            head = line.split(maxsplit=1)[0]
            if not head.endswith(":"):  # a mapping's header line: address range ... path
                in_snapshot = line.rstrip().endswith(SUFFIX)
            elif in_snapshot and head in ("Rss:", "Pss:"):
                out["Snapshot_" + head[:-1]] += int(line.split()[1]) * 1024
    return out
