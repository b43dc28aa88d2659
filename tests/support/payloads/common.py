"""What every vendor payload shares: the city's time zone, a fake JPEG, and JSON bytes."""

from __future__ import annotations

import base64
import json
from typing import Any
from zoneinfo import ZoneInfo

ROME = ZoneInfo("Europe/Rome")
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 60 + b"\xff\xd9"
JPEG_B64 = base64.b64encode(JPEG).decode()


def dump(obj: Any) -> bytes:
    return json.dumps(obj).encode()
