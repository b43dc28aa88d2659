"""bench.compare's verification: before any measurement, every server but the ceiling must give
Varco's answer (verdict, reason, plate, permit ids, grace) to every request of a sample, and
every server that logs must hold one record of each transit of its sample with the verdict,
reason and permit ids it answered, or the run stops (VerificationError)."""

from __future__ import annotations

import datetime as dt
import http.client
import json
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any, NamedTuple

import msgspec

from .compare_data import GATE, Dataset
from .peer_logged import LOG_TABLE, RECORD_FIELDS, STREAM


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


class Verified(NamedTuple):
    verdicts: dict[str, int]  # Varco's verdict/reason counts over the sample
    answers: dict[str, dict[str, dict[str, Any]]]  # kind -> event id -> answer


def verify_servers(ports: dict[str, int], ds: Dataset, count: int) -> Verified:
    """Send the sample to Varco and to every other server (not the fixed answers of the
    ceiling and the floor); compare."""
    sent: dict[str, list[str]] = {}
    answers = {}
    for k, port in ports.items():
        if k in ("empty", "floor"):  # a fixed answer
            continue
        bodies = transit_bodies(ds.sample, ds.t, count, f"{k}-{time.time_ns()}")
        sent[k] = [json.loads(b)["event_id"] for b in bodies]
        answers[k] = post_all(port, bodies)
    reference = answers["check"]
    verify(reference, {k: a for k, a in answers.items() if k != "check"})
    return Verified(
        dict(Counter(f"{a['verdict']}/{a['reason']}" for a in reference)),
        {k: dict(zip(sent[k], a, strict=True)) for k, a in answers.items()},
    )


Logged = dict[str, tuple[str, str, list[str]]]  # event id -> (verdict, reason, permit ids)


def pg_logged(dsn: str) -> Logged:
    import psycopg

    with psycopg.connect(dsn) as con:
        rows = con.execute(f"SELECT event_id, verdict, reason, permits FROM {LOG_TABLE}")
        return {e: (v, r, list(p)) for e, v, r, p in rows}


def stream_logged(url: str, stream: str, varco: bool) -> Logged:
    """A stream's records: Varco's TransitRecord (field `r`), or peer (g)'s array."""
    import redis

    from enforcement.transits.record import DECODE_RECORD

    r = redis.Redis.from_url(url)
    try:
        entries = r.xrange(stream, "-", "+")
    finally:
        r.close()
    out: Logged = {}
    for _, fields in entries:
        raw = fields[b"r"]
        if varco:
            rec = DECODE_RECORD(raw)
            out[rec.event_id] = (rec.verdict, rec.reason, list(rec.permits))
        else:
            f = dict(zip(RECORD_FIELDS, msgspec.msgpack.decode(raw), strict=True))
            out[f["event_id"]] = (f["verdict"], f["reason"], list(f["permits"] or []))
    return out


def check_logged(kind: str, answers: dict[str, dict[str, Any]], logged: Logged) -> int:
    """Raise VerificationError unless `logged` holds each answered transit once, as answered."""
    wrong = []
    for event_id, a in answers.items():
        want = (a["verdict"], a["reason"], a.get("permits", []))
        got = logged.get(event_id)
        if got != want:
            wrong.append(f"{event_id}: answered {want}, logged {got}")
    if wrong:
        raise VerificationError(
            f"{kind}: {len(wrong)} of {len(answers)} transits not logged as answered:\n  "
            + "\n  ".join(wrong[:5])
        )
    return len(answers)


def verify_logs(
    answers: dict[str, dict[str, dict[str, Any]]],
    pg_dsn: str,
    peer_redis: str,
    log_redis: str,
    varco_stream: str,
) -> dict[str, int]:
    """Every logging server's sample, read back from its store: the transits found per kind."""
    found = {}
    stores = {
        "pg-logged": lambda: pg_logged(pg_dsn),
        "redis-logged": lambda: stream_logged(peer_redis, STREAM, False),
        "logged": lambda: stream_logged(log_redis, varco_stream, True),
    }
    stores["logged-w2"] = stores["logged"]
    for kind, read in stores.items():
        if kind in answers:
            found[kind] = check_logged(kind, answers[kind], read())
    return found
