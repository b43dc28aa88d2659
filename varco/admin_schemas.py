"""The admin API's bodies and its OpenAPI description (admin.py serves them).

Kept together so that a field and its documentation change together; `install` registers
DOCS, so the document lists the admin API exactly where it is served.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Annotated, Any, Final

import msgspec

from enforcement.audit.chain import REASON_MAX
from enforcement.http import apidoc
from enforcement.http.endpoints import JSON
from loader.periods import spans
from loader.store import Note, PermitRow

Instant = Annotated[dt.datetime, msgspec.Meta(tz=True)]
PermitId = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Reason = Annotated[str, msgspec.Meta(max_length=REASON_MAX)]


class PlateIn(msgspec.Struct, forbid_unknown_fields=True):
    plate: Annotated[str, msgspec.Meta(max_length=64)]
    primary: bool = True


PlateList = Annotated[list[PlateIn], msgspec.Meta(min_length=1, max_length=10)]


class PermitIn(msgspec.Struct, forbid_unknown_fields=True):
    permit_id: PermitId
    type: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    valid_from: Instant
    plates: PlateList
    valid_to: Instant | None = None  # None: unlimited (where the type allows it)
    zones: list[str] = []  # empty: the type's zones
    source: str = "municipal"
    reason: Reason | None = None  # why (recorded with the change, never logged)


class PermitPatch(msgspec.Struct, forbid_unknown_fields=True):
    valid_from: Instant | msgspec.UnsetType = msgspec.UNSET
    valid_to: Instant | msgspec.UnsetType | None = msgspec.UNSET
    zones: list[str] | msgspec.UnsetType = msgspec.UNSET
    plates: PlateList | msgspec.UnsetType = msgspec.UNSET
    reason: Reason | None = None


class RevokeIn(msgspec.Struct, forbid_unknown_fields=True):
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=REASON_MAX)]
    at: Instant | None = None  # default: now


class RenewIn(msgspec.Struct, forbid_unknown_fields=True):
    valid_to: Instant | None  # required: None only for types without a maximum duration
    valid_from: Instant | None = None  # default: where the current validity ends (or now)
    reason: Reason | None = None


class PlateOut(msgspec.Struct):
    plate: str
    primary: bool


class PeriodOut(msgspec.Struct):
    """A validity period [valid_from, valid_to); valid_to null: unlimited."""

    valid_from: dt.datetime
    valid_to: dt.datetime | None


class PermitVersion(msgspec.Struct, omit_defaults=True):
    revision: int
    valid_from: dt.datetime
    valid_to: dt.datetime | None
    zones: list[str]
    plates: list[PlateOut]
    periods: list[PeriodOut] = []


class ChangeOut(msgspec.Struct):
    """A change made through the admin API: the revision it produced, when, by whom (an API
    key's id or user:<name>; `person` the signed-in person), what and why."""

    revision: int
    at: dt.datetime
    actor: str
    person: str | None
    action: str  # issue, change, revoke, renew
    reason: str


class PermitOut(msgspec.Struct, omit_defaults=True):
    """A permit: valid_from and valid_to span its validity periods (`periods`, by start:
    more than one once renewed while a period was running)."""

    permit_id: str
    type: str
    source: str
    valid_from: dt.datetime
    valid_to: dt.datetime | None
    zones: list[str]
    plates: list[PlateOut]
    revision: int
    periods: list[PeriodOut] = []
    history: list[PermitVersion] = []
    changes: list[ChangeOut] = []  # the admin API's changes, oldest first


_PERMIT_ID = {"name": "permit_id", "in": "path", "required": True, "schema": {"type": "string"}}


def _op(
    summary: str,
    description: str,
    body: type[msgspec.Struct] | None = None,
    *,
    ok: str = "200",
    conflict: str | None = None,
    by_id: bool = True,
) -> dict[str, Any]:
    """One admin operation for the OpenAPI document: answers the permit (`ok`), or the
    service's errors, 404 on an unknown `permit_id` (`by_id`), 409 where `conflict` says."""
    common = ("400", "401", "403", "413", "415", "422") if body else ("401", "403")
    responses = {
        ok: apidoc.json_response("PermitOut", "The permit and its revision"),
        **{status: apidoc.ERRORS[status] for status in common},
    }
    if by_id:
        responses["404"] = apidoc.json_response("ErrorOut", "No permit with this permit_id")
    if conflict:
        responses["409"] = apidoc.json_response("ErrorOut", conflict)
    parameters = [_PERMIT_ID] if by_id else []
    if body is not None and by_id:  # a change of an existing permit
        parameters.append(_IF_MATCH)
        responses["412"] = apidoc.json_response(
            "ErrorOut", "If-Match named another revision than the permit's: read it again"
        )
    op: dict[str, Any] = {
        "summary": f"{summary} (admin)",
        "description": description,
        "security": [{"bearer": []}],
        "parameters": parameters,
        "responses": dict(sorted(responses.items())),
    }
    if body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {JSON: {"schema": apidoc.ref(body.__name__)}},
        }
    return op


_WRITE = (
    "Every change raises the permit database's revision; the loader streams it to every "
    "replica, which enforces it within a second. A change made by someone else between "
    "this request's read and its write is never overwritten: 409, read again. The change, "
    "its author and its `reason` are kept in the permit's `changes` and written to the "
    "audit chain."
)
_IF_MATCH: Final = {
    "name": "If-Match",
    "in": "header",
    "required": False,
    "schema": {"type": "string"},
    "description": "The revision the client read (GET); the change applies only if the permit "
    "is still at it, else 412",
}
DOCS = apidoc.PathDocs(
    {
        "/v1/permits": {
            "post": _op(
                "Issue a permit",
                "valid_from may lie in the past (a permit issued after the fact). Checked against "
                f"the city's rules like an imported CSV row. {_WRITE}",
                PermitIn,
                ok="201",
                by_id=False,
                conflict="A permit with this permit_id exists: PATCH or renew it",
            )
        },
        "/v1/permits/{permit_id}": {
            "get": _op(
                "Read a permit",
                "The permit, its revision, its earlier versions in `history`, and in "
                "`changes` who changed it through this API, when, how and why.",
            ),
            "patch": _op(
                "Change a permit's validity, plates or zones",
                "Give at least one field; the others keep their value. valid_to null "
                f"means unlimited (where the type allows it). {_WRITE}",
                PermitPatch,
                conflict="The permit changed while the request was handled",
            ),
        },
        "/v1/permits/{permit_id}/revoke": {
            "post": _op(
                "Revoke a permit",
                "Decadenza: the validity ends at `at` (default now; at or before the start, the "
                f"permit covers nothing). The permit and its history are kept. {_WRITE}",
                RevokeIn,
                conflict="The permit already ends before `at`, or changed meanwhile",
            )
        },
        "/v1/permits/{permit_id}/renew": {
            "post": _op(
                "Renew a permit, keeping its number",
                "The new validity runs from valid_from (default where the current one ends, or "
                f"now) to valid_to. {_WRITE}",
                RenewIn,
                conflict="The permit changed while the request was handled",
            )
        },
    },
    (PermitIn, PermitPatch, RevokeIn, RenewIn, PermitOut, ChangeOut),
)


def permit_out(
    to_local: Callable[[int], dt.datetime],
    row: PermitRow,
    revision: int,
    history: list[tuple[int, PermitRow]] | None = None,
    notes: list[tuple[int, Note]] | None = None,
) -> PermitOut:
    """A permit as the admin API answers it: local times, its periods, earlier versions and
    the changes recorded with it."""

    def end(t: int | None) -> dt.datetime | None:
        return None if t is None else to_local(t)

    def plates(p: PermitRow) -> list[PlateOut]:
        return [PlateOut(plate, primary) for plate, primary in p.plates]

    def periods(p: PermitRow) -> list[PeriodOut]:
        return [PeriodOut(to_local(s), end(e)) for s, e in spans(p)]

    return PermitOut(
        row.permit_id,
        row.type,
        row.source,
        to_local(row.valid_from),
        end(row.valid_to),
        list(row.zones),
        plates(row),
        revision,
        periods(row),
        [
            PermitVersion(
                rev,
                to_local(old.valid_from),
                end(old.valid_to),
                list(old.zones),
                plates(old),
                periods(old),
            )
            for rev, old in history or []
        ],
        [
            ChangeOut(rev, to_local(n.at), n.actor, n.person, n.action, n.reason)
            for rev, n in notes or []
        ],
    )
