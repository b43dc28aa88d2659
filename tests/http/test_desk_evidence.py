"""Evidence references from vendor payloads, on review items, violations and search results."""

from __future__ import annotations

from ..support import payloads as p
from ..support.api import NOW
from ..support.desk import decide, review, search
from ..support.followup import World


async def test_rekor_pictures_are_referenced_wherever_the_transit_appears(desk: World) -> None:
    group = p.rekor_group("ZZ999ZZ", NOW, confidence=30.0, candidates=["ZZ999Z2"])
    status, body, _ = await desk.client.request(
        "POST", "/v1/cameras/rekor", {"Authorization": "Bearer demo-rekor"}, data=p.dump(group)
    )
    assert status == 200, body
    [verdict] = body["results"]
    assert (verdict["verdict"], verdict["reason"]) == ("review", "low_confidence")
    await desk.run_followup()
    [item] = (await review(desk.client))["items"]
    evidence = f"rekor:{group['best_uuid']}"
    assert (item["evidence"], item["camera"]) == (evidence, "cam-rekor")
    assert item["alternatives"] == ["ZZ999ZZ", "ZZ999Z2"]
    assert item["kept"]["best_uuid"] == group["best_uuid"]
    today = desk.rules.clock.to_datetime(NOW.timestamp()).date().isoformat()
    status, found = await search(desk.client, plate="ZZ999ZZ", day=today)
    assert [t["evidence"] for t in found["transits"]] == [evidence]
    status, out = await decide(desk.client, item["transit_id"], "confirm")
    assert (status, out["violation"]["evidence"]) == (200, evidence)
    [violation] = await desk.violations()
    assert violation["evidence"] == evidence
    status, csv, _ = await desk.client.request(
        "GET", "/v1/violations", {"Authorization": "Bearer demo-admin"}, params={"format": "csv"}
    )
    header, row = csv.splitlines()
    assert header.endswith(";evidence") and row.endswith(f";{evidence}")


async def test_hikvision_event_uuid_and_none_for_native(desk: World) -> None:
    xml = p.hikvision_xml("AB123CD", NOW, 93)
    status, body, _ = await desk.client.request(
        "POST",
        "/v1/cameras/hikvision",
        {"Authorization": "Bearer demo-hikvision", "Content-Type": "application/xml"},
        data=xml,
    )
    assert status == 200, body
    await desk.post("AB123CD")  # native: no pictures referenced
    today = desk.rules.clock.to_datetime(NOW.timestamp()).date().isoformat()
    status, found = await search(desk.client, plate="AB123CD", day=today)
    by_camera = {t["camera"]: t["evidence"] for t in found["transits"]}
    assert by_camera["cam-1"] is None
    assert by_camera["cam-hikvision"] is not None
    assert by_camera["cam-hikvision"].startswith("hikvision:")
    assert by_camera["cam-hikvision"].removeprefix("hikvision:") in xml.decode()


async def test_axis_and_plate_recognizer_references(desk: World) -> None:
    axis = p.axis_event("AB123CD", NOW, car_id="77")
    stream = p.platerecognizer_stream([("AB123CD", 0.93)], NOW)
    for vendor, body in (("axis", axis), ("platerecognizer", stream)):
        status, reply, _ = await desk.client.request(
            "POST",
            f"/v1/cameras/{vendor}",
            {"Authorization": f"Bearer demo-{vendor}", "Content-Type": "application/json"},
            data=p.dump(body),
        )
        assert status == 200, reply
    today = desk.rules.clock.to_datetime(NOW.timestamp()).date().isoformat()
    status, found = await search(desk.client, plate="AB123CD", day=today)
    by_camera = {t["camera"]: t["evidence"] for t in found["transits"]}
    assert by_camera == {
        "cam-axis": "axis:B8A44F000001/77",
        "cam-platerecognizer": f"platerecognizer:{stream['data']['filename']}",
    }
