"""Typing the raw time, amount and quantity columns: the SQL that reads each as a TIMESTAMP or a
DOUBLE whatever form the file gives it in, and the checks that refuse values that are neither."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

from ..errors import SchemaError
from ..sql import quote_name

EPOCH_LIMIT = 2.5e17  # epoch microseconds of the year 9999: larger numbers are no times
NUMERIC_TYPES = {
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "UHUGEINT",
    "FLOAT",
    "DOUBLE",
}


@dataclass(frozen=True)
class ValueCheck:
    """Raw values of a column that cannot be used: rows where ``where`` holds are refused with a
    SchemaError giving how many, one example (``example``) and the fix."""

    where: str
    example: str
    column: str
    kind: str  # "time" or "amount"
    what: str  # what the values are not: "timestamps", "numbers"
    why: str = ""
    fix: str = ""

    def error(self, count: int, sample: Any, source: str) -> SchemaError:
        return SchemaError(
            f"events file {source!r}: {count:,} values in {self.kind} column {self.column!r} "
            f"are not {self.what} (e.g. {sample!r}{self.why})"
            + (f"; {self.fix}" if self.fix else ""),
            path=source,
            column=self.column,
        )


def reject_values(con, check: ValueCheck, source: str) -> None:
    """Raise the check's SchemaError when raw rows fail it (one pass over the file)."""
    count, sample = con.execute(
        f"SELECT count(*), any_value({check.example}) FROM raw WHERE {check.where}"
    ).fetchone()
    if count:
        raise check.error(count, sample, source)


def is_numeric(dtype: str) -> bool:
    return dtype in NUMERIC_TYPES or dtype.startswith("DECIMAL")


def time_expression(
    con, column: str, dtype: str, source: str, from_text: bool = False, top: float | None = None
) -> tuple[str, str, ValueCheck | None]:
    """SQL turning the raw time column into a naive UTC TIMESTAMP, a name for the form the times
    were given in (run.json records it: a wrong guess, e.g. epoch seconds read as milliseconds,
    shows there first), and the check its raw values must pass. ``from_text``: a CSV whose times
    the reader typed itself. ``top``: the largest absolute value of a numeric column in the whole
    log, when these rows are only part of it (:class:`~personas.load.facts.LogFacts`); the unit
    is read off it.

    The check is not run here: :func:`keep_clean_rows` counts its failures in the pass it makes
    anyway, which saves a whole pass over the file.
    """
    col = quote_name(column)
    upper = dtype.upper()
    check = partial(ValueCheck, column=column, kind="time", what="timestamps")
    if upper.startswith(("TIMESTAMP", "DATE")):
        # 'infinity' and '-infinity' are valid values that no later date arithmetic survives
        infinite = check(
            f"{col} IS NOT NULL AND NOT isfinite({col})",
            f"CAST({col} AS VARCHAR)",
            fix="remove them or give real times",
        )
        if upper.startswith("TIMESTAMP WITH TIME ZONE") or upper == "TIMESTAMPTZ":
            return (
                f"timezone('UTC', {col})",
                "ISO text with zone" if from_text else "datetime with zone",
                infinite,
            )
        if upper.startswith("TIMESTAMP"):
            return f"CAST({col} AS TIMESTAMP)", "ISO text" if from_text else "datetime", infinite
        return f"CAST({col} AS TIMESTAMP)", "ISO date" if from_text else "date", infinite
    if is_numeric(upper):
        # the unit is read off the largest value, so this check runs now, in the same pass
        too_large = check(
            f"{col} IS NOT NULL AND NOT (abs(CAST({col} AS DOUBLE)) <= {EPOCH_LIMIT})",
            col,
            why=": too large for epoch seconds, milliseconds or microseconds",
        )
        count, sample, largest = con.execute(
            f"SELECT count(*) FILTER (WHERE {too_large.where}), "
            f"any_value({col}) FILTER (WHERE {too_large.where}), max(abs({col})) "
            "FROM raw"
        ).fetchone()
        if count:
            raise too_large.error(count, sample, source)
        top = (top if top is not None else largest) or 0
        if top > 1e14:
            return f"make_timestamp(CAST({col} AS BIGINT))", "epoch microseconds", None
        if top > 1e11:
            return f"epoch_ms(CAST({col} AS BIGINT))", "epoch milliseconds", None
        return (
            f"to_timestamp(CAST({col} AS DOUBLE))::TIMESTAMPTZ AT TIME ZONE 'UTC'",
            "epoch seconds",
            None,
        )
    # text: ISO with or without zone, or a date; a zone is converted to UTC
    text = f"trim(CAST({col} AS VARCHAR))"
    parsed = (
        f"CASE WHEN regexp_matches({text}, '([+-]\\d\\d:?\\d\\d|Z)$') "
        f"THEN timezone('UTC', TRY_CAST({text} AS TIMESTAMPTZ)) "
        f"ELSE TRY_CAST({text} AS TIMESTAMP) END"
    )
    # 'infinity' and '-infinity' cast to timestamps that no later date arithmetic survives
    parsed = f"(CASE WHEN isfinite({parsed}) THEN {parsed} END)"
    unparsed = check(
        f"{col} IS NOT NULL AND {text} <> '' AND ({parsed}) IS NULL",
        text,
        fix="use ISO dates like 2024-05-01 12:30:00 or epoch seconds",
    )
    return f"CASE WHEN {text} = '' THEN NULL ELSE {parsed} END", "ISO text", unparsed


def number_expression(con, column: str | None, dtype: str, source: str, kind: str, fix: str) -> str:
    """SQL reading a numeric column (the amount, the quantity) as DOUBLE; NULL without one.
    Text that is not a number is refused with a SchemaError saying ``fix``."""
    if column is None:
        return "CAST(NULL AS DOUBLE)"
    col = quote_name(column)
    if is_numeric(dtype.upper()):
        return f"CAST({col} AS DOUBLE)"
    text = f"nullif(trim(CAST({col} AS VARCHAR)), '')"
    reject_values(
        con,
        ValueCheck(
            f"{text} IS NOT NULL AND TRY_CAST({text} AS DOUBLE) IS NULL",
            text,
            column=column,
            kind=kind,
            what="numbers",
            fix=fix,
        ),
        source,
    )
    return f"TRY_CAST({text} AS DOUBLE)"
