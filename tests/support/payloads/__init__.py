"""Vendor payloads as the vendors document them (field names exact), with the plate, capture
instant and confidence as parameters. Pictures are a few bytes of fake JPEG: Varco never
looks at them. Tests use them as `payloads.<vendor function>`."""

from .common import JPEG, JPEG_B64, ROME, dump
from .onboard import axis_event, dahua, hikvision_json, hikvision_xml, milesight
from .software import (
    platerecognizer_snapshot,
    platerecognizer_stream,
    rekor_group,
    rekor_heartbeat,
    rekor_results,
)

__all__ = [
    "JPEG",
    "JPEG_B64",
    "ROME",
    "axis_event",
    "dahua",
    "dump",
    "hikvision_json",
    "hikvision_xml",
    "milesight",
    "platerecognizer_snapshot",
    "platerecognizer_stream",
    "rekor_group",
    "rekor_heartbeat",
    "rekor_results",
]
