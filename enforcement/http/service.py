"""The running service's state, which every handler module binds to when routes are added.

One `Service` per application (`app[SERVICE]`): the settings and rules, the index holder, the
intake (judge and record), the keyring, admission control and per-key rates, the metrics, and
the resources that exist while the app runs (follower, audit trail, transit log, violations,
follow-up, Redis's memory watch), set and cleared by their cleanup contexts (resources.py).
Handlers hold it in a closure: no `app[...]` per request.
"""

from __future__ import annotations

import os

from aiohttp import web
from redis.asyncio import Redis

from ..audit.writer import HOST, AuditLog
from ..config.load import make_checker
from ..config.settings import Settings
from ..core.live import IndexHolder, LiveIndex
from ..core.rules import Rules
from ..memory import MemoryWatch
from ..replica.follower import Follower
from ..transits.camerahealth import CameraHealth
from ..transits.followup import FollowUp
from ..transits.intake import Intake
from ..transits.review import ReviewQueue
from ..transits.search import TransitSearch
from ..transits.violations import Violations
from .admission import UNMETERED, Admission
from .apidoc import PathDocs
from .auth import Caller, Keyring, require, roles_of
from .endpoints import Handler, endpoint
from .metrics import Metrics
from .ratelimit import KeyRates
from .sessions import Sessions
from .siblings import Siblings


class Service:
    def __init__(self, settings: Settings, rules: Rules, holder: IndexHolder) -> None:
        self.settings, self.rules, self.holder = settings, rules, holder
        self.checker = make_checker(rules, settings)
        self.metrics = Metrics()
        self.intake = Intake(rules, self.checker, holder, self.metrics.verdicts)
        self.admission = Admission(settings.server)
        self.key_rates = KeyRates(settings.server)
        # Charged per request only where a rate is set (the buckets stay for /metrics).
        charged = self.key_rates if settings.server.key_rate > 0 else None
        self.keyring = Keyring(settings.api_keys, charged)
        self.follower: Follower | None = None  # set while following Redis
        self.audit: AuditLog | None = None  # the police-lookup audit trail, set while running
        self.violations: Violations | None = None  # set while running, with a Redis
        self.followup: FollowUp | None = None  # set while the worker runs here
        self.memory: MemoryWatch | None = None  # the transit Redis's memory, while running
        self.sessions: Sessions | None = None  # sign-in sessions, while running with Redis
        self.docs: list[PathDocs] = []  # an extension's paths, for /openapi.json and /docs
        # The desk (http/review.py, http/desk.py): set while running, with a Redis; camera
        # health always (counted per post, summed through Redis when there is one).
        self.review: ReviewQueue | None = None
        self.search: TransitSearch | None = None
        self.health = CameraHealth(
            {c.id: c.gate for c in settings.cameras.values()}, rules, settings.camera_health
        )
        self.intake.health = self.health
        self.desk_redis: Redis | None = None  # the desk's connection, for camera health
        self.replicas_redis: Redis | None = None  # where replicas report (replicas.py)
        # How this process names itself there: host and pid (a test of two services in one
        # process gives the second another pid).
        self.identity: tuple[str, int] = (HOST, os.getpid())
        self.siblings: Siblings | None = None  # the other workers of `serve --workers N`

    def endpoint(self, name: str, handler: Handler) -> Handler:
        """The route's handler as the service runs it (endpoints.py): health, readiness and
        metrics outside admission control (admission.py), every other route under it."""
        admission = None if name in UNMETERED else self.admission
        return endpoint(self.metrics, name, handler, admission)

    async def require(self, request: web.Request, *roles: str | frozenset[str]) -> Caller:
        """The caller (key or signed-in person) if their role is one of `roles` (names or
        sets of names; admin always may); 401/403 otherwise (auth.py)."""
        return await require(request, self.keyring, self.sessions, roles_of(roles))

    def live(self) -> LiveIndex:
        return self.holder.live()


SERVICE = web.AppKey("service", Service)
HOLDER = web.AppKey("holder", IndexHolder)
