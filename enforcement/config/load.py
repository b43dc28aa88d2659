"""Reading the configuration file into `Settings` and `Rules`; what needs the whole file.

A mistake stops start-up with a `ConfigError` naming the file, the key and the reason, e.g.
`examples/padova.toml: gates.G01.zone: unknown zone 'Z' (known: A, B)`. Values are checked as
the file is decoded (spec.py, values.py); here are the cross-references (a gate's zone must be
configured), the environment's overrides, and the compiled rules.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, NoReturn

import msgspec

from ..core.checker import Checker
from ..core.localtime import HolidayCalendar, LocalClock
from ..core.rules import (
    ALWAYS,
    Gate,
    PermitType,
    Rules,
    Suspension,
    Zone,
    compile_windows,
    format_window,
)
from . import access
from .settings import (
    MAX_ZONES,
    ApiKey,
    Camera,
    CameraHealthSettings,
    Circuit,
    ConsoleSettings,
    DigestHA1,
    EnforcementSettings,
    LoaderSettings,
    RedisSettings,
    RetentionSettings,
    ServerSettings,
    Settings,
    Source,
    StorageSettings,
    TransitLogSettings,
)
from .spec import CameraSpec, ConfigFile, GateSpec, SourceSpec, TypeSpec, WindowSpec, ZoneSpec
from .values import decode_value


class ConfigError(Exception):
    """A configuration mistake: which file, which key, and why."""

    def __init__(self, file: str | os.PathLike[str], key: str, reason: str) -> None:
        self.file, self.key, self.reason = str(file), key, reason
        super().__init__(f"{self.file}: {key or '(top level)'}: {reason}")


def load_config(
    path: str | os.PathLike[str], env: Mapping[str, str] | None = None
) -> tuple[Settings, Rules]:
    """Read, validate and compile the configuration file. Raises ConfigError."""
    env = os.environ if env is None else env
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(path, "", "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, "", f"cannot read: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, "", f"not valid TOML: {exc}") from exc
    try:
        spec = msgspec.convert(data, ConfigFile, strict=True, dec_hook=decode_value)
    except msgspec.ValidationError as exc:
        key, reason = _locate(data, exc)
        raise ConfigError(path, key, reason) from exc
    return _Compiler(path, spec, env).compile()


def make_checker(rules: Rules, settings: Settings) -> Checker:
    """The verdict checker as `[enforcement]` and `[storage] history_days` configure it."""
    e = settings.enforcement
    return Checker(
        rules,
        review_confidence=e.review_confidence,
        max_clock_skew_s=e.max_clock_skew_s,
        index_max_age_s=e.index_max_age_s,
        max_transit_age_s=settings.storage.history_days * 86400,
        max_delivery_delay_s=e.max_delivery_delay_s,
    )


def _msgspec_key(exc: msgspec.ValidationError) -> tuple[str, str]:
    """Split msgspec's "reason - at `$.a.b[0]`" into ("a.b[0]", "reason")."""
    text = str(exc)
    m = re.search(r" - at `\$(.*)`$", text)
    if not m:
        return "", text
    return m.group(1).lstrip("."), text[: m.start()]


_TABLES: Final = {
    "zones": ZoneSpec,
    "gates": GateSpec,
    "types": TypeSpec,
    "cameras": CameraSpec,
    "sources": SourceSpec,
}


def _locate(data: dict[str, Any], exc: msgspec.ValidationError) -> tuple[str, str]:
    """The key of a validation error; msgspec says `gates[...]` for a table entry, so
    validate the entries one by one to name it (`gates.PD-01.zone`)."""
    key, reason = _msgspec_key(exc)
    section = key.split("[...]")[0]
    spec = _TABLES.get(section)
    if "[...]" in key and spec is not None and isinstance(data.get(section), dict):
        for code, entry in data[section].items():
            try:
                msgspec.convert(entry, spec, strict=True, dec_hook=decode_value)
            except msgspec.ValidationError as inner:
                sub, reason = _msgspec_key(inner)
                return f"{section}.{code}" + (f".{sub}" if sub else ""), reason
    return key, reason


_CADASTRAL: Final = re.compile(r"[A-Z]\d{3}")


class _Compiler:
    """The decoded file, checked as a whole and turned into Settings and Rules."""

    def __init__(self, path: Path, spec: ConfigFile, env: Mapping[str, str]) -> None:
        self.path, self.spec, self.env = path, spec, env

    def fail(self, key: str, reason: str) -> NoReturn:
        raise ConfigError(self.path, key, reason)

    def compile(self) -> tuple[Settings, Rules]:
        rules = self.rules()
        api_keys = access.api_keys(self.spec, self.fail)
        cameras, tokens, digests = access.cameras(self.spec, api_keys, self.fail)
        return self.settings(api_keys, cameras, tokens, digests), rules

    # -- the rules ---------------------------------------------------------------------------

    def check_zone(self, key: str, code: str) -> None:
        if code not in self.spec.zones:
            self.fail(key, f"unknown zone {code!r} (known: {', '.join(self.spec.zones)})")

    def rules(self) -> Rules:
        s = self.spec
        if not s.zones:
            self.fail("zones", "at least one zone is required")
        if len(s.zones) > MAX_ZONES:
            self.fail("zones", f"at most {MAX_ZONES} zones are supported, got {len(s.zones)}")
        zones = {}
        for code, z in s.zones.items():
            for i, sub in enumerate(z.covers):
                self.check_zone(f"zones.{code}.covers[{i}]", sub)
            zones[code] = Zone(code, z.name or code, int(z.grace), tuple(z.covers))
        gates = {}
        for code, g in s.gates.items():
            self.check_zone(f"gates.{code}.zone", g.zone)
            schedule = ALWAYS if g.schedule is None else _table(g.schedule)
            suspensions = tuple(Suspension(p.start.month_day, p.end.month_day) for p in g.suspended)
            gates[code] = Gate(code, g.zone, schedule, g.holidays, suspensions, g.name or code)
        if not gates:
            self.fail("gates", "at least one gate is required")
        types = {}
        for code, t in s.types.items():
            if not t.zones:
                self.fail(f"types.{code}.zones", "a permit type needs at least one zone")
            for i, zone_code in enumerate(t.zones):
                self.check_zone(f"types.{code}.zones[{i}]", zone_code)
            windows, text = ALWAYS, tuple[str, ...]()
            if t.windows is not None:
                if not t.windows:
                    self.fail(
                        f"types.{code}.windows", "empty list: omit the key for no restriction"
                    )
                windows = _table(t.windows)
                text = tuple(format_window(w.window()) for w in t.windows)
            types[code] = PermitType(
                code,
                t.name or code,
                tuple(t.zones),
                windows,
                t.holidays,
                t.max_duration.duration,
                t.cude,
                text,
            )
        if not types:
            self.fail("types", "at least one permit type is required")
        city = s.city
        patron = None if city.patron_saint is None else city.patron_saint.month_day
        return Rules(
            clock=LocalClock(city.timezone),
            holidays=HolidayCalendar(patron, city.extra_holidays),
            zones=zones,
            gates=gates,
            types=types,
        )

    # -- the settings ------------------------------------------------------------------------

    def settings(
        self,
        api_keys: dict[str, ApiKey],
        cameras: dict[str, Camera],
        tokens: dict[str, str],
        digests: dict[str, DigestHA1],
    ) -> Settings:
        s, env = self.spec, self.env
        data_dir = Path(env.get("VARCO_DATA_DIR") or s.storage.data_dir)
        if not data_dir.is_absolute():
            base = Path.cwd() if env.get("VARCO_DATA_DIR") else self.path.parent
            data_dir = (base / data_dir).resolve()
        port = s.server.port
        if env.get("VARCO_PORT"):
            try:
                port = int(env["VARCO_PORT"])
            except ValueError as exc:
                self.fail("VARCO_PORT (environment)", str(exc))
        e = s.enforcement
        return Settings(
            config_path=self.path,
            city_name=s.city.name,
            demo=s.city.demo,
            server=ServerSettings(
                host=env.get("VARCO_HOST") or s.server.host,
                port=port,
                max_body_bytes=s.server.max_body_bytes,
                max_batch=s.server.max_batch,
                snapshot_poll_s=s.server.snapshot_poll_s,
                max_camera_body_bytes=s.server.max_camera_body_bytes,
                header_timeout_s=float(s.server.header_timeout),
                body_timeout_s=float(s.server.body_timeout),
                keepalive_timeout_s=float(s.server.keepalive_timeout),
                max_connections=s.server.max_connections,
                max_in_flight=s.server.max_in_flight,
                max_queue_wait_s=s.server.max_queue_wait_ms / 1000,
                target_latency_s=s.server.target_latency_ms / 1000,
                retry_after_s=int(s.server.retry_after),
                key_rate=s.server.key_rate,
                key_burst=s.server.key_burst,
                trusted_proxies=tuple(s.server.trusted_proxies),
            ),
            enforcement=EnforcementSettings(
                review_confidence=e.review_confidence,
                max_clock_skew_s=int(e.max_clock_skew),
                index_max_age_s=int(e.index_max_age),
                max_delivery_delay_s=int(e.max_delivery_delay),
            ),
            storage=StorageSettings(
                data_dir=data_dir,
                database_path=data_dir / s.storage.database,
                # A replica on a machine of its own keeps the snapshots it downloads locally.
                snapshot_dir=Path(
                    env.get("VARCO_SNAPSHOT_DIR") or data_dir / s.storage.snapshot_dir
                ),
                history_days=s.storage.history_days,
            ),
            database_url=self.database_url(),
            redis=RedisSettings(
                url=self.redis_url(),
                prefix=s.redis.prefix,
                max_memory=self.redis_max_memory(),
                memory_warn=s.redis.memory_warn,
                memory_poll_s=s.redis.memory_poll_s,
            ),
            loader=LoaderSettings(
                poll_s=s.loader.poll_s,
                snapshot_interval_s=int(s.loader.snapshot_interval),
                max_overlay=s.loader.max_overlay,
                lease_ms=s.loader.lease_ms,
            ),
            transit_log=TransitLogSettings(
                spool_max_bytes=s.transit_log.spool_max_mb << 20,
                write_timeout_s=s.transit_log.write_timeout_ms / 1000,
                dedup_window_s=int(s.transit_log.dedup_window),
                correction_window_s=int(s.transit_log.correction_window),
            ),
            retention=RetentionSettings(
                allowed_s=int(s.retention.allowed), violations_s=int(s.retention.violations)
            ),
            console=ConsoleSettings(
                session_idle_s=int(s.console.session_idle), session_max_s=int(s.console.session_max)
            ),
            camera_health=CameraHealthSettings(
                silence_s=int(s.camera_health.silence),
                unreadable_share=s.camera_health.unreadable_share,
                min_reads=s.camera_health.min_reads,
                clock_offset_s=int(s.camera_health.clock_offset),
            ),
            api_keys=api_keys,
            cameras=cameras,
            camera_tokens=tokens,
            camera_digests=digests,
            circuit=self.circuit(),
            sources=self.sources(),
        )

    def database_url(self) -> str | None:
        from_env = bool(self.env.get("DATABASE_URL"))
        url = self.env.get("DATABASE_URL") or self.spec.database.url or None
        if url and not url.startswith(("postgresql://", "postgres://")):
            # Never echo the URL: it may hold a password.
            self.fail(
                "DATABASE_URL (environment)" if from_env else "database.url",
                "not a PostgreSQL URL (postgresql://user@host:port/dbname)",
            )
        return url

    def redis_url(self) -> str | None:
        from_env = bool(self.env.get("REDIS_URL"))
        url = self.env.get("REDIS_URL") or self.spec.redis.url or None
        if url is None or url == "off":
            return url
        if not url.startswith(("redis://", "rediss://", "unix://")):
            # Never echo the URL: it may hold a password.
            self.fail(
                "REDIS_URL (environment)" if from_env else "redis.url",
                'not a Redis URL (redis://host:port/db, rediss://..., unix:///path), nor "off"',
            )
        return url

    def redis_max_memory(self) -> int:
        n = int(self.spec.redis.max_memory)
        if 0 < n < 1 << 20:
            self.fail("redis.max_memory", "give at least 1mb (Redis itself needs that), or 0")
        return n

    def circuit(self) -> Circuit | None:
        c = self.spec.circuit
        if c is None:
            return None
        for i, code in enumerate(c.comuni):
            if not _CADASTRAL.fullmatch(code):
                self.fail(f"circuit.comuni[{i}]", f"{code!r} is not a cadastral code (as L736)")
        for name, type_ in c.types.items():
            if type_ not in self.spec.types:
                known = ", ".join(self.spec.types)
                self.fail(
                    f"circuit.types.{name}", f"unknown permit type {type_!r} (known: {known})"
                )
        return Circuit(c.name, frozenset(c.comuni), dict(c.types))

    def sources(self) -> dict[str, Source]:
        out = {}
        for name, spec in self.spec.sources.items():
            key = f"sources.{name}"
            if spec.kind.startswith("regional") and self.spec.circuit is None:
                self.fail(f"{key}.kind", "a regional source needs a [circuit] section")
            token = None
            if spec.kind == "regional_http":
                if not spec.url or not spec.url.startswith(("http://", "https://")):
                    self.fail(f"{key}.url", "a regional_http source needs an http(s) URL")
                if spec.token_env is not None:
                    token = self.env.get(spec.token_env)
                    if not token:
                        self.fail(
                            f"{key}.token_env",
                            f"the environment variable {spec.token_env} is not set",
                        )
            elif not spec.path:
                self.fail(f"{key}.path", f"a {spec.kind} source needs the path of its export")
            if spec.kind == "cude_csv":
                t = self.spec.types.get(spec.type or "")
                if t is None or not t.cude:
                    cude = [code for code, ts in self.spec.types.items() if ts.cude]
                    self.fail(
                        f"{key}.type",
                        "name the CUDE permit type (one with cude = true: "
                        f"{', '.join(cude) or 'none configured'})",
                    )
            path = Path(spec.path or "")
            path = path if path.is_absolute() else self.path.parent / path
            out[name] = Source(
                name,
                spec.kind,
                path,
                int(spec.schedule),
                spec.max_close,
                spec.type,
                int(spec.max_age),
                spec.url,
                token,
            )
        return out


def _table(windows: list[WindowSpec]) -> bytes:
    return compile_windows(w.window() for w in windows)
