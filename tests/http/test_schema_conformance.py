"""The service answers as its OpenAPI description says, for every role's key: schemathesis
(tests/support/conformance.py) against a real server on loopback, outside the demo (camera
keys bound to their cameras), with Redis (violations) and the admin API installed. Every
check runs (server errors, status codes, content types, response schemas and headers,
negative data rejected, auth not ignored, other methods answered 405 with Allow) except
positive_data_acceptance: whether a well-formed request is accepted depends on what no schema
states (an instant within the index's history, a camera posting at its own gate, a permit
that exists), and those refusals are documented 4xx answers that the other checks verify."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from enforcement.config.load import load_config
from enforcement.config.settings import with_changes
from enforcement.http.app import create_app
from enforcement.replica.redis_server import EmbeddedRedis
from varco import admin

from ..support.api import PERMITS
from ..support.common import DEMO_CONFIG, publish_permits
from ..support.conformance import Run, run, serving

SERVICE_PATHS = (
    r"^/(v1/(transits|plates|violations|permits|review|cameras/health)"
    r"|healthz|readyz|metrics|docs|openapi)"
)
OPERATOR_KEY = '\n[[api_keys]]\nid = "demo-operator"\nrole = "operator"\nkey = "demo-operator"\n'
VENDORS = ("hikvision", "axis", "milesight", "platerecognizer", "rekor", "dahua")
pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("conformance")
    text = DEMO_CONFIG.read_text(encoding="utf-8").replace("\ndemo = true\n", "\n")
    entry = 'id = "demo-camera"\nrole = "camera"\n'
    text = text.replace(entry, entry + 'cameras = ["cam-native"]\n')
    if 'id = "demo-operator"' not in text:  # the desk's role (examples/demo.toml may have it)
        text += OPERATOR_KEY
    (tmp / "city.toml").write_text(text, encoding="utf-8")
    settings, rules = load_config(tmp / "city.toml", {"VARCO_DATA_DIR": str(tmp / "data")})
    assert not settings.demo
    redis = EmbeddedRedis(Path(tmp) / "redis")
    redis.start()
    try:
        # The server runs in a thread beside schemathesis, which holds the GIL for tens of
        # milliseconds at a time: to admission control that is a loop running late (overload,
        # 503). Its shedding is tested in test_admission.py; here it would only add noise.
        settings = with_changes(
            settings,
            redis={"url": redis.url},
            server={"snapshot_poll_s": 0.05, "max_queue_wait_s": 10.0},
        )
        publish_permits(settings, rules, PERMITS)
        app = create_app(settings, rules, extend=admin.install, transit_redis_url=redis.url)
        with serving(app) as url:
            _wait_ready(url)
            yield url
    finally:
        redis.stop()


def _wait_ready(url: str) -> None:
    deadline = time.monotonic() + 10
    while True:
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        assert time.monotonic() < deadline, "the service never got ready"
        time.sleep(0.05)


def _clean(result: Run) -> None:
    assert not result.errors, "\n".join(result.errors)
    assert not result.failures, f"{len(result.failures)} failures:\n" + "\n\n".join(
        result.failures[:10]
    )


@pytest.mark.parametrize("role", ["camera", "police", "operator", "admin"])
def test_every_role_gets_what_the_description_says(base: str, role: str) -> None:
    result = run(base, f"demo-{role}", SERVICE_PATHS)
    _clean(result)
    # The run reached the handlers, not only the key checks.
    lookups, transits = "GET /v1/plates/{plate}", "POST /v1/transits"
    if role == "camera":
        assert result.answered(lookups, 403) and not result.answered(lookups, 200)
        assert result.answered(transits, 422)
    elif role == "operator":
        assert result.answered(lookups, 403) and result.answered(transits, 403)
    else:
        assert result.answered(lookups, 200) and result.answered(lookups, 422)
    if role in ("operator", "admin"):
        assert result.answered("GET /v1/review", 200)
        assert result.answered("GET /v1/cameras/health", 200)
        assert result.answered("GET /v1/transits/search", 422)
        assert result.answered("POST /v1/review/{transit_id}", 404)
    if role == "admin":
        assert result.answered("GET /v1/violations", 200)
        assert result.answered("POST /v1/permits", 422)
    assert result.answered("GET /healthz", 200) and result.answered("GET /healthz", 405)


@pytest.mark.parametrize("vendor", VENDORS)
def test_every_camera_vendor_gets_what_the_description_says(base: str, vendor: str) -> None:
    paths = rf"^/v1/cameras/{vendor}(/|$)" + ("|^/NotificationInfo/" if vendor == "dahua" else "")
    result = run(base, f"demo-{vendor}", paths, token=f"demo-{vendor}-token")
    _clean(result)
    # The camera's key and token are taken: its bodies reach the parser, which refuses the
    # malformed ones naming the field.
    for path in (f"/v1/cameras/{vendor}", f"/v1/cameras/{vendor}/{{token}}"):
        assert result.answered(f"POST {path}", 422), result.statuses
