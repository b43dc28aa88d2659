"""Where a vendor adapter's cost goes: instructions per call of each adapter's parse, and of
the pieces every post pays, counted by callgrind in this process (bench/instructions.py).

    .venv/bin/python -m bench.bench_adapters

Re-runs itself under `valgrind --tool=callgrind` (needs valgrind). The native endpoint's
counterpart of an adapter's `from_body` is one msgspec decode of a TransitIn (the timestamp
parsed in C); everything above that is the adapter's own cost, paid on every post.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bench import instructions

ROOT = Path(__file__).resolve().parent.parent
CALLS = 500  # per measurement (instruction counts do not vary: no need for more)


def measure() -> None:
    from enforcement.config.load import load_config
    from enforcement.core.plates import normalise
    from enforcement.http.cameras import (
        axis,
        clock,
        dahua,
        hikvision,
        ids,
        milesight,
        platerecognizer,
        rekor,
    )
    from enforcement.http.cameras.reads import Context
    from enforcement.http.schemas import TRANSIT_DECODER
    from enforcement.transits import record as transit_record
    from tests.support import payloads as p

    settings, _ = load_config(ROOT / "examples" / "demo.toml", {})
    cameras = {c.vendor: c for c in settings.cameras.values()}
    at = dt.datetime.now(dt.UTC).replace(microsecond=0)
    out = Path(os.environ["VARCO_CALLGRIND_OUT"])
    counter = instructions.Callgrind(os.getpid(), out)
    counter.start_counting()

    def per_call(fn: Callable[[], Any]) -> float:
        for _ in range(50):
            fn()

        def run() -> None:
            for _ in range(CALLS):
                fn()

        return counter.count(run) / CALLS

    base = per_call(lambda: None)

    def show(name: str, fn: Callable[[], Any], size: int | None = None) -> None:
        bytes_ = "" if size is None else f"{size:>8,}"
        print(f"{name:34}{per_call(fn) - base:>10,.0f}{bytes_}", flush=True)

    print(f"{'instructions per call':34}{'':>10}{'bytes':>8}")
    native = json.dumps(
        {
            "event_id": "e-1",
            "camera": "cam-1",
            "gate": "PD-03",
            "plate": "AB123CD",
            "ts": at.isoformat(),
            "confidence": 0.92,
        }
    )
    native_body = native.encode()
    show("native: TransitIn decode", lambda: TRANSIT_DECODER.decode(native_body), len(native))
    cases: dict[str, tuple[Any, Any]] = {
        "hikvision": (hikvision, p.hikvision_json("AB123CD", at)),
        "axis": (axis, p.axis_event("AB123CD", at, car_id="77")),
        "milesight": (milesight, p.milesight("AB123CD", at)),
        "platerecognizer": (platerecognizer, p.platerecognizer_stream([("ab123cd", 0.9)], at)),
        "rekor": (rekor, p.rekor_group("AB123CD", at)),
        "dahua": (dahua, p.dahua("AB123CD", at)),
    }
    for name, (module, payload) in cases.items():
        body = json.dumps(payload).encode()
        ctx = Context(cameras[name], ZoneInfo(cameras[name].timezone), 8 << 20, time.time())
        show(f"{name}: from_body", lambda m=module, b=body, c=ctx: m.from_body(b, c), len(body))
    print("pieces:")
    dahua_body = json.dumps(cases["dahua"][1]).encode()
    rekor_body = json.dumps(cases["rekor"][1]).encode()
    pic = dahua.DECODER.decode(dahua_body).Picture
    assert pic is not None and pic.SnapInfo is not None
    local, rome = str(pic.SnapInfo.AccurateTime), ZoneInfo("Europe/Rome")
    show("  dahua: decode only", lambda: dahua.DECODER.decode(dahua_body))
    show("  rekor: decode only", lambda: rekor.DECODER.decode(rekor_body))
    show("  local time text -> instant", lambda: clock.parse(local, rome, time.time(), "t"))
    show("  kept fields (Dahua's; logged only)", lambda: transit_record.ENCODE(pic))
    show("  derived event id (blake2b)", lambda: ids.synthetic("cam-7", "AB123CD", 1.8e9))
    show("  normalise, upper case", lambda: normalise("AB123CD", "IT"))
    show("  normalise, lower case", lambda: normalise("ab123cd", "IT"))


def main() -> int:
    if "VARCO_CALLGRIND_OUT" in os.environ:
        measure()
        return 0
    if not instructions.available():
        print("needs valgrind (Debian: apt-get install valgrind)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="varco-adapters-") as tmp:
        env = dict(os.environ, VARCO_CALLGRIND_OUT=tmp, PYTHONPATH=str(ROOT))
        cmd = instructions.under_callgrind(
            [sys.executable, "-m", "bench.bench_adapters"], Path(tmp)
        )
        return subprocess.run(cmd, env=env, cwd=ROOT, stderr=subprocess.DEVNULL).returncode


if __name__ == "__main__":
    sys.exit(main())
