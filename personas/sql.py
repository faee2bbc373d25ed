"""Quoting for the SQL the package writes: names and text from the user's data go through here."""

from __future__ import annotations


def quote_name(name: str) -> str:
    """A SQL identifier, double-quoted."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    """A SQL string literal, single-quoted."""
    return "'" + text.replace("'", "''") + "'"
