"""Who is calling: API keys (`Authorization: Bearer KEY`), people signed in with a session
cookie (sessions.py), and the roles they carry.

`require` answers with a `Caller`: the key's id, or `user:<name>` for a person, which audit
records name. A request with an Authorization header is judged by its key alone; one without,
by its session cookie; a session's writes (POST, PATCH, PUT, DELETE) must also send its CSRF
token as `X-CSRF-Token` (a cookie rides along with any site's request; the token does not).
"admin" may call whatever "operator" and "police" may. Camera routes take keys only
(`Keyring.require`): no camera signs in.

Keys are configured as sha256 digests (`[[api_keys]]`, `[cameras.ID] key`); a request's key is
hashed once and its header remembered (a camera sends the same header every time), so a post
costs one dict lookup. Unknown keys are never remembered. Neither keys nor headers are logged.
"""

from __future__ import annotations

import hmac
from typing import Final, Literal

import msgspec
from aiohttp import web
from redis.exceptions import RedisError

from ..config.settings import ApiKey, hash_key
from . import errors
from .ratelimit import KeyRates
from .sessions import COOKIE, Sessions

CAMERA: Final = frozenset({"camera", "admin"})
POLICE: Final = frozenset({"police", "admin"})
# The enforcement office's desk: review queue, transit search, violations, camera health.
OPERATOR: Final = frozenset({"operator", "admin"})
ADMIN: Final = frozenset({"admin"})
_REMEMBERED_MAX: Final = 10_000
_SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})


class Caller(msgspec.Struct, frozen=True):
    """Who made a request: `id` is what audit records and logs name (a key's id, or
    `user:<name>`), `person` the user name of a signed-in person (None for a key)."""

    id: str
    role: str
    person: str | None = None
    kind: Literal["key", "session"] = "key"


class CsrfRejected(errors.ApiError):
    status, code = 403, "csrf"


class SessionsUnavailable(errors.ApiError):
    status, code, retry_after = 503, "sessions_unavailable", 1


def roles_of(given: tuple[str | frozenset[str], ...]) -> frozenset[str]:
    """Role names from names and sets of names; admin always."""
    out = {"admin"}
    for r in given:
        out.update((r,) if isinstance(r, str) else r)
    return frozenset(out)


async def require(
    request: web.Request,
    keyring: Keyring,
    sessions: Sessions | None,
    roles: frozenset[str],
) -> Caller:
    """The caller, if their role is one of `roles`: by API key when the request has an
    Authorization header (or no session cookie), else by session; 401/403 otherwise."""
    cookie = request.cookies.get(COOKIE)
    if cookie is None or "Authorization" in request.headers:
        key = keyring.require(request, roles)
        return Caller(key.id, key.role)
    if sessions is None:
        raise SessionsUnavailable("sign-in sessions need Redis, which this service has not")
    try:
        session = await sessions.get(cookie)
    except (RedisError, OSError):
        raise SessionsUnavailable("sessions cannot be read now; retry") from None
    if session is None:
        raise errors.Unauthorized("the session has ended or is unknown: sign in again")
    if request.method not in _SAFE_METHODS:
        sent = request.headers.get("X-CSRF-Token", "")
        if not hmac.compare_digest(sent.encode("utf-8", "replace"), session.csrf.encode()):
            raise CsrfRejected(
                "a signed-in write needs header X-CSRF-Token: the session's csrf_token",
                "X-CSRF-Token",
            )
    if session.role not in roles:
        raise errors.Forbidden(f"role {session.role!r} may not call this endpoint")
    return Caller(f"user:{session.user}", session.role, session.user, "session")


class Keyring:
    def __init__(self, api_keys: dict[str, ApiKey], rates: KeyRates | None = None) -> None:
        self.api_keys = api_keys  # sha256 hex of a key -> its id and role
        self._by_header: dict[str, ApiKey] = {}
        self.rates = rates

    def require(self, request: web.Request, roles: frozenset[str]) -> ApiKey:
        """The caller's key, if its role is one of `roles` and it is within its rate limit
        (ratelimit.py); 401, 403 or 429 otherwise."""
        key = self.identify(request, roles)
        if self.rates is not None:
            self.rates.charge(key.id)
        return key

    def identify(self, request: web.Request, roles: frozenset[str]) -> ApiKey:
        """The caller's key, if its role is one of `roles`; 401/403 otherwise. No rate limit
        is charged: for a caller who charges another name (a camera, registry.py)."""
        return self.identify_header(request.headers.get("Authorization", ""), roles)

    def identify_header(self, header: str, roles: frozenset[str]) -> ApiKey:
        """`identify` from the Authorization header's value ("" when there is none)."""
        key = self._by_header.get(header)
        if key is None:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token:
                raise errors.Unauthorized("missing API key: send 'Authorization: Bearer KEY'")
            key = self.api_keys.get(hash_key(token.strip()))
            if key is None:
                raise errors.Unauthorized("unknown API key")
            if len(self._by_header) < _REMEMBERED_MAX:
                self._by_header[header] = key
        if key.role not in roles:
            raise errors.Forbidden(f"role {key.role!r} may not call this endpoint")
        return key
