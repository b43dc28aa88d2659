"""People who sign in to the console: user name, role, password hash, disabled flag.

Stored in the permit database (`users`, schema 5), managed by `varco users ...`, read at
sign-in (varco/signin.py). API keys stay in the configuration file, for machines.

Passwords are hashed with scrypt (hashlib; n=2**14, r=8, p=1, a 16-byte random salt, a
32-byte key), stored as "scrypt$n$r$p$salt$hash" (salt and hash in unpadded base64), so that
a later, costlier setting can be told apart and checked. A password or a hash is never logged
or printed.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
import secrets
import time
from typing import Final

import msgspec

from .store import PermitStore

SCRYPT_N: Final = 2**14
SCRYPT_R: Final = 8
SCRYPT_P: Final = 1
ROLES: Final = ("police", "operator", "admin")  # people's roles (camera is for machines)
USERNAME: Final = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
USERNAME_RULE: Final = (
    "a user name is 1 to 64 lower-case letters, digits, '.', '_' or '-', starting with a "
    "letter or digit"
)
PASSWORD_MIN: Final = 10  # characters
PASSWORD_MAX: Final = 1024  # bounds the work one sign-in can ask for


class User(msgspec.Struct, frozen=True):
    username: str
    role: str
    password: str  # the scrypt hash, never the password
    disabled: bool
    created_at: int
    updated_at: int

    def __repr__(self) -> str:  # the hash stays out of tracebacks and logs
        return f"User({self.username!r}, {self.role!r}, disabled={self.disabled})"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    key = hashlib.scrypt(
        password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, maxmem=64 << 20, dklen=32
    )
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(key)}"


def verify_password(password: str, encoded: str) -> bool:
    """Whether `password` matches the stored hash (constant-time comparison); a malformed
    hash matches nothing."""
    try:
        kind, n, r, p, salt, key = encoded.split("$")
        if kind != "scrypt":
            return False
        expected = _unb64(key)
        got = hashlib.scrypt(
            password.encode("utf-8", "surrogatepass"),
            salt=_unb64(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=64 << 20,
            dklen=len(expected),
        )
    except ValueError:
        return False
    return hmac.compare_digest(got, expected)


@functools.cache
def dummy_hash() -> str:
    """Checked against when the user is unknown, so that an unknown name costs a sign-in the
    same work as a known one with a wrong password (no timing oracle of which names exist).
    Made on first use: every `varco` command imports this module."""
    return hash_password(secrets.token_urlsafe(16))


def check_username(name: str) -> str | None:
    """Why `name` cannot be a user name (None: it can)."""
    return None if USERNAME.fullmatch(name) else USERNAME_RULE


def check_password(password: str) -> str | None:
    if len(password) < PASSWORD_MIN:
        return f"a password needs at least {PASSWORD_MIN} characters"
    if len(password) > PASSWORD_MAX:
        return f"a password has at most {PASSWORD_MAX} characters"
    return None


_COLUMNS: Final = "username, role, password, disabled, created_at, updated_at"


def _user(row: tuple[object, ...]) -> User:
    name, role, password, disabled, created, updated = row
    return User(str(name), str(role), str(password), bool(disabled), int(created), int(updated))  # type: ignore[call-overload]


def add_user(db: PermitStore, name: str, role: str, password_hash: str) -> bool:
    """Add a user; False if the name is taken (nothing changed)."""
    now = int(time.time())
    added = db.execute(
        f"INSERT INTO users ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (username) DO NOTHING",
        (name, role, password_hash, False, now, now),
    )
    return added > 0


def get_user(db: PermitStore, name: str) -> User | None:
    rows = db.query(f"SELECT {_COLUMNS} FROM users WHERE username = ?", (name,))
    return _user(rows[0]) if rows else None


def list_users(db: PermitStore) -> list[User]:
    return [_user(r) for r in db.query(f"SELECT {_COLUMNS} FROM users ORDER BY username")]


def set_disabled(db: PermitStore, name: str, disabled: bool) -> bool:
    """Disable or enable; False if there is no such user."""
    return (
        db.execute(
            "UPDATE users SET disabled = ?, updated_at = ? WHERE username = ?",
            (disabled, int(time.time()), name),
        )
        > 0
    )


def set_password(db: PermitStore, name: str, password_hash: str) -> bool:
    return (
        db.execute(
            "UPDATE users SET password = ?, updated_at = ? WHERE username = ?",
            (password_hash, int(time.time()), name),
        )
        > 0
    )
