"""Payloads of cameras that post themselves: Hikvision ISAPI, Axis LPV, Milesight, Dahua ITSAPI."""

from __future__ import annotations

import datetime as dt
from typing import Any

from .common import JPEG, JPEG_B64, ROME


def hikvision_xml(
    plate: str,
    at: dt.datetime,
    confidence: int = 93,
    country: str = "Italy",
    retransmission: bool = False,
    event_type: str = "ANPR",
    namespace: str = "http://www.hikvision.com/ver20/XMLSchema",
) -> bytes:
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
        "ipAddress": "10.10.10.243",
        "portNo": 80,
        "protocol": "HTTP",
        "macAddress": "68:6d:bc:7d:9e:27",
        "channelID": 1,
        "dateTime": at.isoformat(),
        "activePostCount": 1,
        "eventType": "ANPR",
        "eventState": "active",
        "eventDescription": "ANPR alarm",
        "channelName": "Piazza delle Erbe",
        "ANPR": {
            "country": "Italy",
            "licensePlate": plate,
            "line": 1,
            "direction": "forward",
            "confidenceLevel": confidence,
            "plateType": "unknown",
            "plateColor": "white",
            "vehicleType": "vehicle",
            "detectDir": 8,
        },
        "isDataRetransmission": False,
    }


def axis_event(
    plate: str,
    at: dt.datetime,
    confidence: str = "0.92",
    car_id: str = "1234",
    state: str = "new",
    with_offset: bool = False,
) -> dict[str, Any]:
    """AXIS License Plate Verifier event JSON (FF Group protocol 1.6). Devices send `carState`
    `new`, `update` and `lost` (captured/axis-lpv-*.json; FF Group's field table says
    `updated`), all scalars as strings."""
    local = at.astimezone(ROME)
    stamp = local.strftime("%Y%m%d %H%M%S") + f"{local.microsecond // 1000:03d}"
    if with_offset:
        stamp += local.strftime("%z")
    return {
        "packetCounter": "1061",
        "datetime": stamp,
        "plateText": plate,
        "plateUnicode": plate,
        "plateUTF8": plate,
        "plateASCII": plate,
        "plateCountry": "ITA",
        "plateRegion": "",
        "plateConfidence": confidence,
        "carState": state,
        "geotag": {"lat": 45.4064, "lon": 11.8768},
        "imageType": "plate",
        "plateImageType": "jpeg",
        "plateImageSize": str(len(JPEG)),
        "carMoveDirection": "in",
        "timeProcessing": "12",
        "plateCoordinates": [812, 490, 161, 38],
        "carID": car_id,
        "sensorProviderID": "PD-03 Erbe",
        "roiID": "1",
        "capture_timestamp": str(int(at.timestamp() * 1000)),
        "vehicle_info": {"type": "car", "color": "gray", "make": "Fiat", "model": "Panda"},
        "camera_info": {"SerialNumber": "B8A44F000001", "ProdShortName": "AXIS P1465-LE-3"},
    }


def milesight(plate: str, at: dt.datetime, confidence: str = "92") -> dict[str, str]:
    """Milesight LPR HTTP post: every value a string, "-" missing, local time, a spaced key."""
    local = at.astimezone(ROME)
    return {
        "device": "Network Camera",
        "time": local.strftime("%Y-%m-%d %H:%M:%S"),
        "time_msec": local.strftime("%Y-%m-%d %H:%M:%S.") + f"{local.microsecond // 1000:03d}",
        "plate": plate,
        "type": "Visitor",
        "speed": "-",
        "direction": "Approach",
        "detection_region": "1",
        "region": "ITA",
        "resolution_width": "1920",
        "resolution_height": "1080",
        "coordinate_x1": "1112",
        "coordinate_y1": "626",
        "coordinate_x2": "1246",
        "coordinate_y2": "654",
        "confidence": confidence,
        "plate_color": "White",
        "vehicle_type": "Car",
        "vehicle_color": "Gray",
        "Vehicle Brand": "-",
        "plate_image": JPEG_B64,
        "full_image": JPEG_B64,
    }


def dahua(
    plate: str, at: dt.datetime, confidence: int | None = 92, exists: bool = True
) -> dict[str, Any]:
    """Dahua ITSAPI TollgateInfo push: local time without an offset."""
    local = at.astimezone(ROME)
    plate_block: dict[str, Any] = {
        "BoundingBox": [2336, 3216, 2752, 3344],
        "Channel": 0,
        "IsExist": exists,
        "PlateColor": "White",
        "PlateNumber": plate,
        "PlateType": "Normal",
        "Region": "",
        "UploadNum": 1,
    }
    if confidence is not None:
        plate_block["Confidence"] = confidence
    return {
        "Picture": {
            "CutoutPic": {"Content": JPEG_B64, "PicName": "cutout.jpg"},
            "NormalPic": {"Content": JPEG_B64, "PicName": "normal.jpg"},
            "VehiclePic": {"Content": JPEG_B64, "PicName": "vehicle.jpg"},
            "Plate": plate_block,
            "SnapInfo": {
                "AccurateTime": local.strftime("%Y-%m-%d %H:%M:%S.")
                + f"{local.microsecond // 1000:03d}",
                "AllowUser": False,
                "AllowUserEndTime": "",
                "BlockUser": False,
                "BlockUserEndTime": "",
                "DefenceCode": "XXXXXX",
                "DeviceID": "7E0C1B2PAJ00001",
                "Direction": "Obverse",
                "InCarPeopleNum": 0,
                "LanNo": 1,
                "OpenStrobe": False,
                "SnapAddress": "Piazza delle Erbe",
                "SnapTime": local.strftime("%Y-%m-%d %H:%M:%S"),
                "SpeedLimit": [0, 0],
                "TimeZone": 21,
                "TriggerSource": "Video",
                "UploadNum": 1,
            },
            "Vehicle": {
                "VehicleColor": "Gray",
                "VehicleSeries": "Fiat Panda",
                "VehicleType": "Car",
            },
        }
    }
