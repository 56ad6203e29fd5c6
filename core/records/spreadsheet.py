"""Text cells every CSV export writes the same way: safe from a spreadsheet's formulas."""

from __future__ import annotations

# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: str) -> str:
    """Text a spreadsheet shows as text: a leading ' before = + - @ TAB CR."""
    return "'" + value if value.startswith(_FORMULA_STARTS) else value
