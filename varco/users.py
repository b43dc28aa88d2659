"""`varco users ...`: the people who sign in to the console (loader/users.py).

    varco users add NAME --role police|operator|admin [--password-stdin]
    varco users list
    varco users disable NAME     (and ends the user's sessions)
    varco users enable NAME
    varco users passwd NAME [--password-stdin]   (and ends the user's sessions)
    varco users unlock NAME      (lifts a lock-out after failed sign-ins)

A password is asked twice on the terminal (not echoed), or read as one line from standard
input with --password-stdin (scripts). Sessions and lock-outs live in Redis, so `disable`,
`passwd` and `unlock` reach the configured Redis (or Varco's own); a password or a hash is
never printed.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import getpass
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from enforcement.config.settings import Settings
from enforcement.core.rules import Rules
from enforcement.keys import Keys
from loader import users
from loader.database import open_db

if TYPE_CHECKING:
    from enforcement.http.sessions import Sessions

T = TypeVar("T")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    s = sub.add_parser("users", help="people who sign in to the console: add, list, disable, ...")
    cmds = s.add_subparsers(dest="users_command", required=True)
    a = cmds.add_parser("add", help="add a user (asks the password twice)")
    a.add_argument("name")
    a.add_argument("--role", required=True, choices=users.ROLES)
    a.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    a.set_defaults(func=cmd_users_add)
    cmds.add_parser("list", help="users, roles, disabled or not").set_defaults(func=cmd_users_list)
    for name, what, func in (
        ("disable", "refuse the user's sign-ins and end their sessions", cmd_users_disable),
        ("enable", "let a disabled user sign in again", cmd_users_enable),
        ("unlock", "lift a lock-out after repeated failed sign-ins", cmd_users_unlock),
    ):
        c = cmds.add_parser(name, help=what)
        c.add_argument("name")
        c.set_defaults(func=func)
    c = cmds.add_parser("passwd", help="set a new password (ends the user's sessions)")
    c.add_argument("name")
    c.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    c.set_defaults(func=cmd_users_passwd)


def _password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            raise SystemExit("varco users: the two passwords differ; nothing changed")
    problem = users.check_password(password)
    if problem:
        raise SystemExit(f"varco users: {problem}; nothing changed")
    return password


def cmd_users_add(args: argparse.Namespace, settings: Settings, rules: Rules) -> int:
    problem = users.check_username(args.name)
    if problem:
        print(f"varco users: {problem}", file=sys.stderr)
        return 2
    hashed = users.hash_password(_password(args.password_stdin))
    with open_db(settings) as db:
        if not users.add_user(db, args.name, args.role, hashed):
            print(f"varco users: user {args.name!r} exists", file=sys.stderr)
            return 1
    print(f"user {args.name} added (role {args.role})")
    return 0


def cmd_users_list(args: argparse.Namespace, settings: Settings, rules: Rules) -> int:
    with open_db(settings) as db:
        found = users.list_users(db)
    print(f"{'user':<24} {'role':<9} {'state':<9} changed")
    for u in found:
        changed = dt.datetime.fromtimestamp(u.updated_at, rules.clock.tz).isoformat()
        state = "disabled" if u.disabled else "active"
        print(f"{u.username:<24} {u.role:<9} {state:<9} {changed}")
    return 0


def _set(args: argparse.Namespace, settings: Settings, disabled: bool) -> int:
    with open_db(settings) as db:
        if not users.set_disabled(db, args.name, disabled):
            print(f"varco users: no user {args.name!r}", file=sys.stderr)
            return 1
    print(f"user {args.name} {'disabled' if disabled else 'enabled'}")
    return 0


def cmd_users_disable(args: argparse.Namespace, settings: Settings, rules: Rules) -> int:
    code = _set(args, settings, True)
    return code or _end_sessions(settings, args.name)


def cmd_users_enable(args: argparse.Namespace, settings: Settings, rules: Rules) -> int:
    return _set(args, settings, False)


def cmd_users_passwd(args: argparse.Namespace, settings: Settings, rules: Rules) -> int:
    with open_db(settings) as db:
        if users.get_user(db, args.name) is None:
            print(f"varco users: no user {args.name!r}", file=sys.stderr)
            return 1
        users.set_password(db, args.name, users.hash_password(_password(args.password_stdin)))
    print(f"user {args.name}: password changed")
    return _end_sessions(settings, args.name)


def cmd_users_unlock(args: argparse.Namespace, settings: Settings, rules: Rules) -> int:
    cleared = _with_sessions(settings, lambda s: s.unlock(args.name))
    if cleared is None:
        return 1
    print(f"user {args.name}: {'unlocked' if cleared else 'was not locked'}")
    return 0


def _end_sessions(settings: Settings, name: str) -> int:
    ended = _with_sessions(settings, lambda s: s.end_all(name))
    if ended is None:
        return 1
    print(f"user {name}: {int(ended)} session(s) ended")
    return 0


def _with_sessions(
    settings: Settings, action: Callable[[Sessions], Awaitable[T]]
) -> T | int | None:
    """`action(sessions)` against the configured Redis (or Varco's own, started for the
    command); 0 without Redis (no sessions, no lock-outs); None, with a message, when it
    cannot be reached. Imported here: redis is loaded only by the commands that need it."""
    import redis.asyncio as aredis
    from redis.exceptions import RedisError

    from enforcement.http.sessions import Sessions
    from enforcement.replica.redis_server import start_redis

    redis_url, embedded = start_redis(settings)
    if redis_url is None:
        return 0

    async def run(url: str) -> T:
        r = aredis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)
        try:
            c = settings.console
            sessions = Sessions(r, Keys(settings.redis.prefix), c.session_idle_s, c.session_max_s)
            return await action(sessions)
        finally:
            await r.aclose()

    try:
        return asyncio.run(run(redis_url))
    except (RedisError, OSError) as exc:
        print(
            f"varco users: Redis unreachable ({type(exc).__name__}): sessions and lock-outs "
            "unchanged; run the command again",
            file=sys.stderr,
        )
        return None
    finally:
        if embedded is not None:
            embedded.stop()
