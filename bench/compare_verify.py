"""bench.compare's verification: before any measurement, peers (d), (e) and Varco with the
durable log (c) must give Varco's answer (verdict, reason, plate, permit ids, grace) to every
request of a sample, or the run stops (VerificationError)."""

from __future__ import annotations

import datetime as dt
import http.client
import json
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from .compare_data import GATE, Dataset


class VerificationError(Exception):
    """A server's answers differ from Varco's on the verification sample."""


def transit_bodies(sample: Sequence[str], t: int, count: int, tag: str) -> list[bytes]:
    ts = dt.datetime.fromtimestamp(t, dt.UTC).isoformat()
    return [
        json.dumps(
            {
                "event_id": f"verify-{tag}-{i}",
                "camera": "cam-1",
                "gate": GATE,
                "plate": sample[i % len(sample)],
                "ts": ts,
                "confidence": 0.92,
            }
        ).encode()
        for i in range(count)
    ]


def post_all(port: int, bodies: Sequence[bytes]) -> list[dict[str, Any]]:
    """POST each body on one keep-alive connection; the decoded answers (status in `_status`)."""
    con = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    out = []
    headers = {"Content-Type": "application/json", "Authorization": "Bearer demo-camera"}
    try:
        for body in bodies:
            con.request("POST", "/v1/transits", body, headers)
            resp = con.getresponse()
            data = resp.read()
            try:
                answer = json.loads(data)
            except ValueError:
                answer = {"_body": data[:200].decode("utf-8", "replace")}
            answer["_status"] = resp.status
            out.append(answer)
    finally:
        con.close()
    return out


COMPARED = ("_status", "verdict", "reason", "plate", "permits", "grace_until")


def differences(
    reference: Sequence[dict[str, Any]], answers: Sequence[dict[str, Any]], limit: int = 5
) -> tuple[int, list[str]]:
    """How many answers differ from the reference in a COMPARED field, and the first few."""
    count, shown = 0, []
    if len(reference) != len(answers):
        return max(len(reference), len(answers)), [f"{len(answers)} answers, not {len(reference)}"]
    for i, (ref, got) in enumerate(zip(reference, answers, strict=True)):
        want = {k: ref.get(k, [] if k == "permits" else None) for k in COMPARED}
        have = {k: got.get(k, [] if k == "permits" else None) for k in COMPARED}
        if want != have:
            count += 1
            if len(shown) < limit:
                diff = {k: (want[k], have[k]) for k in COMPARED if want[k] != have[k]}
                shown.append(f"request {i} ({ref.get('plate')}): {diff} (Varco, this server)")
    return count, shown


def verify(reference: Sequence[dict[str, Any]], peers: dict[str, Sequence[dict[str, Any]]]) -> None:
    """Raise VerificationError unless every peer answered every request as Varco did."""
    if any(a.get("_status") != 200 for a in reference):
        raise VerificationError("Varco itself failed requests of the sample")
    problems = []
    for name, answers in peers.items():
        count, shown = differences(reference, answers)
        if count:
            problems.append(
                f"{name}: {count} of {len(reference)} answers differ from Varco's:\n  "
                + "\n  ".join(shown)
            )
    if problems:
        raise VerificationError("\n".join(problems))


def verify_servers(ports: dict[str, int], ds: Dataset, count: int) -> dict[str, int]:
    """Send the sample to Varco and to every other server (not the ceiling); compare."""
    answers = {
        k: post_all(p, transit_bodies(ds.sample, ds.t, count, f"{k}-{time.time_ns()}"))
        for k, p in ports.items()
        if k != "empty"
    }
    reference = answers.pop("check")
    verify(reference, answers)
    return dict(Counter(f"{a['verdict']}/{a['reason']}" for a in reference))
