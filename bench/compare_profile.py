"""bench.compare's profiles: py-spy on a server under wrk's load, and the functions with the
largest share of its samples, from py-spy's collapsed stacks."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from .bench_http import wrk_raw


def profile(
    pid: int, port: int, script: Path, seconds: int, out: Path
) -> dict[str, list[tuple[str, float]]]:
    """py-spy (if installed) on `pid` while wrk loads it: collapsed stacks into `out`, and the
    functions with the largest share of the busy samples (profile_summary)."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        print("py-spy is not installed: no profile", file=sys.stderr)
        return {}
    rec = subprocess.Popen(
        [
            spy,
            "record",
            "-p",
            str(pid),
            "-d",
            str(seconds),
            "-r",
            "250",
            "-f",
            "raw",
            "-o",
            str(out),
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    time.sleep(0.5)
    wrk_raw(port, script, seconds, 32)
    _, err = rec.communicate(timeout=seconds + 60)
    if rec.returncode or not out.exists():
        print(f"py-spy failed: {err.decode()[-500:]}", file=sys.stderr)
        return {}
    return profile_summary(out.read_text())


def top_frames(collapsed: str, top: int = 25) -> list[tuple[str, float]]:
    """Functions by their share of the samples, inclusive (the frame anywhere on the stack),
    from py-spy's collapsed stacks; file paths shortened to the file name."""
    return _frames(collapsed, top)[0]


def _frames(collapsed: str, top: int) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    total = 0
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        names = [re.sub(r" \((.*?)/([^/]+\.py):\d+\)", r" (\2)", f) for f in stack.split(";")]
        for name in set(names):
            inclusive[name] += n
        own[names[-1]] += n
    if not total:
        return [], []
    return (
        [(k, v / total) for k, v in inclusive.most_common(top)],
        [(k, v / total) for k, v in own.most_common(top)],
    )


def profile_summary(collapsed: str, top: int = 18) -> dict[str, list[tuple[str, float]]]:
    """Inclusive shares below the event loop's own frames (those in nearly every sample),
    and self shares (the innermost Python frame: C code counts for its Python caller)."""
    inclusive, own = _frames(collapsed, 200)
    root = inclusive[0][1] if inclusive else 0.0
    return {"inclusive": [f for f in inclusive if f[1] < 0.97 * root][:top], "self": own[:top]}
