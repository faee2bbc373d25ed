"""The load as one stage: :func:`load_events` runs the package's steps in order (see
:mod:`personas.load`) and returns the :class:`EventLog`; :func:`connect` opens the DuckDB it
runs in.

Usable but dirty rows are dropped or repaired by the rules in
:data:`~personas.load.cleaning.CLEANING_RULES` and counted; rows outside the ``start``/``end``
window are dropped and counted the same way. The log also carries the reference date that
recency features count to (``reference_date``, else its last event).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from .. import activity
from ..errors import InputError
from ..params import SIZE, PersonaParams
from ..progress import Progress
from ..sql import quote_name
from . import sniff
from .cleaning import CLEANING_RULES, keep_clean_rows
from .encoding import code_names, mark_rows
from .facts import LogFacts
from .source import OPTIONAL_COLUMNS, open_raw, raise_unreadable_part, require_column
from .values import ValueCheck, number_expression, time_expression
from .window import empty_window_error, reference_time, timestamp_text

# DuckDB may use this much memory for the event table and the feature queries; beyond it, it
# spills to a temporary folder instead (its own default is 80 % of the machine's memory, which a
# 140M-row log would take). 3 GB keeps a 1M-user run under the 4 GB the features may use.
DUCKDB_MEMORY_LIMIT = "3GB"  # the default of the memory_limit parameter
# The one sort per user of this many events per GB of memory_limit stays in memory: the bundled
# shop's 165M events (1M users) take as long with 3 GB as with 10 GB. A larger log is summed in
# buckets of users of about that many events each (personas.activity.summarise_in_buckets), as a
# sort that spills costs more than writing the rows out once in buckets (docs/scale.md).
EVENTS_PER_GB = 60_000_000
UNITS = {"KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30,
         "TIB": 2**40}  # fmt: skip


def user_buckets(events: int, memory_limit: str) -> int:
    """How many buckets of users the per-user pass over ``events`` rows sums, one sort each:
    1 while the sort fits ``memory_limit`` (:data:`EVENTS_PER_GB`)."""
    number, unit = SIZE.fullmatch(memory_limit).groups()
    per_bucket = max(int(float(number) * UNITS[unit.upper()] / 1e9 * EVENTS_PER_GB), 1)
    return max(1, -(-events // per_bucket))


@dataclass
class EventLog:
    """The loaded log: a DuckDB connection holding the ``events`` view, and what we learnt."""

    con: duckdb.DuckDBPyConnection
    source: str
    has_event_column: bool
    columns: list[str]  # columns of the raw file
    optional: list[str]  # optional columns found (amount, discount, ...)
    time_format: str  # how timestamps were read
    role_map: dict[str, str]  # event name -> role, for names seen in the data
    event_counts: dict[str, int]  # event name -> rows (after cleaning)
    quality: dict[str, int] = field(default_factory=dict)  # rule -> rows affected
    counts: dict[str, Any] = field(default_factory=dict)  # events, users, start, end
    window: dict[str, str | None] = field(default_factory=dict)  # start/end applied, None = open
    reference: datetime | None = None  # the instant "days since ..." features count to
    reference_from: str = ""  # where it came from: the parameter or the data
    planted: Any = None  # bundled sample only: DataFrame user_id -> planted persona
    session_col: str = ""  # the sessions are given in this column ("" = split by a gap)
    read_as: str = ""  # how a CSV was read if not as plain UTF-8 ("latin-1 text", ...)
    # seconds of the two passes: "load" (read, type, clean) and "per_user" (code, sort, sum)
    seconds: dict[str, float] = field(default_factory=dict)
    # the whole log's sums the smoothed rates pull towards, when this log is part of it
    # (LogFacts.population); None: this log's own (personas.features.POPULATION_SUMS)
    population: dict[str, int] | None = None
    engine: dict[str, Any] = field(default_factory=dict)  # what another engine reports (Spark:
    # partitions and the seconds its tasks took, personas.spark.features)

    @property
    def roles(self) -> set[str]:
        """Roles present in the data (after cleaning)."""
        return {self.role_map[e] for e, n in self.event_counts.items() if n > 0}

    @property
    def unknown_events(self) -> list[str]:
        return sorted(e for e, r in self.role_map.items() if r == "other")


def load_events(
    params: PersonaParams,
    con: duckdb.DuckDBPyConnection | None = None,
    progress: Progress | None = None,
    *,
    rows: Any = None,
    facts: LogFacts | None = None,
) -> EventLog:
    """Read and validate the log named by ``params``; return it as the DuckDB view ``events``.

    ``progress``, when given, reports the two passes: the rows read and checked, then the
    users summed (:mod:`personas.progress`).

    ``rows`` (an Arrow table or record batch reader) replaces the file: it holds part of a log,
    all the rows of each of its users, and ``facts`` what the whole log gives
    (:class:`~personas.load.facts.LogFacts`). A part that keeps no row is no error then. This is
    how each partition of the Spark engine loads its users (:mod:`personas.spark`).

    Raises
    ------
    InputError
        The file is missing, unreadable, empty or not a table, or the start/end window leaves no
        events.
    SchemaError
        The user or time column is missing, or times or amounts do not parse.
    ParameterError
        ``reference_date`` lies before the last event kept.

    Examples
    --------
    >>> log = load_events(PersonaParams(sample_users=300))
    >>> log.counts["users"]
    300
    """
    con = con if con is not None else connect(params.memory_limit, params.temp_dir)
    dialects: list[sniff.CsvDialect] = []  # how a CSV was read, the last one last
    while True:
        try:
            return _load_events(
                params, con, progress or Progress(quiet=True), dialects, rows=rows, facts=facts
            )
        except (duckdb.ConversionException, duckdb.InvalidInputException) as exc:
            if rows is not None:  # no file to read again or to name
                raise
            # Past the rows the reader sniffed: a byte that is not UTF-8 or a line ending of the
            # other kind (read the file again another way), or a value it cannot convert.
            retry = (
                sniff.fallback(con, params.events_path, dialects[-1], str(exc))
                if dialects and isinstance(exc, duckdb.InvalidInputException)
                else None
            )
            if retry is not None:
                dialects.append(retry)
                continue
            raise_unreadable_part(con, params.events_path, dialects)
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
            detail = "; ".join(
                [lines[0]]
                + [line for line in lines[1:] if line.startswith("Error when converting")]
            )
            raise InputError(
                f"events file {params.events_path!r} cannot be read to the end "
                f"({detail[:300]}); fix that value, or export the log as Parquet",
                path=params.events_path,
            ) from None
        except (duckdb.OutOfMemoryException, duckdb.InterruptException):
            raise
        except duckdb.Error:
            if rows is not None:
                raise
            # e.g. a Parquet file whose footer reads but whose pages do not ("Out of buffer")
            raise_unreadable_part(con, params.events_path, dialects)
            raise


def connect(
    memory_limit: str = DUCKDB_MEMORY_LIMIT, temp_dir: str = ""
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB that spills to a private folder in ``temp_dir`` (empty: the system's
    temporary folder) past ``memory_limit``.

    DuckDB creates the folder when it first spills and removes it when the connection closes,
    or this process when it ends; folders that killed runs left are removed here. Its own
    progress bar is off: the pipeline reports progress (:func:`track_progress`).
    """
    import atexit
    import shutil
    import tempfile
    import uuid

    from ..runfolder import SPILL_PREFIX, clean_spill_folders

    temp = Path(temp_dir or tempfile.gettempdir())
    clean_spill_folders(temp)
    spill = temp / f"{SPILL_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:12]}"
    atexit.register(shutil.rmtree, spill, ignore_errors=True)  # a run that stopped on an error
    con = duckdb.connect(
        config={"memory_limit": memory_limit.replace(" ", ""), "temp_directory": str(spill)}
    )
    try:
        con.execute("SET enable_progress_bar = false")
    except duckdb.Error:  # in a Jupyter kernel without ipywidgets DuckDB shows no bar anyway
        pass
    return con


def track_progress(con: duckdb.DuckDBPyConnection, progress: Progress):
    """The percentage of the query ``con`` is running, for ``progress``'s live line: DuckDB
    tracks it with its progress bar on (printing nothing), on a terminal only. None elsewhere."""
    if not progress.live:
        return None
    con.execute("SET enable_progress_bar = true")
    con.execute("SET enable_progress_bar_print = false")
    return con.query_progress


@dataclass
class CleanRows:
    """What :func:`read_and_clean` learnt: the view ``kept`` stands in the connection."""

    source: str
    planted: Any
    columns: list[str]
    has_event: bool
    optional: list[str]
    amount_col: str | None
    time_format: str
    total: int  # rows read
    quality: dict[str, int]  # rule -> rows touched (duplicates come later)
    dropped: int
    kept_span: tuple  # first and last time kept, (None, None) when none is
    usable_span: tuple  # the same ignoring the start/end window


def read_and_clean(
    params: PersonaParams,
    con: duckdb.DuckDBPyConnection,
    progress: Progress,
    dialects: list[sniff.CsvDialect] | None = None,
    *,
    rows: Any = None,
    facts: LogFacts | None = None,
) -> CleanRows:
    """The load's first pass: open the input, type its columns, count and apply the cleaning
    rules into the view ``kept`` (:func:`load_events` for ``rows`` and ``facts``)."""
    # Times without a zone are UTC, and the view is evaluated lazily: pin the session's zone
    # (DuckDB defaults to the machine's local zone).
    con.execute("SET TimeZone = 'UTC'")
    poll = track_progress(con, progress)
    with progress.stage("load", "reading rows", poll) as stage:
        if rows is not None:
            con.register("raw_rows", rows)
            con.execute("CREATE OR REPLACE TEMP VIEW raw AS SELECT * FROM raw_rows")
            source = params.events_path or params.events_table or "the bundled sample"
            planted, from_text = None, False
        else:
            source, planted, from_text = open_raw(con, params, dialects)
        described = con.execute("DESCRIBE raw").fetchall()
        types = {row[0]: row[1] for row in described}
        columns = list(types)
        if not columns or (
            len(columns) == 1 and not con.execute("SELECT count(*) FROM raw").fetchone()[0]
        ):
            raise InputError(
                f"events file {source!r} holds no columns; export it with a header row", path=source
            )
        require_column(columns, params.user_col, "user_col", source)
        require_column(columns, params.time_col, "time_col", source)
        has_event = params.event_col in columns
        if not has_event and params.event_col != "event":
            require_column(columns, params.event_col, "event_col", source)
        if params.session_col:
            require_column(columns, params.session_col, "session_col", source)
        amount_col = params.amount_col if params.amount_col in columns else None
        if params.amount_col != "amount" and amount_col is None:
            require_column(columns, params.amount_col, "amount_col", source)

        total = con.execute("SELECT count(*) FROM raw").fetchone()[0]
        if total == 0 and facts is None:
            raise InputError(
                f"events file {source!r} has a header but no rows; export the log with its events",
                path=source,
            )

        ts_sql, time_format, time_check = time_expression(
            con,
            params.time_col,
            types[params.time_col],
            source,
            from_text,
            facts.time_top if facts else None,
        )
        # Python (and so every "days since" and the report) holds the years 1 to 9999 only
        far_check = ValueCheck(
            f"({ts_sql}) NOT BETWEEN TIMESTAMP '0001-01-01' AND "
            "TIMESTAMP '9999-12-31 23:59:59.999999'",
            f"CAST({quote_name(params.time_col)} AS VARCHAR)",
            column=params.time_col,
            kind="time",
            what="timestamps",
            why=f" read as {time_format}: outside the years 1 to 9999",
            fix="remove or correct them",
        )
        amount_sql = number_expression(
            con,
            amount_col,
            types.get(amount_col or "", ""),
            source,
            "amount",
            "remove currency signs and thousands separators, or set amount_col to another column",
        )
        quantity_sql = number_expression(
            con,
            "quantity" if "quantity" in columns else None,
            types.get("quantity", ""),
            source,
            "quantity",
            "give the number of items as a plain number, or rename the column if it "
            "holds something else",
        )
        optional = [c for c in OPTIONAL_COLUMNS if c in columns] + (
            ["amount"] if amount_col else []
        )
        event_sql = (
            f"CAST({quote_name(params.event_col)} AS VARCHAR)" if has_event else "'purchase'"
        )
        discount_sql = (
            "TRY_CAST(discount AS BOOLEAN)" if "discount" in optional else "CAST(NULL AS BOOLEAN)"
        )
        platform_sql, category_sql, product_sql = (
            f"CAST({name} AS VARCHAR)" if name in optional else "CAST(NULL AS VARCHAR)"
            for name in ("platform", "category", "product")
        )
        session_sql = (
            f"CAST({quote_name(params.session_col)} AS VARCHAR)"
            if params.session_col
            else "CAST(NULL AS VARCHAR)"
        )
        con.execute(f"""
            CREATE OR REPLACE TEMP VIEW typed AS
            SELECT CAST({quote_name(params.user_col)} AS VARCHAR) AS user_id,
                   {ts_sql} AS ts,
                   coalesce({event_sql}, '(missing)') AS event,
                   {amount_sql} AS amount,
                   {quantity_sql} AS quantity,
                   {discount_sql} AS discount,
                   {platform_sql} AS platform,
                   {category_sql} AS category,
                   {product_sql} AS product,
                   {session_sql} AS session_key,
                   {time_check.where if time_check else "FALSE"} AS bad_time,
                   {
            f"CASE WHEN {time_check.where} THEN {time_check.example} END" if time_check else "NULL"
        } AS bad_time_example,
                   {far_check.where} AS far_time,
                   CASE WHEN {far_check.where} THEN {far_check.example} END AS far_time_example
            FROM raw""")

        quality, dropped, usable_span, kept_span = keep_clean_rows(
            con, params, source, time_check, far_check, facts.now if facts else None
        )
        if facts is not None:  # a part of the log may keep no row; the whole is checked
            stage.done(f"{total:,} rows read")
            return CleanRows(
                source, planted, columns, has_event, optional, amount_col, time_format, total,
                quality, dropped, kept_span, usable_span,
            )  # fmt: skip
        if total - dropped == 0 and usable_span[0] is not None:
            raise empty_window_error(params, source, *usable_span)
        if total - dropped == 0:
            raise InputError(
                f"events file {source!r} has no usable rows after cleaning "
                f"({', '.join(f'{k}: {v}' for k, v in quality.items() if v)}); check "
                "the user and time columns",
                path=source,
            )
        stage.done(f"{total:,} rows read")
    return CleanRows(
        source, planted, columns, has_event, optional, amount_col, time_format, total, quality,
        dropped, kept_span, usable_span,
    )  # fmt: skip


def _load_events(
    params: PersonaParams,
    con: duckdb.DuckDBPyConnection | None,
    progress: Progress,
    dialects: list[sniff.CsvDialect] | None = None,
    *,
    rows: Any = None,
    facts: LogFacts | None = None,
) -> EventLog:
    con = con if con is not None else connect(params.memory_limit, params.temp_dir)
    started = time.perf_counter()
    clean = read_and_clean(params, con, progress, dialects, rows=rows, facts=facts)
    source, has_event, total, quality = clean.source, clean.has_event, clean.total, clean.quality
    read = time.perf_counter()
    poll = track_progress(con, progress)
    span = facts.span if facts is not None and facts.span is not None else clean.kept_span
    with progress.stage("load", "summing events per user", poll) as stage:
        role_map = code_names(con, params.roles_path, has_event, facts.events if facts else None)
        mark_rows(con, params, span[0])
        start, end = span
        activity.summarise(
            con,
            gap_sessions=not params.session_col,
            span=span,
            year=activity.spans_year(start, end),
            buckets=user_buckets(total - clean.dropped, params.memory_limit),
        )

        # from here on everything reads the per-user tallies, never the file again
        names = dict(con.execute("SELECT code, event FROM event_names").fetchall())
        totals = sorted(
            (
                (names[code], n, unpriced)
                for code, (n, unpriced) in activity.event_totals(con).items()
            ),
            key=lambda row: (-row[1], row[0]),
        )
        event_counts = {name: n for name, n, _ in totals}
        if facts is not None and facts.event_counts is not None:
            event_counts = dict(facts.event_counts)  # the whole log's, for its features
        role_map = {name: role_map[name] for name in event_counts}
        users, events = con.execute(
            "SELECT count(*), coalesce(sum(n_events), 0) FROM user_activity"
        ).fetchone()
        stage.done(f"{users:,} users summed from {int(events):,} events")
    seconds = {"load": round(read - started, 3), "per_user": round(time.perf_counter() - read, 3)}
    quality["duplicate"] = max(total - int(events) - clean.dropped, 0)
    # unpriced purchases come with the per-event counts, at no extra pass over a large file;
    # without an amount column no purchase has a value: that is the data's shape, not dirt
    quality["missing_amount"] = (
        sum(unpriced for _, _, unpriced in totals) if clean.amount_col else 0
    )
    quality = {rule: quality[rule] for rule in CLEANING_RULES}  # run.json lists them in this order
    counts = {
        "rows_read": total,
        "events": int(events),
        "users": users,
        "start": str(start),
        "end": str(end),
    }
    reference = reference_time(params, end)
    first, last = params.time_window()
    return EventLog(
        con=con,
        source=source,
        has_event_column=has_event,
        columns=clean.columns,
        optional=clean.optional,
        time_format=clean.time_format,
        role_map=role_map,
        event_counts=event_counts,
        quality=quality,
        counts=counts,
        planted=clean.planted,
        session_col=params.session_col,
        read_as=dialects[-1].describe() if dialects else "",
        seconds=seconds,
        window={"start": timestamp_text(first), "end": timestamp_text(last)},
        reference=reference,
        reference_from="reference_date" if params.reference_date.strip() else "last event used",
        population=facts.population if facts is not None else None,
    )
