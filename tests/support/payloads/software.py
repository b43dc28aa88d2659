"""Payloads of recognition software beside the cameras: Plate Recognizer (Snapshot and Stream
webhooks) and Rekor Scout / OpenALPR agents."""

from __future__ import annotations

import datetime as dt
from typing import Any

from .common import JPEG_B64, ROME


def platerecognizer_stream(
    plates: list[tuple[str, float]], at: dt.datetime, candidates: list[str] | None = None
) -> dict[str, Any]:
    """Plate Recognizer Stream webhook (event "recognition"); plates lower-case, scores 0-1."""
    stamp = at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    results = [
        {
            "box": {"xmin": 460, "ymin": 57, "xmax": 557, "ymax": 82},
            "plate": plate.lower(),
            "region": {"code": "it", "score": 0.913},
            "score": score,
            "candidates": [{"score": score, "plate": plate.lower()}]
            + [{"score": 0.5, "plate": c.lower()} for c in (candidates or [])],
            "dscore": 0.941,
            "vehicle": {
                "score": 0.867,
                "type": "Sedan",
                "box": {"xmin": 387, "ymin": 23, "xmax": 1493, "ymax": 577},
            },
            "direction": 40,
            "source_url": "rtsp://10.0.0.5/stream",
            "position_sec": 4,
        }
        for plate, score in plates
    ]
    return {
        "hook": {
            "target": "https://varco.example/v1/cameras/platerecognizer",
            "id": "camera-1",
            "event": "recognition",
            "filename": "camera-1_screenshots/26-11-22/10-00.jpg",
        },
        "data": {
            "camera_id": "camera-1",
            "filename": "camera-1_screenshots/26-11-22/10-00.jpg",
            "timestamp": stamp,
            "timestamp_local": at.astimezone(ROME).isoformat(" "),
            "results": results,
        },
    }


def platerecognizer_snapshot(plate: str, score: float, at: dt.datetime) -> dict[str, Any]:
    """Plate Recognizer Snapshot webhook (event "image.done")."""
    body = platerecognizer_stream([(plate, score)], at)
    body["hook"] = {
        "target": "https://varco.example/v1/cameras/platerecognizer",
        "id": 42,
        "event": "image.done",
        "filename": "1617_7M83K_car.jpg",
    }
    body["data"] = {
        "processing_time": 288.758,
        "results": body["data"]["results"],
        "filename": "1617_7M83K_car.jpg",
        "version": 1,
        "camera_id": "camera-1",
        "timestamp": body["data"]["timestamp"],
    }
    return body


def rekor_group(
    plate: str,
    at: dt.datetime,
    confidence: float = 92.07,
    preview: bool = False,
    candidates: list[str] | None = None,
    plate_index: int = 0,
) -> dict[str, Any]:
    """Rekor Scout alpr_group (version 2), as in the JSON Group Results documentation."""
    start = int(at.timestamp() * 1000)
    agent = "YYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYY"
    cands = [{"plate": plate, "confidence": confidence, "matches_template": 0}] + [
        {"plate": c, "confidence": 80.1, "matches_template": 0} for c in (candidates or [])
    ]
    uuids = [f"{agent}-1234-{start + d}" for d in ((0, 40) if preview else (39, 0, 72))]
    return {
        "version": 2,
        "data_type": "alpr_group",
        "epoch_start": start,
        "epoch_end": start + (400 if preview else 2975),
        "frame_start": 0,
        "frame_end": 8 if preview else 72,
        "company_id": "44c9274f-8d57-432a-8cd7-8c991f22ead3",
        "agent_uid": agent,
        "agent_version": "2.7.101",
        "agent_type": "alprd",
        "camera_id": 1234,
        "gps_latitude": 45.4064,
        "gps_longitude": 11.8768,
        "country": "eu",
        "uuids": uuids,
        "plate_indexes": [plate_index] * len(uuids),
        "candidates": cands,
        "vehicle_crop_jpeg": JPEG_B64,
        "best_plate": {
            "plate": plate,
            "confidence": confidence,
            "matches_template": 0,
            "plate_index": plate_index,
            "region": "it",
            "region_confidence": 57,
            "processing_time_ms": 96.94,
            "requested_topn": 10,
            "coordinates": [
                {"x": 204, "y": 134},
                {"x": 709, "y": 222},
                {"x": 658, "y": 500},
                {"x": 167, "y": 383},
            ],
            "plate_crop_jpeg": JPEG_B64,
            "candidates": cands,
        },
        "best_confidence": confidence,
        "best_plate_number": plate,
        "best_region": "it",
        "best_region_confidence": 57.28,
        "matches_template": False,
        "best_uuid": uuids[0],
        "best_uuid_epoch_ms": start,
        "best_image_width": 1920,
        "best_image_height": 1080,
        "travel_direction": 181.5,
        "is_parked": False,
        "is_preview": preview,
        "vehicle": {
            "color": [{"name": "silver-gray", "confidence": 83.2}],
            "make": [{"name": "fiat", "confidence": 71.0}],
            "body_type": [{"name": "sedan-standard", "confidence": 90.4}],
        },
    }


def rekor_results(plates: list[tuple[str, float]], at: dt.datetime) -> dict[str, Any]:
    """Rekor Scout alpr_results: one video frame."""
    epoch = int(at.timestamp() * 1000)
    return {
        "version": 2,
        "data_type": "alpr_results",
        "epoch_time": epoch,
        "img_width": 1920,
        "img_height": 1080,
        "processing_time_ms": 105.85,
        "uuid": f"YYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYY-1234-{epoch}",
        "camera_id": 1234,
        "agent_uid": "YYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYY",
        "site_id": "padova-erbe",
        "results": [
            {
                "plate": p,
                "confidence": c,
                "matches_template": 0,
                "plate_index": 0,
                "region": "it",
                "region_confidence": 40,
                "processing_time_ms": 47.0,
                "requested_topn": 10,
                "plate_crop_jpeg": JPEG_B64,
                "coordinates": [{"x": 3257, "y": 188}, {"x": 3467, "y": 194}],
                "candidates": [{"plate": p, "confidence": c, "matches_template": 0}],
            }
            for p, c in plates
        ],
    }


def rekor_heartbeat(at: dt.datetime) -> dict[str, Any]:
    return {
        "version": 1,
        "data_type": "heartbeat",
        "company_id": "xxxxxxxx-yyyy-yyyy-yyyy-zzzzzzzzzzzz",
        "site_id": "padova-erbe",
        "timestamp": int(at.timestamp() * 1000),
        "system_uptime_seconds": 2595123,
        "daemon_uptime_seconds": 2594832,
        "internal_ip_address": "192.168.0.54",
        "cpu_cores": 2,
        "cpu_last_update": 1453426302097,
        "cpu_usage_percent": 29.2,
        "disk_quota_total_bytes": 8000000000,
        "disk_quota_consumed_bytes": 1000000000,
        "video_streams": [
            {
                "camera_id": 1234,
                "fps": 12,
                "is_streaming": True,
                "url": "rtsp://10.0.0.7/h264",
                "last_plate_read": 1453426300097,
            }
        ],
    }
