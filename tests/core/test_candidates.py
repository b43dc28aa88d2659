"""A camera's alternative reads in the verdict: one a permit covers makes an uncovered read a
near-match (review), single and batch alike."""

from __future__ import annotations

from enforcement.core.checker import Checker
from enforcement.core.plates import normalise

from ..support.common import Publish, at, permit

T = at("2026-11-23T10:00:00+01:00")


def test_candidate_with_a_permit_is_a_near_match(checker: Checker, publish: Publish) -> None:
    live = publish([permit("RES-1", "AB123CD", "1", "2020-01-01T00:00:00+01:00")])
    gate = checker.rules.gates["PD-03"]
    read = normalise("ZZ999ZZ")
    plain = checker.check(live, read, T, gate, 0.9, T)
    assert (plain.verdict, plain.reason) == ("pending", "no_permit")
    torn = checker.check(live, read, T, gate, 0.9, T, "e1", ["ZZ999Z2", "AB123CD"])
    assert (torn.verdict, torn.reason, torn.plate) == ("review", "near_match", "ZZ999ZZ")
    # candidates without a permit, or the read itself, change nothing
    assert checker.check(
        live, read, T, gate, 0.9, T, "e2", ["ZZ999ZZ", "YY111YY"]
    ) == checker.check(live, read, T, gate, 0.9, T, "e2")
    # a covered read stays allowed; a low-confidence one is low_confidence first
    ok = checker.check(live, normalise("AB123CD"), T, gate, 0.9, T, None, ["ZZ999ZZ"])
    assert ok.verdict == "allowed"
    low = checker.check(live, read, T, gate, 0.2, T, None, ["AB123CD"])
    assert low.reason == "low_confidence"
    items = [
        (read, float(T), gate, 0.9, "b1"),
        (read, float(T), gate, 0.9, "b2"),
        (normalise("AB123CD"), float(T), gate, 0.9, "b3"),
    ]
    batch = checker.check_batch(live, items, T, [["AB123CD"], [], ["ZZ999ZZ"]])
    assert [(v.verdict, v.reason) for v in batch] == [
        ("review", "near_match"),
        ("pending", "no_permit"),
        ("allowed", "permit"),
    ]
