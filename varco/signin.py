"""Sign-in for people (the console): `/v1/session`.

    POST   /v1/session   {"username", "password"} -> the session, and its cookie
    GET    /v1/session   the signed-in person's session (401 without one)
    DELETE /v1/session   sign out (X-CSRF-Token required, as for every session write)

Users are read from the permit database (loader/users.py) through the admin API's database
thread, so sign-in works where the admin API does (every `varco serve`; 503 when the database
cannot be reached). The session itself lives in Redis (enforcement/http/sessions.py), so
every replica knows it, whether or not it can reach the permit database.

An unknown name, a wrong password and a disabled user get the same 401 after the same work
(an unknown name is checked against a dummy hash): the answer does not tell which names
exist. Five failures for one name within 15 minutes lock it for 15 minutes (429 with
Retry-After), whether or not the user exists. Sign-in needs `Content-Type: application/json`,
which a cross-site form cannot send without the browser asking first (login CSRF); the
cookie is SameSite=Strict and HttpOnly, and Secure when the browser's connection is TLS.
Neither passwords, nor hashes, nor cookies, nor CSRF tokens are logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hmac
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import msgspec
from aiohttp import web
from redis.exceptions import RedisError

from enforcement.audit.chain import AuditRecord
from enforcement.audit.writer import HOST, AuditWriteFailed
from enforcement.http import apidoc, errors
from enforcement.http.auth import CsrfRejected, SessionsUnavailable
from enforcement.http.endpoints import JSON
from enforcement.http.schemas import ENCODER
from enforcement.http.service import Service
from enforcement.http.sessions import COOKIE, Session, Sessions, came_over_tls, name_digest
from loader.users import PASSWORD_MAX, User, dummy_hash, get_user, verify_password

log = logging.getLogger(__name__)

InDb = Callable[..., Awaitable[Any]]  # the admin API's database thread (admin.AdminApi._in_db)


class SessionIn(msgspec.Struct, forbid_unknown_fields=True):
    username: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=PASSWORD_MAX)]


class SessionOut(msgspec.Struct):
    """The signed-in person; send `csrf_token` as header X-CSRF-Token on every write.
    `expires_at`: the session's latest end (it ends earlier when unused for session_idle)."""

    user: str
    role: str
    csrf_token: str
    expires_at: dt.datetime


class LockedOut(errors.ApiError):
    status, code = 429, "locked_out"


_DECODE = msgspec.json.Decoder(SessionIn).decode
_BAD = "wrong user name or password, or the user is disabled"


class SignIn:
    def __init__(self, service: Service, in_db: InDb) -> None:
        self.service, self.in_db = service, in_db

    def _sessions(self) -> Sessions:
        if self.service.sessions is None:
            raise SessionsUnavailable("sign-in sessions need Redis, which this service has not")
        return self.service.sessions

    def _answer(self, session: Session, status: int = 200) -> web.Response:
        tz = self.service.rules.clock.tz
        out = SessionOut(
            session.user, session.role, session.csrf, dt.datetime.fromtimestamp(session.ends, tz)
        )
        return web.Response(
            body=ENCODER.encode(out), status=status, content_type=JSON, headers=_NO_STORE
        )

    async def post(self, request: web.Request) -> web.Response:
        if request.content_type != JSON:
            raise errors.UnsupportedMediaType(f"send Content-Type: {JSON}")
        try:
            body = _DECODE(await request.read())
        except msgspec.MsgspecError as exc:
            raise errors.from_msgspec(exc) from None
        sessions = self._sessions()
        try:
            wait = await sessions.locked(body.username)
            if wait is not None:
                raise _locked(wait)
            user: User | None = await self.in_db(lambda db, name: get_user(db, name), body.username)
            # The same work for every answer: scrypt against the user's hash or a dummy one,
            # on the loop's executor (hashlib releases the GIL), never the event loop.
            stored = dummy_hash() if user is None else user.password
            ok = await asyncio.get_running_loop().run_in_executor(
                None, verify_password, body.password, stored
            )
            if user is None or user.disabled or not ok:
                locked = await sessions.failed(body.username)
                if locked is not None:
                    log.warning("a user name was locked out after repeated failed sign-ins")
                await self._audit_failure(body.username, user, locked is not None)
                raise errors.Unauthorized(_BAD)
            await sessions.succeeded(body.username)
            cookie, session = await sessions.create(user.username, user.role)
        except (RedisError, OSError):
            raise SessionsUnavailable("sessions cannot be written now; retry") from None
        # No record, no session: a person's actions are audited from the sign-in on.
        try:
            await self._audit(f"user:{user.username}", user.role, user.username, "sign_in")
        except AuditWriteFailed:
            with contextlib.suppress(RedisError, OSError):
                await sessions.end(cookie)
            raise errors.AuditUnavailable(
                "the sign-in cannot be recorded in the audit trail right now; retry shortly"
            ) from None
        log.info("user %s signed in (role %s)", user.username, user.role)
        response = self._answer(session)
        response.set_cookie(
            COOKIE,
            cookie,
            path="/",
            httponly=True,
            samesite="Strict",
            secure=came_over_tls(request, self.service.settings.server.trusted_proxies),
        )
        return response

    async def _audit(
        self, key_id: str, role: str, person: str | None, action: str, target: str | None = None
    ) -> None:
        """Append a sign-in event to the audit chain; AuditWriteFailed when it cannot."""
        audit = self.service.audit
        if audit is None:
            raise AuditWriteFailed("the audit trail is not open yet")
        await audit.write(
            AuditRecord(
                key_id=key_id,
                role=role,
                plate="",
                at=dt.datetime.now(dt.UTC),
                zone=None,
                reason="",
                results=0,
                host=HOST,
                pid=os.getpid(),
                action=action,
                person=person,
                target=target,
            )
        )

    async def _audit_failure(self, name: str, user: User | None, locked: bool) -> None:
        """A refused sign-in, for whoever investigates a guessing attack: by the user's name
        when one exists, else by the typed name's digest (a password typed into the name
        field must not be kept), and whether it locked the name. Best effort: the answer is
        a refusal either way."""
        action = "sign_in_locked_out" if locked else "sign_in_failed"
        try:
            if user is not None:
                await self._audit(f"user:{user.username}", user.role, user.username, action)
            else:
                await self._audit("user:?", "", None, action, f"name-sha256:{name_digest(name)}")
        except AuditWriteFailed:
            log.warning("a refused sign-in could not be recorded in the audit trail")

    async def _current(self, request: web.Request) -> Session | None:
        cookie = request.cookies.get(COOKIE)
        if not cookie:
            return None
        try:
            return await self._sessions().get(cookie)
        except (RedisError, OSError):
            raise SessionsUnavailable("sessions cannot be read now; retry") from None

    async def get(self, request: web.Request) -> web.Response:
        session = await self._current(request)
        if session is None:
            raise errors.Unauthorized("not signed in, or the session has ended")
        return self._answer(session)

    async def delete(self, request: web.Request) -> web.Response:
        session = await self._current(request)
        if session is not None:
            sent = request.headers.get("X-CSRF-Token", "").encode("utf-8", "replace")
            if not hmac.compare_digest(sent, session.csrf.encode()):
                raise CsrfRejected(
                    "signing out needs header X-CSRF-Token: the session's csrf_token",
                    "X-CSRF-Token",
                )
            try:
                await self._sessions().end(request.cookies[COOKIE])
            except (RedisError, OSError):
                raise SessionsUnavailable("sessions cannot be written now; retry") from None
            try:
                await self._audit(f"user:{session.user}", session.role, session.user, "sign_out")
            except AuditWriteFailed:  # signed out all the same: ending a session is safe
                log.warning("a sign-out could not be recorded in the audit trail")
        response = web.Response(status=204, headers=_NO_STORE)
        response.del_cookie(COOKIE, path="/")
        return response


_NO_STORE = {"Cache-Control": "no-store"}


def _locked(seconds: int) -> LockedOut:
    exc = LockedOut(
        f"too many failed sign-ins for this name: try again in {seconds} s, or ask an "
        "administrator (varco users unlock)",
        "username",
    )
    exc.retry_after = seconds
    return exc


_COOKIE_NOTE = (
    f"The session is the cookie `{COOKIE}` (HttpOnly, SameSite=Strict, Path=/, Secure over "
    "TLS). With it, every endpoint takes the person's role as an API key's; writes (POST, "
    "PATCH, PUT, DELETE) also need header X-CSRF-Token: the session's csrf_token, else 403 "
    "csrf. A session ends unused after [console] session_idle (30 min) and at the latest "
    "session_max (12 h) after sign-in."
)
DOCS = apidoc.PathDocs(
    {
        "/v1/session": {
            "post": {
                "summary": "Sign in (a person: police, operator, admin)",
                "description": "Users are managed with `varco users`. A wrong password, an "
                "unknown user and a disabled one get the same 401. Five failures for one "
                "name within 15 minutes lock it for 15 minutes: 429 locked_out with "
                "Retry-After (`varco users unlock NAME` lifts it). Sign-ins, refusals, "
                "lock-outs and sign-outs are recorded in the audit chain (a name that is "
                f"no user's by its digest only). {_COOKIE_NOTE}",
                "requestBody": {
                    "required": True,
                    "content": {JSON: {"schema": apidoc.ref("SessionIn")}},
                },
                "responses": {
                    "200": apidoc.json_response("SessionOut", "Signed in; Set-Cookie"),
                    "401": apidoc.json_response("ErrorOut", "Wrong credentials"),
                    "415": apidoc.ERRORS["415"],
                    "422": apidoc.ERRORS["422"],
                    "429": apidoc.json_response("ErrorOut", "Locked out: see Retry-After"),
                    "503": apidoc.json_response(
                        "ErrorOut",
                        "Redis, the permit database or the audit trail unavailable (a "
                        "sign-in is recorded in the audit chain before its session is "
                        "given); retry",
                    ),
                },
            },
            "get": {
                "summary": "The signed-in person's session",
                "description": f"Renews the idle expiry. {_COOKIE_NOTE}",
                "responses": {
                    "200": apidoc.json_response("SessionOut", "The session"),
                    "401": apidoc.json_response("ErrorOut", "No session, or it has ended"),
                },
            },
            "delete": {
                "summary": "Sign out",
                "description": "Ends the session and clears the cookie; needs X-CSRF-Token.",
                "responses": {
                    "204": {"description": "Signed out"},
                    "403": apidoc.json_response("ErrorOut", "csrf: X-CSRF-Token missing or wrong"),
                },
            },
        }
    },
    (SessionIn, SessionOut),
)


def install(app: web.Application, service: Service, in_db: InDb) -> None:
    signin = SignIn(service, in_db)
    service.docs.append(DOCS)
    add, ep = app.router.add_route, service.endpoint
    add("POST", "/v1/session", ep("/v1/session", signin.post))
    add("GET", "/v1/session", ep("/v1/session", signin.get))
    add("DELETE", "/v1/session", ep("/v1/session", signin.delete))
