"""For the tests of deploy/: whether the OS's nginx can be run here (the topology tests go
through it and are skipped, saying how to get it, where it cannot), and plain HTTP calls."""

from __future__ import annotations

import http.client
import json
from typing import Any

import pytest

from deploy.nginx import INSTALL_HINT, find_nginx

needs_nginx = pytest.mark.skipif(
    find_nginx() is None, reason=f"nginx not found; the topology runs it: {INSTALL_HINT}"
)


def call(
    port: int,
    method: str,
    path: str,
    headers: dict[str, str],
    body: Any = None,
    raw: bytes | None = None,
) -> tuple[int, Any]:
    """One request on a fresh connection: (status, the JSON reply)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        payload = raw if raw is not None else None if body is None else json.dumps(body)
        conn.request(method, path, body=payload, headers=headers)
        r = conn.getresponse()
        return r.status, json.loads(r.read())
    finally:
        conn.close()
