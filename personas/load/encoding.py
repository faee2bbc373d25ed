"""Codes and the one sort: every name and value of the clean rows gets a small integer code, the
codes are packed into BIGINT words, and the rows are sorted once per user by time into the view
``event_rows`` (duplicates dropped, session and day marks read off the same sort)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from .. import activity
from ..params import PersonaParams
from ..sql import quote_literal
from .roles import load_role_vocabulary, normalise_event_name

APP_PLATFORMS = ("app", "ios", "android", "mobile_app")  # platform values that mean the app


def code_names(
    con, roles_path: str, has_event: bool, events: tuple[str, ...] | None = None
) -> dict[str, str]:
    """Give every user, event name, platform, category, product, amount and quantity of
    ``kept`` a small integer code, in tables ``users (uid, user_id)``, ``event_names (code,
    event, role)``, ``platforms (pcode, platform, is_app)``, ``categories (ccode, category)``,
    ``products (prcode, product)``, ``amounts (acode, amount)`` and ``quantities (qcode,
    quantity)``; return event name -> role.

    One pass over the log finds all seven; ``events``, when given, are the event names of the
    whole log (:class:`~personas.load.facts.LogFacts`), coded in place of those of these rows, so
    that every part of a log codes and counts its events alike. Codes follow the text order, so
    sorting by ``uid`` sorts by ``user_id``. With codes, the sort in :func:`mark_rows` moves
    narrow fixed-width rows instead of strings, which nearly halves it on a large log
    (docs/benchmarks.md).
    """
    con.execute("""
        CREATE OR REPLACE TEMP TABLE distinct_names AS
        SELECT user_id, event, platform, category, product, amount, quantity,
               GROUPING(user_id) AS no_user, GROUPING(event) AS no_event,
               GROUPING(platform) AS no_platform, GROUPING(category) AS no_category,
               GROUPING(product) AS no_product, GROUPING(amount) AS no_amount,
               GROUPING(quantity) AS no_quantity
        FROM kept
        GROUP BY GROUPING SETS ((user_id), (event), (platform), (category), (product),
                                (amount), (quantity))""")
    con.execute("""
        CREATE OR REPLACE TEMP TABLE users AS
        SELECT CAST(row_number() OVER (ORDER BY user_id) AS UINTEGER) AS uid, user_id
        FROM distinct_names WHERE no_user = 0""")
    names = (
        list(events)
        if events is not None
        else [
            row[0]
            for row in con.execute(
                "SELECT event FROM distinct_names WHERE no_event = 0 ORDER BY event"
            ).fetchall()
        ]
    )
    vocab = load_role_vocabulary(roles_path)
    role_map = {
        name: vocab.get(normalise_event_name(name), "other") if has_event else "purchase"
        for name in names
    }
    # as three lists in one statement: executemany runs one statement per name (15 s for 10,000)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE event_names AS SELECT "
        "CAST(unnest(range(1, len($names) + 1)) AS UINTEGER) AS code, "
        "CAST(unnest($names) AS VARCHAR) AS event, "
        "CAST(unnest($roles) AS VARCHAR) AS role",
        {"names": list(role_map), "roles": list(role_map.values())},
    )
    app = ", ".join(quote_literal(name) for name in APP_PLATFORMS)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE platforms AS
        SELECT CAST(row_number() OVER (ORDER BY platform) AS UINTEGER) AS pcode, platform,
               lower(trim(platform)) IN ({app}) AS is_app
        FROM distinct_names WHERE no_platform = 0 AND platform IS NOT NULL""")
    for table, code, column in (
        ("categories", "ccode", "category"),
        ("products", "prcode", "product"),
        ("amounts", "acode", "amount"),
        ("quantities", "qcode", "quantity"),
    ):
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE {table} AS
            SELECT CAST(row_number() OVER (ORDER BY {column}) AS UINTEGER) AS {code}, {column}
            FROM distinct_names
            WHERE no_{column} = 0 AND {column} IS NOT NULL""")
    con.execute("DROP TABLE distinct_names")
    return role_map


def mark_rows(con, params: PersonaParams, first: datetime) -> None:
    """Create the views ``coded`` (``kept`` with codes for its names) and ``event_rows``: the
    coded rows sorted once per user by time, with exact duplicates dropped and the marks the
    features need read off the same sort.

    =========== ====================================================================
    new_session the row starts a session: the user's first event, or more than
                ``session_gap_minutes`` after the previous one
    idle_us     on such a row (not the first), microseconds since the previous event:
                the idle time between two sessions
    day_mark    0 when the row is on the same calendar day as the one before; 1 when it
                starts a day of the same week (Monday to Sunday);
                :data:`~personas.activity.DAY_MARK_WEEK` when it starts a day of a new
                week (the user's first event too). A sum gives active days and weeks.
    =========== ====================================================================

    Weeks are counted from the Monday before ``first``, the first event kept
    (:func:`personas.activity.week_origin`); the week is compared only on a new day.

    Identical rows sort next to each other (every column is in the sort key), so a row equal
    to the one before it is a duplicate. Sessions are told apart by these marks, not numbered:
    numbering them would take a second sort of every event. With ``session_col`` the given
    sessions are kept as ``session_key``.

    ``event_rows`` is a view, evaluated when read: :func:`personas.activity.summarise` reads it
    once for everything the features need. At 165M events a table of it spilled to disk, and
    reading it back took longer than the sort.
    """
    amount, quantity = value_codings(con)
    con.execute(f"""
        CREATE OR REPLACE TEMP VIEW coded AS
        SELECT u.uid, k.ts, e.code, {amount.encode} AS acode, {quantity.encode} AS qcode,
               k.discount, p.pcode, c.ccode, pr.prcode, k.session_key
        FROM kept k JOIN users u USING (user_id) JOIN event_names e USING (event)
             LEFT JOIN platforms p USING (platform) LEFT JOIN categories c USING (category)
             LEFT JOIN products pr USING (product)
             {amount.encode_join}{quantity.encode_join}""")
    words = pack_codes(con, (amount, quantity))
    keys = [f"w{i}" for i in range(len(words))] + (["session_key"] if params.session_col else [])
    # a column with no values (width 0) is NULL throughout: nothing to pack
    packed = ", ".join(
        " | ".join(f"(CAST({sql} AS BIGINT) << {shift})" for _, sql, width, shift in word if width)
        + f" AS w{i}"
        for i, word in enumerate(words)
    )
    unpacked = _unpack_codes(words)
    gap_us = int(params.session_gap_minutes * 60 * 1_000_000)
    origin = activity.week_origin(first)
    week, prev_week = (
        f"{activity.since_origin(t, origin)} // {7 * activity.DAY_US}" for t in ("ts", "prev_ts")
    )
    previous = ", ".join(f"lag({c}) OVER w AS prev_{c}" for c in keys)
    same = " AND ".join(["prev_ts = ts"] + [f"prev_{c} IS NOT DISTINCT FROM {c}" for c in keys])
    # the rows the sort reads; summarise_in_buckets points packed_rows at one bucket at a time
    con.execute(f"""
        CREATE OR REPLACE TEMP VIEW coded_packed AS
        SELECT uid, ts, {packed}, session_key FROM coded""")
    con.execute("CREATE OR REPLACE TEMP VIEW packed_rows AS SELECT * FROM coded_packed")
    con.execute(f"""
        CREATE OR REPLACE TEMP VIEW event_rows AS
        WITH marked AS (
            SELECT *, lag(ts) OVER w AS prev_ts, {previous}
            FROM packed_rows
            WINDOW w AS (PARTITION BY uid ORDER BY ts, {", ".join(keys)})),
        kept_rows AS (
            SELECT uid, ts, {unpacked}, session_key,
                   prev_ts IS NULL OR epoch_us(ts) - epoch_us(prev_ts) > {gap_us} AS new_session,
                   CASE WHEN epoch_us(ts) - epoch_us(prev_ts) > {gap_us}
                        THEN epoch_us(ts) - epoch_us(prev_ts) END AS idle_us,
                   CASE WHEN prev_ts IS NULL THEN {activity.DAY_MARK_WEEK}
                        WHEN CAST(ts AS DATE) = CAST(prev_ts AS DATE) THEN 0
                        WHEN {week} = {prev_week} THEN 1
                        ELSE {activity.DAY_MARK_WEEK} END AS day_mark
            FROM marked
            WHERE NOT coalesce({same}, FALSE))
        SELECT r.*, {amount.decode} AS amount, {quantity.decode} AS quantity
        FROM kept_rows r{amount.decode_join}{quantity.decode_join}""")
    con.execute(f"CREATE OR REPLACE TEMP VIEW events AS {_events_view_sql(params)}")


WORD_BITS = 63  # bits of a BIGINT sort key that stay non-negative
SCALES = (1, 100)  # a numeric column whose values are all whole numbers, or all whole cents
SCALED_BITS = 40  # ... below 2 ** 40 once scaled, goes through the sort as that number


@dataclass(frozen=True)
class ValueCoding:
    """How a numeric column of ``kept`` (amount, quantity) rides through the sort as a small
    non-negative integer code (0: missing), and how ``event_rows`` reads the value back.

    Whole numbers or whole cents are their own code, scaled (plus 1): no join either way. Other
    values are numbered through their table of distinct values (``amounts``, ``quantities``),
    joined on the way in and out.
    """

    encode: str  # SQL over ``kept k``: the code
    decode: str  # SQL over ``kept_rows r``: the value
    bits: int
    encode_join: str = ""
    decode_join: str = ""


def _value_coding(con, table: str, code: str, column: str) -> ValueCoding:
    """The :class:`ValueCoding` of ``column``, from its table of distinct (non-negative) values."""
    count, top = con.execute(f"SELECT count(*), max({column}) FROM {table}").fetchone()
    if not count:
        return ValueCoding("CAST(NULL AS BIGINT)", "CAST(NULL AS DOUBLE)", 0)
    for scale in SCALES:
        if not math.isfinite(top) or top * scale >= 2**SCALED_BITS:  # NaN sorts last
            break
        # every value must come back exactly: then equal codes mean equal values
        if con.execute(
            f"SELECT bool_and(CAST(round({column} * {scale}) AS BIGINT) / {scale}.0 "
            f"= {column}) FROM {table}"
        ).fetchone()[0]:
            return ValueCoding(
                f"CAST(round(k.{column} * {scale}) AS BIGINT) + 1",
                f"(r.{code} - 1) / {scale}.0",
                (round(top * scale) + 1).bit_length(),
            )
    alias = f"{code}_t"
    return ValueCoding(
        f"{alias}.{code}",
        f"{alias}.{column}",
        count.bit_length(),
        f" LEFT JOIN {table} {alias} USING ({column})",
        f" LEFT JOIN {table} {alias} USING ({code})",
    )


def value_codings(con) -> tuple[ValueCoding, ValueCoding]:
    """The codings of the amount and the quantity."""
    return (
        _value_coding(con, "amounts", "acode", "amount"),
        _value_coding(con, "quantities", "qcode", "quantity"),
    )


def pack_codes(
    con, values: tuple[ValueCoding, ValueCoding] | None = None
) -> list[list[tuple[str, str, int, int]]]:
    """How ``coded``'s small columns pack into BIGINT words: per word, (column, SQL giving its
    value as a non-negative integer, bits, shift).

    The sort of :func:`mark_rows` moves every column it carries through memory and, at 165M
    events, through its spill files: one BIGINT in place of six columns with their null masks
    makes that pass markedly faster at 1M users (docs/benchmarks.md). Codes start at 1, so 0
    stands for a missing value; a column with no values takes no bits. Usually everything fits
    one word; a catalogue with millions of products and prices takes two.
    """

    def bits(table: str) -> int:
        return int(con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]).bit_length()

    amount, quantity = values if values is not None else value_codings(con)
    fields = [
        ("code", "code", bits("event_names")),
        ("acode", "coalesce(acode, 0)", amount.bits),
        ("qcode", "coalesce(qcode, 0)", quantity.bits),
        ("discount", "CASE WHEN discount THEN 2 WHEN NOT discount THEN 1 ELSE 0 END", 2),
        ("pcode", "coalesce(pcode, 0)", bits("platforms")),
        ("ccode", "coalesce(ccode, 0)", bits("categories")),
        ("prcode", "coalesce(prcode, 0)", bits("products")),
    ]
    words: list[list[tuple[str, str, int, int]]] = [[]]
    used = 0
    for name, sql, width in fields:
        if width and used + width > WORD_BITS:
            words.append([])
            used = 0
        words[-1].append((name, sql, width, used))
        used += width
    return words


def _unpack_codes(words: list[list[tuple[str, str, int, int]]]) -> str:
    """SQL columns code, acode, qcode, discount, pcode, ccode, prcode read back from the words.

    The codes stay BIGINT, as they come out of the word.
    """
    columns = []
    for i, word in enumerate(words):
        for name, _, width, shift in word:
            value = f"((w{i} >> {shift}) & {(1 << width) - 1})"
            if name == "code":
                columns.append(f"{value} AS code")
            elif name == "discount":
                # 2 true, 1 false, 0 missing
                columns.append(f"nullif({value}, 0) = 2 AS discount")
            elif width == 0:
                columns.append(f"CAST(NULL AS BIGINT) AS {name}")
            else:
                columns.append(f"nullif({value}, 0) AS {name}")
    return ", ".join(columns)


def _events_view_sql(params: PersonaParams) -> str:
    """The documented ``events`` view (module docstring) over ``event_rows``, decoded.

    It is for people exploring the log in SQL and for tests; the features read ``user_activity``
    (:mod:`personas.activity`). Each read of the view sorts the log again.
    Session numbers are computed when the view is read.
    """
    if params.session_col:
        numbered = (
            "SELECT *, dense_rank() OVER (PARTITION BY uid ORDER BY session_start, "
            "session_key) AS session_no FROM (SELECT *, min(ts) OVER (PARTITION BY uid, "
            "session_key) AS session_start FROM event_rows)"
        )
    else:
        numbered = (
            "SELECT *, sum(CAST(new_session AS BIGINT)) OVER (PARTITION BY uid ORDER BY "
            "ts, new_session DESC ROWS UNBOUNDED PRECEDING) AS session_no FROM event_rows"
        )
    return f"""
        SELECT u.user_id, r.ts, e.event, e.role, r.amount, r.quantity, r.discount, p.platform,
               c.category, pr.product, r.session_no
        FROM ({numbered}) r
             JOIN users u USING (uid) JOIN event_names e USING (code)
             LEFT JOIN platforms p USING (pcode) LEFT JOIN categories c USING (ccode)
             LEFT JOIN products pr USING (prcode)"""
