"""Sign-in through a real server (Redis; SQLite and PostgreSQL): the session and its cookie,
the same answer for every bad sign-in, lock-out and unlock, CSRF on session writes, roles,
expiry, and what the audit chain and the permit's history record of a person's actions."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from http.cookies import SimpleCookie

import pytest
import redis

from enforcement.config.settings import Settings, with_changes
from enforcement.core.rules import Rules
from enforcement.http.sessions import COOKIE, LOCK_S, MAX_FAILURES, name_digest
from enforcement.keys import Keys
from enforcement.replica.redis_server import EmbeddedRedis
from loader.watch import LoaderThread

from ..support.accounts import (
    PASSWORD,
    Person,
    accounts_server,
    add_user,
    audit_records,
    redis_dump,
    varco_users_async,
)
from ..support.api import ADMIN, NOW, POLICE, Client


@pytest.fixture
async def api(
    live_settings: Settings, demo: tuple[Settings, Rules], loader: LoaderThread
) -> AsyncIterator[Client]:
    add_user(live_settings, "anna", "police")
    add_user(live_settings, "olga", "operator")
    add_user(live_settings, "ada", "admin")
    async with accounts_server(live_settings, demo[1]) as client:
        client.settings = live_settings  # type: ignore[attr-defined]
        yield client


def settings_of(api: Client) -> Settings:
    return api.settings  # type: ignore[attr-defined, no-any-return]


async def test_sign_in_cookie_session_and_sign_out(api: Client) -> None:
    anna = Person(api)
    status, body, r = await anna.sign_in("anna")
    assert status == 200, body
    assert (body["user"], body["role"]) == ("anna", "police") and len(body["csrf_token"]) >= 40
    assert r.headers["Cache-Control"] == "no-store"
    morsel = SimpleCookie(r.headers["Set-Cookie"])[COOKIE]
    assert morsel["httponly"] and morsel["samesite"] == "Strict" and morsel["path"] == "/"
    assert not morsel["secure"]  # plain HTTP from a client that is no trusted proxy
    # A copy of Redis holds neither the cookie nor the password.
    dump = redis_dump(settings_of(api))
    assert anna.cookie is not None and anna.cookie.encode() not in dump
    assert PASSWORD.encode() not in dump

    status, again, _ = await anna.request("GET", "/v1/session", csrf=None)
    assert status == 200 and again["csrf_token"] == body["csrf_token"]
    # A police lookup by the signed-in person: a read, no CSRF token needed; audited by name.
    status, view, _ = await anna.request(
        "GET", "/v1/plates/AB123CD", csrf=None, headers={"X-Reason": "verbale 12/2026"}
    )
    assert status == 200 and view["plate"] == "AB123CD"
    signed_in, record = audit_records(settings_of(api))
    assert (signed_in["action"], signed_in["key_id"], signed_in["person"]) == (
        "sign_in",
        "user:anna",
        "anna",
    )
    assert (record["key_id"], record["person"], record["role"]) == ("user:anna", "anna", "police")
    assert (record["action"], record["plate"], record["reason"]) == (
        "plate_lookup",
        "AB123CD",
        "verbale 12/2026",
    )

    status, body, _ = await anna.request("DELETE", "/v1/session", csrf=None)
    assert (status, body["error"], body["field"]) == (403, "csrf", "X-CSRF-Token")
    status, _, r = await anna.request("DELETE", "/v1/session")
    assert status == 204 and SimpleCookie(r.headers["Set-Cookie"])[COOKIE].value == ""
    status, body, _ = await anna.request("GET", "/v1/session", csrf=None)
    assert (status, body["error"]) == (401, "unauthorized")
    status, _, _ = await anna.request(
        "GET", "/v1/plates/AB123CD", csrf=None, headers={"X-Reason": "x"}
    )
    assert status == 401


async def test_secure_cookie_only_behind_a_trusted_tls_proxy(
    live_settings: Settings, demo: tuple[Settings, Rules], loader: LoaderThread
) -> None:
    add_user(live_settings, "anna", "police")
    https = {"X-Forwarded-Proto": "https"}
    # Anyone may send the header: from a client that is no trusted proxy it is ignored.
    async with accounts_server(live_settings, demo[1]) as client:
        status, _, r = await Person(client).sign_in("anna", headers=https)
        assert status == 200 and not SimpleCookie(r.headers["Set-Cookie"])[COOKIE]["secure"]
    trusted = with_changes(live_settings, server={"trusted_proxies": ("127.0.0.0/8",)})
    async with accounts_server(trusted, demo[1]) as client:
        status, _, r = await Person(client).sign_in("anna", headers=https)
        assert status == 200 and SimpleCookie(r.headers["Set-Cookie"])[COOKIE]["secure"]
        status, _, r = await Person(client).sign_in("anna", headers={"X-Forwarded-Proto": "http"})
        assert status == 200 and not SimpleCookie(r.headers["Set-Cookie"])[COOKIE]["secure"]


async def test_every_bad_sign_in_gets_the_same_answer(
    api: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (await varco_users_async(settings_of(api), monkeypatch, "disable", "olga"))[0] == 0
    answers = []
    for name, password in (("anna", "wrong password!"), ("nobody", PASSWORD), ("olga", PASSWORD)):
        status, body, r = await Person(api).sign_in(name, password)
        answers.append((status, body))
        assert "Set-Cookie" not in r.headers
    assert answers[0][0] == 401 and answers[0][1]["error"] == "unauthorized"
    assert answers[0] == answers[1] == answers[2]  # wrong password, unknown, disabled
    assert "nobody" not in str(answers[1][1]) and PASSWORD not in str(answers)
    status, body, _ = await api.request(
        "POST", "/v1/session", data=b"username=anna", headers={"Content-Type": "text/plain"}
    )
    assert status == 415  # a cross-site form cannot sign anyone in
    status, body, _ = await api.request("POST", "/v1/session", json={"username": "anna"})
    assert (status, body["field"]) == (422, "password")


async def test_lock_out_after_repeated_failures_then_unlock(
    api: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("anna", "nobody"):  # an unknown name locks the same way: no oracle
        for _ in range(MAX_FAILURES):
            status, _, _ = await Person(api).sign_in(name, "wrong password!")
            assert status == 401
        status, body, r = await Person(api).sign_in(name, PASSWORD)  # even the right one
        assert (status, body["error"], body["field"]) == (429, "locked_out", "username")
        assert 0 < int(r.headers["Retry-After"]) <= LOCK_S
    assert (await Person(api).sign_in("ANNA", PASSWORD))[0] == 429  # one counter per name
    assert (await Person(api).sign_in("ada"))[0] == 200  # others are not locked

    code, out, _ = await varco_users_async(settings_of(api), monkeypatch, "unlock", "anna")
    assert (code, out.strip()) == (0, "user anna: unlocked")
    assert (await Person(api).sign_in("anna"))[0] == 200


async def test_sign_ins_refusals_lock_outs_and_sign_outs_are_audited(api: Client) -> None:
    """Every sign-in event is in the audit chain: by name for a user who exists, by the typed
    name's digest for one who does not (a password typed as a name is not kept)."""
    assert (await Person(api).sign_in("anna", "wrong password!"))[0] == 401
    assert (await Person(api).sign_in("s3cret-typed-as-name", PASSWORD))[0] == 401
    for _ in range(MAX_FAILURES):
        await Person(api).sign_in("olga", "wrong password!")
    ada = Person(api)
    assert (await ada.sign_in("ada"))[0] == 200
    assert (await ada.request("DELETE", "/v1/session"))[0] == 204
    got = [
        (r["action"], r["key_id"], r.get("person"), r["role"], r.get("target"))
        for r in audit_records(settings_of(api))
    ]
    digest = name_digest("s3cret-typed-as-name")
    assert got == [
        ("sign_in_failed", "user:anna", "anna", "police", None),
        ("sign_in_failed", "user:?", None, "", f"name-sha256:{digest}"),
        *[("sign_in_failed", "user:olga", "olga", "operator", None)] * (MAX_FAILURES - 1),
        ("sign_in_locked_out", "user:olga", "olga", "operator", None),
        ("sign_in", "user:ada", "ada", "admin", None),
        ("sign_out", "user:ada", "ada", "admin", None),
    ]
    assert b"s3cret-typed-as-name" not in redis_dump(settings_of(api))


async def test_no_session_without_its_audit_record(api: Client) -> None:
    """The audit trail cannot be written (its stream replaced by a string: every append fails
    while sessions still work): the sign-in is refused 503, and no session stands."""
    settings = settings_of(api)
    keys = Keys(settings.redis.prefix)
    r = redis.Redis.from_url(settings.redis.url or "")
    try:
        existed = r.exists(keys.audit)
        if existed:
            r.rename(keys.audit, f"{keys.audit}:aside")
        r.set(keys.audit, "not a stream")
        status, body, reply = await Person(api).sign_in("anna")
        assert (status, body["error"]) == (503, "audit_unavailable"), body
        assert "Set-Cookie" not in reply.headers
        assert not list(r.scan_iter(f"{settings.redis.prefix}:session:*"))
        r.delete(keys.audit)
        if existed:
            r.rename(f"{keys.audit}:aside", keys.audit)
        status, body, _ = await Person(api).sign_in("anna")  # the audit trail is back
        assert status == 200, body
    finally:
        r.close()


async def test_session_writes_need_the_csrf_token_and_keys_do_not(api: Client) -> None:
    ada = Person(api)
    assert (await ada.sign_in("ada"))[0] == 200
    permit = {
        "permit_id": "ONL-9",
        "type": "ONLINE",
        "valid_from": NOW.isoformat(),
        "plates": [{"plate": "HK321LM"}],
        "source": "online",
        "valid_to": (NOW + dt.timedelta(hours=1)).isoformat(),
    }
    for csrf in (None, "", "not-the-token", (ada.csrf or "") + "x"):
        status, body, _ = await ada.request("POST", "/v1/permits", csrf=csrf, json=permit)
        assert (status, body["error"], body["field"]) == (403, "csrf", "X-CSRF-Token")
    status, body, _ = await ada.request("POST", "/v1/permits", json=permit)
    assert status == 201, body
    # A key needs no CSRF token: no browser sends it by itself.
    status, body, _ = await api.request(
        "POST", "/v1/permits", ADMIN, json={**permit, "permit_id": "ONL-10"}
    )
    assert status == 201, body
    # A key wins over a cookie sent with it: the key's role, the key's name.
    status, body, _ = await ada.request("POST", "/v1/permits", csrf=None, headers=POLICE, json={})
    assert (status, body["error"]) == (403, "forbidden")


async def test_roles_of_people(api: Client) -> None:
    anna, olga, ada = Person(api), Person(api), Person(api)
    for person, name in ((anna, "anna"), (olga, "olga"), (ada, "ada")):
        assert (await person.sign_in(name))[0] == 200
    lookup = {"X-Reason": "controllo"}
    assert (await anna.request("GET", "/v1/plates/AB123CD", headers=lookup))[0] == 200
    assert (await olga.request("GET", "/v1/plates/AB123CD", headers=lookup))[0] == 403
    assert (await ada.request("GET", "/v1/plates/AB123CD", headers=lookup))[0] == 200
    assert (await anna.request("GET", "/v1/violations"))[0] == 403
    assert (await olga.request("GET", "/v1/violations"))[0] == 200
    assert (await ada.request("GET", "/v1/violations"))[0] == 200
    assert (await olga.request("GET", "/v1/permits/RES-1"))[0] == 403
    assert (await ada.request("GET", "/v1/permits/RES-1"))[0] == 200
    # The operator role by API key too ([[api_keys]] role = "operator").
    operator = {"Authorization": "Bearer demo-operator"}
    assert (await api.request("GET", "/v1/violations", operator))[0] == 200
    assert (await api.request("GET", "/v1/plates/AB123CD", {**operator, **lookup}))[0] == 403


async def test_disable_ends_the_sessions(api: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    anna, again = Person(api), Person(api)
    assert (await anna.sign_in("anna"))[0] == 200
    assert (await again.sign_in("anna"))[0] == 200
    code, out, _ = await varco_users_async(settings_of(api), monkeypatch, "disable", "anna")
    assert code == 0 and "2 session(s) ended" in out
    assert (await anna.request("GET", "/v1/session"))[0] == 401
    assert (await again.request("GET", "/v1/session"))[0] == 401
    assert (await Person(api).sign_in("anna"))[0] == 401


async def test_admin_changes_are_recorded_with_person_and_reason(api: Client) -> None:
    ada = Person(api)
    assert (await ada.sign_in("ada"))[0] == 200
    permit = {
        "permit_id": "ONL-7",
        "type": "ONLINE",
        "valid_from": NOW.isoformat(),
        "valid_to": (NOW + dt.timedelta(hours=1)).isoformat(),
        "plates": [{"plate": "HK321LM"}],
        "source": "online",
        "reason": "domanda prot. 4411",
    }
    status, body, _ = await ada.request("POST", "/v1/permits", json=permit)
    assert status == 201, body
    status, body, _ = await api.request("POST", "/v1/permits", ADMIN, json=permit)
    assert status == 409  # issued twice: nothing in the permit's history for a refused change
    status, body, _ = await ada.request(
        "POST", "/v1/permits/ONL-7/revoke", json={"reason": "veicolo venduto"}
    )
    assert status == 200, body
    status, body, _ = await ada.request(
        "POST", "/v1/permits/ONL-7/revoke", json={"reason": "riga\nfalsa"}
    )
    assert (status, body["field"]) == (422, "reason")

    status, got, _ = await ada.request("GET", "/v1/permits/ONL-7")
    assert status == 200
    changes = [(c["actor"], c["person"], c["action"], c["reason"]) for c in got["changes"]]
    assert changes == [
        ("user:ada", "ada", "issue", "domanda prot. 4411"),
        ("user:ada", "ada", "revoke", "veicolo venduto"),
    ]
    assert got["changes"][-1]["revision"] == got["revision"]
    records = [r for r in audit_records(settings_of(api)) if r["action"].startswith("permit_")]
    assert [(r["action"], r["key_id"], r["person"], r["target"], r["reason"]) for r in records] == [
        ("permit_issue", "user:ada", "ada", "ONL-7", "domanda prot. 4411"),
        ("permit_revoke", "user:ada", "ada", "ONL-7", "veicolo venduto"),
    ]  # the refused second issue changed nothing, so recorded nothing
    assert {r["role"] for r in records} == {"admin"}


async def test_a_change_stands_recorded_in_the_database_while_the_audit_trail_is_away(
    api: Client, redis_server: EmbeddedRedis
) -> None:
    """Permits are issued while Redis is away (the database takes them: tests/replica/
    test_topology.py); the change's note is in the permit database, its chain record is not."""
    redis_server.stop()
    permit = {
        "permit_id": "ONL-8",
        "type": "ONLINE",
        "valid_from": NOW.isoformat(),
        "valid_to": (NOW + dt.timedelta(hours=1)).isoformat(),
        "plates": [{"plate": "HK321LM"}],
        "reason": "sportello",
    }
    status, body, _ = await api.request("POST", "/v1/permits", ADMIN, json=permit)
    assert status == 201, body
    status, got, _ = await api.request("GET", "/v1/permits/ONL-8", ADMIN)
    assert status == 200
    assert [(c["actor"], c["action"], c["reason"]) for c in got["changes"]] == [
        ("demo-admin", "issue", "sportello")
    ]


@pytest.fixture
async def short_sessions(
    live_settings: Settings, demo: tuple[Settings, Rules], loader: LoaderThread
) -> AsyncIterator[Client]:
    settings = with_changes(live_settings, console={"session_idle_s": 2, "session_max_s": 6})
    add_user(settings, "anna", "police")
    async with accounts_server(settings, demo[1]) as client:
        yield client


async def test_sessions_end_when_idle_and_at_their_maximum(short_sessions: Client) -> None:
    idle, busy = Person(short_sessions), Person(short_sessions)
    assert (await idle.sign_in("anna"))[0] == 200
    assert (await busy.sign_in("anna"))[0] == 200
    for _ in range(4):  # used every second: never idle for 2 s
        await asyncio.sleep(1)
        status, _, _ = await busy.request("GET", "/v1/session")
        assert status == 200
    # 4 s in, within the 6 s maximum: the busy one lives, the idle one is gone.
    assert (await idle.request("GET", "/v1/session"))[0] == 401
    for _ in range(3):
        await asyncio.sleep(1)
        status, _, _ = await busy.request("GET", "/v1/session")
    assert status == 401  # 7 s: past session_max, used or not
