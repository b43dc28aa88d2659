"""The admin API (admin role): issue, read, change, revoke and renew permits.

    POST  /v1/permits                 issue (valid_from may lie in the past: after-the-fact)
    GET   /v1/permits/{id}            the permit, its revision and its earlier versions
    PATCH /v1/permits/{id}            change validity, plates or zones
    POST  /v1/permits/{id}/revoke     decadenza: validity ends at `at` (default now)
    POST  /v1/permits/{id}/renew      same number, new validity

Every change is recorded twice, with who made it (`caller.id`: a key id or `user:<name>`)
and the reason given (required to revoke, optional otherwise): in the permit database, in
the transaction of the change (`permit_actions`, the `changes` of GET /v1/permits/{id}), so
no change is ever without its record; then in the audit chain (admin_record.py).

Every write goes to the permit database, which gives it the next revision; the loader streams
it to every replica (this service included). A write also wakes the loader through Redis
pub/sub so it does not wait for its next poll; with no loader running (no lease in Redis) a
write is refused, 503 `loader_unavailable`, since nothing would ever enforce it. Validation
is the import's (enforcement/core/permits.py), so a CSV row and an API call are refused for
the same reasons, naming the same field.

Installed into the service by `install` (the service package does not depend on the loader's
database; the command line composes the two). Database calls run on one thread of their own:
one connection, writes in order, the event loop never blocked.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import msgspec
import psycopg
import redis.asyncio as aredis
from aiohttp import web
from redis.exceptions import RedisError

from enforcement.core.permits import PermitInvalid, check_permit, check_plate
from enforcement.http import errors
from enforcement.http.auth import ADMIN, Caller
from enforcement.http.endpoints import JSON
from enforcement.http.params import optional_reason
from enforcement.http.schemas import ENCODER
from enforcement.http.service import Service
from enforcement.keys import Keys
from enforcement.replica.loader_presence import lease_held
from loader.database import open_db
from loader.periods import cut, renewed, spans, with_spans
from loader.store import DatabaseError, Note, PermitRow, PermitStore

from . import signin
from .admin_record import record_change
from .admin_schemas import (
    DOCS,
    PermitIn,
    PermitPatch,
    PlateIn,
    RenewIn,
    RevokeIn,
    permit_out,
)

log = logging.getLogger(__name__)

T = TypeVar("T")


class Conflict(errors.ApiError):
    status, code = 409, "conflict"


class PreconditionFailed(errors.ApiError):
    status, code = 412, "precondition_failed"


class DatabaseUnavailable(errors.ApiError):
    status, code = 503, "database_unavailable"


class LoaderUnavailable(errors.ApiError):
    """No loader holds the lease: a write now would reach no replica until one starts."""

    status, code, retry_after = 503, "loader_unavailable", 5


_DB_ERRORS: tuple[type[Exception], ...] = (
    sqlite3.OperationalError,
    sqlite3.InterfaceError,
    DatabaseError,
    psycopg.Error,
)


_DECODERS: dict[type[Any], msgspec.json.Decoder[Any]] = {
    t: msgspec.json.Decoder(t) for t in (PermitIn, PermitPatch, RevokeIn, RenewIn)
}


class AdminApi:
    def __init__(self, service: Service, redis_url: str | None) -> None:
        self.service, self.rules, self.settings = service, service.rules, service.settings
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="permit-db")
        self._db: PermitStore | None = None
        self._redis = None
        if redis_url is not None:
            self._redis = aredis.Redis.from_url(
                redis_url, socket_timeout=1, socket_connect_timeout=1
            )
        self._keys = Keys(self.settings.redis.prefix)

    # -- plumbing ----------------------------------------------------------------------------

    async def _in_db(self, fn: Any, *args: Any) -> Any:
        def call() -> Any:
            try:
                if self._db is None:
                    self._db = open_db(self.settings)
                return fn(self._db, *args)
            except _DB_ERRORS as exc:
                # A dropped connection (PostgreSQL restart, failover) or a lock held too long:
                # 503, and a new connection for the next request instead of failing forever.
                log.error(
                    "permit database error (%s); reconnecting on the next request",
                    type(exc).__name__,
                )
                if self._db is not None:
                    with contextlib.suppress(Exception):
                        self._db.close()
                    self._db = None
                raise DatabaseUnavailable("the permit database is unavailable; retry") from None

        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def close(self) -> None:
        def shut() -> None:
            if self._db is not None:
                self._db.close()

        await asyncio.get_running_loop().run_in_executor(self._executor, shut)
        self._executor.shutdown(wait=True)
        if self._redis is not None:
            await self._redis.aclose()

    async def _wake_loader(self) -> None:
        if self._redis is None:
            return
        with contextlib.suppress(RedisError, OSError):  # the loader polls anyway: best effort
            await self._redis.publish(self._keys.wake, b"permits")

    async def _require_loader(self) -> None:
        """Refuse a write that nothing would stream to the replicas (`varco serve` alone).
        Redis unreachable is not refused: the database keeps the write, and the loader streams
        it once Redis is back."""
        if self._redis is None:
            return
        try:
            held = await lease_held(self._redis, self._keys)
        except (RedisError, OSError):
            return
        if not held:
            raise LoaderUnavailable(
                "no loader is running (no `varco watch` holds its lease in Redis): the change "
                "would reach no replica; start the loader and retry"
            )

    async def _body(self, request: web.Request, kind: type[T]) -> T:
        if request.content_type != JSON:
            raise errors.UnsupportedMediaType(f"send Content-Type: {JSON}")
        try:
            return _DECODERS[kind].decode(await request.read())  # type: ignore[no-any-return]
        except msgspec.MsgspecError as exc:
            raise errors.from_msgspec(exc) from None

    def _out(
        self,
        row: PermitRow,
        revision: int,
        history: list[tuple[int, PermitRow]] | None = None,
        notes: list[tuple[int, Note]] | None = None,
    ) -> web.Response:
        out = permit_out(self.rules.clock.to_datetime, row, revision, history, notes)
        return web.Response(body=ENCODER.encode(out), content_type=JSON)

    def _validated(self, row: PermitRow) -> PermitRow:
        """The row if the city's rules accept every period of it; 422 naming the field
        otherwise."""
        try:
            for start, end in spans(row):
                check_permit(
                    self.rules,
                    row.permit_id,
                    row.type,
                    start,
                    end,
                    row.zones,
                    row.source,
                    len(row.plates),
                )
        except PermitInvalid as exc:
            raise errors.Invalid(exc.reason, exc.field) from None
        ptype = self.rules.types[row.type]
        if ptype.cude and sum(p for _, p in row.plates) != 1:
            raise errors.Invalid("a CUDE badge needs exactly one primary plate", "plates")
        return row

    def _plates(self, plates: list[PlateIn]) -> tuple[tuple[str, bool], ...]:
        out: dict[str, bool] = {}
        for i, p in enumerate(plates):
            try:
                text = check_plate(p.plate, f"plates[{i}].plate")
            except PermitInvalid as exc:
                raise errors.Invalid(exc.reason, exc.field) from None
            if text in out:
                raise errors.Invalid("plate listed twice", f"plates[{i}].plate")
            out[text] = p.primary
        return tuple(sorted(out.items()))

    async def _current(self, permit_id: str) -> tuple[PermitRow, int]:
        found = await self._in_db(lambda db, pid: db.get_with_revision(pid), permit_id)
        if found is None:
            raise errors.NotFound(f"no permit {permit_id!r}", "permit_id")
        return found  # type: ignore[no-any-return]

    async def _read(self, request: web.Request) -> tuple[PermitRow, int]:
        """The permit to change and the revision the write must still find: the client's
        `If-Match` (the revision it read) or, without one, the revision read now."""
        row, revision = await self._current(request.match_info["permit_id"])
        if_match = request.headers.get("If-Match")
        if if_match is not None:
            try:
                expected = int(if_match.strip().strip('"'))
            except ValueError:
                raise errors.Invalid(
                    "If-Match must be the permit's revision, as GET gives it", "If-Match"
                ) from None
            if expected != revision:
                raise PreconditionFailed(
                    f"the permit is at revision {revision}, not {expected}: read it again",
                    "If-Match",
                )
        return row, revision

    async def _save(
        self, row: PermitRow, caller: Caller, action: str, expected: int | None, reason: str
    ) -> tuple[PermitRow, int]:
        await self._require_loader()  # a write nothing would stream to a replica: refused
        note = Note(int(time.time()), caller.id, caller.person, action, reason)
        revision = await self._in_db(
            lambda db, r, e, n: db.upsert_one_if(r, e, n), row, expected, note
        )
        if revision is None:
            if expected is None:  # issued twice: one wins, the other is told
                raise Conflict(
                    f"permit {row.permit_id!r} exists: change it with PATCH or renew it",
                    "permit_id",
                )
            # changed by someone else between our read and this write
            raise Conflict(
                "the permit changed while this request was handled: read it again and retry",
                "permit_id",
            )
        # The reason is free text that may name a person or a plate: never logged.
        log.info("permit %s %s by %s (revision %d)", row.permit_id, action, caller.id, revision)
        await self._wake_loader()
        await record_change(self.service, caller, note, row.permit_id)
        return row, revision

    async def _saved(self, *args: Any) -> web.Response:
        return self._out(*await self._save(*args))

    # -- handlers ----------------------------------------------------------------------------

    async def issue(self, request: web.Request) -> web.Response:
        caller = await self.service.require(request, ADMIN)
        body = await self._body(request, PermitIn)
        row = self._validated(
            PermitRow(
                body.permit_id,
                body.type,
                int(body.valid_from.timestamp()),
                None if body.valid_to is None else int(body.valid_to.timestamp()),
                tuple(dict.fromkeys(body.zones)),
                body.source,
                self._plates(body.plates),
            )
        )
        # Insert-only in one transaction: of two concurrent issues of one number, on any
        # replica, one gets 201 and the other 409, never a silent overwrite.
        response = await self._saved(row, caller, "issue", None, optional_reason(body.reason))
        response.set_status(201)
        return response

    async def get(self, request: web.Request) -> web.Response:
        await self.service.require(request, ADMIN)
        row, revision = await self._current(request.match_info["permit_id"])
        history, notes = await self._in_db(
            lambda db, pid: (db.history(pid), db.notes(pid)), row.permit_id
        )
        return self._out(row, revision, history, notes)

    async def patch(self, request: web.Request) -> web.Response:
        caller = await self.service.require(request, ADMIN)
        body = await self._body(request, PermitPatch)
        row, read = await self._read(request)
        if all(
            v is msgspec.UNSET for v in (body.valid_from, body.valid_to, body.zones, body.plates)
        ):
            raise errors.Invalid("nothing to change: give valid_from, valid_to, zones or plates")
        # valid_from and valid_to change the permit's last period (the current or the coming
        # one); earlier periods stay as they are.
        *earlier, (start, end) = spans(row)
        if body.valid_from is not msgspec.UNSET:
            start = int(body.valid_from.timestamp())
        if body.valid_to is not msgspec.UNSET:
            end = None if body.valid_to is None else int(body.valid_to.timestamp())
        attributes: dict[str, Any] = {}
        if body.zones is not msgspec.UNSET:
            attributes["zones"] = tuple(dict.fromkeys(body.zones))
        if body.plates is not msgspec.UNSET:
            attributes["plates"] = self._plates(body.plates)
        new = with_spans(msgspec.structs.replace(row, **attributes), [*earlier, (start, end)])
        reason = optional_reason(body.reason)
        return await self._saved(self._validated(new), caller, "change", read, reason)

    async def revoke(self, request: web.Request) -> web.Response:
        caller = await self.service.require(request, ADMIN)
        body = await self._body(request, RevokeIn)
        reason = optional_reason(body.reason)
        row, read = await self._read(request)
        at = int(body.at.timestamp()) if body.at is not None else int(time.time())
        if at <= row.valid_from:
            at = row.valid_from  # revoked before it began: it never covers anything
        if row.valid_to is not None and row.valid_to <= at:
            raise Conflict("the permit already ends before that instant", "at")
        # Every period ends at `at` at the latest, a coming one included (loader/periods.py).
        # [valid_from, valid_from) is empty: a permit revoked at its start covers nothing, and
        # stays on record (with its history) rather than being deleted.
        new = cut(row, at)
        return await self._saved(new, caller, "revoke", read, reason)

    async def renew(self, request: web.Request) -> web.Response:
        caller = await self.service.require(request, ADMIN)
        body = await self._body(request, RenewIn)
        row, read = await self._read(request)
        # A new period, by default from where the last one ends; the periods before it stay
        # enforceable until they end (a renewal four months early must not cut the current).
        if body.valid_from is not None:
            start = int(body.valid_from.timestamp())
        elif row.valid_to is None:
            raise Conflict("the permit is unlimited: there is nothing to renew", "valid_from")
        else:
            start = row.valid_to
        end = None if body.valid_to is None else int(body.valid_to.timestamp())
        period = msgspec.structs.replace(row, valid_from=start, valid_to=end, periods=())
        new = self._validated(renewed(row, period))
        return await self._saved(new, caller, "renew", read, optional_reason(body.reason))


def install(app: web.Application, service: Service, redis_url: str | None) -> None:
    """Add the admin routes to the service's application, and their documentation."""
    admin = AdminApi(service, redis_url)
    service.docs.append(DOCS)
    add, ep = app.router.add_route, service.endpoint
    add("POST", "/v1/permits", ep("/v1/permits", admin.issue))
    add("GET", "/v1/permits/{permit_id}", ep("/v1/permits/{id}", admin.get))
    add("PATCH", "/v1/permits/{permit_id}", ep("/v1/permits/{id}", admin.patch))
    add("POST", "/v1/permits/{permit_id}/revoke", ep("/v1/permits/{id}/revoke", admin.revoke))
    add("POST", "/v1/permits/{permit_id}/renew", ep("/v1/permits/{id}/renew", admin.renew))

    signin.install(app, service, admin._in_db)

    async def close(app: web.Application) -> None:
        await admin.close()

    app.on_cleanup.append(close)
