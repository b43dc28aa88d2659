"""An admin change in the audit chain (admin.py), after the permit database committed it.

The permit database keeps each change's note (who, when, what, why) in the change's own
transaction: that is the record no change can be without. The chain record follows the
commit. While the audit trail cannot be written (Redis away, or not durable), the change
still stands, recorded in the database only, and a warning says so: refusing permit changes
whenever Redis is away would stop after-the-fact registrations, which the database alone
serves (a police lookup, which is answered from Redis's data, fails closed instead).
"""

from __future__ import annotations

import datetime as dt
import logging
import os

from enforcement.audit.chain import AuditRecord
from enforcement.audit.writer import HOST, AuditWriteFailed
from enforcement.http.auth import Caller
from enforcement.http.service import Service
from loader.store import Note

log = logging.getLogger(__name__)


async def record_change(service: Service, caller: Caller, note: Note, permit_id: str) -> bool:
    """Append the audit record of `caller`'s change `note` of permit `permit_id`; whether it
    was written (if not, a warning names the permit and the action, never the reason)."""
    if service.audit is not None:
        record = AuditRecord(
            key_id=caller.id,
            role=caller.role,
            person=caller.person,
            plate="",
            at=dt.datetime.fromtimestamp(note.at, dt.UTC),
            zone=None,
            reason=note.reason,
            results=0,
            host=HOST,
            pid=os.getpid(),
            action=f"permit_{note.action}",
            target=permit_id,
        )
        try:
            await service.audit.write(record)
            return True
        except AuditWriteFailed:
            pass
    log.warning(
        "permit %s: %s recorded in the permit database only (the audit trail cannot be "
        "written now)",
        permit_id,
        note.action,
    )
    return False
