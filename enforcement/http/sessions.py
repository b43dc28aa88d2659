"""Sign-in sessions of people (the console), and the lock-out of a name after failed sign-ins.

A session lives in Redis (`enforcement.keys`: `{p}:session:{digest}`), so a person signed in
through one replica is known to all of them. The cookie is 32 random bytes; Redis keeps only
its sha256, so a copy of Redis holds no usable cookie. A session ends when unused for
`[console] session_idle` (its TTL, renewed on each use) and at the latest `session_max` after
sign-in (its `ends`, checked on each use). Each session carries a CSRF token, which the
console sends back as `X-CSRF-Token` on every write (auth.py checks it).

Lock-out: `MAX_FAILURES` failed sign-ins for one name within `FAILURE_WINDOW_S` lock the name
for `LOCK_S`, whether or not such a user exists (a lock only for real users would tell which
names exist). `varco users unlock` lifts it.

Nothing here logs a cookie, a token or a name.
"""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
import time
from typing import Final

import msgspec
import redis.asyncio as aredis
from aiohttp import web

from ..keys import Keys

COOKIE: Final = "varco_session"
MAX_FAILURES: Final = 5
FAILURE_WINDOW_S: Final = 15 * 60
LOCK_S: Final = 15 * 60


class Session(msgspec.Struct, frozen=True):
    user: str
    role: str
    csrf: str
    ends: float  # epoch seconds: the absolute end, whatever the use


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def name_digest(name: str) -> str:
    """A typed user name's digest for the lock-out keys: case-folded, so "Anna" and "anna"
    share one counter."""
    return digest(name.casefold()[:256])


class Sessions:
    """Sessions and lock-outs in one Redis. Raises RedisError/OSError when Redis is away;
    the callers answer 503."""

    def __init__(self, redis: aredis.Redis, keys: Keys, idle_s: int, max_s: int) -> None:
        self.redis, self.keys = redis, keys
        self.idle_s, self.max_s = idle_s, max_s

    async def create(self, user: str, role: str) -> tuple[str, Session]:
        """A new session; returns the cookie value and the session."""
        cookie = secrets.token_urlsafe(32)
        session = Session(user, role, secrets.token_urlsafe(32), time.time() + self.max_s)
        key, mine = self.keys.session(digest(cookie)), self.keys.user_sessions(digest(user))
        async with self.redis.pipeline(transaction=True) as p:
            p.hset(
                key,
                mapping={
                    "user": user,
                    "role": role,
                    "csrf": session.csrf,
                    "ends": repr(session.ends),
                },
            )
            p.expire(key, self.idle_s)
            p.sadd(mine, digest(cookie))
            p.expire(mine, self.max_s)
            await p.execute()
        return cookie, session

    async def get(self, cookie: str) -> Session | None:
        """The cookie's session, its idle expiry renewed; None if unknown or ended."""
        key = self.keys.session(digest(cookie))
        async with self.redis.pipeline(transaction=False) as p:
            p.hgetall(key)
            p.expire(key, self.idle_s)  # no-op on a missing key
            fields, _ = await p.execute()
        if not fields:
            return None
        try:
            session = Session(
                fields[b"user"].decode(),
                fields[b"role"].decode(),
                fields[b"csrf"].decode(),
                float(fields[b"ends"]),
            )
        except (KeyError, ValueError, UnicodeDecodeError):
            await self.redis.delete(key)
            return None
        if session.ends <= time.time():
            await self.redis.delete(key)
            return None
        return session

    async def end(self, cookie: str) -> None:
        await self.redis.delete(self.keys.session(digest(cookie)))

    async def end_all(self, user: str) -> int:
        """End every session of `user` (disabled, or a new password); returns how many."""
        mine = self.keys.user_sessions(digest(user))
        members = await self.redis.smembers(mine)
        keys = [self.keys.session(m.decode() if isinstance(m, bytes) else m) for m in members]
        ended = int(await self.redis.delete(*keys)) if keys else 0
        await self.redis.delete(mine)
        return ended

    # -- lock-out ---------------------------------------------------------------------------

    async def locked(self, name: str) -> int | None:
        """Seconds until the name's lock ends, or None when it is not locked."""
        ttl = int(await self.redis.ttl(self.keys.signin_lock(name_digest(name))))
        return ttl if ttl > 0 else None

    async def failed(self, name: str) -> int | None:
        """Count a failed sign-in; the lock's seconds if this one locked the name."""
        d = name_digest(name)
        failures = self.keys.signin_failures(d)
        async with self.redis.pipeline(transaction=True) as p:
            p.set(failures, 0, ex=FAILURE_WINDOW_S, nx=True)  # the window opens at the first
            p.incr(failures)
            _, count = await p.execute()
        if int(count) < MAX_FAILURES:
            return None
        async with self.redis.pipeline(transaction=True) as p:
            p.set(self.keys.signin_lock(d), 1, ex=LOCK_S)
            p.delete(failures)
            await p.execute()
        return LOCK_S

    async def succeeded(self, name: str) -> None:
        await self.redis.delete(self.keys.signin_failures(name_digest(name)))

    async def unlock(self, name: str) -> bool:
        """Lift the name's lock and forget its failures; whether it was locked."""
        d = name_digest(name)
        removed = await self.redis.delete(self.keys.signin_lock(d), self.keys.signin_failures(d))
        return bool(removed)


def came_over_tls(request: web.Request, trusted_proxies: tuple[str, ...]) -> bool:
    """Whether the browser's connection was TLS: ours, or a trusted proxy's that says so in
    X-Forwarded-Proto (its first value: the proxy facing the browser). A header from anyone
    else is ignored, or any client could claim it."""
    if request.secure:
        return True
    proto = request.headers.get("X-Forwarded-Proto")
    if proto is None or not trusted_proxies or request.remote is None:
        return False
    try:
        peer = ipaddress.ip_address(request.remote)
    except ValueError:  # a Unix socket
        return False
    if not any(peer in ipaddress.ip_network(n, strict=False) for n in trusted_proxies):
        return False
    return proto.split(",")[0].strip().lower() == "https"
