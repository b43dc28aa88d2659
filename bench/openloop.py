"""An open-loop HTTP load generator for transits: requests arrive at a fixed rate whatever the
server answers, as cameras' reads do; a closed loop (wrk, locust) waits for an answer before it
sends again, so it slows down with the server and hides an overload.

    python -m bench.openloop PORT --rate 6000 --duration 10 [--connections 256]
    python -m bench.openloop PORT --closed 32 --duration 10      (capacity: a closed loop)

Arrival i is due at start + i / rate. It goes out on an idle keep-alive connection, else on a
new one (up to --connections), else it waits in the generator's FIFO for the first connection
that frees up. Its latency runs from when it was due, not from when it went out, so time spent
waiting for a connection counts (no coordinated omission). Raw asyncio protocols on uvloop
with a minimal HTTP/1.1 response parser: ~10 µs a request, so one core offers tens of
thousands a second. Every 200 is checked to be the answer to its own transit (its event id).

Prints one JSON line: offered and sent rates, answers by status, latency percentiles of the
200s and of every answer, requests left unanswered, wrong answers.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import itertools
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, cast

import uvloop

HEAD = (
    "POST /v1/transits HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer demo-camera\r\n"
    "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n"
)


class Load:
    """The requests, what became of them, and the pool of connections. Only requests due in
    [record_from, record_until) are counted."""

    def __init__(self, port: int, plates: list[str], ts: str, max_conns: int) -> None:
        self.port, self.plates, self.ts, self.max_conns = port, plates, ts, max_conns
        self.run = f"{time.time_ns():x}"
        self.seq = itertools.count()
        self.conns: set[Conn] = set()
        self.idle: list[Conn] = []
        self.opening = 0
        self.backlog: collections.deque[tuple[float, bytes, bytes]] = collections.deque()
        self.latency: dict[int, list[float]] = collections.defaultdict(list)
        self.record_from, self.record_until = float("inf"), float("inf")
        self.submitted = 0  # due in the window
        self.wrong = 0  # 200s that answer another transit
        self.lost = 0  # requests on a connection closed before their answer
        self.closed = False  # closed loop: each answer sends the next request

    def counts(self, due: float) -> bool:
        return self.record_from <= due < self.record_until

    def request(self) -> tuple[bytes, bytes]:
        i = next(self.seq)
        eid = f"{self.run}-{i}"
        body = (
            f'{{"event_id":"{eid}","camera":"cam-1","gate":"PD-03","plate":'
            f'"{self.plates[i % len(self.plates)]}","ts":"{self.ts}","confidence":0.92}}'
        ).encode()
        return HEAD.format(len(body)).encode() + body, eid.encode()

    def submit(self, due: float) -> None:
        self.submitted += self.counts(due)
        raw, eid = self.request()
        if self.idle:
            self.idle.pop().send(due, raw, eid)
            return
        self.backlog.append((due, raw, eid))
        self.grow()

    def grow(self) -> None:
        # A closed loop keeps its connections: one the server (or nginx, after a refusal or
        # 1,000 requests) closed is opened again, or the loop would dwindle.
        wanted = self.backlog or self.closed
        if wanted and len(self.conns) + self.opening < self.max_conns:
            self.opening += 1
            asyncio.get_running_loop().create_task(self.open())

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await loop.create_connection(lambda: Conn(self), "127.0.0.1", self.port)
        except OSError:
            return
        finally:
            self.opening -= 1
        conn.ready()

    def done(self, due: float, status: int, body: bytes, eid: bytes) -> None:
        if self.counts(due):
            self.latency[status].append(time.perf_counter() - due)
            if status == 200 and eid not in body:
                self.wrong += 1

    def answered(self) -> int:
        return sum(len(v) for v in self.latency.values())


class Conn(asyncio.Protocol):
    """One keep-alive connection: one request at a time (no pipelining, as cameras post)."""

    def __init__(self, load: Load) -> None:
        self.load = load
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.pending: tuple[float, bytes] | None = None
        self.need = -1  # bytes of the whole response, once its head is in

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's: not a subclass
        self.load.conns.add(self)

    def ready(self) -> None:
        """Free for a request: the oldest waiting one, else into the idle pool."""
        if self.transport is None or self.transport.is_closing():
            return
        if self.load.backlog:
            self.send(*self.load.backlog.popleft())
        elif self.load.closed:  # a closed loop: the next request as soon as this one is done
            self.load.submitted += self.load.counts(now := time.perf_counter())
            self.send(now, *self.load.request())
        else:
            self.load.idle.append(self)

    def send(self, due: float, raw: bytes, eid: bytes) -> None:
        assert self.transport is not None
        self.pending = (due, eid)
        self.transport.write(raw)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while self.pending is not None:
            if self.need < 0:
                end = self.buf.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = self.buf[:end].lower()
                at = head.find(b"content-length:")
                eol = head.find(b"\r\n", at)
                length = int(head[at + 15 : eol if eol >= 0 else end]) if at >= 0 else 0
                self.need = end + 4 + length
            if len(self.buf) < self.need:
                return
            whole, self.buf, self.need = self.buf[: self.need], self.buf[self.need :], -1
            due, eid = self.pending
            self.pending = None
            self.load.done(due, int(whole[9:12]), whole[whole.find(b"\r\n\r\n") :], eid)
            if b"connection: close" in whole[:200].lower():
                assert self.transport is not None
                self.transport.close()
                return
            self.ready()

    def connection_lost(self, exc: Exception | None) -> None:
        load = self.load
        load.conns.discard(self)
        if self in load.idle:
            load.idle.remove(self)
        if self.pending is not None:
            load.lost += load.counts(self.pending[0])
            self.pending = None
        self.transport = None
        load.grow()


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def open_loop(load: Load, rate: float, duration: float, warmup: float) -> None:
    """Submit at `rate` for warmup + duration seconds; count those due after the warm-up."""
    start = time.perf_counter()
    load.record_from, load.record_until = start + warmup, start + warmup + duration
    total = int(rate * (warmup + duration))
    i = 0
    while i < total:
        due_n = min(total, int((time.perf_counter() - start) * rate) + 1)
        while i < due_n:
            load.submit(start + i / rate)
            i += 1
        # At least a millisecond: uvloop's timers count whole milliseconds, so a shorter
        # sleep returns at once and the loop would spin, taking the CPU its answers need.
        await asyncio.sleep(max(0.001, start + i / rate - time.perf_counter()))


async def closed_loop(load: Load, conns: int, duration: float, warmup: float) -> None:
    """`conns` connections, each sending again as soon as it is answered (due = sent)."""
    load.max_conns, load.closed = conns, True
    start = time.perf_counter()
    load.record_from, load.record_until = start + warmup, start + warmup + duration
    for _ in range(conns):
        load.submit(time.perf_counter())
    await asyncio.sleep(warmup + duration)
    load.closed = False


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    load = Load(args.port, args.plates.split(","), args.ts, args.connections)
    if args.closed:
        await closed_loop(load, args.closed, args.duration, args.warmup)
    else:
        await open_loop(load, args.rate, args.duration, args.warmup)
    deadline = time.perf_counter() + args.drain
    while load.answered() + load.lost < load.submitted and time.perf_counter() < deadline:
        await asyncio.sleep(0.01)
    for conn in list(load.conns):
        assert conn.transport is not None
        conn.transport.close()
    ok = load.latency.get(200, [])
    every = [x for v in load.latency.values() for x in v]
    seconds = args.duration
    return {
        "mode": "closed" if args.closed else "open",
        "offered_rps": args.rate if not args.closed else None,
        "submitted": load.submitted,
        "submitted_rps": round(load.submitted / seconds, 1),
        "ok_rps": round(len(ok) / seconds, 1),
        "status": {str(k): len(v) for k, v in sorted(load.latency.items())},
        "unanswered": load.submitted - load.answered() - load.lost,
        "lost": load.lost,
        "wrong": load.wrong,
        "ok_p50_ms": round(percentile(ok, 0.50) * 1e3, 3),
        "ok_p99_ms": round(percentile(ok, 0.99) * 1e3, 3),
        "all_p50_ms": round(percentile(every, 0.50) * 1e3, 3),
        "all_p99_ms": round(percentile(every, 0.99) * 1e3, 3),
        "connections_peak": args.closed or args.connections,
        # The generator's own CPU: near a core's worth, its loop runs late and its latencies
        # include its own delay in reading answers (the figures are then the generator's).
        "generator_cpu_s": round(
            resource.getrusage(resource.RUSAGE_SELF).ru_utime
            + resource.getrusage(resource.RUSAGE_SELF).ru_stime,
            2,
        ),
    }


def run(port: int, *options: str, core: int = 1) -> dict[str, Any]:
    """One run of this generator in a process of its own pinned to `core`: its JSON line."""
    cmd = ["taskset", "-c", str(core), sys.executable, "-m", "bench.openloop", str(port)]
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([*cmd, *options], capture_output=True, text=True, cwd=root)
    if out.returncode != 0:
        raise RuntimeError(f"load generator failed: {out.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("port", type=int)
    p.add_argument("--rate", type=float, default=1000.0, help="arrivals per second")
    p.add_argument("--closed", type=int, default=0, help="closed loop on N connections")
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--drain", type=float, default=5.0, help="wait for answers after the run")
    p.add_argument("--connections", type=int, default=256, help="open loop: at most")
    p.add_argument("--plates", default="AB123CD")
    p.add_argument("--ts", default=time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()))
    args = p.parse_args(argv)
    print(json.dumps(uvloop.run(main_async(args))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
