"""The [cameras.ID] configuration: gates, vendors, keys and URL tokens, devices, time zones
and Digest credentials, and the errors naming the key."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from enforcement.config.load import ConfigError, load_config
from enforcement.config.settings import DigestHA1, hash_key

from ..support.common import DEMO_CONFIG


def _config(tmp_path: Path, cameras: str) -> Path:
    """The demo configuration with `cameras` in place of its demo cameras."""
    text = DEMO_CONFIG.read_text(encoding="utf-8")
    start, end = text.index("# Demo cameras"), text.index("# API keys and their roles")
    path = tmp_path / "city.toml"
    path.write_text(text[:start] + text[end:] + cameras, encoding="utf-8")
    return path


def test_camera_config(tmp_path: Path) -> None:
    path = _config(
        tmp_path,
        f"""
[cameras.gate-3]
gate = "PD-03"
vendor = "milesight"
timezone = "Europe/Rome"
token_sha256 = "{hash_key("secret-token")}"

[cameras.gate-1]
gate = "PD-01"
vendor = "axis"
key = "axis-key"
device_id = "B8A44F000001"
""",
    )
    settings, _ = load_config(path, {"VARCO_DATA_DIR": str(tmp_path)})
    assert settings.camera_tokens == {hash_key("secret-token"): "gate-3"}
    assert settings.cameras["gate-1"].device_id == "B8A44F000001"
    assert settings.cameras["gate-1"].timezone == "Europe/Rome"  # the city's
    key = settings.api_keys[hash_key("axis-key")]
    assert (key.id, key.role, key.camera) == ("gate-1", "camera", "gate-1")


@pytest.mark.parametrize(
    ("section", "key", "reason"),
    [
        ('gate = "PD-09"\nvendor = "axis"\nkey = "k"', "cameras.c.gate", "unknown gate 'PD-09'"),
        ('gate = "PD-01"\nvendor = "nikon"\nkey = "k"', "cameras.c.vendor", "Invalid enum value"),
        ('gate = "PD-01"\nvendor = "axis"', "cameras.c", "give the camera's key"),
        (
            'gate = "PD-01"\nvendor = "axis"\nkey = "k"\ntimezone = "Mars/Base"',
            "cameras.c.timezone",
            "unknown time zone",
        ),
        (
            'gate = "PD-01"\nvendor = "axis"\ntoken = "t"\ntoken_sha256 = "ab"',
            "cameras.c",
            "not both",
        ),
        (
            'gate = "PD-01"\nvendor = "axis"\ntoken_sha256 = "xyz"',
            "cameras.c.token_sha256",
            "not a sha256",
        ),
        ('gate = "PD-01"\nvendor = "axis"\nkey = "demo-camera"', "cameras.c.key", "already used"),
        (
            'gate = "PD-01"\nvendor = "axis"\nkey = "k"\ncolour = "red"',
            "cameras.c",
            "unknown field",
        ),
        (
            'gate = "PD-01"\nvendor = "dahua"\ndigest_ha1 = "xyz"',
            "cameras.c.digest_ha1",
            "not 32 hex digits",
        ),
        (
            f'gate = "PD-01"\nvendor = "dahua"\ndigest_ha1 = "{"a" * 64}"',
            "cameras.c.digest_ha1",
            "the MD5 hex of 'c:varco:PASSWORD'",
        ),
        (
            f'gate = "PD-01"\nvendor = "dahua"\ndigest_ha1_sha256 = "{"a" * 32}"',
            "cameras.c.digest_ha1_sha256",
            "not 64 hex digits",
        ),
        (
            f'gate = "PD-01"\nvendor = "dahua"\ndigest_password = "p"\ndigest_ha1 = "{"a" * 32}"',
            "cameras.c",
            "not both",
        ),
        (
            'gate = "PD-01"\nvendor = "dahua"\ndigest_password = ""',
            "cameras.c.digest_password",
            "empty",
        ),
        (
            'gate = "PD-01"\nvendor = "native"\nkey = "k"\ndigest_password = "p"',
            "cameras.c",
            "Digest is for the vendor routes",
        ),
    ],
)
def test_camera_config_errors(tmp_path: Path, section: str, key: str, reason: str) -> None:
    path = _config(tmp_path, f"\n[cameras.c]\n{section}\n")
    with pytest.raises(ConfigError) as exc:
        load_config(path, {"VARCO_DATA_DIR": str(tmp_path)})
    assert exc.value.file == str(path)
    assert exc.value.key == key and reason in exc.value.reason, exc.value


def test_duplicate_token(tmp_path: Path) -> None:
    path = _config(
        tmp_path,
        """
[cameras.a]
gate = "PD-01"
vendor = "axis"
token = "same"

[cameras.b]
gate = "PD-02"
vendor = "axis"
token = "same"
""",
    )
    with pytest.raises(ConfigError) as exc:
        load_config(path, {"VARCO_DATA_DIR": str(tmp_path)})
    assert exc.value.key == "cameras.b.token" and "'a'" in exc.value.reason


def test_digest_config(tmp_path: Path) -> None:
    """HA1 as `printf %s 'cam-7:varco:PASSWORD' | md5sum` gives it; Digest alone suffices; the
    HA1s never show in the settings' repr."""
    md5 = hashlib.md5(b"cam-7:varco:PASSWORD").hexdigest()
    sha = hashlib.sha256(b"cam-7:varco:PASSWORD").hexdigest()
    path = _config(
        tmp_path,
        f"""
[cameras.cam-7]
gate = "PD-01"
vendor = "dahua"
digest_ha1 = "{md5.upper()}"
digest_ha1_sha256 = "{sha}"

[cameras.cam-8]
gate = "PD-02"
vendor = "hikvision"
digest_password = "PASSWORD"
""",
    )
    settings, _ = load_config(path, {"VARCO_DATA_DIR": str(tmp_path)})
    assert settings.camera_digests["cam-7"] == DigestHA1(md5, sha)
    assert settings.camera_digests["cam-8"] == DigestHA1(
        hashlib.md5(b"cam-8:varco:PASSWORD").hexdigest(),
        hashlib.sha256(b"cam-8:varco:PASSWORD").hexdigest(),
    )
    assert md5 not in repr(settings) and "PASSWORD" not in repr(settings)
    path = _config(
        tmp_path, '\n[cameras."a:b"]\ngate = "PD-01"\nvendor = "dahua"\ndigest_password = "p"\n'
    )
    with pytest.raises(ConfigError) as exc:
        load_config(path, {"VARCO_DATA_DIR": str(tmp_path)})
    assert exc.value.key == "cameras.a:b" and "without ':'" in exc.value.reason
