"""HTTP Digest authentication (RFC 7616) for cameras that take only a user name and password.

A Dahua ITSAPI camera is often given just the server's address, a user name and a password: no
URL path for a token, no header of our choosing. It posts, gets 401 with a challenge
(`WWW-Authenticate: Digest realm="varco", qop="auth", algorithm=MD5, nonce=..., opaque=...`)
and posts again with `Authorization: Digest username=..., response=...`, where the response
is H(HA1:nonce:nc:cnonce:qop:H(METHOD:uri)) and HA1 = H("ID:varco:PASSWORD") is what the
configuration holds (`[cameras.ID] digest_ha1`). The user name is the camera id.

Nonces are stateless: the issue time and an HMAC-SHA256 of it, good for `LIFETIME_S`. No table
of issued nonces or nonce counts is kept, so a header captured on the wire replays until its
nonce expires; that is acceptable because a replayed post only repeats a transit, and
transits are deduplicated by event id anyway. (qop=auth does not sign the body: like a
captured Bearer key, only for minutes instead of for ever. TLS is the answer to a hostile
network.) The HMAC key is derived from the configured HA1s rather than drawn at random per
process: `varco serve --workers N` spreads one camera's connections over N processes
(SO_REUSEPORT), and each must accept the nonces the others issued; the HA1s are already the
secret that matters, so whoever could forge a nonce could log in anyway.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable, Mapping
from typing import Final

from ...config.settings import DIGEST_REALM, DigestHA1
from .. import errors

REALM: Final = DIGEST_REALM
LIFETIME_S: Final = 300  # a nonce's life; an older one, otherwise right, is answered stale=true
HASHES: Final = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}
# One auth-param: name=token or name="quoted string", then a comma or the end.
_PARAM: Final = re.compile(
    r"\s*([A-Za-z][\w-]*)\s*=\s*"
    r'(?:"((?:[^"\\]|\\.)*)"|([^\s",]+))\s*(?:,|$)'
)
_NC: Final = re.compile(r"[0-9a-fA-F]{8}")
_REQUIRED: Final = ("username", "realm", "nonce", "uri", "response")
# One answer for an unknown user and for a wrong password: no camera id oracle.
REFUSED: Final = (
    "Digest credentials refused: no such camera with Digest credentials, or wrong password"
)


def _wire(text: str) -> bytes:
    """The bytes a header or path arrived as (aiohttp decodes them utf-8/surrogateescape):
    never an error, whatever a client sent; compare_digest refuses non-ASCII str."""
    return text.encode("utf-8", "surrogateescape")


def response(
    algorithm: str,
    ha1: str,
    nonce: str,
    method: str,
    uri: str,
    qop: str | None = None,
    nc: str = "",
    cnonce: str = "",
) -> str:
    """The request-digest a client must send (RFC 7616 section 3.4.1; without qop, RFC 2069)."""
    h = HASHES[algorithm]
    ha2 = h(_wire(f"{method}:{uri}")).hexdigest()
    data = f"{nonce}:{nc}:{cnonce}:{qop}:{ha2}" if qop else f"{nonce}:{ha2}"
    return h(_wire(f"{ha1}:{data}")).hexdigest()


def parse(params: str) -> dict[str, str] | None:
    """The auth-params after `Digest `, or None when they are malformed or repeated."""
    out: dict[str, str] = {}
    pos = 0
    while pos < len(params):
        m = _PARAM.match(params, pos)
        if m is None or m.end() == pos:
            return None
        name = m.group(1).lower()
        if name in out:
            return None
        quoted = m.group(2)
        out[name] = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else m.group(3)
        pos = m.end()
    return out


class DigestAuth:
    """Challenges and checks Digest credentials against the cameras' HA1s."""

    def __init__(
        self,
        ha1s: Mapping[str, DigestHA1],
        lifetime_s: float = LIFETIME_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.ha1s, self.lifetime_s, self.clock = ha1s, lifetime_s, clock
        material = "\0".join(f"{cid}\0{h.md5}\0{h.sha256}" for cid, h in sorted(ha1s.items()))
        self._key = hashlib.sha256(b"varco digest nonces\0" + material.encode()).digest()
        # Returned unchanged by clients; it carries no state here, so it is not checked.
        self.opaque = hmac.new(self._key, b"opaque", hashlib.sha256).hexdigest()[:32]
        # Stand-in HA1s for an unknown user, per algorithm: hex of the algorithm's size that no
        # password is known to give, used only so that refusing one costs what refusing a
        # wrong password costs.
        self._unknown = {
            name: hmac.new(self._key, f"unknown {name}".encode(), h).hexdigest()
            for name, h in HASHES.items()
        }

    def _mac(self, issued: str) -> str:
        return hmac.new(self._key, issued.encode(), hashlib.sha256).hexdigest()[:32]

    def nonce(self, issued: float | None = None) -> str:
        stamp = str(int(self.clock() if issued is None else issued))
        return f"{stamp}.{self._mac(stamp)}"

    def _issued(self, nonce: str) -> int | None:
        """When this service issued `nonce`, or None if it did not."""
        stamp, _, mac = nonce.partition(".")
        if not re.fullmatch(r"[0-9]{1,12}", stamp):
            return None
        return int(stamp) if hmac.compare_digest(_wire(mac), _wire(self._mac(stamp))) else None

    def challenge(self, stale: bool = False) -> str:
        return (
            f'Digest realm="{REALM}", qop="auth", algorithm=MD5, nonce="{self.nonce()}", '
            f'opaque="{self.opaque}"' + (", stale=true" if stale else "")
        )

    def unauthorized(self, detail: str, stale: bool = False) -> errors.Unauthorized:
        """401 with a fresh challenge, so a camera that waits for one retries with Digest."""
        return errors.Unauthorized(
            detail, "Authorization", headers={"WWW-Authenticate": self.challenge(stale)}
        )

    def verify(self, header: str, method: str, uri: str) -> str:
        """The camera id whose credentials `header` (`Digest ...`) holds for this request
        (`uri`: its path with query, as sent); 401 with a challenge otherwise. Nothing of the
        header is echoed but the uri; an unknown user and a wrong password are one answer."""
        p = parse(header[7:])
        if p is None:
            raise self.unauthorized("malformed Digest credentials")
        missing = [name for name in _REQUIRED if name not in p]
        if missing:
            raise self.unauthorized(f"Digest credentials without {', '.join(missing)}")
        algorithm = p.get("algorithm", "MD5").upper()
        if algorithm not in HASHES:
            raise self.unauthorized(f"Digest algorithm {algorithm[:20]!r}: use MD5 or SHA-256")
        qop = p.get("qop")
        if qop is None:
            if algorithm != "MD5":  # RFC 2069's form (no qop) exists only for MD5
                raise self.unauthorized("Digest qop missing: send qop=auth")
        elif qop != "auth":
            raise self.unauthorized(f"Digest qop {qop[:20]!r}: only qop=auth is offered")
        elif not _NC.fullmatch(p.get("nc", "")) or not p.get("cnonce"):
            raise self.unauthorized("Digest qop=auth needs nc (8 hex digits) and cnonce")
        if p["realm"] != REALM:
            raise self.unauthorized(f"Digest realm {p['realm'][:40]!r}: the realm is {REALM!r}")
        if p["uri"] != uri:
            raise self.unauthorized(
                f"Digest uri {p['uri'][:200]!r} is not this request's path {uri[:200]!r}"
            )
        issued = self._issued(p["nonce"])
        if issued is None:
            raise self.unauthorized("Digest nonce not issued by this service")
        # An unknown user and a wrong password get the same answer after the same work (a
        # response computed from a stand-in HA1 and compared), so neither the body, the
        # headers nor the time taken tells whether a camera id exists.
        ha1s = self.ha1s.get(p["username"])
        ha1 = None if ha1s is None else ha1s.md5 if algorithm == "MD5" else ha1s.sha256
        expected = response(
            algorithm,
            ha1 or self._unknown[algorithm],
            p["nonce"],
            method,
            uri,
            qop,
            p.get("nc", ""),
            p.get("cnonce", ""),
        )
        right = hmac.compare_digest(_wire(expected), _wire(p["response"].lower()))
        if ha1 is None or not right:
            raise self.unauthorized(REFUSED)
        # Checked last: stale=true tells the camera its password was right, only the nonce old.
        if not 0 <= self.clock() - issued <= self.lifetime_s:
            raise self.unauthorized("Digest nonce expired: retry with the new one", stale=True)
        return p["username"]
