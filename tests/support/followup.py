"""The follow-up's world: the service on a real server and Redis, a follow-up worker on its own
connection, and a clock the tests move (the `world` fixture, tests/transits/conftest.py)."""

from __future__ import annotations

from typing import Any

from enforcement.config.settings import Settings
from enforcement.core.rules import Rules
from enforcement.http.service import Service
from enforcement.transits.followup import FollowUp

from .api import ADMIN, CAMERA, NOW, Client, transit
from .common import permit

PERMITS = [permit("RES-1", "AB123CD", "1", "2020-01-01T00:00:00+01:00")]
GRACE_S = 72 * 3600  # the demo zones' grace


class World:
    """The service, a follow-up worker on its own Redis connection, and a clock we move."""

    def __init__(
        self, client: Client, api: Service, followup: FollowUp, settings: Settings, rules: Rules
    ) -> None:
        self.client, self.api, self.followup = client, api, followup
        self.settings, self.rules = settings, rules
        self.now = NOW.timestamp() + 60

    def advance(self, seconds: float) -> None:
        self.now += seconds

    async def post(self, plate: str, **extra: Any) -> dict[str, Any]:
        status, body, _ = await self.client.request(
            "POST", "/v1/transits", CAMERA, json=transit(plate, **extra)
        )
        assert status == 200, body
        return body  # type: ignore[no-any-return]

    async def run_followup(self) -> None:
        while await self.followup.consume(block_ms=None):
            pass
        while await self.followup.decide_due():
            pass

    async def violations(self, **query: str) -> list[dict[str, Any]]:
        status, body, _ = await self.client.request("GET", "/v1/violations", ADMIN, params=query)
        assert status == 200, body
        return body["violations"]  # type: ignore[no-any-return]


async def ready_to_log(client: Client) -> bool:
    status, body, _ = await client.request("GET", "/readyz")
    return status == 200 and body["transit_log"]["target"] == "redis"
