"""Settings: everything start-up derives from the configuration file and the environment.

Built once (load.py), frozen, passed in; nothing reads the environment after start-up. The
sections mirror the file's (`settings.server.port` is `[server] port`), with durations in
seconds and paths resolved.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Final, Literal

import msgspec

Role = Literal["camera", "police", "operator", "admin"]
SourceKind = Literal["regional_csv", "regional_http", "cude_csv"]
# The payload format a camera posts: "native" is Varco's own /v1/transits JSON; the others are
# the vendor adapters under /v1/cameras/{vendor} (enforcement/http/cameras/).
CameraVendor = Literal[
    "native", "hikvision", "axis", "milesight", "platerecognizer", "rekor", "dahua"
]

MAX_ZONES: Final = 32  # zone sets are uint32 bit masks in the index
DIGEST_REALM: Final = "varco"  # the HTTP Digest realm of every camera (part of its HA1)
# What a camera id may be, configured or posted: it names the camera in transit records, the
# fines office's CSV and Digest user names, so no free text (no spaces, '=', ':' or control
# characters) ever gets there through it.
CAMERA_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
CAMERA_ID_RULE: Final = (
    "a camera id is 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or "
    "digit (so without ':', '=', spaces or control characters)"
)


class ServerSettings(msgspec.Struct, frozen=True, kw_only=True):
    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = 1 << 20
    max_batch: int = 1000
    snapshot_poll_s: float = 1.0
    max_camera_body_bytes: int = 8 << 20
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    keepalive_timeout_s: float = 15.0
    max_connections: int = 1000
    max_in_flight: int = 256
    max_queue_wait_s: float = 0.02
    target_latency_s: float = 0.01  # the adaptive in-flight limit's target; 0: fixed
    retry_after_s: int = 1
    key_rate: float = 0.0  # requests per second per key; 0: no limit
    key_burst: int = 100
    # Addresses or networks (ip_network text) of reverse proxies whose X-Forwarded-Proto
    # is believed: a session cookie is marked Secure behind a TLS-terminating proxy.
    trusted_proxies: tuple[str, ...] = ()


class ConsoleSettings(msgspec.Struct, frozen=True, kw_only=True):
    session_idle_s: int = 30 * 60  # a session unused this long ends
    session_max_s: int = 12 * 3600  # and any session ends this long after sign-in


class EnforcementSettings(msgspec.Struct, frozen=True, kw_only=True):
    review_confidence: float = 0.6
    max_clock_skew_s: int = 300
    index_max_age_s: int = 26 * 3600
    max_delivery_delay_s: int = 6 * 3600


class StorageSettings(msgspec.Struct, frozen=True, kw_only=True):
    data_dir: Path
    database_path: Path  # the SQLite permit database (unless database_url is set)
    snapshot_dir: Path
    history_days: int = 30  # ended permits stay in the index this long

    @property
    def spool_dir(self) -> Path:
        return self.data_dir / "spool"

    @property
    def redis_dir(self) -> Path:
        return self.data_dir / "redis"

    @property
    def current_snapshot(self) -> Path:
        return self.snapshot_dir / "current.vidx"


class RedisSettings(msgspec.Struct, frozen=True, kw_only=True):
    url: str | None = None  # None: start our own (replica/redis_server.py); "off": no Redis
    prefix: str = "varco"
    max_memory: int = 2 << 30  # bytes; 0: no ceiling (enforcement/memory.py)
    memory_warn: float = 0.8  # share of the ceiling past which /readyz warns
    memory_poll_s: float = 2.0


class LoaderSettings(msgspec.Struct, frozen=True, kw_only=True):
    poll_s: float = 0.2
    snapshot_interval_s: float = 3600.0
    max_overlay: int = 20_000
    lease_ms: int = 500


class TransitLogSettings(msgspec.Struct, frozen=True, kw_only=True):
    spool_max_bytes: int = 1024 << 20
    write_timeout_s: float = 0.5
    dedup_window_s: int = 86400
    correction_window_s: int = 600


class RetentionSettings(msgspec.Struct, frozen=True, kw_only=True):
    allowed_s: int = 86400
    violations_s: int = 450 * 86400


class CameraHealthSettings(msgspec.Struct, frozen=True, kw_only=True):
    silence_s: int = 15 * 60
    unreadable_share: float = 0.5
    min_reads: int = 20
    clock_offset_s: int = 120


class ApiKey(msgspec.Struct, frozen=True):
    id: str  # what logs and audit records name; the key itself is never logged
    role: Role
    # The cameras a camera key may post for: a [cameras.ID] key its camera, an [[api_keys]]
    # entry its `cameras`. None: bound to none (admin keys; camera keys only in the demo).
    cameras: frozenset[str] | None = None

    @property
    def camera(self) -> str | None:
        """The one camera this key speaks for (what a vendor route needs), if it is one."""
        if self.cameras is not None and len(self.cameras) == 1:
            return next(iter(self.cameras))
        return None


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
    config_path: Path
    city_name: str
    demo: bool = False  # [city] demo: the demo configuration, never production
    server: ServerSettings
    enforcement: EnforcementSettings
    storage: StorageSettings
    database_url: str | None = None  # PostgreSQL permit database; None: SQLite (storage)
    redis: RedisSettings = RedisSettings()
    loader: LoaderSettings = LoaderSettings()
    transit_log: TransitLogSettings = TransitLogSettings()
    retention: RetentionSettings = RetentionSettings()
    console: ConsoleSettings = ConsoleSettings()
    camera_health: CameraHealthSettings = CameraHealthSettings()
    api_keys: dict[str, ApiKey] = {}  # sha256 hex of the key -> key id and role
    cameras: dict[str, Camera] = {}
    camera_tokens: dict[str, str] = {}  # sha256 hex of a URL token -> camera id
    camera_digests: dict[str, DigestHA1] = {}  # camera id -> its HTTP Digest HA1s
    circuit: Circuit | None = None
    sources: dict[str, Source] = {}


def hash_key(key: str) -> str:
    """How keys and tokens are stored and compared: their sha256 hex digest."""
    return hashlib.sha256(key.encode()).hexdigest()


def with_changes(settings: Settings, **changes: object) -> Settings:
    """A copy with some values changed: a section's as a dict of its fields
    (`with_changes(s, server={"port": 8081})`), others as they are (`cameras={...}`)."""
    out: dict[str, object] = {}
    for name, value in changes.items():
        current = getattr(settings, name)
        if isinstance(current, msgspec.Struct) and isinstance(value, dict):
            value = msgspec.structs.replace(current, **value)
        out[name] = value
    return msgspec.structs.replace(settings, **out)
