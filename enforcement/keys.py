"""Every Redis key Varco uses, spelled once (as arq keeps its keys in `constants.py`).

All keys sit under a prefix (`[redis] prefix`, default `varco`), so one Redis can serve
several cities. Who writes and who reads each:

    key                         type    written by            read by
    {p}:snapshot:current        string  loader                replicas: the current snapshot's
                                                              name, set last, so it never names
                                                              a snapshot not wholly uploaded
    {p}:snapshots               zset    loader                replicas, loader (pruning): names
                                                              of published snapshots by revision
    {p}:snapshot:{name}         hash    loader                replicas: revision, size, chunks,
                                                              digest (blake2b-256 of the file)
    {p}:snapshot:{name}:{i}     string  loader                replicas: the file in 8 MiB chunks
                                                              (a string holds 512 MB at most;
                                                              10 M permits make ~500 MB)
    {p}:snapshot:wanted         string  a replica that        loader: publish a snapshot soon
                                        missed changes
    {p}:changes                 stream  loader                replicas: permit changes, entry id
                                                              `<revision>-1` (core/changes.py)
    {p}:loader:heartbeat        string  loader                replicas: when the permit database
                                                              was last seen wholly published
    {p}:loader:lease            string  loader                loader: the active loader's fencing
                                                              token, expiring (loader/lease.py)
    {p}:loader:epoch            string  loader                loader: a counter, one step per
                                                              lease taken: the fencing tokens
    {p}:wake                    pubsub  admin API             loader: a nudge, never data (pub/
                                                              sub drops what nobody hears)
    {p}:sources                 hash    loader                replicas: feed name -> SourceStatus
    {p}:audit                   stream  service (police       `varco audit`: the hash-chained
                                        lookups)              audit trail, never trimmed
    {p}:transits                stream  service               follow-up: transit records
    {p}:transit:seen:{hash}     string  service               service: a retry's first verdict,
                                                              expiring after the dedup window
    {p}:followup:held           hash    follow-up             follow-up: transits awaiting grace
    {p}:followup:due            zset    follow-up             follow-up: when each is due
    {p}:violations              hash    follow-up             service, `varco violations`
    {p}:violations:index        zset    follow-up             the same, by first transit instant
    {p}:violation:ids:{key}     set     follow-up             follow-up: a violation's transits
    {p}:review                  hash    follow-up             the review queue
    {p}:review:index            zset    follow-up             the same, by transit instant
    {p}:session:{hash}          hash    service (sign-in)     service: a signed-in person's
                                                              session (user, role, CSRF token,
                                                              ends), expiring when idle
    {p}:sessions:{user}         set     service (sign-in)     `varco users disable/passwd`: a
                                                              person's sessions, to end them
    {p}:signin:failures:{user}  string  service (sign-in)     service: failed sign-ins, 15 min
    {p}:signin:lock:{user}      string  service (sign-in)     service, `varco users unlock`: a
                                                              name locked out, expiring
    {p}:review:decided          hash    service (desk)        service: decided items (who,
                                                              what, when), so a second
                                                              decision is 409
    {p}:review:decided:index    zset    service (desk)        follow-up: the same, by transit
                                                              instant, for retention
    {p}:cameras:minute:{m}      hash    service (every few s) service: per camera reads,
                                                              unreadable reads, clock offset
                                                              sum in minute {m}; expire in 2 h
    {p}:cameras:last            hash    service               service: camera -> its last
                                                              read's arrival (epoch seconds)
    {p}:replicas                hash    every serving         service (GET /v1/replicas):
                                        process, every 2 s    `host:pid` -> its index revision,
                                                              age, readiness, spool (JSON with
                                                              its instant; old ones deleted)

`{hash}` is a digest of a camera's id and event id, or of a session's cookie (a copy of Redis
holds no usable cookie); `{user}` a digest of a user name as typed at sign-in: no camera- or
caller-chosen text shapes a key name.
`{key}` is a violation's `zone|YYYY-MM-DD|plate`, the normalised plate included: a violation's
keys hold its plate for as long as the violation is kept (`retention.violations`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Keys:
    prefix: str = "varco"

    # -- snapshots and permit changes (loader -> replicas) ---------------------------------

    @property
    def current(self) -> str:
        return f"{self.prefix}:snapshot:current"

    @property
    def snapshots(self) -> str:
        return f"{self.prefix}:snapshots"

    def snapshot_meta(self, name: str) -> str:
        return f"{self.prefix}:snapshot:{name}"

    def snapshot_chunk(self, name: str, i: int) -> str:
        return f"{self.prefix}:snapshot:{name}:{i}"

    @property
    def wanted(self) -> str:
        return f"{self.prefix}:snapshot:wanted"

    @property
    def changes(self) -> str:
        return f"{self.prefix}:changes"

    @property
    def heartbeat(self) -> str:
        return f"{self.prefix}:loader:heartbeat"

    @property
    def lease(self) -> str:
        return f"{self.prefix}:loader:lease"

    @property
    def lease_epoch(self) -> str:
        return f"{self.prefix}:loader:epoch"

    @property
    def wake(self) -> str:
        return f"{self.prefix}:wake"

    @property
    def sources(self) -> str:
        return f"{self.prefix}:sources"

    # -- the audit trail -------------------------------------------------------------------

    @property
    def audit(self) -> str:
        return f"{self.prefix}:audit"

    # -- transits and what follows them ------------------------------------------------------

    @property
    def transits(self) -> str:
        return f"{self.prefix}:transits"

    def transit_seen(self, digest: str) -> str:
        return f"{self.prefix}:transit:seen:{digest}"

    @property
    def followup_held(self) -> str:
        return f"{self.prefix}:followup:held"

    @property
    def followup_due(self) -> str:
        return f"{self.prefix}:followup:due"

    @property
    def violations(self) -> str:
        return f"{self.prefix}:violations"

    @property
    def violations_index(self) -> str:
        return f"{self.prefix}:violations:index"

    def violation_ids(self, key: str) -> str:
        return f"{self.prefix}:violation:ids:{key}"

    @property
    def review(self) -> str:
        return f"{self.prefix}:review"

    @property
    def review_index(self) -> str:
        return f"{self.prefix}:review:index"

    @property
    def review_decided(self) -> str:
        return f"{self.prefix}:review:decided"

    @property
    def review_decided_index(self) -> str:
        return f"{self.prefix}:review:decided:index"

    # -- sign-in sessions (enforcement/http/sessions.py) --------------------------------------

    def session(self, digest: str) -> str:
        return f"{self.prefix}:session:{digest}"

    def user_sessions(self, user_digest: str) -> str:
        return f"{self.prefix}:sessions:{user_digest}"

    def signin_failures(self, user_digest: str) -> str:
        return f"{self.prefix}:signin:failures:{user_digest}"

    def signin_lock(self, user_digest: str) -> str:
        return f"{self.prefix}:signin:lock:{user_digest}"

    # -- camera health (transits/camerahealth.py) --------------------------------------------

    def camera_minute(self, minute: int) -> str:
        """`minute`: epoch seconds // 60."""
        return f"{self.prefix}:cameras:minute:{minute}"

    @property
    def camera_last(self) -> str:
        return f"{self.prefix}:cameras:last"

    # -- every replica's status (http/replicas.py) ---------------------------------------------

    @property
    def replicas(self) -> str:
        return f"{self.prefix}:replicas"
