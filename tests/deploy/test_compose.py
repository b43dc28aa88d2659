"""docker-compose.yml and the Dockerfile as a city would run them (no Docker engine here, so
the files are read, and their health checks and entry point are run against real processes):
a production profile with the schema migrated, no demo data or keys, secrets from files,
a non-root image, a health check on every long-running service and the follow-up on a
replica; the demo apart, in its own profile, with a locust that has the project to run."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy.topology import Topology

from ..support.common import DEMO_CONFIG, ROOT, free_port

COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]


def profile(name: str) -> dict[str, dict[str, Any]]:
    return {k: s for k, s in SERVICES.items() if name in s.get("profiles", [])}


PRODUCTION, DEMO = profile("production"), profile("demo")


def dockerfile_stages() -> dict[str, str]:
    """The Dockerfile's stages by name: the text from each FROM to the next."""
    text = (ROOT / "Dockerfile").read_text()
    parts = re.split(r"^FROM ", text, flags=re.M)[1:]
    return {re.match(r"\S+ AS (\S+)", p).group(1): p for p in parts}  # type: ignore[union-attr]


def words(service: dict[str, Any]) -> str:
    return " ".join(str(w) for key in ("command", "entrypoint") for w in service.get(key) or [])


def long_running(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {k: s for k, s in services.items() if s.get("restart") != "no"}


def test_every_service_is_in_exactly_one_profile() -> None:
    assert PRODUCTION and DEMO
    assert set(PRODUCTION) | set(DEMO) == set(SERVICES)
    assert not set(PRODUCTION) & set(DEMO)


def test_production_migrates_first_and_loads_no_demo_data() -> None:
    migrate = [k for k, s in PRODUCTION.items() if s.get("command") == ["migrate"]]
    assert len(migrate) == 1 and PRODUCTION[migrate[0]]["restart"] == "no"
    for name, service in PRODUCTION.items():
        assert "demo" not in words(service), name
        if "build" in service:
            assert service["build"]["target"] == "service", name
            if service.get("command") != ["migrate"]:
                after = service["depends_on"][migrate[0]]["condition"]
                assert after == "service_completed_successfully", name
    stages = dockerfile_stages()
    assert "examples" not in stages["service"] and "demo.toml" not in stages["service"]
    assert "demo.toml" in stages["demo"]


def test_production_holds_no_password_and_reads_secrets_from_files() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    for name, service in PRODUCTION.items():
        env = service.get("environment") or {}
        for key, value in env.items():
            if "PASSWORD" in key:
                assert key.endswith("_FILE") and str(value).startswith("/run/secrets/"), key
            if key == "DATABASE_URL":
                assert urllib.parse.urlsplit(value).password is None, name
        for secret in service.get("secrets", []):
            assert "file" in COMPOSE["secrets"][secret], secret
    assert "POSTGRES_PASSWORD:" not in text and "varco:varco@" not in text
    assert PRODUCTION["postgres"]["environment"]["POSTGRES_PASSWORD_FILE"].startswith("/run/")


def test_production_runs_a_standby_loader() -> None:
    """Failover within a second needs a second `watch` waiting for the lease."""
    loaders = [k for k, s in PRODUCTION.items() if s.get("command") == ["watch"]]
    assert len(loaders) >= 2, loaders
    assert all("healthcheck" in PRODUCTION[k] for k in loaders)


def test_the_image_runs_as_a_user_not_root() -> None:
    stages = dockerfile_stages()
    users = re.findall(r"^USER (\S+)", stages["service"], flags=re.M)
    assert users and users[-1] not in ("root", "0")
    for stage in ("demo", "load"):  # a stage that becomes root for a step gives it back
        users = re.findall(r"^USER (\S+)", stages[stage], flags=re.M)
        assert not users or users[-1] not in ("root", "0"), stage


def test_every_long_running_service_has_a_health_check_without_curl() -> None:
    for name, service in long_running(SERVICES).items():
        test = service.get("healthcheck", {}).get("test")
        assert test, f"{name} has no healthcheck"
        if service.get("build"):  # the slim image: Python, no curl
            assert test[:3] == ["CMD", "python", "-c"], name


def test_a_production_replica_runs_the_follow_up_and_nginx_has_the_shared_conf() -> None:
    serving = {k: words(s) for k, s in PRODUCTION.items() if "serve" in words(s)}
    assert len(serving) >= 2
    assert any("--followup" in w for w in serving.values()), serving
    for proxy in ("proxy", "demo-proxy"):
        mounts = SERVICES[proxy]["volumes"]
        assert "./deploy/nginx.conf:/etc/nginx/conf.d/default.conf:ro" in mounts


def test_locust_runs_from_the_project_image_in_the_demo_profile() -> None:
    locust = DEMO["locust"]
    assert locust["build"]["target"] == "load"
    load = dockerfile_stages()["load"]
    assert load.startswith("demo AS load") and "COPY bench" in load and "locust" in load
    assert "locust" not in PRODUCTION


def test_the_entry_point_reads_the_password_file(tmp_path: Path) -> None:
    secret = tmp_path / "db_password"
    secret.write_text("s3cret-from-file")
    out = subprocess.run(
        ["sh", str(ROOT / "deploy" / "entrypoint.sh"), "sh", "-c", 'printf %s "$PGPASSWORD"'],
        env={"PATH": os.environ["PATH"], "PGPASSWORD_FILE": str(secret)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout == "s3cret-from-file"


@pytest.fixture
def topology(tmp_path: Path) -> Iterator[Topology]:
    topo = Topology(DEMO_CONFIG, tmp_path / "data", [free_port()])
    try:
        topo.start(permits=300)
        yield topo
    finally:
        topo.stop()


def health(service: str, env: dict[str, str]) -> int:
    """The service's health check command, run here (python: this interpreter)."""
    test = SERVICES[service]["healthcheck"]["test"]
    assert test[:2] == ["CMD", "python"]
    run = subprocess.run(
        [sys.executable, *test[2:]],
        env={**os.environ, **env},
        cwd=ROOT,
        capture_output=True,
        timeout=30,
    )
    return run.returncode


def test_the_health_checks_tell_a_live_service_from_a_dead_one(topology: Topology) -> None:
    topo = topology
    env = {
        "VARCO_CONFIG": str(DEMO_CONFIG),
        "VARCO_PORT": str(topo.replica_port(1)),
        "REDIS_URL": topo.env["REDIS_URL"],
        "PYTHONPATH": str(ROOT),
    }
    topo.wait_ready(1)
    assert health("enforcement-1", env) == 0
    assert health("loader", env) == 0
    topo.kill("replica-1")
    assert health("enforcement-1", env) != 0
    topo.kill_redis()
    assert health("loader", env) != 0
