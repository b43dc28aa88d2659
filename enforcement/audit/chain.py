"""The police audit trail: every plate lookup is recorded, hash-chained, before it is answered.

A lookup (`GET /v1/plates/{plate}`) must give a reason (header `X-Reason`, or query parameter
`reason`). Once the view is computed and before it is sent, one record is written: who (API
key id and role), what was asked (the normalised plate, `at`, `zone`), why (the reason), what
came back (`results`: permits found), and which process answered (`host`, `pid`). If the
record cannot be written the lookup fails with 503: nothing is answered without its record.
A record whose write timed out may still land; an unanswered lookup with a record is harmless,
an answered one without is what must never happen.

Chain. Records are numbered `seq` = 1, 2, ... and stamped `t` (milliseconds since the epoch,
never less than the record before's), and each carries the link of the one before (`prev`;
record 1: forty "0") and its own:

    link = SHA-1( prev "\\n" seq "\\n" t "\\n" SHA-256(body) )      (lower-case hex)

where `body` is the record's JSON exactly as stored. An altered record no longer matches its
link; a removed or moved one leaves a gap in `seq` and a `prev` that does not match.

Why this construction. Several worker processes and replicas append to one chain, so reading
the head and appending after it must be one atomic step. In Redis that step is a Lua script
(read the stream's last record, compute the link, XADD): one round trip, no lost update, and no
retry loop. The alternative, SHA-256 in Python under WATCH/MULTI, retries under contention,
and on the request path a retry is either a wait or a spurious 503. Redis's Lua offers only
`redis.sha1hex`, hence SHA-1 for the link. Tampering with a stored record needs a second
preimage, which SHA-1 still resists (its practical attacks are collisions between two inputs
crafted together); and the body enters through its SHA-256 digest (computed by the writer,
recomputed by the verifier), so no attacker-chosen bytes reach SHA-1 directly. What no unkeyed
chain can stop: whoever can write the store can rewrite every link after the record they
change. Anchor the head against that: `varco audit verify` prints it (seq and link); kept
elsewhere (a ticket, the daily operations log), a rewritten history no longer matches it.

The records are written by writer.py, read back and checked by verify.py, exported by
export.py.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Final

import msgspec

GENESIS: Final = "0" * 40  # `prev` of record 1
REASON_MAX: Final = 500  # characters: a case number and a sentence, not a report


class AuditRecord(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One police lookup, desk action or admin change (`action`). The field order is the stored
    JSON's: append fields at the end. A record that names no plate (an admin change) has
    plate "", zone None and results 0."""

    key_id: str  # who: an API key's id, or "user:<name>" for a signed-in person
    role: str
    plate: str  # normalised
    at: dt.datetime  # the instant asked about (a lookup) or acted at (a change)
    zone: str | None  # None: every zone
    reason: str
    results: int  # permits found (a lookup)
    host: str
    pid: int
    # Appended for the desk and admin changes (issue 21); defaults keep a lookup's record as
    # it was. `key_id` is the actor (an API key id, or `user:<name>` for a person).
    action: str = "plate_lookup"  # "transit_search", "review_decision", "permit_revoke", ...
    person: str | None = None  # the person's username, when a person acted
    target: str | None = None  # what it was about: a transit id, a permit id
    detail: dict[str, str] | None = None  # e.g. {"decision": "dismiss"}; never a secret


_ENCODE: Final = msgspec.json.Encoder().encode
_DECODE: Final = msgspec.json.Decoder(AuditRecord).decode


def link_of(prev: str, seq: int, t_ms: int, body: bytes) -> str:
    """The record's link (see the module docstring); the Lua script computes the same."""
    digest = hashlib.sha256(body).hexdigest()
    return hashlib.sha1(f"{prev}\n{seq}\n{t_ms}\n{digest}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Entry:
    """A stored record, as read back for verification and export."""

    position: int  # 1-based, in stored order among the entries read
    where: str  # "line 12" or "id 1795438827800-12"
    seq: int
    t_ms: int
    prev: str
    link: str
    body: bytes
    problem: str | None = None  # unreadable: why
    context: bool = False  # the record just before a range: anchors it, not itself checked


def hex40(value: bytes) -> bool:
    return len(value) == 40 and all(c in b"0123456789abcdef" for c in value)


def parse_line(line: bytes, number: int) -> Entry:
    """A file line (without its line break) as an Entry; `problem` says what is wrong."""
    parts = line.split(b"\t", 4)
    where = f"line {number}"
    if len(parts) != 5 or not parts[0].isdigit() or not parts[1].isdigit():
        return Entry(
            number,
            where,
            0,
            0,
            "",
            "",
            line,
            "unreadable: not seq, t, prev, link and body separated by tabs",
        )
    seq, t, prev, link, body = parts
    problem = None if hex40(prev) and hex40(link) else "unreadable: prev or link is not a link"
    return Entry(
        number,
        where,
        int(seq),
        int(t),
        prev.decode("ascii", "replace"),
        link.decode("ascii", "replace"),
        body,
        problem,
    )


def decode_record(body: bytes) -> AuditRecord | None:
    try:
        return _DECODE(body)
    except msgspec.DecodeError:
        return None
