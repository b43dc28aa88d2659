"""HTTP Digest (RFC 7616) for cameras that take only a user name and password: the response
computation against the RFCs' examples, and a real server on loopback with aiohttp's own
Digest client (the configuration: tests/config/test_cameras.py). The demo's cam-dahua
(examples/demo.toml) has `digest_password = "demo-dahua-password"`."""

from __future__ import annotations

import hashlib
import logging
import time
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import make_mocked_request

from enforcement.config.settings import DigestHA1, Settings
from enforcement.core.rules import Rules
from enforcement.http import errors
from enforcement.http.cameras import digest
from enforcement.http.cameras.digest import LIFETIME_S, DigestAuth
from enforcement.http.cameras.registry import Registry

from ...support import payloads as p
from ...support.cameras import JSON, NOW, PERMITTED, Cameras, key

CAMERA, PASSWORD = "cam-dahua", "demo-dahua-password"
TOLLGATE, KEEPALIVE = "/NotificationInfo/TollgateInfo", "/NotificationInfo/KeepAlive"
BODY = p.dump(p.dahua(PERMITTED, NOW))
HASH = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}


def authorization(
    nonce: str,
    uri: str,
    *,
    password: str = PASSWORD,
    user: str = CAMERA,
    algorithm: str = "MD5",
    qop: str | None = "auth",
    signed_uri: str | None = None,
    method: str = "POST",
) -> str:
    """A Digest header computed here, independently of the service's code; `signed_uri`: the
    uri the response covers when it is not the one the header names (a tampered header)."""

    def h(text: str) -> str:
        return HASH[algorithm](text.encode()).hexdigest()

    ha1, ha2 = h(f"{user}:varco:{password}"), h(f"{method}:{signed_uri or uri}")
    nc, cnonce = "00000001", "0a4f113b"
    response = h(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}" if qop else f"{ha1}:{nonce}:{ha2}")
    parts = [
        f'username="{user}"',
        'realm="varco"',
        f'nonce="{nonce}"',
        f'uri="{uri}"',
        f'response="{response}"',
        f"algorithm={algorithm}",
    ]
    if qop:
        parts += [f"qop={qop}", f"nc={nc}", f'cnonce="{cnonce}"']
    return "Digest " + ", ".join(parts)


async def post(
    cams: Cameras, path: str, headers: dict[str, str] | None = None, **kw: Any
) -> tuple[int, Any, str | None]:
    """Status, JSON reply and WWW-Authenticate of a Dahua post."""
    async with cams.session.post(
        cams.base + path, data=BODY, headers={**JSON, **(headers or {})}, **kw
    ) as r:
        return r.status, await r.json(), r.headers.get("WWW-Authenticate")


def challenge(header: str | None) -> dict[str, str]:
    assert header is not None and header.startswith("Digest "), header
    params = digest.parse(header[7:])
    assert params is not None, header
    return params


# -- the computation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ],
)
def test_rfc7616_example(algorithm: str, expected: str) -> None:
    """RFC 7616 section 3.9.1: Mufasa, "Circle of Life", GET /dir/index.html."""
    ha1 = HASH[algorithm](b"Mufasa:http-auth@example.org:Circle of Life").hexdigest()
    got = digest.response(
        algorithm,
        ha1,
        "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
        "GET",
        "/dir/index.html",
        "auth",
        "00000001",
        "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
    )
    assert got == expected


def test_rfc2617_example() -> None:
    """RFC 2617 section 3.5 (its errata's password, "Circle Of Life")."""
    ha1 = hashlib.md5(b"Mufasa:testrealm@host.com:Circle Of Life").hexdigest()
    got = digest.response(
        "MD5",
        ha1,
        "dcd98b7102dd2f0e8b11d0f600bfb0c093",
        "GET",
        "/dir/index.html",
        "auth",
        "00000001",
        "0a4f113b",
    )
    assert got == "6629fae49393a05397450978507c4ef1"


def test_parse() -> None:
    assert digest.parse('username="a\\"b", realm="x, y",nc=00000001 , qop=auth') == {
        "username": 'a"b',
        "realm": "x, y",
        "nc": "00000001",
        "qop": "auth",
    }
    for bad in (
        'username="a" realm="b"',
        'username="a", username="b"',
        'username="a',
        "=x",
        "username",
    ):
        assert digest.parse(bad) is None, bad


def test_nonces(demo: tuple[Settings, Rules]) -> None:
    """Stateless: another process with the same configuration (a worker) accepts the nonce;
    expiry comes from the injected clock, not from sleeping."""
    settings, _ = demo
    now = [time.time()]
    auth = DigestAuth(settings.camera_digests, clock=lambda: now[0])
    header = authorization(DigestAuth(settings.camera_digests).nonce(), TOLLGATE)
    assert auth.verify(header, "POST", TOLLGATE) == CAMERA
    now[0] += LIFETIME_S + 1
    with pytest.raises(errors.Unauthorized) as exc:
        auth.verify(header, "POST", TOLLGATE)
    assert exc.value.headers is not None
    assert challenge(exc.value.headers["WWW-Authenticate"])["stale"] == "true"
    other = DigestAuth({"x": DigestHA1("0" * 32)})  # another configuration: another key
    with pytest.raises(errors.Unauthorized, match="not issued"):
        auth.verify(authorization(other.nonce(), TOLLGATE), "POST", TOLLGATE)


def test_digest_headers_are_not_cached(demo: tuple[Settings, Rules]) -> None:
    """A Digest header that passed once is checked again, expiry included (a Bearer header is
    remembered): a captured header must not replay after its nonce expired."""
    settings, _ = demo
    registry = Registry(settings)
    now = [time.time()]
    registry.digest = DigestAuth(settings.camera_digests, clock=lambda: now[0])
    request = make_mocked_request(
        "POST",
        TOLLGATE,
        headers={"Authorization": authorization(registry.digest.nonce(), TOLLGATE)},
    )

    def require(*_: object) -> Any:
        raise AssertionError("a Digest header never reaches the Bearer check")

    assert registry.identify(request, require, "dahua").id == CAMERA
    assert registry.identify(request, require, "dahua").id == CAMERA
    now[0] += LIFETIME_S + 1
    with pytest.raises(errors.Unauthorized, match="expired"):
        registry.identify(request, require, "dahua")


# -- a real server ----------------------------------------------------------------------------


async def test_aiohttp_digest_client(cams: Cameras) -> None:
    """aiohttp's DigestAuthMiddleware: posts, is challenged, posts again with Digest; later
    posts reuse the nonce (nc 2, 3, ...), on any camera route."""
    auth = aiohttp.DigestAuthMiddleware(CAMERA, PASSWORD)
    status, reply, _ = await post(cams, TOLLGATE, middlewares=(auth,))
    assert status == 200, reply
    assert reply["Result"] is True and reply["results"][0]["verdict"] == "allowed"
    status, reply = await cams.post(
        KEEPALIVE, b'{"Active": "keepAlive"}', JSON, middlewares=(auth,)
    )
    assert (status, reply) == (200, {"Result": True})
    for path in (TOLLGATE, "/v1/cameras/dahua"):  # preemptive: the challenge is remembered
        status, reply, _ = await post(cams, path, middlewares=(auth,))
        assert status == 200 and reply["results"][0]["verdict"] == "allowed", reply
    # Registry.identify is shared: a Digest camera posting to another vendor's route is told
    status, reply, _ = await post(cams, "/v1/cameras/milesight", middlewares=(auth,))
    assert (status, reply["error"]) == (403, "forbidden")


async def test_challenge_and_wrong_password(
    cams: Cameras, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    status, reply, header = await post(cams, TOLLGATE)
    assert (status, reply["error"], reply["field"]) == (401, "unauthorized", "Authorization")
    assert header is not None and header.startswith(
        'Digest realm="varco", qop="auth", algorithm=MD5, nonce='
    )
    params = challenge(header)
    assert params["nonce"] and params["opaque"] and "stale" not in params
    status, reply, header = await post(
        cams, TOLLGATE, middlewares=(aiohttp.DigestAuthMiddleware(CAMERA, "wrong"),)
    )
    assert (status, reply["error"]) == (401, "unauthorized")
    assert "wrong password" in reply["detail"] and "stale" not in challenge(header)
    ha1 = hashlib.md5(f"{CAMERA}:varco:{PASSWORD}".encode()).hexdigest()
    assert PASSWORD not in caplog.text and ha1 not in caplog.text and "Digest" not in caplog.text


@pytest.mark.parametrize(
    ("kw", "detail"),
    [
        ({"uri": KEEPALIVE}, "uri"),  # names another path than the request's
        ({"signed_uri": KEEPALIVE}, "wrong password"),  # names this one, signed another
        ({"method": "PUT"}, "wrong password"),
        ({"user": "cam-milesight"}, "no such camera"),  # no Digest credentials
        ({"algorithm": "SHA-256", "qop": None}, "qop missing"),  # RFC 2069 style: MD5 only
        ({"qop": "auth-int"}, "qop"),
    ],
)
async def test_refused(cams: Cameras, kw: dict[str, Any], detail: str) -> None:
    nonce = challenge((await post(cams, TOLLGATE))[2])["nonce"]
    uri = kw.pop("uri", TOLLGATE)
    status, reply, header = await post(
        cams, TOLLGATE, {"Authorization": authorization(nonce, uri, **kw)}
    )
    assert (status, reply["error"]) == (401, "unauthorized"), reply
    assert detail in reply["detail"] and "stale" not in challenge(header)


async def test_accepted_forms(cams: Cameras) -> None:
    """SHA-256, and MD5 without qop (RFC 2069), answering the service's nonce."""
    for kw in ({"algorithm": "SHA-256"}, {"qop": None}, {}):
        nonce = challenge((await post(cams, TOLLGATE))[2])["nonce"]
        status, reply, _ = await post(
            cams, TOLLGATE, {"Authorization": authorization(nonce, TOLLGATE, **kw)}
        )
        assert (status, reply["Result"]) == (200, True), (kw, reply)


async def test_expired_and_forged_nonce(cams: Cameras) -> None:
    old = DigestAuth(cams.settings.camera_digests).nonce(time.time() - LIFETIME_S - 60)
    status, reply, header = await post(
        cams, TOLLGATE, {"Authorization": authorization(old, TOLLGATE)}
    )
    assert (status, reply["error"]) == (401, "unauthorized")
    fresh = challenge(header)
    assert fresh["stale"] == "true" and fresh["nonce"] != old
    status, reply, _ = await post(
        cams, TOLLGATE, {"Authorization": authorization(fresh["nonce"], TOLLGATE)}
    )
    assert status == 200, reply
    stamp, _, mac = fresh["nonce"].partition(".")
    forged = f"{int(stamp) + 3600}.{mac}"  # a later issue time, the old signature
    status, reply, header = await post(
        cams, TOLLGATE, {"Authorization": authorization(forged, TOLLGATE)}
    )
    assert (status, "not issued" in reply["detail"]) == (401, True)
    assert "stale" not in challenge(header)


async def test_other_schemes_unchanged(cams: Cameras) -> None:
    """Bearer, Basic and URL tokens work as before; a bad Bearer key still gets `Bearer`."""
    status, reply, _ = await post(cams, TOLLGATE, key("dahua"))
    assert status == 200, reply
    status, reply, _ = await post(cams, f"/v1/cameras/dahua/demo-dahua-token{TOLLGATE}")
    assert status == 200, reply
    status, reply, header = await post(cams, TOLLGATE, {"Authorization": "Bearer nope"})
    assert (status, header) == (401, "Bearer")
    for token, expected in (("demo-dahua-token", 200), ("nope", 401)):
        basic = {"Authorization": aiohttp.encode_basic_auth(CAMERA, token)}
        status, reply, header = await post(cams, TOLLGATE, basic)
        assert status == expected, reply
    assert header == "Bearer"


async def test_no_oracle_for_camera_ids(cams: Cameras) -> None:
    """An unknown user, a camera without Digest credentials and a wrong password for a known
    one get one answer: status, body and headers (a fresh challenge each time)."""
    answers = []
    skip = ("date", "www-authenticate")  # (the challenge: compared below, but for its nonce)
    for kw in ({"password": "wrong"}, {"user": "no-such-camera"}, {"user": "cam-milesight"}):
        nonce = challenge((await post(cams, TOLLGATE))[2])["nonce"]
        sent = {"Authorization": authorization(nonce, TOLLGATE, **kw)}
        async with cams.session.post(
            cams.base + TOLLGATE, data=BODY, headers={**JSON, **sent}
        ) as r:
            fresh = challenge(r.headers.get("WWW-Authenticate"))
            assert "stale" not in fresh and fresh["nonce"]
            fresh.pop("nonce")  # (its issue time may have ticked between two answers)
            headers = sorted(f"{h}: {v}" for h, v in r.headers.items() if h.lower() not in skip)
            answers.append((r.status, await r.read(), headers, fresh))
    assert answers[0][0] == 401
    assert answers[1] == answers[0] and answers[2] == answers[0]
    assert b"no-such-camera" not in answers[1][1] and b"cam-dahua" not in answers[0][1]
