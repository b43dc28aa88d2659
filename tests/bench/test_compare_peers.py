"""bench.compare's logging peers (bench/peer_logged.py) judge in their store, in SQL and in Lua,
while their answer comes from the Python rule that the verification holds to Varco's: run on a
real PostgreSQL and a real Redis over the benchmark's dataset, the store must log each transit
once with the verdict, reason and permit ids the Python rule answers, and the verification
must reject a log that differs (no benchmark runs here)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import msgspec
import psycopg
import pytest
import redis

from bench import compare_data, compare_verify, peer_logged, peer_server
from enforcement.config.load import load_config
from enforcement.core.rules import zone_mask
from enforcement.http.schemas import ENCODER
from enforcement.replica.redis_server import EmbeddedRedis


def _mask() -> int:
    _, rules = load_config(compare_data.CONFIG, {})
    gate = rules.gates[compare_data.GATE]
    return zone_mask(sorted(rules.covered_by[gate.zone]), tuple(rules.zones))


def _answer(rows: Sequence[Any], text: str, t: int, mask: int, event_id: str) -> dict[str, Any]:
    v = peer_server.judge(rows, text, t, mask, lambda x: None, event_id)
    return msgspec.json.decode(ENCODER.encode(v))  # type: ignore[no-any-return]


def _sample(ds: compare_data.Dataset) -> list[tuple[str, str]]:
    return [(f"ev-{i}", text) for i, text in enumerate(ds.sample[:400])]


def test_redis_logged_peer_logs_what_it_answers(redis_server: EmbeddedRedis) -> None:
    ds = compare_data.make_dataset(3000, t=int(time.time()) - 60)
    loaded = compare_data.load_redis(ds, redis_server.url)
    assert loaded["appendfsync"] == "always"
    r = redis.Redis.from_url(redis_server.url)
    script = r.register_script(peer_logged.REDIS_LOG_LUA)
    decode = msgspec.msgpack.Decoder(list[tuple[str, int, int, int]]).decode
    mask = _mask()
    answers = {}

    def send(event_id: str, text: str) -> bytes | None:
        keys = [text, peer_logged.STREAM, f"{peer_logged.SEEN}cam-1:{event_id}"]
        args = [ds.t, mask, "cam-1", event_id, compare_data.GATE, time.time(), 60]
        return script(keys=keys, args=args)  # type: ignore[no-any-return]

    for event_id, text in _sample(ds):
        raw = send(event_id, text)
        answers[event_id] = _answer(decode(raw) if raw else (), text, ds.t, mask, event_id)
    assert r.info("persistence")["aof_enabled"] == 1
    logged = compare_verify.stream_logged(redis_server.url, peer_logged.STREAM, False)
    assert compare_verify.check_logged("redis-logged", answers, logged) == 400
    assert {a["verdict"] for a in answers.values()} == {"allowed", "pending"}
    send("ev-0", _sample(ds)[0][1])  # a retry: answered, not logged twice
    assert r.xlen(peer_logged.STREAM) == 400
    # A log whose verdict differs from the answer is caught.
    first = next(e for e, a in answers.items() if a["verdict"] == "allowed")
    answers[first] = {**answers[first], "verdict": "pending"}
    with pytest.raises(compare_verify.VerificationError, match="1 of 400 transits"):
        compare_verify.check_logged("redis-logged", answers, logged)
    r.close()


def test_pg_logged_peer_logs_what_it_answers(pg_url: str) -> None:
    ds = compare_data.make_dataset(3000, t=int(time.time()) - 60)
    compare_data.load_postgres(ds, pg_url)
    mask = _mask()
    answers = {}
    with psycopg.connect(pg_url, autocommit=True) as con:
        # The peer's statement as asyncpg sends it ($n parameters), through PREPARE.
        # (the simple query protocol: psycopg would take the $n for parameters of its own).
        prepare = (
            f"PREPARE logged(text, bigint, int, text, text, text) AS {peer_logged.PG_LOG_QUERY}"
        )
        assert con.pgconn.exec_(prepare.encode()).status == psycopg.pq.ExecStatus.COMMAND_OK
        cur = psycopg.ClientCursor(con)  # EXECUTE is a utility statement: no protocol parameters
        execute = "EXECUTE logged(%s, %s, %s, %s, %s, %s)"
        for event_id, text in _sample(ds):
            args = (text, ds.t, mask, "cam-1", event_id, compare_data.GATE)
            rows = cur.execute(execute, args).fetchall()
            answers[event_id] = _answer(rows, text, ds.t, mask, event_id)
        cur.execute(execute, args)  # a retry: not logged twice
        count = con.execute(f"SELECT count(*) FROM {peer_logged.LOG_TABLE}").fetchone()
    assert count == (400,)
    logged = compare_verify.pg_logged(pg_url)
    assert compare_verify.check_logged("pg-logged", answers, logged) == 400
    reasons = {a["reason"] for a in answers.values()}
    assert {"permit", "no_permit", "expired", "not_yet_valid"} <= reasons
    del logged[next(iter(logged))]
    with pytest.raises(compare_verify.VerificationError, match="1 of 400 transits"):
        compare_verify.check_logged("pg-logged", answers, logged)


async def test_the_floor_answers_once_its_record_is_written(redis_server: EmbeddedRedis) -> None:
    """(c') answers a post only after its record is in the stream, however many posts share
    a group commit: at every answer, the stream holds at least as many as were answered."""
    from aiohttp.test_utils import TestClient, TestServer

    from bench import empty_server

    from ..support.api import CAMERA, transit

    r = redis.Redis.from_url(redis_server.url)
    answered = 0

    async with TestClient(TestServer(empty_server.make_app(redis_server.url))) as client:

        async def post(i: int) -> None:
            nonlocal answered
            reply = await client.post("/v1/transits", json=transit("AB123CD"), headers=CAMERA)
            assert await reply.read() == empty_server.BODY
            answered += 1
            assert r.xlen("floor") >= answered

        await asyncio.gather(*(post(i) for i in range(50)))
    assert r.xlen("floor") == 50
    r.close()
