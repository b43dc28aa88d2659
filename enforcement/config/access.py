"""Who may call, from the configuration file: API keys, and the camera registry with each
camera's key, URL token or HTTP Digest credentials.

Only digests are kept (sha256 of keys and tokens, the Digest HA1s); a key or token used twice
is a configuration error, since it could no longer say which camera posted.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import NoReturn

from .settings import DIGEST_REALM, ApiKey, Camera, DigestHA1, hash_key
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
        keys[digest] = ApiKey(k.id, k.role)
    return keys


def cameras(
    spec: ConfigFile, api_keys: dict[str, ApiKey], fail: Fail
) -> tuple[dict[str, Camera], dict[str, str], dict[str, DigestHA1]]:
    """The camera registry; each camera's Bearer key joins `api_keys` (role camera, bound
    to the camera), its URL token the token table (sha256 -> camera id), its Digest
    credentials the HA1 table (camera id -> HA1s)."""
    cameras: dict[str, Camera] = {}
    tokens: dict[str, str] = {}
    digests: dict[str, DigestHA1] = {}
    for cid, c in spec.cameras.items():
        key = f"cameras.{cid}"
        if not 1 <= len(cid) <= 64:
            fail(key, "a camera id has 1 to 64 characters")
        if c.gate not in spec.gates:
            fail(f"{key}.gate", f"unknown gate {c.gate!r} (known: {', '.join(spec.gates)})")
        key_digest = _secret(c.key, c.key_sha256, f"{key}.key", fail)
        token_digest = _secret(c.token, c.token_sha256, f"{key}.token", fail)
        ha1 = _digest_ha1(cid, c, key, fail)
        if key_digest is None and token_digest is None and ha1 is None:
            fail(
                key,
                "give the camera's key (key or key_sha256, sent as "
                "'Authorization: Bearer KEY'), its URL token (token or "
                "token_sha256) or its HTTP Digest credentials (digest_ha1 or "
                "digest_password)",
            )
        if ha1 is not None:
            digests[cid] = ha1
        if key_digest is not None:
            if key_digest in api_keys:
                fail(
                    f"{key}.key",
                    "the same key is already used by another camera or [[api_keys]] entry",
                )
            api_keys[key_digest] = ApiKey(cid, "camera", camera=cid)
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
    if ":" in cid:  # the Digest user name: "a:b:varco:PASSWORD" would be ambiguous
        fail(key, "a camera with Digest credentials needs an id without ':'")
    return ha1
