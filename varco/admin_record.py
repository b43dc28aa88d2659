"""Recording an admin change: in the audit chain before it is made, and as the note the
permit database keeps with the revision it produces (admin.py)."""

from __future__ import annotations

import datetime as dt
import os
import time

from enforcement.audit.chain import AuditRecord
from enforcement.audit.writer import HOST
from enforcement.http import errors
from enforcement.http.auth import Caller
from enforcement.http.service import Service
from loader.store import Note


async def record_change(
    service: Service, caller: Caller, action: str, permit_id: str, reason: str
) -> Note:
    """Write the audit record of `caller` doing `action` (issue, change, revoke, renew) to
    the permit, with its reason; 503 when it cannot be written (no record, no change, as for
    a police lookup). Returns the note for the permit database."""
    now = time.time()
    if service.audit is None:
        raise errors.AuditUnavailable("the audit trail is not open yet; retry shortly")
    await service.audit.write(
        AuditRecord(
            key_id=caller.id,
            role=caller.role,
            person=caller.person,
            plate="",
            at=dt.datetime.fromtimestamp(now, dt.UTC),
            zone=None,
            reason=reason,
            results=0,
            host=HOST,
            pid=os.getpid(),
            action=f"permit_{action}",
            target=permit_id,
        )
    )
    return Note(int(now), caller.id, caller.person, action, reason)
