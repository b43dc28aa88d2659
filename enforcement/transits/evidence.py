"""Evidence references and alternative reads, from the vendor fields a transit record keeps.

Varco stores no pictures; the camera (or its vendor's server) does. What a person needs to find
them is the vendor's own reference, already among the fields an adapter keeps on the record
(`TransitRecord.vendor`, enforcement/http/cameras/*): Rekor's best frame uuid, Hikvision's
event UUID, Plate Recognizer's file name, Axis's camera serial and car id, or a picture URL
where a payload carries one. The reference is a URL (http/https) or `vendor:id`; None when the
payload has none (native posts, Milesight, Dahua).

The kept fields are recognised by their shape, not by the camera's configured vendor: a record
is read long after its camera may have been reconfigured, and a violation is confirmed by the
follow-up, which has no camera registry. Vendor text is cut and stripped of control
characters: it reaches JSON answers and the fines office's CSV.
"""

from __future__ import annotations

import unicodedata
from typing import Any, Final

import msgspec

MAX_REFERENCE: Final = 300
_URL_KEYS: Final = ("pictureurl", "picture_url", "imageurl", "image_url", "snapshot_url")


def kept_fields(vendor: msgspec.Raw | object) -> dict[str, Any] | None:
    """A record's kept vendor fields as plain values (None: a native transit, or unreadable)."""
    try:
        if isinstance(vendor, msgspec.Raw):
            value = msgspec.msgpack.decode(vendor)
        else:
            value = msgspec.to_builtins(vendor)
    except (msgspec.MsgspecError, TypeError):
        return None
    return value if isinstance(value, dict) else None


def _text(value: object) -> str | None:
    if not isinstance(value, str | int) or isinstance(value, bool):
        return None
    text = "".join(c for c in str(value) if unicodedata.category(c) not in ("Cc", "Cs", "Zl", "Zp"))
    text = text.strip()[:MAX_REFERENCE]
    return text or None


def evidence_of(kept: dict[str, Any] | None) -> str | None:
    """The reference to the transit's pictures at the camera or its vendor, if any."""
    if not kept:
        return None
    for key, value in kept.items():  # a picture URL, whichever vendor sends one
        text = _text(value)
        if str(key).lower() in _URL_KEYS and text and text.startswith(("http://", "https://")):
            return text
    if (uuid := _text(kept.get("best_uuid"))) is not None:  # Rekor: the best frame
        return f"rekor:{uuid}"
    if (uuid := _text(kept.get("UUID"))) is not None:  # Hikvision ISAPI: the event
        return f"hikvision:{uuid}"
    if "hook.event" in kept and (name := _text(kept.get("filename"))) is not None:
        return f"platerecognizer:{name}"  # Plate Recognizer Stream: the saved picture
    if (car := _text(kept.get("carID"))) is not None:  # Axis: the camera's own car id
        info = kept.get("camera_info")
        serial = _text(info.get("SerialNumber")) if isinstance(info, dict) else None
        return f"axis:{serial}/{car}" if serial else f"axis:{car}"
    return None


def alternatives_of(kept: dict[str, Any] | None) -> list[str]:
    """The camera's alternative reads as it sent them (Rekor's and Plate Recognizer's
    candidates), best first; [] when it sent none."""
    if not kept:
        return []
    candidates = kept.get("candidates")
    result = kept.get("result")
    if not candidates and isinstance(result, dict):
        candidates = result.get("candidates")
    if not isinstance(candidates, list):
        return []
    out = []
    for c in candidates[:10]:
        plate = _text(c.get("plate")) if isinstance(c, dict) else None
        if plate is not None and plate not in out:
            out.append(plate)
    return out
