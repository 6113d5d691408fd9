"""Cells a spreadsheet would run as a formula (CSV injection), and how `digest` defuses them.

Excel, LibreOffice and Google Sheets evaluate a cell that starts with ``=``, ``+``, ``-`` or
``@`` (and, after a leading tab or carriage return is trimmed, the same): an exported address
like ``=HYPERLINK("https://evil.example",...)@x`` becomes a live link or a formula. Every CSV
`digest` writes passes its cells through :func:`neutralise_cell`, which prefixes such a cell with
``'`` (OWASP's advice): the spreadsheet then shows the text as written.

    >>> neutralise_cell("=1+1@example.org")
    "'=1+1@example.org"
    >>> neutralise_cell("ada@example.org")
    'ada@example.org'
"""

from __future__ import annotations

from collections.abc import Iterable

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# What an address may not start with, though RFC 5321 allows it: no real reader has one, and
# such an address would be a formula in every export.
ADDRESS_FORMULA_STARTS = ("=", "+", "-", "@")


def neutralise_cell(value: str) -> str:
    """``value``, with a leading ``'`` when a spreadsheet would evaluate it."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def neutralise_row(values: Iterable[object]) -> list[str]:
    """Each value as text, neutralised (None becomes an empty cell)."""
    return [neutralise_cell("" if value is None else str(value)) for value in values]
