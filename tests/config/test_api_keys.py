"""Camera keys bound to the cameras they speak for: `[[api_keys]] cameras`, the demo's unbound
key (`[city] demo = true`), and the camera id's shape; the errors naming file, key and reason
(the service's side: tests/http/test_integrity.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from enforcement.config.load import ConfigError, load_config
from enforcement.config.settings import hash_key

from ..support.common import DEMO_CONFIG, GATEWAY


def city(tmp_path: Path, *, demo: bool, camera_key: str = "", extra: str = "") -> Path:
    """The demo configuration, with or without `[city] demo = true`, the shared camera key's
    entry followed by `camera_key` lines, and `extra` sections."""
    text = DEMO_CONFIG.read_text(encoding="utf-8")
    assert "\ndemo = true\n" in text
    if not demo:
        text = text.replace("\ndemo = true\n", "\n")
    entry = 'id = "demo-camera"\nrole = "camera"\nkey = "demo-camera"'
    assert entry in text
    text = text.replace(entry, entry.replace('"\nkey', '"\n' + camera_key + "\nkey"))
    path = tmp_path / "city.toml"
    path.write_text(text + extra, encoding="utf-8")
    return path


def load(path: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    return load_config(path, {"VARCO_DATA_DIR": str(tmp_path / "data")})


def refused(path: Path, tmp_path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as exc:
        load(path, tmp_path)
    assert exc.value.file == str(path)
    return exc.value


def test_an_unbound_camera_key_is_refused_outside_the_demo(tmp_path: Path) -> None:
    error = refused(city(tmp_path, demo=False), tmp_path)
    assert error.key == "api_keys[0]"
    assert "'demo-camera' is bound to no camera" in error.reason
    assert 'cameras = ["ID", ...]' in error.reason and "demo = true" in error.reason
    settings, _ = load(city(tmp_path, demo=True), tmp_path)  # the demo accepts it
    assert settings.demo
    key = settings.api_keys[hash_key("demo-camera")]
    assert (key.role, key.cameras, key.camera) == ("camera", None, None)


def test_a_key_bound_to_cameras(tmp_path: Path) -> None:
    """Bound to cameras that have no credentials of their own (a gateway posts for them)."""
    path = city(tmp_path, demo=False, camera_key='cameras = ["gw-1", "gw-2"]', extra=GATEWAY)
    settings, _ = load(path, tmp_path)
    assert not settings.demo
    key = settings.api_keys[hash_key("demo-camera")]
    assert key.cameras == frozenset({"gw-1", "gw-2"}) and key.camera is None
    gw1 = GATEWAY[: GATEWAY.index("[cameras.gw-2]")]
    path = city(tmp_path, demo=False, camera_key='cameras = ["gw-1"]', extra=gw1)
    assert load(path, tmp_path)[0].api_keys[hash_key("demo-camera")].camera == "gw-1"
    # A [cameras.ID] key is bound to its camera, whatever the mode.
    native = settings.api_keys[hash_key("demo-native")]
    assert (native.cameras, native.camera) == (frozenset({"cam-native"}), "cam-native")
    # A camera with no credentials, for which no key posts, is still an error.
    path = city(tmp_path, demo=False, camera_key='cameras = ["gw-1"]', extra=GATEWAY)
    error = refused(path, tmp_path)
    assert error.key == "cameras.gw-2" and "give the camera's key" in error.reason
    assert "[[api_keys]] entry's cameras" in error.reason
    error = refused(city(tmp_path, demo=False, extra=GATEWAY), tmp_path)
    assert error.key == "api_keys[0]"  # (the unbound key comes first)


@pytest.mark.parametrize(
    ("camera_key", "key", "reason"),
    [
        ('cameras = ["gw-1", "gw-9"]', "api_keys[0].cameras[1]", "unknown camera 'gw-9'"),
        ('cameras = ["gw-1", "gw-1"]', "api_keys[0].cameras[1]", "listed twice"),
        ("cameras = []", "api_keys[0].cameras", "empty"),
        ('cameras = "gw-1"', "api_keys[0].cameras", "Expected `array | null`, got `str`"),
    ],
)
def test_binding_errors(tmp_path: Path, camera_key: str, key: str, reason: str) -> None:
    for demo in (False, True):  # a binding that is given is checked in the demo too
        path = city(tmp_path, demo=demo, camera_key=camera_key, extra=GATEWAY)
        error = refused(path, tmp_path)
        assert error.key == key and reason in error.reason, error


def test_only_camera_keys_are_bound(tmp_path: Path) -> None:
    text = city(tmp_path, demo=True).read_text(encoding="utf-8")
    police = 'id = "demo-police"\nrole = "police"\n'
    path = tmp_path / "police.toml"
    path.write_text(
        text.replace(police, police + 'cameras = ["cam-native"]\n'),
        encoding="utf-8",
    )
    error = refused(path, tmp_path)
    assert error.key == "api_keys[1].cameras" and "not a police key" in error.reason


@pytest.mark.parametrize("cid", ['"=HYPERLINK(1)"', '"cam 1"', '"-cam"', '"a\\tb"', "c" * 65])
def test_camera_ids_are_plain(tmp_path: Path, cid: str) -> None:
    """A camera id names the camera in records, the fines office's CSV and Digest user names:
    no free text, whatever the mode."""
    section = f'\n[cameras.{cid}]\ngate = "PD-01"\nvendor = "axis"\nkey = "k"\n'
    error = refused(city(tmp_path, demo=True, extra=section), tmp_path)
    assert error.key.startswith("cameras.") and "a camera id is 1 to 64 letters" in error.reason


def test_the_production_example_loads_outside_the_demo() -> None:
    settings, _ = load_config(DEMO_CONFIG.parent / "padova.toml")
    assert not settings.demo
    cameras = {k.id: k.cameras for k in settings.api_keys.values() if k.role == "camera"}
    assert cameras["camera-1"] == frozenset({"PD-01-VMS", "PD-02-VMS"})
    assert None not in cameras.values()
