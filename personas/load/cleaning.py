"""The cleaning rules: which rows are dropped or repaired, each counted, in one pass over the
typed rows (:data:`CLEANING_RULES`)."""

from __future__ import annotations

from datetime import datetime

from ..params import PersonaParams
from ..sql import quote_literal
from .values import ValueCheck
from .window import inside_window_sql, timestamp_text

CLEANING_RULES = {
    "null_user": "rows without a user id are dropped",
    "null_time": "rows without a timestamp are dropped",
    "outside_window": "rows outside the start/end window are dropped",
    "future": "rows later than the time of the run are dropped",
    "negative_amount": "negative amounts are set to missing (refunds are not revenue)",
    "negative_quantity": "negative quantities are set to missing (returns are not items bought)",
    "missing_amount": "purchases without a usable amount are kept as orders of unknown value "
    "(revenue and order value use the priced ones)",
    "duplicate": "exact duplicate rows are kept once",
}

# the rules a row can break, as bits (:func:`keep_clean_rows`)
NULL_USER, NULL_TIME, OUTSIDE, FUTURE, NEGATIVE, BAD_TIME, NEGATIVE_QUANTITY, FAR_TIME = (
    1,
    2,
    4,
    8,
    16,
    32,
    64,
    128,
)
# A blank user id: DuckDB's trim removes the space and Unicode's other space separators, all
# of them past U+007F, so a blank id is empty, starts below '!' or starts past U+007F. That
# comparison comes first so that ordinary ids are never trimmed: on Parquet DuckDB settles it
# from each row group's min and max.
BLANK_USER_SQL = "((user_id < '!' OR user_id >= chr(128)) AND trim(user_id) = '')"


def keep_clean_rows(
    con,
    params: PersonaParams,
    source: str,
    time_check: ValueCheck | None,
    far_check: ValueCheck,
    now: datetime | None = None,
) -> tuple[dict[str, int], int, tuple, tuple]:
    """Create the view ``kept`` (view ``typed`` less the rows CLEANING_RULES drop, negative
    amounts and quantities repaired; duplicates are still in it, :func:`mark_rows` drops
    them). Returns the rows each rule touched, the rows dropped (a row breaking two rules
    counts under both but is dropped once, so duplicates are what the drops leave
    unexplained), the first and last usable time ignoring the window, and the first and last
    time kept (duplicates change neither).

    "Now" (for future rows) is read once and written into the view: ``kept`` is read by several
    queries, and each would otherwise see its own ``now()``; ``now`` gives it instead, when
    several loads make one run (:class:`~personas.load.facts.LogFacts`). The same pass counts
    the time values ``time_check`` refuses (column ``bad_time`` of ``typed``) and those
    ``far_check`` refuses (``far_time``: before the year 1 or after 9999), and raises their
    error.
    """
    first, last = params.time_window()
    inside = inside_window_sql(first, last)
    if now is None:
        now = con.execute("SELECT CAST(now() AS TIMESTAMP)").fetchone()[0]
    now = f"TIMESTAMP {quote_literal(timestamp_text(now))}"
    # Each row is tallied under the set of rules it breaks (a bit each), with its times: a
    # handful of groups, which the counts are read off: one pass over the rows for all the
    # rules, not a filtered count per rule.
    breaks = {
        NULL_USER: f"user_id IS NULL OR {BLANK_USER_SQL}",
        NULL_TIME: "ts IS NULL",
        OUTSIDE: f"ts IS NOT NULL AND NOT ({inside})",
        FUTURE: f"ts > {now}",
        NEGATIVE: "amount < 0",
        BAD_TIME: "bad_time",
        NEGATIVE_QUANTITY: "quantity < 0",
        FAR_TIME: "far_time",
    }
    broken = " + ".join(
        f"CASE WHEN {condition} THEN {bit} ELSE 0 END" for bit, condition in breaks.items()
    )
    groups = con.execute(f"""
        SELECT {broken} AS broken, count(*), min(ts), max(ts), any_value(bad_time_example),
               any_value(far_time_example)
        FROM typed GROUP BY ALL""").fetchall()

    def rows(bit: int) -> int:
        return sum(n for broken, n, *_ in groups if broken & bit)

    def span(unless: int) -> tuple:  # first and last time of the rows breaking none of these
        times = [(t0, t1) for broken, _, t0, t1, *_ in groups if not broken & unless]
        return (min(t0 for t0, _ in times), max(t1 for _, t1 in times)) if times else (None, None)

    # the two example columns follow the times: bad_time_example, then far_time_example
    for column, (bit, check) in enumerate(((BAD_TIME, time_check), (FAR_TIME, far_check)), 4):
        if rows(bit):
            example = next(group[column] for group in groups if group[0] & bit)
            raise check.error(rows(bit), example, source)
    quality = {
        rule: rows(bit)
        for rule, bit in (
            ("null_user", NULL_USER),
            ("null_time", NULL_TIME),
            ("outside_window", OUTSIDE),
            ("future", FUTURE),
            ("negative_amount", NEGATIVE),
            ("negative_quantity", NEGATIVE_QUANTITY),
        )
    }
    unusable = NULL_USER | NULL_TIME | FUTURE
    # Every row was checked here: ``kept`` drops and repairs only what some row needs, and a
    # clean log is read with no test at all by the passes that follow.
    where = (
        " AND ".join(
            f"NOT ({breaks[bit]})" for bit in (NULL_USER, NULL_TIME, FUTURE, OUTSIDE) if rows(bit)
        )
        or "TRUE"
    )
    repaired = {
        column: f"CASE WHEN {breaks[bit]} THEN NULL ELSE {column} END" if rows(bit) else column
        for column, bit in (("amount", NEGATIVE), ("quantity", NEGATIVE_QUANTITY))
    }
    con.execute(f"""
        CREATE OR REPLACE TEMP VIEW kept AS
        SELECT user_id, ts, event, {repaired["amount"]} AS amount,
               {repaired["quantity"]} AS quantity, discount, platform, category, product,
               session_key
        FROM typed
        WHERE {where}""")
    return quality, rows(unusable | OUTSIDE), span(unusable), span(unusable | OUTSIDE)
