"""Loading a configuration: the examples load; errors name the file, the key and the reason;
the database URL from the file or the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from enforcement.config.load import ConfigError, load_config
from enforcement.core.live import IndexHolder
from enforcement.http.service import Service

from ..support.common import DEMO_CONFIG
from ..support.core import BASE, load


def test_example_configs_load() -> None:
    _, rules = load_config(DEMO_CONFIG)
    assert {"4", "ONLINE", "TEMP", "CUDE"} <= set(rules.types)
    assert rules.types["CUDE"].cude
    _, padova = load_config(DEMO_CONFIG.parent / "padova.toml")
    assert padova.types["4"].window_text == (
        "mon,tue,wed,thu,fri,sat,sun 04:00-11:00",
        "mon,tue,wed,thu,fri,sat,sun 15:00-16:00",
    )


@pytest.mark.parametrize(
    ("change", "key", "reason"),
    [
        (
            (
                'zone = "A"\nschedule = [{ days = "mon-fri"',
                'zone = "Z"\nschedule = [{ days = "mon-fri"',
            ),
            "gates.DAY.zone",
            "unknown zone 'Z'",
        ),
        (
            ("[gates.AUGUST]\nzone", "[gates.AUGUST]\nzonne = 1\nzone"),
            "gates.AUGUST",
            "unknown field `zonne`",
        ),
        (('from = "07:30"', 'from = "25:00"'), "gates.DAY.schedule[0]", "not a time of day"),
        (
            ('days = "mon-fri", from = "07:30"', 'days = "mon-fry", from = "07:30"'),
            "gates.DAY.schedule[0]",
            "days are mon",
        ),
        (
            ('from = "07:30", to = "19:30"', 'from = "10:00", to = "10:00"'),
            "gates.DAY.schedule[0]",
            "empty",
        ),
        (
            ('max_duration = "2h"', 'max_duration = "2 hours"'),
            "types.ONLINE.max_duration",
            "not a duration",
        ),
        (('grace = "24h"', 'grace = "1mo"'), "zones.B.grace", "months"),
        (('covers = ["B"]', 'covers = ["C"]'), "zones.A.covers[0]", "unknown zone 'C'"),
        (('patron_saint = "06-13"', 'patron_saint = "13-06"'), "city.patron_saint", "MM-DD"),
        (
            ('patron_saint = "06-13"', 'patron_saint = "06-13"\ntimezone = "Europe/Roma"'),
            "city.timezone",
            "unknown time zone",
        ),
        (('[zones.B]\ngrace = "24h"', "[zones.B]\ngrace = 24"), "zones.B.grace", "Expected `str`"),
        (
            ('[types.ONLINE]\nzones = ["A"]', "[types.ONLINE]\nzones = []"),
            "types.ONLINE.zones",
            "at least one zone",
        ),
    ],
)
def test_config_errors(tmp_path: Path, change: tuple[str, str], key: str, reason: str) -> None:
    assert change[0] in BASE
    with pytest.raises(ConfigError) as info:
        load(tmp_path, BASE.replace(change[0], change[1], 1))
    assert info.value.key == key
    assert reason in info.value.reason
    assert str(tmp_path / "city.toml") in str(info.value)


@pytest.mark.parametrize(
    ("extra", "key", "reason"),
    [
        ('[[api_keys]]\nid = "x"\nrole = "camera"\n', "api_keys[0]", "exactly one of"),
        (
            '[[api_keys]]\nid = "x"\nrole = "mayor"\nkey = "k"\n',
            "api_keys[0].role",
            "Invalid enum value 'mayor'",
        ),
        (
            '[[api_keys]]\nid = "x"\nrole = "camera"\nkey_sha256 = "abc"\n',
            "api_keys[0].key_sha256",
            "sha256",
        ),
        ('[retention]\nallowed = "0"\n', "retention.allowed", "positive duration"),
        ('[retention]\nviolations = "15 months"\n', "retention.violations", "months"),
        ('[transit_log]\ndedup_window = "1mo"\n', "transit_log.dedup_window", "months"),
        ("[transit_log]\nwrite_timeout_ms = 0\n", "transit_log.write_timeout_ms", ">= 10"),
        ('[console]\nsession_idle = "0s"\n', "console.session_idle", "positive duration"),
        ('[console]\nsession_idle = "13h"\n', "console", "longer than session_max"),
        ('[server]\ntrusted_proxies = ["nginx"]\n', "server", "trusted_proxies[0]"),
    ],
)
def test_api_key_errors(tmp_path: Path, extra: str, key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, BASE + extra)
    assert (info.value.key, reason in info.value.reason) == (key, True)


def test_not_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(tmp_path, "[zones\n")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.toml")


def test_config_database_url(tmp_path: Path) -> None:
    config = tmp_path / "city.toml"
    text = DEMO_CONFIG.read_text(encoding="utf-8")
    config.write_text(text + '\n[database]\nurl = "postgresql://varco@db.example/varco"\n')
    settings, _ = load_config(config, {})
    assert settings.database_url == "postgresql://varco@db.example/varco"
    settings, _ = load_config(config, {"DATABASE_URL": "postgresql://other@db2/varco"})
    assert settings.database_url == "postgresql://other@db2/varco"  # the environment wins
    with pytest.raises(ConfigError, match=r"DATABASE_URL \(environment\): not a PostgreSQL URL"):
        load_config(config, {"DATABASE_URL": "sqlite:///x.db"})
    config.write_text(text + '\n[database]\nurl = "mysql://u:secret@h/d"\n')
    with pytest.raises(ConfigError, match=r"database\.url: not a PostgreSQL URL") as exc:
        load_config(config, {})
    assert "secret" not in str(exc.value)


@pytest.mark.parametrize(
    ("text", "max_memory"),
    [('"2gb"', 2 << 30), ('"512 MB"', 512 << 20), ("1048576", 1 << 20), ('"0"', 0), ("0", 0)],
)
def test_redis_memory_ceiling(tmp_path: Path, text: str, max_memory: int) -> None:
    settings = load_config(_with(tmp_path, f"[redis]\nmax_memory = {text}\nmemory_warn = 0.9\n"))[0]
    assert (settings.redis.max_memory, settings.redis.memory_warn) == (max_memory, 0.9)


def test_redis_memory_defaults() -> None:
    settings, _ = load_config(DEMO_CONFIG)
    assert (settings.redis.max_memory, settings.redis.memory_warn) == (2 << 30, 0.8)


@pytest.mark.parametrize(
    ("extra", "key", "reason"),
    [
        ('max_memory = "2 gigs"', "redis.max_memory", "not an amount of memory"),
        ('max_memory = "100kb"', "redis.max_memory", "at least 1mb"),
        ("max_memory = -5", "redis.max_memory", "not negative"),
        ("memory_warn = 1.5", "redis.memory_warn", "< 1"),
        ("memory_warn = 0", "redis.memory_warn", "> 0"),
    ],
)
def test_redis_memory_errors(tmp_path: Path, extra: str, key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(_with(tmp_path, f"[redis]\n{extra}\n"))
    assert info.value.key == key and reason in info.value.reason, info.value


def _with(tmp_path: Path, extra: str) -> Path:
    config = tmp_path / "city.toml"
    config.write_text(DEMO_CONFIG.read_text(encoding="utf-8") + "\n" + extra)
    return config


def test_operator_keys_and_console_settings(tmp_path: Path) -> None:
    settings, _ = load_config(DEMO_CONFIG)
    roles = {k.id: k.role for k in settings.api_keys.values()}
    assert roles["demo-operator"] == "operator"
    assert (settings.console.session_idle_s, settings.console.session_max_s) == (1800, 43200)
    assert settings.server.trusted_proxies == ()
    extra = '[console]\nsession_idle = "10m"\nsession_max = "8h"\n'
    config = tmp_path / "city.toml"
    config.write_text(BASE + extra + '[server]\ntrusted_proxies = ["10.0.0.0/8"]\n')
    settings, _ = load_config(config, {"VARCO_DATA_DIR": str(tmp_path)})
    assert (settings.console.session_idle_s, settings.console.session_max_s) == (600, 28800)
    assert settings.server.trusted_proxies == ("10.0.0.0/8",)


def test_camera_health_limits(tmp_path: Path) -> None:
    assert load_config(DEMO_CONFIG)[0].camera_health.silence_s == 15 * 60
    extra = (
        '[camera_health]\nsilence = "5m"\nunreadable_share = 0.3\nmin_reads = 5\n'
        'clock_offset = "30s"\n'
    )
    settings, rules = load_config(_with(tmp_path, extra))
    limits = settings.camera_health
    assert (limits.silence_s, limits.unreadable_share, limits.min_reads) == (300, 0.3, 5)
    assert limits.clock_offset_s == 30
    assert Service(settings, rules, IndexHolder()).health.limits == limits  # what it alarms by
    with pytest.raises(ConfigError) as info:
        load_config(_with(tmp_path, "[camera_health]\nunreadable_share = 0\n"))
    assert info.value.key == "camera_health.unreadable_share"


@pytest.mark.parametrize(("text", "seconds"), [("25", 0.025), ("2.5", 0.0025), ("0", 0.0)])
def test_target_latency(tmp_path: Path, text: str, seconds: float) -> None:
    config = tmp_path / "city.toml"
    server = f"[server]\ntarget_latency_ms = {text}\n"
    config.write_text(DEMO_CONFIG.read_text(encoding="utf-8").replace("[server]\n", server, 1))
    assert load_config(config)[0].server.target_latency_s == seconds
    assert load_config(DEMO_CONFIG)[0].server.target_latency_s == 0.01  # the default


@pytest.mark.parametrize(
    ("text", "reason"),
    [("-1", ">= 0"), ('"10ms"', "Expected `float`"), ("true", "Expected `float`")],
)
def test_target_latency_errors(tmp_path: Path, text: str, reason: str) -> None:
    config = tmp_path / "city.toml"
    server = f"[server]\ntarget_latency_ms = {text}\n"
    config.write_text(DEMO_CONFIG.read_text(encoding="utf-8").replace("[server]\n", server, 1))
    with pytest.raises(ConfigError) as info:
        load_config(config)
    assert info.value.key == "server.target_latency_ms" and reason in info.value.reason, info.value
