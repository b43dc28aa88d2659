"""Who may call, from the configuration file: API keys, and the camera registry with each
camera's key, URL token or HTTP Digest credentials.

Only digests are kept (sha256 of keys and tokens, the Digest HA1s); a key or token used twice
is a configuration error, since it could no longer say which camera posted.

Every camera key is bound to the cameras it may speak for: a `[cameras.ID] key` to its camera,
an `[[api_keys]]` entry of role camera to its `cameras` list (a gateway posting for several).
A camera key bound to none could post as any camera at any gate; only the demo
(`[city] demo = true`) accepts one, and the service warns about it at start-up.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import NoReturn

from .settings import CAMERA_ID, CAMERA_ID_RULE, DIGEST_REALM, ApiKey, Camera, DigestHA1, hash_key
from .spec import CameraSpec, ConfigFile
from .values import Sha256Hex

Fail = Callable[[str, str], NoReturn]  # raises the ConfigError for a key and a reason


def api_keys(spec: ConfigFile, fail: Fail) -> dict[str, ApiKey]:
    keys: dict[str, ApiKey] = {}
    for i, k in enumerate(spec.api_keys):
        digest = _secret(k.key, k.key_sha256, f"api_keys[{i}].key", fail)
        assert digest is not None  # ApiKeySpec requires one of them
        if digest in keys:
            fail(f"api_keys[{i}]", "the same key is listed twice")
        keys[digest] = ApiKey(k.id, k.role, _bound(spec, i, fail))
    return keys


def _bound(spec: ConfigFile, i: int, fail: Fail) -> frozenset[str] | None:
    """The cameras `[[api_keys]]` entry `i` may post for (None: bound to none)."""
    k, key = spec.api_keys[i], f"api_keys[{i}].cameras"
    if k.role != "camera":
        if k.cameras is not None:
            fail(key, f"only a camera key is bound to cameras, not a {k.role} key ({k.id!r})")
        return None
    if k.cameras is None:
        if spec.city.demo:
            return None
        fail(
            f"api_keys[{i}]",
            f"camera key {k.id!r} is bound to no camera, so it could post as any camera at "
            'any gate: list the cameras it posts for, cameras = ["ID", ...] (each a '
            "[cameras.ID]), or give each camera its own key under [cameras.ID] "
            "(only the demo, [city] demo = true, accepts an unbound camera key)",
        )
    if not k.cameras:
        fail(key, f"empty: list the cameras key {k.id!r} posts for")
    for j, cid in enumerate(k.cameras):
        if cid not in spec.cameras:
            known = ", ".join(spec.cameras) or "none configured"
            fail(f"{key}[{j}]", f"unknown camera {cid!r} (known: {known})")
        if cid in k.cameras[:j]:
            fail(f"{key}[{j}]", f"camera {cid!r} is listed twice")
    return frozenset(k.cameras)


def unbound_camera_keys(api_keys: dict[str, ApiKey]) -> list[str]:
    """The ids of camera keys bound to no camera (only the demo has any): at start-up the
    service warns about each."""
    return sorted(k.id for k in api_keys.values() if k.role == "camera" and k.cameras is None)


def cameras(
    spec: ConfigFile, api_keys: dict[str, ApiKey], fail: Fail
) -> tuple[dict[str, Camera], dict[str, str], dict[str, DigestHA1]]:
    """The camera registry; each camera's Bearer key joins `api_keys` (role camera, bound
    to the camera), its URL token the token table (sha256 -> camera id), its Digest
    credentials the HA1 table (camera id -> HA1s). A camera an `[[api_keys]]` entry posts
    for needs no credentials of its own."""
    cameras: dict[str, Camera] = {}
    tokens: dict[str, str] = {}
    digests: dict[str, DigestHA1] = {}
    posted_for = {cid for k in spec.api_keys for cid in k.cameras or ()}
    for cid, c in spec.cameras.items():
        key = f"cameras.{cid}"
        if not CAMERA_ID.fullmatch(cid):
            fail(key, f"{CAMERA_ID_RULE}, not {cid[:80]!r}")
        if c.gate not in spec.gates:
            fail(f"{key}.gate", f"unknown gate {c.gate!r} (known: {', '.join(spec.gates)})")
        key_digest = _secret(c.key, c.key_sha256, f"{key}.key", fail)
        token_digest = _secret(c.token, c.token_sha256, f"{key}.token", fail)
        ha1 = _digest_ha1(cid, c, key, fail)
        if key_digest is None and token_digest is None and ha1 is None and cid not in posted_for:
            fail(
                key,
                "give the camera's key (key or key_sha256, sent as "
                "'Authorization: Bearer KEY'), its URL token (token or "
                "token_sha256) or its HTTP Digest credentials (digest_ha1 or "
                "digest_password), or name it in an [[api_keys]] entry's cameras",
            )
        if ha1 is not None:
            digests[cid] = ha1
        if key_digest is not None:
            if key_digest in api_keys:
                fail(
                    f"{key}.key",
                    "the same key is already used by another camera or [[api_keys]] entry",
                )
            api_keys[key_digest] = ApiKey(cid, "camera", frozenset((cid,)))
        if token_digest is not None:
            if token_digest in tokens:
                fail(
                    f"{key}.token",
                    f"the same token is already used by camera {tokens[token_digest]!r}",
                )
            tokens[token_digest] = cid
        tz = c.timezone or spec.city.timezone
        cameras[cid] = Camera(cid, c.gate, c.vendor, tz, c.device_id)
    return cameras, tokens, digests


def _secret(plain: str | None, hashed: str | None, key: str, fail: Fail) -> str | None:
    """The sha256 hex digest of a secret given in plain text (`key`) or as its digest
    (`key_sha256`; checked here rather than by type: "give one, not both" comes first)."""
    if hashed is not None:
        try:
            return Sha256Hex.parse(hashed)
        except ValueError as exc:
            fail(f"{key}_sha256", str(exc))
    if plain == "":
        fail(key, "empty")
    return None if plain is None else hash_key(plain)


def _digest_ha1(cid: str, c: CameraSpec, key: str, fail: Fail) -> DigestHA1 | None:
    """The camera's HTTP Digest HA1s, from digest_password or digest_ha1(_sha256)."""
    if c.digest_password is not None:
        if not c.digest_password:
            fail(f"{key}.digest_password", "empty")
        a1 = f"{cid}:{DIGEST_REALM}:{c.digest_password}".encode()
        ha1 = DigestHA1(hashlib.md5(a1).hexdigest(), hashlib.sha256(a1).hexdigest())
    elif c.digest_ha1 is None and c.digest_ha1_sha256 is None:
        return None
    else:
        hashed = {
            "digest_ha1": (c.digest_ha1, 32, "MD5"),
            "digest_ha1_sha256": (c.digest_ha1_sha256, 64, "SHA-256"),
        }
        for what, (value, size, algorithm) in hashed.items():
            if value is not None and not re.fullmatch(f"[0-9a-fA-F]{{{size}}}", value):
                fail(
                    f"{key}.{what}",
                    f"not {size} hex digits: the {algorithm} hex "
                    f"of '{cid}:{DIGEST_REALM}:PASSWORD'",
                )
        ha1 = DigestHA1(
            c.digest_ha1 and c.digest_ha1.lower(),
            c.digest_ha1_sha256 and c.digest_ha1_sha256.lower(),
        )
    # No ':' in the Digest user name, or "a:b:varco:PASSWORD" would be ambiguous: CAMERA_ID
    # (checked before) has none.
    return ha1
