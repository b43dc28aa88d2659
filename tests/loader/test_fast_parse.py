"""The fast paths of the feed sync read exactly what the plain code reads.

`parse_regional` checks rows through caches and reads quote-free files without csv.reader;
`parse_regional_reference` is the plain row-by-row parser it replaced (run here with
csv.reader for every file, as before). Random exports, valid and not: same passes, same
rejects in the same order with the same reasons, same errors for a file refused whole.
"""

from __future__ import annotations

import csv
import functools
import gc
import re
from collections.abc import Callable
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from enforcement.config.load import load_config
from enforcement.config.settings import Settings
from enforcement.core.rules import Rules
from loader import feedcsv, regional
from loader.feedcsv import FeedReport, decode, gc_paused, rows
from loader.regional import COLUMNS, REQUIRED, parse_regional, parse_regional_rows
from loader.regional_reference import parse_regional_reference

from ..support.common import DEMO_CONFIG

OPTIONAL = [c for c in COLUMNS if c not in REQUIRED]
# Values for each column: usually one that reads (the first list; repeats make several rows
# of one pass likely), now and then one with something to say about it (the second). Dates
# include the edges: an end on the start (a bare end date covers its day), 1970 and 2106.
# fmt: off
VALUES: dict[str, tuple[list[str], list[str]]] = {
    "numero_pass": (["L736_2024_00001", "L736_2024_00002", "G224_2025_00003",
                     "H620_2019_00004", " L736_2024_00001 ",
                     "L736_2024_0000\u0663"],  # an Arabic-Indic digit is a \\d
                    ["L736-2024-1", "", "l736_2024_00001", "L736_2024_000011"]),
    "comune": (["L736", "G224", "g224", " H620"], ["X999", ""]),
    "targa": (["AB123CD", "CD456EF", "ab 123 cd", "EF789GH", "ÄB123CD"], ["", "???"]),
    "principale": (["S", "N", "", "s", "n"], ["x", "si", "Sì", "y", "no"]),
    "tipo_pass": (["DISABILI", "DISABILITÀ"], ["disabili", "", "ALTRO"]),
    "inizio": (["01/03/2024", "1/3/2024", "01/03/2024 08:30", " 01/03/2024",
                "10/01/2025 08:30"],
               ["31/02/2024", "", "2024-03-01", "01/01/2200", "01/01/1969",
                "10/01/2025 25:00"]),
    "fine": (["28/02/2029", "", "28/02/2029 18:00", " ", "01/03/2024 08:30", "10/01/2025"],
             ["29/02/2024", "01/03/2024", "01/01/2020", "31/13/2029", "01/01/2107"]),
    "stato": (["attivo", "revocato", "duplicato", "ACTIVE", "revoked", "Duplicate"],
              ["boh", ""]),
    "data_revoca": (["01/06/2025", "01/06/2025", "01/01/2000", "01/03/2024 08:30", ""],
                    ["xx", "  "]),
    "pass_precedente": (["L736_2024_00001", "G224_2025_00003", "L736_2024_00002", ""],
                        ["bad"]),
}
# fmt: on


@functools.cache
def demo() -> tuple[Settings, Rules]:
    return load_config(DEMO_CONFIG, {"VARCO_DATA_DIR": "/nonexistent/varco-test"})


@st.composite
def exports(draw: st.DrawFn) -> bytes:
    """A regional export: any column order, optional columns maybe missing, padded or quoted
    fields, rows of the wrong width, blank rows, any line ending, UTF-8 or Windows-1252, and
    now and then a truncated end."""
    columns = draw(st.permutations(COLUMNS))
    dropped = draw(st.sets(st.sampled_from(OPTIONAL)))
    columns = [c for c in columns if c not in dropped]
    quote = draw(st.booleans())
    eol = draw(st.sampled_from(["\r\n", "\n", "\r"]))

    def field(value: str) -> str:
        if quote and draw(st.booleans()):
            return '"' + value.replace('"', '""') + '"'
        return value

    lines = [";".join(c.upper() if draw(st.booleans()) else c for c in columns)]
    for _ in range(draw(st.integers(0, 12))):
        kind = draw(st.sampled_from(["row"] * 8 + ["blank", "short", "long"]))
        if kind == "blank":
            lines.append(draw(st.sampled_from(["", ";;;", "  "])))
            continue
        # Most rows read; some have one or two fields with something wrong.
        wrong = (
            draw(st.sets(st.sampled_from(columns), min_size=1, max_size=2))
            if draw(st.sampled_from([False, False, False, True]))
            else set()
        )
        values = [
            draw(st.sampled_from(["", " ", "  "])).join(
                ["", draw(st.sampled_from(VALUES[c][c in wrong])), ""]
            )
            if draw(st.booleans())
            else draw(st.sampled_from(VALUES[c][c in wrong]))
            for c in columns
        ]  # padded or not
        if kind == "short":
            values = values[: draw(st.integers(0, len(values) - 1))]
        elif kind == "long":
            values.append("extra")
        lines.append(";".join(field(v) for v in values))
    text = eol.join(lines) + eol
    if draw(st.integers(0, 9)) == 0:
        text = text[: draw(st.integers(0, len(text)))]  # a download that stopped midway
    try:  # Windows-1252 where it can be (a UTF-8 file is read as UTF-8 first)
        return text.encode("cp1252") if draw(st.booleans()) else text.encode()
    except UnicodeEncodeError:
        return text.encode()


def outcome(parse: Callable[..., Any], data: Any) -> Any:
    """What a parser makes of `data`: passes and report, or the error it raises."""
    settings, rules = demo()
    report = FeedReport("vivipass")
    try:
        passes = parse(data, rules, settings.circuit, report)
    except Exception as exc:  # any error must be the same error
        return "error", type(exc), str(exc)
    return passes, report.rows, report.permits, report.rejects, report.encoding


def plain(data: bytes) -> Any:
    """The parser as it was: one `parse_row` per row, csv.reader for every file."""
    with mock.patch.object(feedcsv, "_split_records", feedcsv._csv_records):
        return outcome(parse_regional_reference, data)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(exports())
@example(
    b"numero_pass;comune;targa;tipo_pass;inizio;fine;stato\r\n"
    b"L736_2024_00001;L736;AB123CD;DISABILI;01/03/2024;;revocato\r\n"
)
def test_the_cached_parser_reads_what_the_plain_one_reads(data: bytes) -> None:
    assert outcome(parse_regional, data) == plain(data)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(exports())
def test_rows_from_the_json_feed_too(data: bytes) -> None:
    """parse_regional_rows takes rows by column name (the JSON feed's, with every column)."""
    try:
        numbered = list(rows(decode(data, FeedReport("x")), COLUMNS, REQUIRED))
    except feedcsv.FeedFileError:
        return
    as_json = [(line, {c: row.get(c, "") for c in (*COLUMNS, *row)}) for line, row in numbered]
    for given_rows in (numbered, as_json):
        assert outcome(lambda d, *a: parse_regional_rows(d, *a), given_rows) == outcome(
            parse_regional_reference, given_rows
        )


def test_a_clean_export_takes_the_cached_path_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """No row of a clean export goes through `parse_row` (the caches vouch for all)."""

    def unexpected(*args: object) -> None:
        raise AssertionError("a clean row went through parse_row")

    lines = [";".join(COLUMNS)]
    for i in range(500):  # active, revoked and duplicate passes, one or two plates
        state, revoked, replaces = [
            ("attivo", "", ""),
            ("revocato", "01/06/2025", ""),
            ("duplicato", "", f"L736_2020_{i:05d}"),
        ][i % 3]
        for k in range(1 + i % 2):
            lines.append(
                f"G224_2024_{i:05d};G224;AB{i % 1000:03d}C{'DE'[k]};{'SN'[k]};"
                f"DISABILI;{1 + i % 28:02d}/03/2024;{1 + i % 28:02d}/02/2029 18:00;"
                f"{state};{revoked};{replaces}"
            )
    data = ("\r\n".join(lines) + "\r\n").encode()
    settings, rules = demo()
    assert settings.circuit is not None
    want = plain(data)
    monkeypatch.setattr(regional, "parse_row", unexpected)
    report = FeedReport("vivipass")
    passes = parse_regional(data, rules, settings.circuit, report)
    assert (passes, report.rows, report.permits, report.rejects, report.encoding) == want


TEXT = st.text(st.sampled_from('a;é "\t\r\n\x0b\x1c\u2028'), max_size=80)


@settings(max_examples=500, deadline=None)
@given(TEXT.map(lambda t: t.replace('"', "")), st.sampled_from([131072, 4]))
def test_split_reads_a_quote_free_text_as_csv_reader_does(text: str, limit: int) -> None:
    """Lines end at \\r\\n, \\r or \\n and nothing else; an empty line is [""] for [] (blank
    either way); a field over csv's size limit raises csv's error."""
    old = csv.field_size_limit(limit)
    try:
        try:
            want = [(n, v or [""]) for n, v in feedcsv._csv_records(text)]
        except csv.Error as exc:
            with pytest.raises(csv.Error, match=re.escape(str(exc))):
                list(feedcsv._split_records(text))
            return
        assert list(feedcsv._split_records(text)) == want
    finally:
        csv.field_size_limit(old)


def test_gc_paused_puts_the_collector_back_as_it_was() -> None:
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer pause still holds
    assert gc.isenabled()
    with pytest.raises(ValueError), gc_paused():
        raise ValueError
    assert gc.isenabled()
