"""People's accounts as the tests use them: users written to the permit database, the `varco
users` command run in-process against the test's database and Redis, sign-in through the
API with the cookie handled by hand (so a test sees exactly what was set and sent), and the
audit records in Redis."""

from __future__ import annotations

import asyncio
import contextlib
import io
import sys
from collections.abc import AsyncIterator
from http.cookies import SimpleCookie
from typing import Any

import aiohttp
import msgspec
import pytest
import redis

from enforcement.audit.chain import decode_record
from enforcement.config.settings import Settings
from enforcement.core.rules import Rules
from enforcement.http.app import create_app
from enforcement.http.sessions import COOKIE
from enforcement.keys import Keys
from loader import users
from loader.database import open_db
from varco import admin
from varco.cli import main

from .api import Client, ServiceServer, ready, upsert
from .common import DEMO_CONFIG, eventually

PASSWORD = "correct horse battery"


def add_user(settings: Settings, name: str, role: str, password: str = PASSWORD) -> None:
    with open_db(settings) as db:
        assert users.add_user(db, name, role, users.hash_password(password))


def varco_users(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, *argv: str, stdin: str = ""
) -> tuple[int, str, str]:
    """`varco users ARGV` in this process, on the settings' database and Redis; (exit code,
    stdout, stderr)."""
    monkeypatch.setenv("VARCO_DATA_DIR", str(settings.storage.data_dir))
    monkeypatch.setenv("REDIS_URL", settings.redis.url or "off")
    if settings.database_url:
        monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(["--config", str(DEMO_CONFIG), "users", *argv])
        except SystemExit as exc:  # argparse, or a command's message
            if isinstance(exc.code, int):
                code = exc.code
            else:
                err.write(f"{exc.code}\n")
                code = 1
    return code, out.getvalue(), err.getvalue()


async def varco_users_async(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, *argv: str
) -> tuple[int, str, str]:
    """`varco_users` from a test's event loop: the command runs its own (asyncio.run), so on
    a thread of its own."""
    return await asyncio.to_thread(varco_users, settings, monkeypatch, *argv)


class Person:
    """A browser's view of one person: the cookie it holds and the CSRF token it was given."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.cookie: str | None = None
        self.csrf: str | None = None
        self.set_cookie: str | None = None  # the last Set-Cookie header, as sent

    async def sign_in(
        self, name: str, password: str = PASSWORD, headers: dict[str, str] | None = None
    ) -> tuple[int, Any, aiohttp.ClientResponse]:
        status, body, r = await self.client.request(
            "POST", "/v1/session", headers, json={"username": name, "password": password}
        )
        if status == 200:
            self.set_cookie = r.headers["Set-Cookie"]
            self.cookie = SimpleCookie(self.set_cookie)[COOKIE].value
            self.csrf = body["csrf_token"]
        return status, body, r

    async def request(
        self, method: str, path: str, csrf: str | None = "session", **kw: Any
    ) -> tuple[int, Any, aiohttp.ClientResponse]:
        """With the session cookie; `csrf` "session" sends the session's token, None none."""
        headers = dict(kw.pop("headers", {}))
        if self.cookie is not None:
            headers["Cookie"] = f"{COOKIE}={self.cookie}"
        if csrf is not None:
            headers["X-CSRF-Token"] = self.csrf if csrf == "session" else csrf  # type: ignore[assignment]
        return await self.client.request(method, path, headers, **kw)


@contextlib.asynccontextmanager
async def accounts_server(settings: Settings, rules: Rules) -> AsyncIterator[Client]:
    """The service with the admin API and sign-in, over Redis, ready (demo permits)."""
    from .api import PERMITS

    base = upsert(settings, *PERMITS)
    server = ServiceServer(
        create_app(settings, rules, redis_url=settings.redis.url, extend=admin.install)
    )
    await server.start_server()
    # No cookie jar: the tests send the cookie themselves (Person).
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
        client = Client(session, str(server.make_url("")).rstrip("/"))
        await eventually(lambda: ready(client, base))
        yield client
    await server.close()


def audit_records(settings: Settings) -> list[dict[str, Any]]:
    """The audit chain's records in Redis, in order, as the service reads them (fields left
    out of the stored JSON at their default are filled in)."""
    r = redis.Redis.from_url(settings.redis.url or "")
    try:
        entries = r.xrange(Keys(settings.redis.prefix).audit)
    finally:
        r.close()
    records = [decode_record(fields[b"body"]) for _, fields in entries]
    return [msgspec.structs.asdict(rec) for rec in records if rec is not None]


def redis_dump(settings: Settings) -> bytes:
    """Every key name and string/hash/set value in the settings' Redis, concatenated: what a
    copy of Redis would show."""
    r = redis.Redis.from_url(settings.redis.url or "")
    out = []
    try:
        for key in r.scan_iter(f"{settings.redis.prefix}:*"):
            out.append(key)
            kind = r.type(key)
            if kind == b"hash":
                out.extend(v for kv in r.hgetall(key).items() for v in kv)
            elif kind == b"set":
                out.extend(r.smembers(key))
            elif kind == b"string":
                out.append(r.get(key) or b"")
        return b"\n".join(out)
    finally:
        r.close()
