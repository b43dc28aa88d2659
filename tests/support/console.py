"""The service the console tests' browser talks to: the whole service (admin API included),
following a real Redis with the loader daemon beside it, served from a thread of its own.

A thread, not the test's event loop: selenium's calls block, and a server on the same loop
would never answer them. `call` is a small synchronous client for seeding the server the way
a camera or another office would (urllib: no event loop needed).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

from enforcement.config.settings import Settings
from enforcement.core.rules import Rules
from enforcement.http.app import create_app
from loader.database import open_db
from loader.users import add_user as add
from loader.users import hash_password
from loader.watch import LoaderThread, WatchOptions
from varco import admin

from .api import ServiceServer
from .process import http


class ServerThread:
    """`create_app(...)` with the admin API on loopback, run by an event loop in a thread."""

    def __init__(self, settings: Settings, rules: Rules) -> None:
        self.settings, self.rules = settings, rules
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="console-server")
        self.server: ServiceServer | None = None
        self.base = ""

    async def _start(self) -> None:
        app = create_app(
            self.settings,
            self.rules,
            redis_url=self.settings.redis.url,
            extend=admin.install,
            followup=True,
        )
        self.server = ServiceServer(app)
        await self.server.start_server()
        self.base = str(self.server.make_url("")).rstrip("/")

    def start(self) -> ServerThread:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(30)
        return self

    def stop(self) -> None:
        if self.server is not None:
            asyncio.run_coroutine_threadsafe(self.server.close(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)
        self.loop.close()


def call(
    base: str,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """One request; the status and the parsed JSON body (or text). `body`: bytes as they are
    (a camera vendor's payload), anything else as JSON."""
    if isinstance(body, bytes):
        data, sent = body, {}
    else:
        data = None if body is None else json.dumps(body).encode()
        sent = {"Content-Type": "application/json"} if body is not None else {}
    return http(base + path, data, {**sent, **(headers or {})}, method, timeout_s=10)


def wait_ready(base: str, revision: int = 0, timeout_s: float = 15) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        status, body = call(base, "GET", "/readyz")
        if status == 200 and body["index_revision"] >= revision:
            return body  # type: ignore[no-any-return]
        if time.monotonic() > deadline:
            raise AssertionError(f"not ready: {body}")
        time.sleep(0.05)


def start_loader(settings: Settings, rules: Rules) -> LoaderThread:
    assert settings.redis.url is not None
    options = WatchOptions(poll_s=0.05, history_days=100_000, max_shrink=1.0)
    return LoaderThread(settings, rules, settings.redis.url, options).start()


def add_user(settings: Settings, name: str, role: str, password: str) -> None:
    """A person who may sign in (as `varco users add` makes one)."""
    with open_db(settings) as db:
        assert add(db, name, role, hash_password(password))
