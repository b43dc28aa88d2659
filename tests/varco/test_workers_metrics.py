"""`varco serve --workers 2`: one scrape of /metrics is the whole service, whichever worker
the kernel hands it to."""

from __future__ import annotations

import re
from pathlib import Path

from ..support.process import Serving, varco, varco_env, wait_for

READYZ = re.compile(r'^varco_http_requests_total\{route="/readyz",status="200"\} (\d+)$', re.M)


def test_metrics_under_workers_are_the_sum_of_both(tmp_path: Path) -> None:
    env = varco_env(tmp_path, REDIS_URL="off")
    assert varco("demo", "--permits", "500", "--no-serve", env=env).returncode == 0
    served = Serving(tmp_path, env, "--workers", "2")
    try:
        served.answering()
        pids: list[int] = []

        def both_answered() -> bool:  # a new connection each time: the kernel spreads them
            status, body = served.get("/readyz")
            assert status == 200, body
            pids.append(body["worker_pid"])
            return len(pids) >= 20 and len(set(pids)) == 2

        wait_for(both_answered, timeout_s=60, every_s=0.01)
        counts = [pids.count(pid) for pid in set(pids)]
        assert min(counts) < len(pids)  # so neither worker alone has seen them all
        for _ in range(6):  # whichever worker takes the scrape
            status, text = served.get("/metrics")
            assert status == 200
            assert READYZ.findall(text) == [str(len(pids))], (pids, text)
            assert re.search(r"^varco_workers 2$", text, re.M), text
            assert text.count("# TYPE varco_http_requests_total counter") == 1
    finally:
        assert served.stop() == 0, served.log()
