"""The workers of one `serve --workers N` as one service on `/metrics`.

The kernel hands each connection to one worker (SO_REUSEPORT), so a scrape reaches one of
them; its counters alone would be a random fraction of the service's. Each worker therefore
answers its siblings on a Unix socket, `<dir>/<slot>.sock`, with its metrics (`Family`
records, metrics.py): the scraped worker asks every other slot, concurrently and briefly, and
renders the merge. Nothing is exchanged per request, so the hot path pays nothing (which
prometheus-client's multiprocess mode, a memory-mapped file written on every increment,
would not give).

The directory is the supervisor's (mode 0700, removed when it stops): only the service's own
user reaches the sockets. A worker that is restarting is missing from a scrape for that
moment (`varco_workers` says how many answered), and a restarted worker's counters start
again from zero, as a restarted single-process service's do (Prometheus's `rate` treats the
drop as a counter reset).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Final

import msgspec
from aiohttp import web

from .metrics import Family, Metrics, merge

log = logging.getLogger(__name__)

ASK_TIMEOUT_S: Final = 1.0  # a sibling that does not answer in this long is left out
_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(list[Family])


class Siblings:
    """This worker's place among the service's: answer the others, gather from them."""

    def __init__(self, directory: Path, slot: int, count: int) -> None:
        self.directory, self.slot, self.count = directory, slot, count
        self._server: asyncio.AbstractServer | None = None

    def _path(self, slot: int) -> Path:
        return self.directory / f"{slot}.sock"

    async def start(self, metrics: Metrics) -> None:
        async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                writer.write(_ENCODER.encode(metrics.families()))
                await writer.drain()
            except (ConnectionError, OSError):
                pass  # the asking sibling gave up: nothing to do
            finally:
                writer.close()

        path = self._path(self.slot)
        path.unlink(missing_ok=True)  # the socket of the worker this one replaces
        self._server = await asyncio.start_unix_server(answer, path=str(path))

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._path(self.slot).unlink(missing_ok=True)

    async def _ask(self, slot: int) -> list[Family] | None:
        async def read() -> list[Family]:
            reader, writer = await asyncio.open_unix_connection(str(self._path(slot)))
            try:
                return _DECODER.decode(await reader.read())
            finally:
                writer.close()

        try:
            return await asyncio.wait_for(read(), ASK_TIMEOUT_S)
        except (TimeoutError, OSError, msgspec.DecodeError) as exc:
            log.debug("worker slot %d left out of this scrape: %s", slot, type(exc).__name__)
            return None

    async def families(self, metrics: Metrics) -> list[Family]:
        """The service's metrics: this worker's and every sibling's that answers."""
        others = await asyncio.gather(
            *(self._ask(slot) for slot in range(self.count) if slot != self.slot)
        )
        return merge([metrics.families(), *(f for f in others if f is not None)])


def answering(
    siblings: Siblings, metrics: Metrics
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup_ctx resource: answer the siblings while the app runs."""

    async def run(app: web.Application) -> AsyncIterator[None]:
        await siblings.start(metrics)
        try:
            yield
        finally:
            await siblings.stop()

    return run
