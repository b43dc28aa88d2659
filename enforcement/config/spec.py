"""The configuration file as a city writes it: one msgspec struct per TOML section.

Unknown keys are errors, so a misspelt key never silently falls back to a default. Each value
is checked where it is declared: by its type (durations, times of day, dates and digests are
types of values.py, read as the file is decoded) or, where fields must agree with one another,
in the section's `__post_init__`. What needs the whole file (a gate's zone must exist) is
checked in load.py.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from typing import Annotated

import msgspec

from ..core.rules import HolidayMode, Window
from .settings import CameraVendor, Role, SourceKind
from .values import (
    ByteSize,
    MaxDuration,
    MonthDay,
    PositiveSeconds,
    Seconds,
    TimeZoneName,
    parse_window,
)


class _Section(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A table of the file: unknown keys are errors."""


class WindowSpec(_Section, kw_only=True):
    days: str = "mon-sun"
    # `from` and `to` in the file; renamed because they are Python keywords.
    start: str = msgspec.field(name="from")
    end: str = msgspec.field(name="to")

    def __post_init__(self) -> None:
        self.window()  # raises ValueError: msgspec names this window's key

    def window(self) -> Window:
        return parse_window(self.days, self.start, self.end)


class SuspensionSpec(_Section, kw_only=True):
    start: MonthDay = msgspec.field(name="from")
    end: MonthDay = msgspec.field(name="to")


class CitySpec(_Section, kw_only=True):
    name: str = "Varco"
    timezone: TimeZoneName = TimeZoneName("Europe/Rome")
    patron_saint: MonthDay | None = None  # e.g. "06-13" for Sant'Antonio in Padova
    extra_holidays: list[dt.date] = []
    # The demo configuration (examples/demo.toml), never production: a camera key bound to no
    # camera is accepted (with a warning at start-up) and may post for any well-formed camera
    # id, registered or not. Outside the demo every camera key is bound to its cameras.
    demo: bool = False


class ServerSpec(_Section, kw_only=True):
    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 8080
    max_body_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 1 << 20
    max_batch: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 1000
    snapshot_poll_s: Annotated[float, msgspec.Meta(gt=0)] = 1.0
    # Vendor camera posts carry pictures (multipart parts, base64 in JSON): a larger cap,
    # read as a stream; pictures are discarded as they arrive, never stored.
    max_camera_body_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 8 << 20
    # Every phase of a connection is bounded. A request's line and headers must arrive within
    # header_timeout of its first byte; its body within body_timeout of its headers; an idle
    # connection (or one that never completes a request) is closed after keepalive_timeout.
    header_timeout: PositiveSeconds = PositiveSeconds(10)
    body_timeout: PositiveSeconds = PositiveSeconds(30)
    keepalive_timeout: PositiveSeconds = PositiveSeconds(15)
    # Open connections per process; past it a new one is answered 503 and closed.
    max_connections: Annotated[int, msgspec.Meta(ge=1)] = 1000
    # Admission (enforcement/http/admission.py): requests handled at once per process; a
    # request that would wait longer than max_queue_wait_ms to start (for a slot, or behind
    # an event loop that late: the process short of CPU) is answered 503 with Retry-After
    # (retry_after). 0: no waiting for a slot, no loop-lag bound.
    max_in_flight: Annotated[int, msgspec.Meta(ge=1)] = 256
    max_queue_wait_ms: Annotated[int, msgspec.Meta(ge=0)] = 20
    # The in-flight limit adapts (up to max_in_flight) to keep the p90 of the requests'
    # latency (from their first bytes) within target_latency_ms (0: the limit is
    # max_in_flight, fixed); it is cut only while it limits (admission.py).
    target_latency_ms: Annotated[float, msgspec.Meta(ge=0)] = 10.0
    retry_after: PositiveSeconds = PositiveSeconds(1)
    # Requests per second per API key (vendor camera routes: per camera) and process
    # (0: no limit), with bursts of key_burst; past it 429 with Retry-After.
    key_rate: Annotated[float, msgspec.Meta(ge=0)] = 0.0
    key_burst: Annotated[int, msgspec.Meta(ge=1)] = 100
    # Reverse proxies (addresses or networks, "10.0.0.0/8") whose X-Forwarded-Proto is
    # believed, so that a session cookie is Secure behind a proxy that terminates TLS.
    trusted_proxies: list[str] = []

    def __post_init__(self) -> None:
        for i, net in enumerate(self.trusted_proxies):
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError:
                raise ValueError(
                    f"trusted_proxies[{i}]: {net[:60]!r} is not an address or network"
                ) from None


class EnforcementSpec(_Section, kw_only=True):
    # Reads below this confidence (0-1) are `review` unless a permit covers them anyway.
    review_confidence: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.6
    # A transit stamped further in the future than this means the camera clock is wrong.
    max_clock_skew: Seconds = Seconds(300)
    # An index older than this cannot back a `pending` verdict (it may miss new permits).
    index_max_age: Seconds = Seconds(26 * 3600)
    # A transit received longer than this after its capture instant, and covered by no
    # permit, is `review` (`late_delivery`), never `pending`. Longer values are accepted (to
    # replay an archive), knowing that they let a delayed or forged post become a fine.
    max_delivery_delay: Seconds = Seconds(6 * 3600)


class StorageSpec(_Section, kw_only=True):
    data_dir: str = "data"
    database: str = "permits.sqlite"  # relative to data_dir
    snapshot_dir: str = "snapshots"  # relative to data_dir
    # Ended permits stay in the index this long, to judge late re-uploads and police queries.
    history_days: Annotated[int, msgspec.Meta(ge=0)] = 30


class DatabaseSpec(_Section, kw_only=True):
    # A PostgreSQL permit database ("postgresql://user@host/db"); unset: SQLite in data_dir.
    # DATABASE_URL in the environment wins, and keeps a password out of the file.
    url: str | None = None


class RedisSpec(_Section, kw_only=True):
    # Unset: Varco starts its own Redis under data_dir. "off": no Redis (one machine, snapshot
    # files only, no live permit changes). REDIS_URL in the environment wins.
    url: str | None = None
    prefix: str = "varco"  # key prefix, so one Redis can serve several cities
    # Redis's memory ceiling ("2gb", or bytes; "0": none). Varco's own Redis is started with
    # it as `maxmemory` and `noeviction`, so at the ceiling writes are refused, never evidence
    # evicted; an external Redis's own `maxmemory` is the ceiling, this one only where it has
    # none (watched, not enforced). Each recorded transit costs 400-520 bytes for a day.
    max_memory: ByteSize = ByteSize(2 << 30)
    # Past this share of the ceiling /readyz warns (the replica stays ready).
    memory_warn: Annotated[float, msgspec.Meta(gt=0, lt=1)] = 0.8
    # How often each process reads Redis's INFO memory (one short reply).
    memory_poll_s: Annotated[float, msgspec.Meta(gt=0, le=60)] = 2.0


class LoaderSpec(_Section, kw_only=True):
    poll_s: Annotated[float, msgspec.Meta(gt=0, le=60)] = 0.2  # permit database tail interval
    snapshot_interval: Seconds = Seconds(3600)  # a fresh snapshot at least this often
    # ... and sooner once this many changes were streamed (replicas hold them in memory).
    max_overlay: Annotated[int, msgspec.Meta(ge=1)] = 20_000
    # The active loader's lease, renewed every fifth of it: a standby takes over within it
    # after the active one dies (permits issued meanwhile wait that long).
    lease_ms: Annotated[int, msgspec.Meta(ge=100, le=60_000)] = 500


class TransitLogSpec(_Section, kw_only=True):
    # When Redis cannot take a transit (down, slow, or not durable) it goes to a local fsynced
    # spool; a full spool answers 503 with Retry-After rather than dropping anything.
    spool_max_mb: Annotated[int, msgspec.Meta(ge=1)] = 1024
    write_timeout_ms: Annotated[int, msgspec.Meta(ge=10, le=60_000)] = 500
    # A camera's retry within this gets the first verdict back.
    dedup_window: PositiveSeconds = PositiveSeconds(86400)
    # A read of the same camera event with another plate within this of the standing read
    # corrects it (Axis updates, Rekor groups, a native camera's correction); later, the
    # camera reused the event id for another passage.
    correction_window: PositiveSeconds = PositiveSeconds(600)


class ConsoleSpec(_Section, kw_only=True):
    # Sign-in sessions (POST /v1/session): one unused this long ends, and any ends this long
    # after sign-in, used or not.
    session_idle: PositiveSeconds = PositiveSeconds(30 * 60)
    session_max: PositiveSeconds = PositiveSeconds(12 * 3600)

    def __post_init__(self) -> None:
        if self.session_idle > self.session_max:
            raise ValueError("session_idle is longer than session_max")


class RetentionSpec(_Section, kw_only=True):
    # Records of allowed, not enforced and discarded transits.
    allowed: PositiveSeconds = PositiveSeconds(86400)
    # Confirmed violations and the review queue.
    violations: PositiveSeconds = PositiveSeconds(450 * 86400)


class CameraHealthSpec(_Section, kw_only=True):
    # A camera that sends nothing this long while its gate is active is `silent` (an alarm).
    silence: PositiveSeconds = PositiveSeconds(15 * 60)
    # An hour with at least min_reads reads, this share of them unreadable: `unreadable`.
    unreadable_share: Annotated[float, msgspec.Meta(gt=0, le=1)] = 0.5
    min_reads: Annotated[int, msgspec.Meta(ge=1)] = 20
    # The hour's mean of arrival minus capture beyond this either way: `clock_offset`.
    clock_offset: PositiveSeconds = PositiveSeconds(120)


class ZoneSpec(_Section, kw_only=True):
    name: str = ""
    grace: Seconds = Seconds(72 * 3600)
    covers: list[str] = []


class GateSpec(_Section, kw_only=True):
    zone: str
    name: str = ""
    schedule: list[WindowSpec] | None = None  # None: active around the clock
    holidays: HolidayMode = HolidayMode.NORMAL
    suspended: list[SuspensionSpec] = []


class TypeSpec(_Section, kw_only=True):
    name: str = ""
    zones: list[str]
    windows: list[WindowSpec] | None = None  # None: no time-slot restriction
    holidays: HolidayMode = HolidayMode.NORMAL
    max_duration: MaxDuration = MaxDuration("unlimited")
    cude: bool = False


class ApiKeySpec(_Section, kw_only=True):
    id: str
    role: Role
    key: str | None = None  # plain text (demo); prefer key_sha256 in production
    key_sha256: str | None = None  # checked in access.py, after "exactly one of"
    # role camera: the [cameras.ID] it may post for (a gateway posting for several cameras);
    # required outside the demo, checked against [cameras] in access.py.
    cameras: list[str] | None = None

    def __post_init__(self) -> None:
        if (self.key is None) == (self.key_sha256 is None):
            raise ValueError("give exactly one of key or key_sha256")


class CircuitSpec(_Section, kw_only=True):
    # A regional circuit (Veneto's ZTL network, ViviPass): passes of any member comune count
    # in our zones for the permit types they map to.
    name: str = ""
    comuni: list[str]  # cadastral codes of the member comuni ("L736")
    types: dict[str, str]  # the circuit's pass type -> our permit type


class CameraSpec(_Section, kw_only=True):
    gate: str  # the only gate this camera may post for
    vendor: CameraVendor
    # Local time of timestamps sent without an offset (Milesight, Dahua, some Axis and
    # Hikvision firmware); default the city's.
    timezone: TimeZoneName | None = None
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

    def __post_init__(self) -> None:
        for what in ("key", "token"):
            if getattr(self, what) is not None and getattr(self, f"{what}_sha256") is not None:
                raise ValueError(f"give one of {what} or {what}_sha256, not both")
        ha1 = self.digest_ha1 is not None or self.digest_ha1_sha256 is not None
        if self.digest_password is not None and ha1:
            raise ValueError("give digest_password or digest_ha1 / digest_ha1_sha256, not both")
        if self.vendor == "native" and (ha1 or self.digest_password is not None):
            raise ValueError(
                "Digest is for the vendor routes: a native camera posts to "
                "/v1/transits with its key"
            )


class SourceSpec(_Section, kw_only=True):
    kind: SourceKind
    path: str | None = None  # the export to read (csv kinds), relative to this file
    url: str | None = None  # regional_http: the feed's first page
    # regional_http: the environment variable holding its bearer token (kept out of the file)
    token_env: str | None = None
    schedule: Seconds = Seconds(3600)  # how often `varco watch` syncs it (when it changed)
    # A complete export that would close more than this share of the source's permits is held
    # for an operator (`varco sync --accept-shrink`): a truncated export must not end permits.
    max_close: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.05
    type: str | None = None  # cude_csv: the permit type of CUDE badges (cude = true)
    max_age: Seconds = Seconds(26 * 3600)  # no good sync for longer: a warning in /readyz


class ConfigFile(_Section, kw_only=True):
    city: CitySpec = msgspec.field(default_factory=CitySpec)
    server: ServerSpec = msgspec.field(default_factory=ServerSpec)
    enforcement: EnforcementSpec = msgspec.field(default_factory=EnforcementSpec)
    storage: StorageSpec = msgspec.field(default_factory=StorageSpec)
    database: DatabaseSpec = msgspec.field(default_factory=DatabaseSpec)
    redis: RedisSpec = msgspec.field(default_factory=RedisSpec)
    loader: LoaderSpec = msgspec.field(default_factory=LoaderSpec)
    transit_log: TransitLogSpec = msgspec.field(default_factory=TransitLogSpec)
    retention: RetentionSpec = msgspec.field(default_factory=RetentionSpec)
    console: ConsoleSpec = msgspec.field(default_factory=ConsoleSpec)
    camera_health: CameraHealthSpec = msgspec.field(default_factory=CameraHealthSpec)
    zones: dict[str, ZoneSpec]
    gates: dict[str, GateSpec]
    types: dict[str, TypeSpec]
    api_keys: list[ApiKeySpec] = []
    circuit: CircuitSpec | None = None
    sources: dict[str, SourceSpec] = {}
    cameras: dict[str, CameraSpec] = {}
