"""Vendor payloads as the vendors document them (field names exact), with the plate, capture
instant and confidence as parameters. Pictures are a few bytes of fake JPEG: Varco never
looks at them."""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any
from zoneinfo import ZoneInfo

ROME = ZoneInfo("Europe/Rome")
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 60 + b"\xff\xd9"
JPEG_B64 = base64.b64encode(JPEG).decode()


def hikvision_xml(plate: str, at: dt.datetime, confidence: int = 93, country: str = "Italy",
                  retransmission: bool = False, event_type: str = "ANPR",
                  namespace: str = "http://www.hikvision.com/ver20/XMLSchema") -> bytes:  # fmt: skip
    """ISAPI EventNotificationAlert, eventType ANPR (as pushed to an HTTP listening host)."""
    xmlns = f' xmlns="{namespace}"' if namespace else ""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<EventNotificationAlert version="2.0"{xmlns}>
<ipAddress>10.10.10.243</ipAddress>
<portNo>80</portNo>
<protocol>HTTP</protocol>
<macAddress>68:6d:bc:7d:9e:27</macAddress>
<channelID>1</channelID>
<dateTime>{at.isoformat()}</dateTime>
<activePostCount>2</activePostCount>
<eventType>{event_type}</eventType>
<eventState>active</eventState>
<eventDescription>ANPR alarm</eventDescription>
<channelName>Piazza delle Erbe</channelName>
<ANPR>
<country>{country}</country>
<licensePlate>{plate}</licensePlate>
<line>1</line>
<direction>forward</direction>
<confidenceLevel>{confidence}</confidenceLevel>
<plateType>unknown</plateType>
<plateColor>white</plateColor>
<licenseBright>0</licenseBright>
<pilotsafebelt>unknown</pilotsafebelt>
<vehicleType>vehicle</vehicleType>
<detectDir>8</detectDir>
<pictureInfoList>
<pictureInfo>
<fileName>licensePlatePicture.jpg</fileName>
<type>licensePlatePicture</type>
<dataType>0</dataType>
<plateRect><X>408</X><Y>470</Y><width>149</width><height>31</height></plateRect>
</pictureInfo>
</pictureInfoList>
<originalLicensePlate>{plate}</originalLicensePlate>
<vehicleListName>otherList</vehicleListName>
</ANPR>
<UUID>a5e1c6f2-3a1b-11b2-8e7c-686dbc7d9e27</UUID>
<picNum>2</picNum>
<isDataRetransmission>{str(retransmission).lower()}</isDataRetransmission>
</EventNotificationAlert>
""".encode()


def hikvision_json(plate: str, at: dt.datetime, confidence: int = 93) -> dict[str, Any]:
    """The same event in ISAPI's JSON form."""
    return {
        "ipAddress": "10.10.10.243", "portNo": 80, "protocol": "HTTP",
        "macAddress": "68:6d:bc:7d:9e:27", "channelID": 1, "dateTime": at.isoformat(),
        "activePostCount": 1, "eventType": "ANPR", "eventState": "active",
        "eventDescription": "ANPR alarm", "channelName": "Piazza delle Erbe",
        "ANPR": {"country": "Italy", "licensePlate": plate, "line": 1, "direction": "forward",
                 "confidenceLevel": confidence, "plateType": "unknown", "plateColor": "white",
                 "vehicleType": "vehicle", "detectDir": 8},
        "isDataRetransmission": False,
    }  # fmt: skip


def axis_event(plate: str, at: dt.datetime, confidence: str = "0.92", car_id: str = "1234",
               state: str = "new", with_offset: bool = False) -> dict[str, Any]:  # fmt: skip
    """AXIS License Plate Verifier event JSON (FF Group protocol 1.6). Devices send `carState`
    `new`, `update` and `lost` (captured/axis-lpv-*.json; FF Group's field table says
    `updated`), all scalars as strings."""
    local = at.astimezone(ROME)
    stamp = local.strftime("%Y%m%d %H%M%S") + f"{local.microsecond // 1000:03d}"
    if with_offset:
        stamp += local.strftime("%z")
    return {
        "packetCounter": "1061", "datetime": stamp,
        "plateText": plate,
        "plateUnicode": plate, "plateUTF8": plate, "plateASCII": plate,
        "plateCountry": "ITA", "plateRegion": "", "plateConfidence": confidence,
        "carState": state, "geotag": {"lat": 45.4064, "lon": 11.8768}, "imageType": "plate",
        "plateImageType": "jpeg", "plateImageSize": str(len(JPEG)), "carMoveDirection": "in",
        "timeProcessing": "12", "plateCoordinates": [812, 490, 161, 38], "carID": car_id,
        "sensorProviderID": "PD-03 Erbe", "roiID": "1",
        "capture_timestamp": str(int(at.timestamp() * 1000)),
        "vehicle_info": {"type": "car", "color": "gray", "make": "Fiat", "model": "Panda"},
        "camera_info": {"SerialNumber": "B8A44F000001", "ProdShortName": "AXIS P1465-LE-3"},
    }  # fmt: skip


def milesight(plate: str, at: dt.datetime, confidence: str = "92") -> dict[str, str]:
    """Milesight LPR HTTP post: every value a string, "-" missing, local time, a spaced key."""
    local = at.astimezone(ROME)
    return {
        "device": "Network Camera", "time": local.strftime("%Y-%m-%d %H:%M:%S"),
        "time_msec": local.strftime("%Y-%m-%d %H:%M:%S.") + f"{local.microsecond // 1000:03d}",
        "plate": plate, "type": "Visitor", "speed": "-", "direction": "Approach",
        "detection_region": "1", "region": "ITA", "resolution_width": "1920",
        "resolution_height": "1080", "coordinate_x1": "1112", "coordinate_y1": "626",
        "coordinate_x2": "1246", "coordinate_y2": "654", "confidence": confidence,
        "plate_color": "White", "vehicle_type": "Car", "vehicle_color": "Gray",
        "Vehicle Brand": "-", "plate_image": JPEG_B64, "full_image": JPEG_B64,
    }  # fmt: skip


def platerecognizer_stream(plates: list[tuple[str, float]], at: dt.datetime,
                           candidates: list[str] | None = None) -> dict[str, Any]:  # fmt: skip
    """Plate Recognizer Stream webhook (event "recognition"); plates lower-case, scores 0-1."""
    stamp = at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    results = [{
        "box": {"xmin": 460, "ymin": 57, "xmax": 557, "ymax": 82},
        "plate": plate.lower(), "region": {"code": "it", "score": 0.913}, "score": score,
        "candidates": [{"score": score, "plate": plate.lower()}] + [
            {"score": 0.5, "plate": c.lower()} for c in (candidates or [])],
        "dscore": 0.941,
        "vehicle": {"score": 0.867, "type": "Sedan",
                    "box": {"xmin": 387, "ymin": 23, "xmax": 1493, "ymax": 577}},
        "direction": 40, "source_url": "rtsp://10.0.0.5/stream", "position_sec": 4,
    } for plate, score in plates]  # fmt: skip
    return {
        "hook": {"target": "https://varco.example/v1/cameras/platerecognizer", "id": "camera-1",
                 "event": "recognition", "filename": "camera-1_screenshots/26-11-22/10-00.jpg"},
        "data": {"camera_id": "camera-1", "filename": "camera-1_screenshots/26-11-22/10-00.jpg",
                 "timestamp": stamp, "timestamp_local": at.astimezone(ROME).isoformat(" "),
                 "results": results},
    }  # fmt: skip


def platerecognizer_snapshot(plate: str, score: float, at: dt.datetime) -> dict[str, Any]:
    """Plate Recognizer Snapshot webhook (event "image.done")."""
    body = platerecognizer_stream([(plate, score)], at)
    body["hook"] = {"target": "https://varco.example/v1/cameras/platerecognizer", "id": 42,
                    "event": "image.done", "filename": "1617_7M83K_car.jpg"}  # fmt: skip
    body["data"] = {"processing_time": 288.758, "results": body["data"]["results"],
                    "filename": "1617_7M83K_car.jpg", "version": 1, "camera_id": "camera-1",
                    "timestamp": body["data"]["timestamp"]}  # fmt: skip
    return body


def rekor_group(plate: str, at: dt.datetime, confidence: float = 92.07, preview: bool = False,
                candidates: list[str] | None = None, plate_index: int = 0) -> dict[str, Any]:  # fmt: skip
    """Rekor Scout alpr_group (version 2), as in the JSON Group Results documentation."""
    start = int(at.timestamp() * 1000)
    agent = "YYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYY"
    cands = [{"plate": plate, "confidence": confidence, "matches_template": 0}] + [
        {"plate": c, "confidence": 80.1, "matches_template": 0} for c in (candidates or [])]
    uuids = [f"{agent}-1234-{start + d}" for d in ((0, 40) if preview else (39, 0, 72))]
    return {
        "version": 2, "data_type": "alpr_group", "epoch_start": start,
        "epoch_end": start + (400 if preview else 2975), "frame_start": 0,
        "frame_end": 8 if preview else 72, "company_id": "44c9274f-8d57-432a-8cd7-8c991f22ead3",
        "agent_uid": agent, "agent_version": "2.7.101", "agent_type": "alprd",
        "camera_id": 1234, "gps_latitude": 45.4064, "gps_longitude": 11.8768, "country": "eu",
        "uuids": uuids, "plate_indexes": [plate_index] * len(uuids), "candidates": cands,
        "vehicle_crop_jpeg": JPEG_B64,
        "best_plate": {"plate": plate, "confidence": confidence, "matches_template": 0,
                       "plate_index": plate_index, "region": "it", "region_confidence": 57,
                       "processing_time_ms": 96.94, "requested_topn": 10,
                       "coordinates": [{"x": 204, "y": 134}, {"x": 709, "y": 222},
                                       {"x": 658, "y": 500}, {"x": 167, "y": 383}],
                       "plate_crop_jpeg": JPEG_B64, "candidates": cands},
        "best_confidence": confidence, "best_plate_number": plate, "best_region": "it",
        "best_region_confidence": 57.28, "matches_template": False,
        "best_uuid": uuids[0], "best_uuid_epoch_ms": start, "best_image_width": 1920,
        "best_image_height": 1080, "travel_direction": 181.5, "is_parked": False,
        "is_preview": preview,
        "vehicle": {"color": [{"name": "silver-gray", "confidence": 83.2}],
                    "make": [{"name": "fiat", "confidence": 71.0}],
                    "body_type": [{"name": "sedan-standard", "confidence": 90.4}]},
    }  # fmt: skip


def rekor_results(plates: list[tuple[str, float]], at: dt.datetime) -> dict[str, Any]:
    """Rekor Scout alpr_results: one video frame."""
    epoch = int(at.timestamp() * 1000)
    return {
        "version": 2, "data_type": "alpr_results", "epoch_time": epoch,
        "img_width": 1920, "img_height": 1080, "processing_time_ms": 105.85,
        "uuid": f"YYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYY-1234-{epoch}", "camera_id": 1234,
        "agent_uid": "YYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYY", "site_id": "padova-erbe",
        "results": [{"plate": p, "confidence": c, "matches_template": 0, "plate_index": 0,
                     "region": "it", "region_confidence": 40, "processing_time_ms": 47.0,
                     "requested_topn": 10, "plate_crop_jpeg": JPEG_B64,
                     "coordinates": [{"x": 3257, "y": 188}, {"x": 3467, "y": 194}],
                     "candidates": [{"plate": p, "confidence": c, "matches_template": 0}]}
                    for p, c in plates],
    }  # fmt: skip


def rekor_heartbeat(at: dt.datetime) -> dict[str, Any]:
    return {
        "version": 1, "data_type": "heartbeat",
        "company_id": "xxxxxxxx-yyyy-yyyy-yyyy-zzzzzzzzzzzz", "site_id": "padova-erbe",
        "timestamp": int(at.timestamp() * 1000), "system_uptime_seconds": 2595123,
        "daemon_uptime_seconds": 2594832, "internal_ip_address": "192.168.0.54",
        "cpu_cores": 2, "cpu_last_update": 1453426302097, "cpu_usage_percent": 29.2,
        "disk_quota_total_bytes": 8000000000, "disk_quota_consumed_bytes": 1000000000,
        "video_streams": [{"camera_id": 1234, "fps": 12, "is_streaming": True,
                           "url": "rtsp://10.0.0.7/h264", "last_plate_read": 1453426300097}],
    }  # fmt: skip


def dahua(plate: str, at: dt.datetime, confidence: int | None = 92,
          exists: bool = True) -> dict[str, Any]:  # fmt: skip
    """Dahua ITSAPI TollgateInfo push: local time without an offset."""
    local = at.astimezone(ROME)
    plate_block: dict[str, Any] = {
        "BoundingBox": [2336, 3216, 2752, 3344], "Channel": 0, "IsExist": exists,
        "PlateColor": "White", "PlateNumber": plate, "PlateType": "Normal", "Region": "",
        "UploadNum": 1}  # fmt: skip
    if confidence is not None:
        plate_block["Confidence"] = confidence
    return {"Picture": {
        "CutoutPic": {"Content": JPEG_B64, "PicName": "cutout.jpg"},
        "NormalPic": {"Content": JPEG_B64, "PicName": "normal.jpg"},
        "VehiclePic": {"Content": JPEG_B64, "PicName": "vehicle.jpg"},
        "Plate": plate_block,
        "SnapInfo": {
            "AccurateTime": local.strftime("%Y-%m-%d %H:%M:%S.") + f"{local.microsecond // 1000:03d}",
            "AllowUser": False, "AllowUserEndTime": "", "BlockUser": False, "BlockUserEndTime": "",
            "DefenceCode": "XXXXXX", "DeviceID": "7E0C1B2PAJ00001", "Direction": "Obverse",
            "InCarPeopleNum": 0, "LanNo": 1, "OpenStrobe": False, "SnapAddress": "Piazza delle Erbe",
            "SnapTime": local.strftime("%Y-%m-%d %H:%M:%S"), "SpeedLimit": [0, 0],
            "TimeZone": 21, "TriggerSource": "Video", "UploadNum": 1},
        "Vehicle": {"VehicleColor": "Gray", "VehicleSeries": "Fiat Panda", "VehicleType": "Car"},
    }}  # fmt: skip


def dump(obj: Any) -> bytes:
    return json.dumps(obj).encode()
