"""Evidence references and alternatives from kept vendor fields (transits/evidence.py)."""

from __future__ import annotations

import msgspec

from enforcement.transits.evidence import alternatives_of, evidence_of, kept_fields
from enforcement.transits.record import NO_FIELDS


def test_a_picture_url_wins_and_only_http() -> None:
    assert evidence_of({"pictureURL": "https://cam.example/p/1.jpg", "UUID": "u"}) == (
        "https://cam.example/p/1.jpg"
    )
    assert evidence_of({"pictureURL": "javascript:alert(1)", "UUID": "u-1"}) == "hikvision:u-1"
    assert evidence_of({"image_url": "ftp://x/y"}) is None


def test_vendor_text_is_cut_and_one_line() -> None:
    ref = evidence_of({"best_uuid": "abc\n=HYPERLINK(1)\x00" + "x" * 1000})
    assert ref is not None and "\n" not in ref and "\x00" not in ref
    assert ref.startswith("rekor:abc=HYPERLINK") and len(ref) <= len("rekor:") + 300
    assert evidence_of({"best_uuid": "   "}) is None
    assert evidence_of({"best_uuid": True}) is None  # not text


def test_nothing_kept_nothing_referenced() -> None:
    assert kept_fields(NO_FIELDS) is None
    assert evidence_of(None) is None and alternatives_of(None) == []
    assert evidence_of({"plate": "AB123CD", "time": "now"}) is None  # Milesight-like


def test_kept_fields_from_a_record_and_alternatives() -> None:
    raw = msgspec.Raw(
        msgspec.msgpack.encode(
            {"result": {"candidates": [{"plate": "ab123cd"}, {"plate": "ab123cd"}, {"x": 1}]}}
        )
    )
    kept = kept_fields(raw)
    assert kept is not None and alternatives_of(kept) == ["ab123cd"]
    assert alternatives_of({"candidates": [{"plate": "ZZ1"}, {"plate": "ZZ2"}]}) == ["ZZ1", "ZZ2"]
    assert alternatives_of({"candidates": "not a list"}) == []
