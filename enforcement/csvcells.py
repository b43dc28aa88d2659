"""CSV cells that a spreadsheet shows as text and never runs as a formula.

Every CSV Varco writes ends up in a spreadsheet: the fines office's violations export, the
police audit export, the rejects files of an import or a feed sync. A cell starting with `=`,
`+`, `-` or `@` (or a tab or carriage return before one) is a formula to Excel and LibreOffice
(CSV injection: `=HYPERLINK(...)`, `=cmd|...`), and a cell's text may come from outside: a
camera, a feed's pass number, a police officer's reason. Such a cell gets a leading `'`, which
the spreadsheet shows as text and does not display. Every CSV writer passes its cells through
`safe_cell`; a low module of its own so that the service's exports and the loader share it.
"""

from __future__ import annotations

from typing import Final

FORMULA_LEADS: Final = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> object:
    """`value` as a CSV cell a spreadsheet cannot run: text starting like a formula gets a
    leading `'`. Only text: a number (an index revision, a line number, a pid) is written as a
    number, and a negative one must stay one; none of our text cells (plates, permit and pass
    ids, camera ids, instants, reasons) starts with these characters legitimately."""
    if isinstance(value, str) and value.startswith(FORMULA_LEADS):
        return "'" + value
    return value
