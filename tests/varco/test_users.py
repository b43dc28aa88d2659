"""`varco users ...` on the permit database (SQLite and PostgreSQL) and Redis; the password
hash; the schema."""

from __future__ import annotations

import base64

import pytest

from enforcement.config.settings import Settings
from loader import users
from loader.database import open_db

from ..support.accounts import PASSWORD, varco_users


def test_password_hash_is_scrypt_and_checks() -> None:
    encoded = users.hash_password(PASSWORD)
    kind, n, r, p, salt, key = encoded.split("$")
    assert (kind, n, r, p) == ("scrypt", "16384", "8", "1")
    assert (len(base64.b64decode(salt + "==")), len(base64.b64decode(key + "="))) == (16, 32)
    assert users.verify_password(PASSWORD, encoded)
    assert not users.verify_password(PASSWORD + "!", encoded)
    assert users.hash_password(PASSWORD) != encoded  # a salt of its own each time
    assert not users.verify_password(PASSWORD, "md5$abc")  # malformed: matches nothing
    assert PASSWORD not in repr(users.User("anna", "police", encoded, False, 0, 0))
    assert encoded not in repr(users.User("anna", "police", encoded, False, 0, 0))


def test_users_commands(live_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    def run(*argv: str, stdin: str = "") -> tuple[int, str, str]:
        return varco_users(live_settings, monkeypatch, *argv, stdin=stdin)

    code, out, _ = run("add", "anna", "--role", "police", "--password-stdin", stdin=PASSWORD)
    assert (code, out.strip()) == (0, "user anna added (role police)")
    assert run("add", "bruno", "--role", "operator", "--password-stdin", stdin=PASSWORD)[0] == 0
    code, _, err = run("add", "anna", "--role", "admin", "--password-stdin", stdin=PASSWORD)
    assert code == 1 and "exists" in err
    code, _, err = run("add", "Anna Rossi", "--role", "admin", "--password-stdin", stdin=PASSWORD)
    assert code == 2 and "lower-case" in err
    code, _, err = run("add", "carla", "--role", "admin", "--password-stdin", stdin="short")
    assert code == 1 and "at least 10 characters" in err
    code, _, err = run("add", "carla", "--role", "camera", "--password-stdin", stdin=PASSWORD)
    assert code == 2  # argparse: camera is for machines (API keys)

    code, out, _ = run("list")
    rows = [line.split()[:3] for line in out.splitlines()[1:]]
    assert rows == [["anna", "police", "active"], ["bruno", "operator", "active"]]
    assert PASSWORD not in out and "scrypt" not in out

    assert run("disable", "anna")[0] == 0
    assert run("list")[1].splitlines()[1].split()[:3] == ["anna", "police", "disabled"]
    assert run("enable", "anna")[0] == 0
    assert run("disable", "nobody")[0] == 1

    new = "another long password"
    code, out, _ = run("passwd", "anna", "--password-stdin", stdin=new)
    assert code == 0 and "password changed" in out and "0 session(s) ended" in out
    with open_db(live_settings) as db:
        anna = users.get_user(db, "anna")
    assert anna is not None and not anna.disabled
    assert users.verify_password(new, anna.password)
    assert not users.verify_password(PASSWORD, anna.password)
    assert run("unlock", "anna")[1].strip() == "user anna: was not locked"


def test_schema_5_has_users_and_permit_actions(live_settings: Settings) -> None:
    with open_db(live_settings) as db:
        assert db.query("SELECT count(*) FROM users") == [(0,)]
        assert db.query("SELECT count(*) FROM permit_actions") == [(0,)]
