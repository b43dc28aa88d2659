"""`locust -f bench/locustfile.py` obeys the flags every locust user knows: -u users, -r a
second, and -t ends the run (the day-shaped load is bench/locust_day.py's, opt-in)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from ..support.common import ROOT
from ..support.process import Serving, varco, varco_env


def test_users_spawn_rate_and_run_time_are_obeyed(tmp_path: Path) -> None:
    env = varco_env(tmp_path, REDIS_URL="off")
    assert varco("demo", "--permits", "500", "--no-serve", env=env).returncode == 0
    served = Serving(tmp_path, env)
    try:
        served.answering()
        t0 = time.monotonic()
        out = subprocess.run(
            [
                str(Path(sys.executable).with_name("locust")),
                "-f",
                "bench/locustfile.py",
                "--host",
                served.base,
                "--headless",
                "-u",
                "5",
                "-r",
                "5",
                "-t",
                "5s",
                "--only-summary",
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=90,
        )
        took = time.monotonic() - t0
    finally:
        assert served.stop() == 0, served.log()
    log = out.stdout + out.stderr
    assert out.returncode == 0, log
    assert "(5 total users)" in log, log  # -u 5 at -r 5: all five at once, police among them
    assert "--run-time limit reached" in log, log
    # 5 s of load; the rest is locust's start-up and the plate mix read from the database.
    assert took < 5 + 30, (took, log)
    assert "/v1/transits" in log and "/v1/plates/{plate}" in log, log
