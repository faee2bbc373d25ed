"""One pass over the sorted events: a row of activity tallies per user, and the events per name.

:func:`personas.load.load_events` defines ``event_rows``, the log coded, sorted per user, with
exact duplicates dropped and sessions and days marked, as a view: sorting 165M events is most of
the work of loading them, and at that size the sorted rows do not fit in memory. Writing them out
and reading them back for the features cost more than sorting them again. So the sorted rows are
read once, here, and summed per user into the table ``user_activity``; the features
(:mod:`personas.features`) and the per-event counts are computed from it.

``user_activity`` columns (one row per ``uid``):

================= ===========================================================================
n_events          events
n_views, ...      events of role view, search, cart, purchase, email_open, email_click
n_discounted      purchases with a discount
revenue, n_priced sum and count of purchase amounts (unpriced purchases are orders of unknown
                  value)
items, n_counted  sum and count of purchase quantities (``quantity`` column; NULL and 0
                  without one)
first_purchase,   time of the first and last purchase
last_purchase
active_days       days with any event
active_weeks      calendar weeks (Monday to Sunday) with any event
n_sends           events of role email_send (marketing e-mails sent or delivered)
first_ts, last_ts first and last event
gap_sessions      sessions split by a gap of ``session_gap_minutes`` (marks of ``event_rows``)
idle_us, n_idle,  the idle time between those sessions: total (microseconds), count, mean and
idle_mean,        standard deviation (days)
idle_sd
weekend_share,    shares of events on Saturdays and Sundays, between 0 and 6 am (UTC), in the
night_share,      app (platform column), in the last third of the data window
app_share,
recent_share
categories,       distinct categories and products touched
products
days_m1..days_m12 active days per calendar month (only when the log spans 52 weeks)
trail             the session starts, carts and purchases as numbers that sort into time
                  order, for abandoned carts; NULL without cart events or with given sessions
role_<role>       events per role, every role of the log
n_code_<c>,       events, and purchases without an amount, per event-name code ``c`` (up to
unpriced_code_<c> :data:`PER_CODE_COLUMNS` names; more names give two MAP columns instead,
                  ``by_code`` and ``unpriced_by_code``), summed into the per-event counts
================= ===========================================================================
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

from .sql import quote_literal, quote_name

ROLE_PREFIX = "role_"  # columns of per-role event counts
BITMASK_VALUES = 64  # up to this many categories (products), distinct ones are OR-ed bits
PER_CODE_COLUMNS = 64  # up to this many event names, each is counted in a column of its own
YEAR_DAYS = 364  # 52 weeks: the sample's Jan 2 .. Dec 31 is a year of data


DAY_US = 86_400_000_000  # microseconds in a day
# ``day_mark`` of event_rows: 0 on the same day as the event before, 1 on a new day, this on a
# new day of a new week; one sum gives the active days (low bits) and weeks (high bits)
DAY_MARK_WEEK = (1 << 32) + 1


def week_origin(first: datetime) -> int:
    """Epoch microseconds of the Monday midnight on or before ``first`` (the first event kept).

    Counted from there, every kept event's time ``t`` is non-negative, so integer division is
    exact floor division, also before 1970: ``t // DAY_US % 7`` is its weekday (Monday 0),
    ``t % DAY_US`` its time of day and ``t // (7 * DAY_US)`` its Monday-to-Sunday week: one
    integer origin serves the weekend and night shares and the week mark (``day_mark`` of the
    sort in :func:`personas.load.encoding.mark_rows`), which compares weeks only on a new day.
    """
    monday = datetime(first.year, first.month, first.day) - timedelta(days=first.weekday())
    return (monday - datetime(1970, 1, 1)) // timedelta(microseconds=1)


def since_origin(column: str, origin: int) -> str:
    """SQL: microseconds from ``origin`` (:func:`week_origin`) to the TIMESTAMP ``column``."""
    return f"(epoch_us({column}) - {origin})"


def spans_year(start, end) -> bool:
    """The events kept span 52 weeks: every calendar month had its chance, so a user's busiest
    month says something about season rather than about when the export started."""
    if start is None or end is None:
        return False
    return (end - start).total_seconds() >= YEAR_DAYS * 86400


def role_codes(con, *roles: str) -> str:
    """SQL condition on ``code``: the event maps to one of ``roles``.

    A literal list of codes, not a join: the condition is tested on every event.
    """
    codes = [
        str(code)
        for code, role in con.execute("SELECT code, role FROM event_names ORDER BY code").fetchall()
        if role in roles
    ]
    return f"code IN ({', '.join(codes)})" if codes else "FALSE"


def _distinct(con, table: str, code: str) -> str:
    """Distinct values (categories, products) a user touched. Up to :data:`BITMASK_VALUES`
    values, one bit each OR-ed together and counted: exact, and far cheaper than a distinct count
    per user, which is what larger catalogues get."""
    top = con.execute(f"SELECT coalesce(max({code}), 0) FROM {table}").fetchone()[0]
    if top <= BITMASK_VALUES:
        return f"coalesce(bit_count(bit_or(CAST(1 AS UBIGINT) << CAST({code} - 1 AS UBIGINT))), 0)"
    return f"count(DISTINCT {code})"


def _trail(con, gap_sessions: bool, first: Any) -> str:
    """The user's session starts, carts and purchases, one BIGINT each, in no particular order.

    Each is the time in microseconds since ``first`` (the first event kept, so never negative)
    times 8, plus 4 unless the row starts a session, plus 1 for a cart or 2 for a purchase:
    sorted, they come in time order with a session start first among rows of the same instant
    (a cart in the instant a session starts belongs to it).
    Numbers, not text ordered as it is collected: an ordered ``string_agg`` nearly doubled the
    whole per-user pass at 1M users (docs/benchmarks.md).
    """
    cart, purchase = role_codes(con, "cart"), role_codes(con, "purchase")
    if not gap_sessions or cart == "FALSE":
        return "CAST(NULL AS BIGINT[])"
    since = f"epoch_us(ts) - epoch_us(TIMESTAMP {quote_literal(first.isoformat(' '))})"
    return (
        f"list(({since}) * 8 + CASE WHEN new_session THEN 0 ELSE 4 END + CASE WHEN "
        f"{cart} THEN 1 WHEN {purchase} THEN 2 ELSE 0 END) "
        f"FILTER (WHERE new_session OR {cart} OR {purchase})"
    )


def abandoned_sql(trail: str) -> str:
    """SQL: sessions in ``trail`` (:func:`_trail`) with a cart and no purchase.

    One walk through the sorted trail keeps a tally: four times the abandoned sessions so far,
    plus the current session's flags (1: a cart, 2: a purchase). A session start first adds the
    finished session when its flags are exactly 1 and clears them; the last session is added at
    the end.
    """
    walk = (
        f"list_reduce(list_sort({trail}), lambda tally, x: CASE WHEN x % 8 < 4 "
        "THEN ((tally // 4) + CAST(tally % 4 = 1 AS BIGINT)) * 4 + x % 4 "
        "ELSE tally | x % 4 END, CAST(0 AS BIGINT))"
    )
    return f"coalesce((SELECT (t // 4) + CAST(t % 4 = 1 AS BIGINT) FROM (SELECT {walk} AS t)), 0)"


def month_bits(start, end) -> int:
    """Bits that hold any calendar month's count of days from ``start`` to ``end``: a log of a
    year has at most 31 days in each month (5 bits), one of three years 93 (7 bits)."""
    import calendar

    first, last = start.date(), end.date()
    days = [0] * 12
    for year in range(first.year, last.year + 1):
        for month in range(1, 13):
            begin = max(first, date(year, month, 1))
            finish = min(last, date(year, month, calendar.monthrange(year, month)[1]))
            if begin <= finish:
                days[month - 1] += (finish - begin).days + 1
    return max(days).bit_length()


def _packed_counts(slot: str, slots: int, bits: int, where: str) -> list[str]:
    """SQL for a user's count of events in each slot ``0 .. slots - 1``, all from one sum.

    ``slot`` is SQL giving an event's slot, ``where`` which events count. Each such event adds
    1 shifted ``bits * slot`` places to one HUGEINT sum, so ``slots * bits`` must stay within
    127 bits (HUGEINT is signed) and no count may reach ``2 ** bits``. The columns each take
    their count out of that sum, which DuckDB computes once. For the twelve month counts,
    which need ``month(ts)`` of every first event of a day, this costs about what the pass
    without them does; twelve counts of ``month(ts) = m`` cost 0.3 s more at 100k users.
    """
    word = f"sum(CASE WHEN {where} THEN CAST(1 AS HUGEINT) << ({bits} * ({slot})) END)"
    return [
        f"CAST(coalesce(({word} >> {bits * i}) & {(1 << bits) - 1}, 0) AS BIGINT)"
        for i in range(slots)
    ]


def _month_days(span: tuple[Any, Any]) -> list[str]:
    """Aggregates ``days_m1`` .. ``days_m12``: the user's active days per calendar month,
    packed (:func:`_packed_counts`) in :func:`month_bits` bits each. A log of more than 33
    years needs more than 10 bits a month and gets twelve counts."""
    bits = month_bits(*span)
    if 12 * bits > 127:
        return [f"count_if(day_mark > 0 AND month(ts) = {m}) AS days_m{m}" for m in range(1, 13)]
    return [
        f"{days} AS days_m{m}"
        for m, days in enumerate(_packed_counts("month(ts) - 1", 12, bits, "day_mark > 0"), 1)
    ]


def _event_counts(con) -> tuple[Callable[..., str], str]:
    """A function giving SQL for the user's events of some roles, and the per-code columns.

    With at most :data:`PER_CODE_COLUMNS` event names each code gets a column ``n_code_<c>``
    (a ``count_if`` each; role counts add them up) and each purchase code ``unpriced_code_<c>``.
    More names are counted with a ``count_if`` per role and two ``histogram`` MAPs
    (code -> count), as a count per code would test every event once per name.
    A ``count_if`` per code is also the plainest way to write them.
    """
    names = con.execute("SELECT code, role FROM event_names ORDER BY code").fetchall()
    codes = [code for code, _ in names]
    buying = [code for code, role in names if role == "purchase"]
    # the same aggregate written twice (a code's column, its role's sum) is computed once
    counted = (
        {code: f"CAST(count_if(code = {code}) AS BIGINT)" for code in codes}
        if len(codes) <= PER_CODE_COLUMNS
        else None
    )

    def events_of(*roles: str) -> str:
        mine = [code for code, role in names if role in roles]
        if not mine:
            return "CAST(0 AS BIGINT)"
        if counted is not None:
            return " + ".join(counted[code] for code in mine)
        return f"CAST(count_if({role_codes(con, *roles)}) AS BIGINT)"

    if counted is None:
        columns = (
            "histogram(code) AS by_code, histogram(code) FILTER (WHERE "
            f"{role_codes(con, 'purchase')} AND amount IS NULL) AS unpriced_by_code"
        )
    else:
        columns = ", ".join(
            [f"{counted[c]} AS n_code_{c}" for c in codes]
            + [
                f"CAST(count_if(code = {c} AND amount IS NULL) AS BIGINT) AS unpriced_code_{c}"
                for c in buying
            ]
        )
    return events_of, columns


def summarise(
    con, *, gap_sessions: bool, span: tuple[Any, Any], year: bool, buckets: int = 1
) -> None:
    """Create ``user_activity`` (module docstring) from ``event_rows`` in one pass.

    ``span``: the first and last event kept, whose last third is "recent"; ``year``: the log
    spans 52 weeks, so the per-month day counts are worth their cost. ``buckets`` above 1 sums
    the users in that many groups, one sort each (:func:`summarise_in_buckets`).
    """
    select = _summary_sql(con, gap_sessions=gap_sessions, span=span, year=year)
    if buckets > 1:
        summarise_in_buckets(con, select, buckets)
    else:
        con.execute(f"CREATE OR REPLACE TEMP TABLE user_activity AS {select}")


def summarise_in_buckets(con, select: str, buckets: int) -> None:
    """``user_activity`` from ``select`` run on one bucket of users at a time.

    A log whose one sort does not fit DuckDB's ``memory_limit`` spills it to disk, and at 1.65B
    events that write and read back of ~30 GB is a third of the pass. So the coded rows
    (``packed_rows``: 20 bytes a row) are written once to Parquet files, a bucket of users each
    (``uid % buckets``: codes follow the ids' text order, so every bucket gets every kind of
    user), and each bucket is sorted and summed on its own, in memory. A user's tallies depend
    on that user's rows only, and every code, span and population figure the SQL holds is the
    whole log's, so the rows are those of one pass over all users (tests/test_buckets.py). The
    files lie in DuckDB's spill folder (``temp_dir``) and are removed once read.
    """
    import shutil
    from pathlib import Path

    spill = con.execute("SELECT current_setting('temp_directory')").fetchone()[0]
    folder = Path(spill) / "buckets"
    folder.mkdir(parents=True, exist_ok=True)
    try:
        con.execute(
            f"COPY (SELECT *, uid % {buckets} AS bucket FROM coded_packed) "
            f"TO {quote_literal(str(folder))} "
            "(FORMAT parquet, PARTITION_BY (bucket), OVERWRITE_OR_IGNORE)"
        )
        for bucket in range(buckets):
            files = quote_literal(str(folder / f"bucket={bucket}" / "*.parquet"))
            con.execute(
                "CREATE OR REPLACE TEMP VIEW packed_rows AS SELECT * "
                f"FROM read_parquet({files}, hive_partitioning = false)"
            )
            into = (
                "INSERT INTO user_activity"
                if bucket
                else ("CREATE OR REPLACE TEMP TABLE user_activity AS")
            )
            con.execute(f"{into} {select}")
            shutil.rmtree(folder / f"bucket={bucket}")
    finally:
        con.execute("CREATE OR REPLACE TEMP VIEW packed_rows AS SELECT * FROM coded_packed")
        shutil.rmtree(folder, ignore_errors=True)


def _summary_sql(con, *, gap_sessions: bool, span: tuple[Any, Any], year: bool) -> str:
    """The query of :func:`summarise`: one row per user of ``event_rows``."""
    purchase = role_codes(con, "purchase")
    since = since_origin("ts", week_origin(span[0]))
    events_of, per_code = _event_counts(con)
    apps = [
        str(code)
        for (code,) in con.execute(
            "SELECT pcode FROM platforms WHERE is_app ORDER BY pcode"
        ).fetchall()
    ]
    app = f"pcode IN ({', '.join(apps)})" if apps else "FALSE"
    months = "".join(f"{days}, " for days in _month_days(span)) if year else ""
    counted = con.execute("SELECT count(*) FROM quantities").fetchone()[0] > 0
    items = (
        f"sum(CASE WHEN {purchase} THEN quantity END) AS items, "
        f"count(CASE WHEN {purchase} THEN quantity END) AS n_counted"
        if counted
        else "CAST(NULL AS DOUBLE) AS items, CAST(0 AS BIGINT) AS n_counted"
    )
    present = [
        role
        for (role,) in con.execute("SELECT DISTINCT role FROM event_names ORDER BY role").fetchall()
    ]
    # role names come from the user's roles_path: quoted
    role_counts = "".join(f"{events_of(r)} AS {quote_name(ROLE_PREFIX + r)}, " for r in present)
    recent = con.execute(
        "SELECT CAST($t1 AS TIMESTAMP) - (CAST($t1 AS TIMESTAMP) - CAST($t0 AS TIMESTAMP)) / 3",
        {"t0": span[0], "t1": span[1]},
    ).fetchone()[0]
    return f"""
        SELECT uid, count(*) AS n_events,
               {events_of("view")} AS n_views,
               {events_of("search")} AS n_searches,
               {events_of("cart")} AS n_carts,
               {events_of("purchase")} AS n_orders,
               {events_of("email_open")} AS n_opens,
               {events_of("email_click")} AS n_clicks,
               {events_of("email_send")} AS n_sends,
               count(CASE WHEN {purchase} AND discount THEN 1 END) AS n_discounted,
               sum(CASE WHEN {purchase} THEN amount END) AS revenue,
               count(CASE WHEN {purchase} THEN amount END) AS n_priced,
               {items},
               min(CASE WHEN {purchase} THEN ts END) AS first_purchase,
               max(CASE WHEN {purchase} THEN ts END) AS last_purchase,
               CAST(sum(day_mark) & {(1 << 32) - 1} AS BIGINT) AS active_days,
               CAST(sum(day_mark) >> 32 AS BIGINT) AS active_weeks,
               min(ts) AS first_ts, max(ts) AS last_ts,
               count_if(new_session) AS gap_sessions,
               sum(idle_us) AS idle_us, count_if(new_session) - 1 AS n_idle,
               CASE WHEN count_if(new_session) > 1
                    THEN sum(idle_us) / 86400e6 / (count_if(new_session) - 1) END AS idle_mean,
               stddev_samp(idle_us / 86400e6) AS idle_sd,
               count_if({since} // {DAY_US} % 7 >= 5) / count(*) AS weekend_share,
               count_if({since} % {DAY_US} < {6 * 3600 * 10**6}) / count(*) AS night_share,
               count_if({app}) / count(*) AS app_share,
               count_if(ts >= TIMESTAMP {quote_literal(recent.isoformat(" "))}) / count(*)
                   AS recent_share,
               {_distinct(con, "categories", "ccode")} AS categories,
               {_distinct(con, "products", "prcode")} AS products,
               {months}
               {_trail(con, gap_sessions, span[0])} AS trail,
               {role_counts}
               {per_code}
        FROM event_rows
        GROUP BY uid"""


def _columns(con) -> list[str]:
    return [
        name
        for (name,) in con.execute("SELECT column_name FROM (DESCRIBE user_activity)").fetchall()
    ]


def code_counts(con, codes: list[int], alias: str = "u") -> list[str]:
    """SQL over ``user_activity`` (as ``alias``): each user's events of each event-name code,
    from its ``n_code_<c>`` column, or from the ``by_code`` MAP when the log has too many names
    for a column each (:func:`_event_counts`)."""
    columns = set(_columns(con))
    return [
        f"{alias}.n_code_{c}" if f"n_code_{c}" in columns else f"coalesce({alias}.by_code[{c}], 0)"
        for c in codes
    ]


def event_totals(con) -> dict[int, tuple[int, int]]:
    """Event-name code -> (events, purchases without an amount), from ``user_activity``."""
    columns = _columns(con)
    if "by_code" in columns:
        rows = con.execute("""
            WITH n AS (SELECT unnest(map_keys(by_code)) AS code,
                              unnest(map_values(by_code)) AS n FROM user_activity),
                 u AS (SELECT unnest(map_keys(unpriced_by_code)) AS code,
                              unnest(map_values(unpriced_by_code)) AS n
                       FROM user_activity WHERE unpriced_by_code IS NOT NULL)
            SELECT n.code, n.n, coalesce(u.n, 0)
            FROM (SELECT code, sum(n) AS n FROM n GROUP BY code) n
                 LEFT JOIN (SELECT code, sum(n) AS n FROM u GROUP BY code) u USING (code)""")
        return {code: (int(n), int(unpriced)) for code, n, unpriced in rows.fetchall()}
    counted = [c for c in columns if c.startswith(("n_code_", "unpriced_code_"))]
    sums = dict(
        zip(
            counted,
            con.execute(
                f"SELECT {', '.join(f'sum({c})' for c in counted)} FROM user_activity"
            ).fetchone(),
        )
    )
    codes = [int(c.removeprefix("n_code_")) for c in counted if c.startswith("n_code_")]
    return {
        code: (int(sums[f"n_code_{code}"]), int(sums.get(f"unpriced_code_{code}") or 0))
        for code in codes
        if sums[f"n_code_{code}"]
    }
