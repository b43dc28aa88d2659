"""bench.bench_cameras's posts: each endpoint's path, key and documented payload (native and
every vendor's), posts that are each a new event, and the wrk scripts that send them."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any


def post_builders() -> dict[str, tuple[str, str, Callable[[str, dt.datetime], Any]]]:
    """vendor -> (path, Authorization header, (plate, instant) -> JSON body)."""
    from tests.support import payloads as p

    def native(plate: str, at: dt.datetime) -> Any:
        # The whole instant: posts run back in time by the minute, past a day with --log
        # (an id by hour and minute only came round again after 1,440 minutes of posts, and
        # the log answered native's later runs as retries, which cost less).
        return {
            "event_id": f"bench-{plate}-{at:%Y%m%dT%H%M%S.%f}",
            "camera": "cam-1",
            "gate": "PD-03",
            "plate": plate,
            "ts": at.isoformat(),
            "confidence": 0.92,
        }

    return {
        "native": ("/v1/transits", "Bearer demo-camera", native),
        "hikvision": ("/v1/cameras/hikvision", "Bearer demo-hikvision", p.hikvision_json),
        "axis": (
            "/v1/cameras/axis",
            "Bearer demo-axis",
            lambda plate, at: p.axis_event(plate, at, car_id=f"{abs(hash(plate))}{at:%H%M}"),
        ),
        "milesight": ("/v1/cameras/milesight", "Bearer demo-milesight", p.milesight),
        "platerecognizer": (
            "/v1/cameras/platerecognizer",
            "Bearer demo-platerecognizer",
            lambda plate, at: p.platerecognizer_stream([(plate, 0.9)], at),
        ),
        "rekor": ("/v1/cameras/rekor", "Bearer demo-rekor", p.rekor_group),
        "dahua": ("/NotificationInfo/TollgateInfo", "Bearer demo-dahua", p.dahua),
    }


def unique_bodies(
    build: Callable[[str, dt.datetime], Any],
    plates: list[str],
    at: dt.datetime,
    first: int,
    count: int,
) -> list[bytes]:
    """Posts `first` to `first + count` of an endpoint: each a new event (its plate and
    capture minute, going back from `at`), never a retry of another. (The milliseconds tell
    Rekor's groups apart: its event id has no plate.)"""
    n = len(plates)
    return [
        json.dumps(
            build(plates[k % n], at - dt.timedelta(minutes=1 + k // n, milliseconds=k % n)),
            separators=(",", ":"),
        ).encode()
        for k in range(first, first + count)
    ]


# Both scripts format every request once, before wrk starts its clock, and then only hand
# them out: wrk.format per request (headers and body concatenated in Lua) cost wrk's core
# time in proportion to the body, and that core also runs Redis with --log, so larger vendor
# bodies slowed the load and the log, not just the server under test.


def _lua(url_path: str, auth: str, loop: str) -> str:
    """A wrk script posting, in order and round again, the bodies the Lua `loop` header
    (`for body in ... do`) walks in init(), each request formatted there."""
    return f"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "{auth}"
local requests = {{}}
init = function(args)
  {loop}
    requests[#requests + 1] = wrk.format(nil, "{url_path}", nil, body)
  end
end
local i = 0
request = function()
  i = (i % #requests) + 1
  return requests[i]
end
"""


def lua_file_script(path: Path, url_path: str, auth: str) -> None:
    """A wrk script posting the lines of the file named by its first argument."""
    path.write_text(_lua(url_path, auth, "for body in io.lines(args[1]) do"))


def lua_script(path: Path, url_path: str, auth: str, bodies: list[str]) -> None:
    """A wrk script posting `bodies`."""
    lua_bodies = ",\n".join("[=[" + b + "]=]" for b in bodies)  # level-1: JSON may hold "]]"
    path.write_text(
        f"local bodies = {{ {lua_bodies} }}\n"
        + _lua(url_path, auth, "for _, body in ipairs(bodies) do")
    )
