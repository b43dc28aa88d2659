"""Who is calling: API keys (`Authorization: Bearer KEY`) and the roles they carry.

Keys are configured as sha256 digests (`[[api_keys]]`, `[cameras.ID] key`); a request's key is
hashed once and its header remembered (a camera sends the same header every time), so a post
costs one dict lookup. Unknown keys are never remembered. Neither keys nor headers are logged.
"""

from __future__ import annotations

from typing import Final

from aiohttp import web

from ..config.settings import ApiKey, hash_key
from . import errors
from .ratelimit import KeyRates

CAMERA: Final = frozenset({"camera", "admin"})
POLICE: Final = frozenset({"police", "admin"})
ADMIN: Final = frozenset({"admin"})
# The enforcement office's desk: review queue, transit search, camera health.
OPERATOR: Final = frozenset({"operator", "admin"})
_REMEMBERED_MAX: Final = 10_000


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
        header = request.headers.get("Authorization", "")
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
