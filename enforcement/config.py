"""The city's configuration: one TOML file, validated at start-up into `Settings` and `Rules`.

A mistake stops start-up with a `ConfigError` naming the file, the key and the reason, e.g.
`examples/padova.toml: gates.G01.zone: unknown zone 'Z' (known: A, B)`. Unknown keys are
errors too, so a misspelt key never silently falls back to a default.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from .core.localtime import HolidayCalendar, LocalClock
from .core.rules import (
    ALWAYS,
    DAY_NAMES,
    Duration,
    Gate,
    HolidayMode,
    PermitType,
    Rules,
    Suspension,
    Window,
    Zone,
    compile_windows,
    format_window,
)

Role = Literal["camera", "police", "admin"]
MAX_ZONES: Final = 32  # zone sets are uint32 bit masks in the index
DIGEST_REALM: Final = "varco"  # the HTTP Digest realm of every camera (part of its HA1)


class ConfigError(Exception):
    """A configuration mistake: which file, which key, and why."""

    def __init__(self, file: str | os.PathLike[str], key: str, reason: str) -> None:
        self.file, self.key, self.reason = str(file), key, reason
        super().__init__(f"{self.file}: {key or '(top level)'}: {reason}")


class _Strict(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Config sections: unknown keys are errors."""


class WindowSpec(_Strict, kw_only=True):
    days: str = "mon-sun"
    # `from` and `to` in the file; renamed because they are Python keywords.
    start: str = msgspec.field(name="from")
    end: str = msgspec.field(name="to")


class SuspensionSpec(_Strict, kw_only=True):
    start: str = msgspec.field(name="from")  # "MM-DD"
    end: str = msgspec.field(name="to")


class CitySpec(_Strict, kw_only=True):
    name: str = "Varco"
    timezone: str = "Europe/Rome"
    patron_saint: str | None = None  # "MM-DD", e.g. "06-13" for Sant'Antonio in Padova
    extra_holidays: list[dt.date] = []


class ServerSpec(_Strict, kw_only=True):
    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 8080
    max_body_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 1 << 20
    max_batch: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 1000
    snapshot_poll_s: Annotated[float, msgspec.Meta(gt=0)] = 1.0
    # Vendor camera posts carry pictures (multipart parts, base64 in JSON): a larger cap,
    # read as a stream; pictures are discarded as they arrive, never stored.
    max_camera_body_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 8 << 20


class EnforcementSpec(_Strict, kw_only=True):
    # Reads below this confidence (0-1) are `review` unless a permit covers them anyway.
    review_confidence: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.6
    # A transit stamped further in the future than this means the camera clock is wrong.
    max_clock_skew: str = "5m"
    # An index older than this cannot back a `pending` verdict (it may miss new permits).
    index_max_age: str = "26h"


class StorageSpec(_Strict, kw_only=True):
    data_dir: str = "data"
    database: str = "permits.sqlite"  # relative to data_dir
    snapshot_dir: str = "snapshots"  # relative to data_dir
    # Ended permits stay in the index this long, to judge late re-uploads and police queries.
    history_days: Annotated[int, msgspec.Meta(ge=0)] = 30


class DatabaseSpec(_Strict, kw_only=True):
    # A PostgreSQL permit database ("postgresql://user@host/db"); unset: SQLite in data_dir.
    # DATABASE_URL in the environment wins, and keeps a password out of the file.
    url: str | None = None


class RedisSpec(_Strict, kw_only=True):
    # Unset: Varco starts its own Redis under data_dir. "off": no Redis (one machine, snapshot
    # files only, no live permit changes). REDIS_URL in the environment wins.
    url: str | None = None
    prefix: str = "varco"  # key prefix, so one Redis can serve several cities


class LoaderSpec(_Strict, kw_only=True):
    poll_s: Annotated[float, msgspec.Meta(gt=0, le=60)] = 0.2  # permit database tail interval
    snapshot_interval: str = "1h"  # a fresh snapshot at least this often
    # ... and sooner once this many changes were streamed (replicas hold them in memory).
    max_overlay: Annotated[int, msgspec.Meta(ge=1)] = 20_000


class TransitLogSpec(_Strict, kw_only=True):
    # When Redis cannot take a transit (down, slow, or not durable) it goes to a local fsynced
    # spool; a full spool answers 503 with Retry-After rather than dropping anything.
    spool_max_mb: Annotated[int, msgspec.Meta(ge=1)] = 1024
    write_timeout_ms: Annotated[int, msgspec.Meta(ge=10, le=60_000)] = 500
    dedup_window: str = "24h"  # a camera's retry within this gets the first verdict back


class RetentionSpec(_Strict, kw_only=True):
    allowed: str = "24h"  # records of allowed, not enforced and discarded transits
    violations: str = "450d"  # confirmed violations and the review queue


class ZoneSpec(_Strict, kw_only=True):
    name: str = ""
    grace: str = "72h"
    covers: list[str] = []


class GateSpec(_Strict, kw_only=True):
    zone: str
    name: str = ""
    schedule: list[WindowSpec] | None = None  # None: active around the clock
    holidays: HolidayMode = HolidayMode.NORMAL
    suspended: list[SuspensionSpec] = []


class TypeSpec(_Strict, kw_only=True):
    name: str = ""
    zones: list[str]
    windows: list[WindowSpec] | None = None  # None: no time-slot restriction
    holidays: HolidayMode = HolidayMode.NORMAL
    max_duration: str = "unlimited"
    cude: bool = False


class ApiKeySpec(_Strict, kw_only=True):
    id: str
    role: Role
    key: str | None = None  # plain text (demo); prefer key_sha256 in production
    key_sha256: str | None = None


class CircuitSpec(_Strict, kw_only=True):
    # A regional circuit (Veneto's ZTL network, ViviPass): passes of any member comune count
    # in our zones for the permit types they map to.
    name: str = ""
    comuni: list[str]  # cadastral codes of the member comuni ("L736")
    types: dict[str, str]  # the circuit's pass type -> our permit type


SourceKind = Literal["regional_csv", "regional_http", "cude_csv"]

# The payload format a camera posts: "native" is Varco's own /v1/transits JSON; the others are
# the vendor adapters under /v1/cameras/{vendor} (enforcement/cameras/).
CameraVendor = Literal["native", "hikvision", "axis", "milesight", "platerecognizer", "rekor",
                       "dahua"]  # fmt: skip


class CameraSpec(_Strict, kw_only=True):
    gate: str  # the only gate this camera may post for
    vendor: CameraVendor
    # Local time of timestamps sent without an offset (Milesight, Dahua, some Axis and
    # Hikvision firmware); default the city's.
    timezone: str | None = None
    # How the camera proves who it is: an `Authorization: Bearer` key, or for cameras that can
    # only set a URL, a token in it (/v1/cameras/{vendor}/{token} or ?token=). Plain text for
    # demos; in production the sha256 hex digest (`printf %s KEY | sha256sum`).
    key: str | None = None
    key_sha256: str | None = None
    token: str | None = None
    token_sha256: str | None = None
    # Or HTTP Digest (RFC 7616), for cameras that take only a user name and password (Dahua
    # ITSAPI): the user name is the camera id, the realm "varco". In production the HA1, MD5
    # hex of "ID:varco:PASSWORD" (`printf %s 'ID:varco:PASSWORD' | md5sum`; sha256sum for
    # digest_ha1_sha256), so the file holds no password; the password itself for demos.
    digest_ha1: str | None = None
    digest_ha1_sha256: str | None = None
    digest_password: str | None = None
    # The vendor's own id of the device (serial, MAC, camera_id): when set, a payload naming
    # another device is refused (403), so a key copied to a second camera cannot post.
    device_id: str | None = None


class SourceSpec(_Strict, kw_only=True):
    kind: SourceKind
    path: str | None = None  # the export to read (csv kinds), relative to this file
    url: str | None = None  # regional_http: the feed's first page
    # regional_http: the environment variable holding its bearer token (kept out of the file)
    token_env: str | None = None
    schedule: str = "1h"  # how often `varco watch` syncs it (when the file changed)
    # A complete export that would close more than this share of the source's permits is held
    # for an operator (`varco sync --accept-shrink`): a truncated export must not end permits.
    max_close: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.05
    type: str | None = None  # cude_csv: the permit type of CUDE badges (cude = true)
    max_age: str = "26h"  # no good sync for longer: a warning in /readyz and the metrics


class RawConfig(_Strict, kw_only=True):
    city: CitySpec = msgspec.field(default_factory=CitySpec)
    server: ServerSpec = msgspec.field(default_factory=ServerSpec)
    enforcement: EnforcementSpec = msgspec.field(default_factory=EnforcementSpec)
    storage: StorageSpec = msgspec.field(default_factory=StorageSpec)
    database: DatabaseSpec = msgspec.field(default_factory=DatabaseSpec)
    redis: RedisSpec = msgspec.field(default_factory=RedisSpec)
    loader: LoaderSpec = msgspec.field(default_factory=LoaderSpec)
    transit_log: TransitLogSpec = msgspec.field(default_factory=TransitLogSpec)
    retention: RetentionSpec = msgspec.field(default_factory=RetentionSpec)
    zones: dict[str, ZoneSpec]
    gates: dict[str, GateSpec]
    types: dict[str, TypeSpec]
    api_keys: list[ApiKeySpec] = []
    circuit: CircuitSpec | None = None
    sources: dict[str, SourceSpec] = {}
    cameras: dict[str, CameraSpec] = {}


class ApiKey(msgspec.Struct, frozen=True):
    id: str  # what logs and audit records name; the key itself is never logged
    role: Role
    camera: str | None = None  # a [cameras.ID] key: it may post for that camera only


class Camera(msgspec.Struct, frozen=True):
    """A registered camera: the gate it watches and the format it posts."""

    id: str
    gate: str
    vendor: CameraVendor
    timezone: str  # IANA name, for timestamps without an offset
    device_id: str | None = None


class DigestHA1(msgspec.Struct, frozen=True):
    """A camera's HTTP Digest HA1, H("ID:varco:PASSWORD"), per algorithm: whoever has one can
    authenticate as the camera, so it is as secret as the password and never printed."""

    md5: str | None = None
    sha256: str | None = None

    def __repr__(self) -> str:
        return "DigestHA1(...)"


class Circuit(msgspec.Struct, frozen=True):
    name: str
    comuni: frozenset[str]
    types: dict[str, str]  # circuit pass type -> permit type


class Source(msgspec.Struct, frozen=True):
    name: str
    kind: SourceKind
    path: Path  # csv kinds (for regional_http: unused)
    schedule_s: int
    max_close: float
    type: str | None  # cude_csv: the CUDE permit type
    max_age_s: int
    url: str | None = None  # regional_http
    token: str | None = msgspec.field(default=None)  # never logged: from token_env

    def __repr__(self) -> str:  # the token stays out of tracebacks and logs
        return f"Source({self.name!r}, {self.kind})"


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Everything start-up derives from the config file and the environment."""

    config_path: Path
    city_name: str
    host: str
    port: int
    max_body_bytes: int
    max_batch: int
    snapshot_poll_s: float
    review_confidence: float
    max_clock_skew_s: int
    index_max_age_s: int
    data_dir: Path
    database_path: Path
    snapshot_dir: Path
    history_days: int
    api_keys: dict[str, ApiKey]  # sha256 hex of the key -> key id and role
    database_url: str | None = None  # PostgreSQL permit database; None: SQLite at database_path
    redis_url: str | None = None  # None: start our own (redis_server.py); "off": no Redis
    redis_prefix: str = "varco"
    loader_poll_s: float = 0.2
    snapshot_interval_s: float = 3600.0
    max_overlay: int = 20_000
    circuit: Circuit | None = None
    sources: dict[str, Source] = {}
    cameras: dict[str, Camera] = {}
    camera_tokens: dict[str, str] = {}  # sha256 hex of a URL token -> camera id
    camera_digests: dict[str, DigestHA1] = {}  # camera id -> its HTTP Digest HA1s
    max_camera_body_bytes: int = 8 << 20
    spool_max_bytes: int = 1024 << 20
    transit_write_timeout_s: float = 0.5
    dedup_window_s: int = 86400
    retention_allowed_s: int = 86400
    retention_violations_s: int = 450 * 86400

    @property
    def spool_dir(self) -> Path:
        return self.data_dir / "spool"

    @property
    def redis_dir(self) -> Path:
        return self.data_dir / "redis"

    @property
    def current_snapshot(self) -> Path:
        return self.snapshot_dir / "current.vidx"


_DURATION: Final = re.compile(r"(\d+)\s*(mo|y|d|h|m|s)")
_UNITS_S: Final = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_HHMM: Final = re.compile(r"([01]\d|2[0-4]):([0-5]\d)")
_MMDD: Final = re.compile(r"(\d\d)-(\d\d)")


def parse_duration(text: str, *, allow_months: bool = True) -> Duration | None:
    """'2h', '6mo', '3y', '1d12h', 'unlimited' -> Duration (None for unlimited)."""
    text = text.strip().lower()
    if text in ("unlimited", "none", "0"):
        return None
    pos, months, seconds = 0, 0, 0
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            break
        n, unit = int(m.group(1)), m.group(2)
        if unit in ("mo", "y"):
            if not allow_months:
                raise ValueError(f"{text!r}: months and years are not allowed here")
            months += n * (12 if unit == "y" else 1)
        else:
            seconds += n * _UNITS_S[unit]
        pos = m.end()
    if pos != len(text) or not text:
        raise ValueError(f"{text!r} is not a duration (examples: 2h, 90m, 5d, 6mo, 3y, unlimited)")
    return Duration(months, seconds)


def _seconds(text: str) -> int:
    d = parse_duration(text, allow_months=False)
    return 0 if d is None else d.seconds


def _positive_seconds(text: str) -> int:
    seconds = _seconds(text)
    if seconds <= 0:
        raise ValueError(f"{text!r}: give a positive duration (e.g. 24h, 450d)")
    return seconds


def _parse_days(text: str) -> tuple[int, ...]:
    """'mon-fri', 'fri,sat', 'sat-mon', 'daily' -> weekday numbers (Monday = 0)."""
    text = text.strip().lower()
    if text in ("daily", "all", "mon-sun", "*"):
        return tuple(range(7))
    days: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if "-" in part:
            a, b = (p.strip() for p in part.split("-", 1))
            if a not in DAY_NAMES or b not in DAY_NAMES:
                raise ValueError(f"{part!r}: days are mon, tue, wed, thu, fri, sat, sun")
            i, j = DAY_NAMES.index(a), DAY_NAMES.index(b)
            days.extend((i + k) % 7 for k in range((j - i) % 7 + 1))
        elif part in DAY_NAMES:
            days.append(DAY_NAMES.index(part))
        else:
            raise ValueError(f"{part!r}: days are mon, tue, wed, thu, fri, sat, sun")
    return tuple(sorted(set(days)))


def _parse_hhmm(text: str) -> int:
    m = _HHMM.fullmatch(text.strip())
    if not m or (m.group(1) == "24" and m.group(2) != "00"):
        raise ValueError(f"{text!r} is not a time of day HH:MM (00:00-24:00)")
    return int(m.group(1)) * 60 + int(m.group(2))


def _parse_window(spec: WindowSpec) -> Window:
    start, end = _parse_hhmm(spec.start), _parse_hhmm(spec.end)
    if start == 1440:
        raise ValueError("a window cannot start at 24:00")
    if start == end:
        raise ValueError(f"window {spec.start}-{spec.end} is empty; use 00:00-24:00 for all day")
    return Window(_parse_days(spec.days), start, end % 1440)


def _parse_month_day(text: str) -> tuple[int, int]:
    m = _MMDD.fullmatch(text.strip())
    if m:
        month, day = int(m.group(1)), int(m.group(2))
        try:
            dt.date(2024, month, day)  # a leap year, so 02-29 is accepted
            return month, day
        except ValueError:
            pass
    raise ValueError(f"{text!r} is not a date MM-DD")


def _msgspec_key(exc: msgspec.ValidationError) -> tuple[str, str]:
    """Split msgspec's "reason - at `$.a.b[0]`" into ("a.b[0]", "reason")."""
    text = str(exc)
    m = re.search(r" - at `\$(.*)`$", text)
    if not m:
        return "", text
    return m.group(1).lstrip("."), text[: m.start()]


_TABLES: Final = {"zones": ZoneSpec, "gates": GateSpec, "types": TypeSpec,
                  "cameras": CameraSpec}


def _locate(data: dict[str, Any], exc: msgspec.ValidationError) -> tuple[str, str]:
    """The key of a validation error; msgspec says `gates[...]` for a table entry, so
    validate the entries one by one to name it (`gates.PD-01.zone`)."""
    key, reason = _msgspec_key(exc)
    section = key.split("[...]")[0]
    spec = _TABLES.get(section)
    if "[...]" in key and spec is not None and isinstance(data.get(section), dict):
        for code, entry in data[section].items():
            try:
                msgspec.convert(entry, spec, strict=True)
            except msgspec.ValidationError as inner:
                sub, reason = _msgspec_key(inner)
                return f"{section}.{code}" + (f".{sub}" if sub else ""), reason
    return key, reason


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
        raw = msgspec.convert(data, RawConfig, strict=True)
    except msgspec.ValidationError as exc:
        key, reason = _locate(data, exc)
        raise ConfigError(path, key, reason) from exc
    return _compile(path, raw, env)


def _compile(path: Path, raw: RawConfig, env: Mapping[str, str]) -> tuple[Settings, Rules]:
    def fail(key: str, reason: str) -> ConfigError:
        return ConfigError(path, key, reason)

    def attempt(key: str, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except ValueError as exc:
            raise fail(key, str(exc)) from None

    if not raw.zones:
        raise fail("zones", "at least one zone is required")
    if len(raw.zones) > MAX_ZONES:
        raise fail("zones", f"at most {MAX_ZONES} zones are supported, got {len(raw.zones)}")
    known_zones = ", ".join(raw.zones)

    def check_zone(key: str, code: str) -> None:
        if code not in raw.zones:
            raise fail(key, f"unknown zone {code!r} (known: {known_zones})")

    zones = {}
    for code, z in raw.zones.items():
        for i, sub in enumerate(z.covers):
            check_zone(f"zones.{code}.covers[{i}]", sub)
        grace = attempt(f"zones.{code}.grace", _seconds, z.grace)
        zones[code] = Zone(code, z.name or code, grace, tuple(z.covers))

    gates = {}
    for code, g in raw.gates.items():
        check_zone(f"gates.{code}.zone", g.zone)
        if g.schedule is None:
            schedule = ALWAYS
        else:
            wins = [
                attempt(f"gates.{code}.schedule[{i}]", _parse_window, w)
                for i, w in enumerate(g.schedule)
            ]
            schedule = compile_windows(wins)
        suspensions = tuple(
            Suspension(
                attempt(f"gates.{code}.suspended[{i}].from", _parse_month_day, s.start),
                attempt(f"gates.{code}.suspended[{i}].to", _parse_month_day, s.end),
            )
            for i, s in enumerate(g.suspended)
        )
        gates[code] = Gate(code, g.zone, schedule, g.holidays, suspensions, g.name or code)
    if not gates:
        raise fail("gates", "at least one gate is required")

    types = {}
    for code, t in raw.types.items():
        if not t.zones:
            raise fail(f"types.{code}.zones", "a permit type needs at least one zone")
        for i, zone_code in enumerate(t.zones):
            check_zone(f"types.{code}.zones[{i}]", zone_code)
        text: tuple[str, ...] = ()
        if t.windows is None:
            windows = ALWAYS
        else:
            if not t.windows:
                raise fail(f"types.{code}.windows", "empty list: omit the key for no restriction")
            wins = [
                attempt(f"types.{code}.windows[{i}]", _parse_window, w)
                for i, w in enumerate(t.windows)
            ]
            windows, text = compile_windows(wins), tuple(format_window(w) for w in wins)
        max_duration = attempt(f"types.{code}.max_duration", parse_duration, t.max_duration)
        types[code] = PermitType(code, t.name or code, tuple(t.zones), windows, t.holidays,
                                 max_duration, t.cude, text)  # fmt: skip
    if not types:
        raise fail("types", "at least one permit type is required")

    patron = None
    if raw.city.patron_saint is not None:
        patron = attempt("city.patron_saint", _parse_month_day, raw.city.patron_saint)
    try:
        clock = LocalClock(raw.city.timezone)
    except Exception:
        raise fail("city.timezone", f"unknown time zone {raw.city.timezone!r}") from None

    api_keys: dict[str, ApiKey] = {}
    for i, k in enumerate(raw.api_keys):
        if (k.key is None) == (k.key_sha256 is None):
            raise fail(f"api_keys[{i}]", "give exactly one of key or key_sha256")
        digest = k.key_sha256.lower() if k.key_sha256 else hash_key(k.key or "")
        if not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise fail(f"api_keys[{i}].key_sha256", "not a sha256 hex digest")
        if digest in api_keys:
            raise fail(f"api_keys[{i}]", "the same key is listed twice")
        api_keys[digest] = ApiKey(k.id, k.role)
    cameras, camera_tokens, camera_digests = _cameras(raw, api_keys, fail)

    e = raw.enforcement
    base = path.parent
    data_dir = Path(env.get("VARCO_DATA_DIR") or raw.storage.data_dir)
    if not data_dir.is_absolute():
        data_dir = ((Path.cwd() if env.get("VARCO_DATA_DIR") else base) / data_dir).resolve()
    port = raw.server.port
    if env.get("VARCO_PORT"):
        port = attempt("VARCO_PORT (environment)", int, env["VARCO_PORT"])
    database_url = env.get("DATABASE_URL") or raw.database.url or None
    if database_url and not database_url.startswith(("postgresql://", "postgres://")):
        # Never echo the URL: it may hold a password.
        raise fail("DATABASE_URL (environment)" if env.get("DATABASE_URL") else "database.url",
                   "not a PostgreSQL URL (postgresql://user@host:port/dbname)")  # fmt: skip
    settings = Settings(
        config_path=path,
        city_name=raw.city.name,
        host=env.get("VARCO_HOST") or raw.server.host,
        port=port,
        max_body_bytes=raw.server.max_body_bytes,
        max_batch=raw.server.max_batch,
        snapshot_poll_s=raw.server.snapshot_poll_s,
        review_confidence=e.review_confidence,
        max_clock_skew_s=attempt("enforcement.max_clock_skew", _seconds, e.max_clock_skew),
        index_max_age_s=attempt("enforcement.index_max_age", _seconds, e.index_max_age),
        data_dir=data_dir,
        database_path=data_dir / raw.storage.database,
        # A replica on a machine of its own keeps the snapshots it downloads on local disk.
        snapshot_dir=Path(env.get("VARCO_SNAPSHOT_DIR") or data_dir / raw.storage.snapshot_dir),
        history_days=raw.storage.history_days,
        api_keys=api_keys,
        database_url=database_url,
        redis_url=_redis_url(env, raw.redis.url, fail),
        redis_prefix=raw.redis.prefix,
        loader_poll_s=raw.loader.poll_s,
        snapshot_interval_s=attempt(
            "loader.snapshot_interval", _seconds, raw.loader.snapshot_interval
        ),
        max_overlay=raw.loader.max_overlay,
        circuit=_circuit(raw, fail),
        sources=_sources(raw, base, env, attempt, fail),
        cameras=cameras,
        camera_tokens=camera_tokens,
        camera_digests=camera_digests,
        max_camera_body_bytes=raw.server.max_camera_body_bytes,
        spool_max_bytes=raw.transit_log.spool_max_mb << 20,
        transit_write_timeout_s=raw.transit_log.write_timeout_ms / 1000,
        dedup_window_s=attempt("transit_log.dedup_window", _positive_seconds,
                               raw.transit_log.dedup_window),
        retention_allowed_s=attempt("retention.allowed", _positive_seconds,
                                    raw.retention.allowed),
        retention_violations_s=attempt("retention.violations", _positive_seconds,
                                       raw.retention.violations),
    )
    rules = Rules(
        clock=clock,
        holidays=HolidayCalendar(patron, raw.city.extra_holidays),
        zones=zones,
        gates=gates,
        types=types,
    )
    return settings, rules


_CADASTRAL: Final = re.compile(r"[A-Z]\d{3}")


def _circuit(raw: RawConfig, fail: Callable[[str, str], ConfigError]) -> Circuit | None:
    c = raw.circuit
    if c is None:
        return None
    for i, code in enumerate(c.comuni):
        if not _CADASTRAL.fullmatch(code):
            raise fail(f"circuit.comuni[{i}]", f"{code!r} is not a cadastral code (as L736)")
    for name, type_ in c.types.items():
        if type_ not in raw.types:
            known = ", ".join(raw.types)
            raise fail(f"circuit.types.{name}", f"unknown permit type {type_!r} (known: {known})")
    return Circuit(c.name, frozenset(c.comuni), dict(c.types))


def _sources(raw: RawConfig, base: Path, env: Mapping[str, str], attempt: Any,
             fail: Callable[[str, str], ConfigError]) -> dict[str, Source]:  # fmt: skip
    out = {}
    for name, spec in raw.sources.items():
        key = f"sources.{name}"
        if spec.kind.startswith("regional") and raw.circuit is None:
            raise fail(f"{key}.kind", "a regional source needs a [circuit] section")
        token = None
        if spec.kind == "regional_http":
            if not spec.url or not spec.url.startswith(("http://", "https://")):
                raise fail(f"{key}.url", "a regional_http source needs an http(s) URL")
            if spec.token_env is not None:
                token = env.get(spec.token_env)
                if not token:
                    raise fail(f"{key}.token_env",
                               f"the environment variable {spec.token_env} is not set")  # fmt: skip
        elif not spec.path:
            raise fail(f"{key}.path", f"a {spec.kind} source needs the path of its export")
        if spec.kind == "cude_csv":
            t = raw.types.get(spec.type or "")
            if t is None or not t.cude:
                cude = [code for code, ts in raw.types.items() if ts.cude]
                raise fail(f"{key}.type", f"name the CUDE permit type (one with cude = true: "
                                          f"{', '.join(cude) or 'none configured'})")  # fmt: skip
        schedule = attempt(f"{key}.schedule", _seconds, spec.schedule)
        max_age = attempt(f"{key}.max_age", _seconds, spec.max_age)
        path = Path(spec.path or "")
        path = path if path.is_absolute() else base / path
        out[name] = Source(name, spec.kind, path, schedule, spec.max_close, spec.type, max_age,
                           spec.url, token)  # fmt: skip
    return out


def _digest(plain: str | None, hashed: str | None, key: str, what: str,
            fail: Callable[[str, str], ConfigError]) -> str | None:  # fmt: skip
    """The sha256 hex digest of a secret given as `what` (plain) or `what_sha256`."""
    if plain is not None and hashed is not None:
        raise fail(key, f"give one of {what} or {what}_sha256, not both")
    if hashed is not None:
        digest = hashed.lower()
        if not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise fail(f"{key}.{what}_sha256", "not a sha256 hex digest")
        return digest
    if plain is not None:
        if not plain:
            raise fail(f"{key}.{what}", "empty")
        return hash_key(plain)
    return None


def _digest_ha1(cid: str, c: CameraSpec, key: str,
                fail: Callable[[str, str], ConfigError]) -> DigestHA1 | None:  # fmt: skip
    """The camera's HTTP Digest HA1s, from digest_password or digest_ha1 / digest_ha1_sha256."""
    if c.digest_password is not None:
        if c.digest_ha1 is not None or c.digest_ha1_sha256 is not None:
            raise fail(key, "give digest_password or digest_ha1 / digest_ha1_sha256, not both")
        if not c.digest_password:
            raise fail(f"{key}.digest_password", "empty")
        a1 = f"{cid}:{DIGEST_REALM}:{c.digest_password}".encode()
        ha1 = DigestHA1(hashlib.md5(a1).hexdigest(), hashlib.sha256(a1).hexdigest())
    elif c.digest_ha1 is None and c.digest_ha1_sha256 is None:
        return None
    else:
        hashed = {"digest_ha1": (c.digest_ha1, 32, "MD5"),
                  "digest_ha1_sha256": (c.digest_ha1_sha256, 64, "SHA-256")}  # fmt: skip
        for what, (value, size, algorithm) in hashed.items():
            if value is not None and not re.fullmatch(f"[0-9a-fA-F]{{{size}}}", value):
                raise fail(f"{key}.{what}", f"not {size} hex digits: the {algorithm} hex of "
                                            f"'{cid}:{DIGEST_REALM}:PASSWORD'")  # fmt: skip
        ha1 = DigestHA1(c.digest_ha1 and c.digest_ha1.lower(),
                        c.digest_ha1_sha256 and c.digest_ha1_sha256.lower())  # fmt: skip
    if c.vendor == "native":
        raise fail(key, "Digest is for the vendor routes: a native camera posts to "
                        "/v1/transits with its key")  # fmt: skip
    if ":" in cid:  # the Digest user name: "a:b:varco:PASSWORD" would be ambiguous
        raise fail(key, "a camera with Digest credentials needs an id without ':'")
    return ha1


def _cameras(raw: RawConfig, api_keys: dict[str, ApiKey], fail: Callable[[str, str], ConfigError]
             ) -> tuple[dict[str, Camera], dict[str, str], dict[str, DigestHA1]]:  # fmt: skip
    """The camera registry; each camera's Bearer key joins `api_keys` (role camera, bound to
    the camera), its URL token the returned token table (sha256 -> camera id), its Digest
    credentials the HA1 table (camera id -> HA1s)."""
    cameras: dict[str, Camera] = {}
    tokens: dict[str, str] = {}
    digests: dict[str, DigestHA1] = {}
    known_gates = ", ".join(raw.gates)
    for cid, c in raw.cameras.items():
        key = f"cameras.{cid}"
        if not 1 <= len(cid) <= 64:
            raise fail(key, "a camera id has 1 to 64 characters")
        if c.gate not in raw.gates:
            raise fail(f"{key}.gate", f"unknown gate {c.gate!r} (known: {known_gates})")
        tz = c.timezone or raw.city.timezone
        try:
            ZoneInfo(tz)
        except (ValueError, ZoneInfoNotFoundError):
            raise fail(f"{key}.timezone", f"unknown time zone {tz!r}") from None
        key_digest = _digest(c.key, c.key_sha256, key, "key", fail)
        token_digest = _digest(c.token, c.token_sha256, key, "token", fail)
        ha1 = _digest_ha1(cid, c, key, fail)
        if key_digest is None and token_digest is None and ha1 is None:
            raise fail(key, "give the camera's key (key or key_sha256, sent as 'Authorization: "
                            "Bearer KEY'), its URL token (token or token_sha256) or its HTTP "
                            "Digest credentials (digest_ha1 or digest_password)")  # fmt: skip
        if ha1 is not None:
            digests[cid] = ha1
        if key_digest is not None:
            if key_digest in api_keys:
                raise fail(f"{key}.key", "the same key is already used by another camera or "
                                         "[[api_keys]] entry")  # fmt: skip
            api_keys[key_digest] = ApiKey(cid, "camera", camera=cid)
        if token_digest is not None:
            if token_digest in tokens:
                raise fail(f"{key}.token", f"the same token is already used by camera "
                                           f"{tokens[token_digest]!r}")  # fmt: skip
            tokens[token_digest] = cid
        cameras[cid] = Camera(cid, c.gate, c.vendor, tz, c.device_id)
    return cameras, tokens, digests


def _redis_url(env: Mapping[str, str], configured: str | None,
               fail: Callable[[str, str], ConfigError]) -> str | None:  # fmt: skip
    url = env.get("REDIS_URL") or configured or None
    if url is None or url == "off":
        return url
    if not url.startswith(("redis://", "rediss://", "unix://")):
        # Never echo the URL: it may hold a password.
        raise fail("REDIS_URL (environment)" if env.get("REDIS_URL") else "redis.url",
                   "not a Redis URL (redis://host:port/db, rediss://..., unix:///path), "
                   "nor \"off\"")  # fmt: skip
    return url


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()
