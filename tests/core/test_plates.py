"""Plate normalisation, Italian OCR fixes and the int64 key."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from enforcement.core.plates import (
    MAX_ALTERNATIVES,
    alternatives,
    confusable_variants,
    fix_italian,
    key_plate,
    normalise,
    normalise_text,
    plate_key,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("AB123CD", "AB123CD"),
        ("ab 123 cd", "AB123CD"),
        ("AB-123-CD", "AB123CD"),
        ("AB.123·CD", "AB123CD"),
        ("\u0410\u0412123\u0421D", "AB123CD"),  # Cyrillic А, В, С
        ("\u0391\u0392123CD", "AB123CD"),  # Greek Α, Β
        ("ＡＢ１２３ＣＤ", "AB123CD"),  # fullwidth, via NFKC
        ("M-ÄÖ 123", "MAO123"),  # accents dropped
        ("", ""),
        ("unknown", ""),
        ("UNKNOWN", ""),
        ("-", ""),
        ("--", ""),
        ("  ", ""),
        ("AB123CD4567X", ""),  # 12 characters: longer than any plate
        ("AB#123", ""),
        ("日本123", ""),
    ],
)
def test_normalise_text(raw: str, expected: str) -> None:
    assert normalise_text(raw) == expected


@pytest.mark.parametrize(
    ("raw", "country", "text", "corrected"),
    [
        ("AB123CD", None, "AB123CD", False),  # valid as it stands
        ("A8123CD", None, "AB123CD", True),  # 8 in a letter position
        ("AB1Z3CD", None, "AB123CD", True),  # Z in a digit position
        ("AB123C0", None, "AB123CD", True),  # 0 in a letter position (O never used)
        ("AB12345", None, "AB12345", False),  # a valid motorcycle plate is left alone
        ("AB1234S", None, "AB12345", True),  # only a motorcycle plate fits: S -> 5
        ("AB123S5", None, "AB123S5", False),  # car AB123SS or motorcycle AB12355: no fix
        ("A8123CD", "DE", "A8123CD", False),  # foreign: no Italian fixes
        ("A8123CD", "IT", "AB123CD", True),
        ("AB123C1", None, "AB123C1", False),  # 1 could only be I, which Italy never uses
        ("M1234", None, "M1234", False),  # not 7 characters: not an Italian car
    ],
)
def test_normalise_italian_fixes(raw: str, country: str | None, text: str, corrected: bool) -> None:
    plate = normalise(raw, country)
    assert (plate.text, plate.corrected, plate.raw) == (text, corrected, raw)


def test_fix_italian_only_when_invalid() -> None:
    assert fix_italian("AB123CD") is None
    assert fix_italian("ABCDEFG") is None


@pytest.mark.parametrize(
    "raw", ["", "unknown", "UNKNOWN", "NOPLATE", "No Plates", "-", "--", "NULL"]
)
def test_sentinels_are_unreadable(raw: str) -> None:
    assert not normalise(raw).readable
    assert normalise_text(raw) == ""


def test_unreadable_plate_is_empty() -> None:
    assert not normalise("unknown").readable
    assert normalise("AB123CD").readable


@given(st.text(alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=11))
def test_key_round_trip(text: str) -> None:
    key = plate_key(text)
    assert 0 < key < 2**63
    assert key_plate(key) == text


@given(
    st.text(alphabet="0123456789AZ", min_size=1, max_size=11),
    st.text(alphabet="0123456789AZ", min_size=1, max_size=11),
)
def test_key_is_injective(a: str, b: str) -> None:
    assert (plate_key(a) == plate_key(b)) == (a == b)


def test_leading_zeros_are_distinct() -> None:
    assert plate_key("0A1") != plate_key("A1")


def test_confusable_variants() -> None:
    variants = confusable_variants("AB0")
    assert "A80" in variants and "ABO" in variants and "ABD" in variants
    assert "AB0" not in variants


def test_alternatives_are_normalised_unique_and_bounded() -> None:
    best = normalise("ab123cd", "IT")
    reads = [" ab123cd ", "AB123CD", "ab 123 cd", "", "-", "ZZ999ZZ", "zz999zz", "x" * 65]
    assert list(alternatives(reads, "IT", best)) == ["ZZ999ZZ"]
    many = [f"AA{i:03d}BB" for i in range(30)]
    assert list(alternatives(many, None, best)) == many[:MAX_ALTERNATIVES]
    assert list(alternatives(iter(()), None, best)) == []


def _normalise_reference(raw: str, country: str | None) -> tuple[str, str, bool]:
    """`normalise` without its fast paths."""
    text = normalise_text(raw)
    if text and (country is None or country.upper() in ("IT", "I", "ITA")):
        fixed = fix_italian(text)
        if fixed is not None:
            return (raw, fixed, True)
    return (raw, text, False)


@given(
    st.text(alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnoz -.ßıİÄ", max_size=12),
    st.sampled_from([None, "IT", "fr"]),
)
def test_fast_paths_agree_with_the_full_normalisation(raw: str, country: str | None) -> None:
    assert tuple(normalise(raw, country)) == _normalise_reference(raw, country)
    assert (
        tuple(normalise(raw.upper(), country))[1:] == _normalise_reference(raw.upper(), country)[1:]
    )
