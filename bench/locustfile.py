"""Locust load for a running Varco (first version; issue 7 brings the plate mix drawn from the
permit database and the Milan-day load shape): camera users posting transits, singly and in
batches, and police users looking plates up. Demo keys and plates (examples/demo.toml).

    .venv/bin/locust -f bench/locustfile.py --host http://127.0.0.1:8080 \\
        --headless -u 50 -r 10 -t 1m --csv data/locust
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
from typing import ClassVar

from locust import FastHttpUser, between, task

GATES = ["PD-01", "PD-02", "PD-03"]
PERMITTED = ["AB123CD", "EF456GH", "FA001CU"]
UNKNOWN = ["ZZ999ZZ", "XY000AA", "KK123LL"]
_events = itertools.count()


def transit(plate: str) -> dict[str, object]:
    return {"event_id": f"locust-{next(_events)}", "camera": "cam-1", "gate": random.choice(GATES),
            "plate": plate, "ts": dt.datetime.now(dt.UTC).isoformat(), "confidence": 0.9}


class Camera(FastHttpUser):
    weight = 9
    wait_time = between(0.0, 0.05)
    headers: ClassVar = {"Authorization": "Bearer demo-camera"}

    @task(20)
    def one(self) -> None:
        plate = random.choice(PERMITTED if random.random() < 0.8 else UNKNOWN)
        self.client.post("/v1/transits", json=transit(plate), headers=self.headers)

    @task(1)
    def batch(self) -> None:
        body = {"transits": [transit(random.choice(PERMITTED + UNKNOWN)) for _ in range(50)]}
        self.client.post("/v1/transits/batch", json=body, headers=self.headers)


class Police(FastHttpUser):
    weight = 1
    wait_time = between(0.5, 2)
    headers: ClassVar = {"Authorization": "Bearer demo-police"}

    @task
    def lookup(self) -> None:
        plate = random.choice(PERMITTED + UNKNOWN)
        self.client.get(f"/v1/plates/{plate}", headers=self.headers, name="/v1/plates/{plate}")
