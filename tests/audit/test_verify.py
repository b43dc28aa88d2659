"""The audit chain verified, in Redis and in file mode: `varco audit verify` finds a record
altered, deleted or moved, the last records deleted, a write cut short by a crash."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis

from enforcement.audit.chain import GENESIS, link_of
from enforcement.audit.writer import audit_file
from enforcement.replica.redis_server import EmbeddedRedis

from ..support.audit import KEY, Service, audit_cli, lookups, rewrite, stream


async def test_verify_detects_alteration_deletion_reordering(
    redis_service: Service,
    redis_server: EmbeddedRedis,
    r: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await lookups(redis_service, ["AB123CD", "FA001CU", "FA002CU", "ZZ999ZZ", "AB123C0", "XY1"])
    original = stream(r)
    assert len(original) == 6

    def verify() -> tuple[int, str]:
        code, out, _ = audit_cli(
            monkeypatch, capsys, redis_service.settings, redis_server.url, "verify"
        )
        return code, out

    code, out = verify()
    assert code == 0 and "audit chain intact: 6 records" in out, out
    assert f"last record: seq 6, link {original[5][1][b'link'].decode()}" in out

    # Altered: another reason in record 3.
    body = json.loads(original[2][1][b"body"])
    forged = json.dumps({**body, "reason": "routine"}, separators=(",", ":")).encode()
    rewrite(
        r, [*original[:2], (original[2][0], {**original[2][1], b"body": forged}), *original[3:]]
    )
    code, out = verify()
    assert code == 1 and "first break at record 3 checked" in out and "altered" in out, out

    # Deleted in the middle: record 3 gone.
    rewrite(r, original)
    assert verify()[0] == 0
    r.xdel(KEY, original[2][0])
    code, out = verify()
    assert code == 1 and "first break at record 3 checked" in out, out
    assert "seq 4 where 3 was expected: record(s) 3 deleted or moved" in out

    # Reordered: records 3 and 4 swapped (a stream keeps its ids in order, so the contents
    # move, and no longer match the ids their links cover).
    rewrite(
        r,
        [
            *original[:2],
            (original[2][0], original[3][1]),
            (original[3][0], original[2][1]),
            *original[4:],
        ],
    )
    code, out = verify()
    assert code == 1 and "first break at record 3 checked" in out and "moved" in out, out

    # The last record deleted: the stream remembers the last id it handed out.
    rewrite(r, original)
    r.xdel(KEY, original[5][0])
    code, out = verify()
    assert code == 1 and "records after seq 5 were deleted" in out, out
    # ... and the next lookup's record shows the gap in the chain itself.
    await lookups(redis_service, ["AB123CD"])
    code, out = verify()
    assert code == 1 and "seq 7 where 6 was expected" in out, out


# -- file mode --------------------------------------------------------------------------------


def lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


async def test_file_mode(
    file_service: Service,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    settings = file_service.settings
    path = audit_file(settings.storage.data_dir)

    def verify(*args: str) -> tuple[int, str]:
        code, out, _ = audit_cli(monkeypatch, capsys, settings, "off", "verify", *args)
        return code, out

    await lookups(file_service, ["AB123CD", "FA001CU", "FA002CU", "ZZ999ZZ", "AB123C0"])
    original = lines(path)
    seq, t, prev, link, body = original[0].rstrip(b"\n").split(b"\t")
    assert (seq, prev.decode()) == (b"1", GENESIS)
    assert json.loads(body)["plate"] == "AB123CD"
    assert link.decode() == link_of(GENESIS, 1, int(t), body)
    _, ready, _ = await file_service.client.request("GET", "/readyz")
    assert ready["audit"]["backend"] == "file" and ready["audit"]["writable"] is True
    code, out = verify()
    assert code == 0 and "intact: 5 records" in out, out

    path.write_bytes(
        b"".join([*original[:2], original[2].replace(b"controllo", b"routine!!"), *original[3:]])
    )
    code, out = verify()
    assert code == 1 and "record 3 checked (line 3" in out and "altered" in out, out

    path.write_bytes(b"".join(original[:2] + original[3:]))
    code, out = verify()
    assert code == 1 and "record 3 checked (line 3" in out and "record(s) 3 deleted" in out, out

    path.write_bytes(b"".join([*original[:2], original[3], original[2], *original[4:]]))
    code, out = verify()
    assert code == 1 and "record 3 checked (line 3, seq 4" in out, out

    # A write cut short by a crash: noted, not a break; the next writer cuts it off.
    path.write_bytes(b"".join(original) + original[0][:30])
    code, out = verify()
    assert code == 0 and "line 6 is incomplete" in out, out
    await lookups(file_service, ["AB123CD"])
    assert lines(path)[:5] == original and lines(path)[5].startswith(b"6\t")
    assert verify()[0] == 0

    # Another audit file, by name.
    other = tmp_path / "archived.log"
    other.write_bytes(b"".join(original[:3]))
    code, out, _ = audit_cli(monkeypatch, capsys, settings, "off", "verify", "--file", str(other))
    assert code == 0 and "intact: 3 records" in out, out
