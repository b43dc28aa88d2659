"""Which registered camera is posting, and what it may post.

A camera proves who it is with its own key (`Authorization: Bearer KEY`, a `[cameras.ID]` key
in the API key table, role camera, bound to the camera) or, for cameras that can only set a
URL, a token in the URL (`/v1/cameras/{vendor}/{token}`, `?token=`), or the token as the
password of HTTP Basic with the camera id as user name, or, for cameras that take only a user
name and password (Dahua), HTTP Digest (`digest.py`; offered once any camera has Digest
credentials: a post without credentials is then answered 401 with a Digest challenge). Only
sha256 digests of keys and tokens and the Digest HA1s are kept, and none of them, nor an
Authorization header, is ever logged. The gate always comes from the registry, never
from the payload: a camera can only produce transits for its own gate. A native post
(/v1/transits) names its camera and gate, and they are checked against the registry too
(`check_native`): a camera key naming a camera it is not bound to, or a camera at another
gate, is refused with 403.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from typing import Final
from zoneinfo import ZoneInfo

from aiohttp import web

from ...config.settings import CAMERA_ID, CAMERA_ID_RULE, ApiKey, Camera, Settings, hash_key
from .. import errors
from ..ratelimit import KeyRates
from ..schemas import TransitIn
from . import values
from .digest import DigestAuth
from .values import Scalar

CAMERA_ROLES: Final = frozenset({"camera", "admin"})
Require = Callable[[web.Request, frozenset[str]], ApiKey]  # Keyring.require


class Registry:
    def __init__(self, settings: Settings, rates: KeyRates | None = None) -> None:
        self.settings = settings
        # A camera's posts are charged to the camera (ratelimit.py), however it proves who it
        # is: key, token, Basic or Digest; `require` is then one that charges nothing.
        self.rates = rates
        self.zones = {c.id: ZoneInfo(c.timezone) for c in settings.cameras.values()}
        self._tokens: dict[str, Camera] = {}  # known token -> camera (bounded, as the Keyring's)
        # Authorization header -> its camera, once a post proved it (bounded): a camera sends
        # the same header every time, so the key is hashed and checked once, not per post
        self._headers: dict[str, Camera] = {}
        self.digest = DigestAuth(settings.camera_digests) if settings.camera_digests else None

    def by_token(self, token: str) -> Camera:
        camera = self._tokens.get(token)
        if camera is None:
            cid = self.settings.camera_tokens.get(hash_key(token))
            if cid is None:
                raise errors.Unauthorized("unknown camera token")
            camera = self.settings.cameras[cid]
            if len(self._tokens) < 10_000:  # unknown tokens are never cached
                self._tokens[token] = camera
        return camera

    def by_basic(self, header: str) -> Camera:
        try:
            user, sep, password = (
                base64.b64decode(header[6:].strip(), validate=True).decode("utf-8").partition(":")
            )
        except (binascii.Error, UnicodeDecodeError):
            raise errors.Unauthorized("malformed Basic credentials") from None
        camera = self.by_token(password) if sep and password else None
        if camera is None or camera.id != user:
            raise errors.Unauthorized("unknown camera or token")
        return camera

    def identify(self, request: web.Request, require: Require, vendor: str) -> Camera:
        """The posting camera; 401 without valid credentials, 403 for a key that is no
        camera's or a camera registered for another vendor, 429 past its rate limit."""
        token = request.match_info.get("token")
        # No "?" in the request target, no query to parse (the usual post).
        if token is None and "?" in request.raw_path and "token=" in request.query_string:
            token = request.query.get("token")
        if token:
            camera = self.by_token(token)
        else:
            header = request.headers.get("Authorization", "")
            known = self._headers.get(header)  # (never a Digest header: see by_digest)
            if known is not None:
                camera = known
            elif self.digest is not None and (not header or header[:7].lower() == "digest "):
                camera = self.by_digest(request, header)
            else:
                camera = self.by_header(request, header, require)
                if len(self._headers) < 10_000:  # failures raise, so are never cached
                    self._headers[header] = camera
        if camera.vendor != vendor:
            raise errors.Forbidden(
                f"camera {camera.id!r} is registered for vendor {camera.vendor!r}, not {vendor!r}"
            )
        if self.rates is not None:
            self.rates.charge(camera.id)
        return camera

    def by_digest(self, request: web.Request, header: str) -> Camera:
        """The camera whose Digest credentials `header` holds; no header: 401 with a challenge.

        Never through the header cache (`_headers`): each Digest header has its own nonce, nc
        and cnonce, so a cache would hardly ever hit, and a hit would skip the nonce's expiry,
        letting a header captured once replay for ever instead of for LIFETIME_S."""
        assert self.digest is not None
        if not header:
            raise self.digest.unauthorized(
                "missing credentials: send HTTP Digest (user name: "
                "the camera id), Basic, 'Authorization: Bearer "
                "KEY' or the camera's URL token"
            )
        cid = self.digest.verify(header, request.method, request.raw_path)
        return self.settings.cameras[cid]

    def by_header(self, request: web.Request, header: str, require: Require) -> Camera:
        """The camera whose key (Bearer) or id and token (Basic) `header` holds."""
        if header[:6].lower() == "basic ":
            return self.by_basic(header)
        key = require(request, CAMERA_ROLES)
        if key.camera is None:
            raise errors.Forbidden(
                f"key {key.id!r} belongs to no camera"
                + (" alone (it posts for several)" if key.cameras else "")
                + ": a vendor route needs the camera's own key or URL token ([cameras.ID])"
            )
        return self.settings.cameras[key.camera]

    @staticmethod
    def check_device(camera: Camera, device: tuple[str, Scalar] | None) -> None:
        """403 when the camera has a `device_id` and the payload names another device."""
        if camera.device_id is None:
            return
        field, raw = device if device is not None else ("", None)
        value = values.present(raw)
        if value is None:
            raise errors.Forbidden(
                f"camera {camera.id!r} must name its device {camera.device_id!r} in the payload"
            )
        if value != camera.device_id:
            raise errors.Forbidden(
                f"camera {camera.id!r} is device {camera.device_id!r}, not {value[:64]!r}", field
            )


def check_native(
    settings: Settings, key: ApiKey, transits: Sequence[TransitIn], field: str | None = None
) -> None:
    """Who a native post (/v1/transits) may speak for, and where.

    A bound key (a `[cameras.ID] key`, an `[[api_keys]]` entry's `cameras`): only its cameras,
    each at its own gate (403 naming the field). Any other key (an admin key; in the demo, an
    unbound camera key): a registered camera at its own gate (422, 403), except in the demo,
    where any id goes. Always a well-formed camera id (422): no free text reaches a record."""
    bound, cameras, anywhere = key.cameras, settings.cameras, settings.demo
    for i, t in enumerate(transits):
        camera = cameras.get(t.camera)
        if bound is not None and t.camera not in bound:
            mine = (
                ", ".join(repr(c) for c in sorted(bound))
                if len(bound) <= 3
                else f"{len(bound)} cameras of its own"
            )
            raise errors.Forbidden(
                f"key {key.id!r} may post only for {mine}, not {t.camera[:64]!r}",
                _at(field, i, "camera"),
            )
        if camera is None:  # (never for a bound key: it is bound to registered cameras)
            if not CAMERA_ID.fullmatch(t.camera):
                raise errors.Invalid(CAMERA_ID_RULE, _at(field, i, "camera"))
            if not anywhere:
                raise errors.Invalid(
                    f"unknown camera {t.camera!r}: register it under [cameras.ID]",
                    _at(field, i, "camera"),
                )
        elif t.gate != camera.gate and (bound is not None or not anywhere):
            raise errors.Forbidden(
                f"camera {camera.id!r} may only post for gate {camera.gate!r}",
                _at(field, i, "gate"),
            )


def _at(field: str | None, i: int, name: str) -> str:
    """`name` in the body (`camera`), or in its `field[i]` (`transits[3].camera`)."""
    return name if field is None else f"{field}[{i}].{name}"
