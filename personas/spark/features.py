"""The features on Spark: three passes over the log, each partition running the DuckDB load.

1. **clean** (the input's own partitions): each reads, types and cleans its rows as the load
   does (:func:`personas.load.stage.read_and_clean`) and reports the rows each cleaning rule
   touched, the first and last time kept and the event names kept. Together they give the span
   of the data and the event vocabulary: what every user's features are relative to.
2. **sum** (the rows moved so that each user's are in one partition, by a hash of the user id):
   each loads its users with those facts fixed (:func:`personas.load.load_events`) and reports
   its users, events, events per name and the population's totals the smoothed rates pull
   towards (:data:`personas.features.POPULATION_SUMS`).
3. **features** (the same partitions): each loads its users again, with every fact fixed,
   computes their features with the package's feature SQL
   (:func:`personas.features.compute_features`) and the executors write them, a Parquet dataset
   (a folder of parts, one a partition, with a ``user_id`` column): the table never comes to the
   driver.

The load runs twice on each user's rows (passes 2 and 3): the population's totals must be known
before any user's rates are. The moved rows are kept on the executors' disks between the two.
Errors a partition meets (bad times, a missing column) come back to the driver as the same one
sentence.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from .. import errors
from ..errors import InputError, PersonaError
from ..load import CLEANING_RULES, EventLog
from ..load.facts import LogFacts
from ..params import PersonaParams
from ..progress import Progress
from .partitions import arrow_schema, connect_partition, ddl, on_partition
from .purchases import spark_purchases

ROWS_PER_PARTITION = 2_000_000  # events a partition loads at once (about 0.3 GB in DuckDB)
RULES = [rule for rule in CLEANING_RULES if rule not in ("duplicate", "missing_amount")]


def _error_row(exc: PersonaError) -> dict[str, Any]:
    return {"error_kind": type(exc).__name__, "error": str(exc)}


def _raise_first(rows: list[dict[str, Any]]) -> None:
    """Raise, as its own kind, the first error a partition met."""
    for row in rows:
        if row.get("error"):
            kind = getattr(errors, row["error_kind"], PersonaError)
            try:
                raise kind(row["error"])
            except TypeError:  # a kind needing more than its message
                raise PersonaError(row["error"]) from None


def _stamp(value) -> str | None:
    return None if value is None else value.isoformat(" ")


# -- pass 1: clean -------------------------------------------------------------------------------


def _fields(*names_and_kinds: tuple[str, str]) -> list[tuple[str, str]]:
    """A partition's report row: (name, Spark type) of each field, the error's last."""
    return [*names_and_kinds, ("error_kind", "string"), ("error", "string")]


def _report(fields: list[tuple[str, str]], row: dict[str, Any]):
    """One report row as an Arrow batch of ``fields`` (those not in ``row`` empty)."""
    import pyarrow as pa

    schema = arrow_schema(fields)
    return pa.RecordBatch.from_pylist([{name: row.get(name) for name, _ in fields}], schema)


CLEAN_FIELDS = _fields(
    ("rows", "long"),
    ("dropped", "long"),
    *((rule, "long") for rule in RULES),
    ("usable_first", "string"),
    ("usable_last", "string"),
    ("kept_first", "string"),
    ("kept_last", "string"),
    ("events", "array<string>"),
)


def _reporting(params: PersonaParams, fields: list[tuple[str, str]], report):
    """A partition function giving one report row of ``fields``: ``report(con, table)`` on the
    partition's rows in its own DuckDB, or the error it met (a partition without rows gives
    none)."""

    def run(batches):
        try:
            row = on_partition(params, batches, report)
        except PersonaError as exc:
            row = _error_row(exc)
        if row is not None:
            yield _report(fields, row)

    return run


def clean_part(params: PersonaParams, facts: LogFacts):
    """The partition function of pass 1 (``mapInArrow``)."""

    def report(con, table) -> dict[str, Any]:
        from ..load.stage import read_and_clean

        clean = read_and_clean(params, con, Progress(quiet=True), rows=table, facts=facts)
        names = [n for (n,) in con.execute("SELECT DISTINCT event FROM kept").fetchall()]
        return {
            "rows": clean.total,
            "dropped": clean.dropped,
            **{rule: clean.quality[rule] for rule in RULES},
            "usable_first": _stamp(clean.usable_span[0]),
            "usable_last": _stamp(clean.usable_span[1]),
            "kept_first": _stamp(clean.kept_span[0]),
            "kept_last": _stamp(clean.kept_span[1]),
            "events": names,
        }

    return _reporting(params, CLEAN_FIELDS, report)


# -- pass 2: sum ---------------------------------------------------------------------------------


def sum_fields() -> list[tuple[str, str]]:
    from ..features import POPULATION_SUMS

    return _fields(
        ("users", "long"),
        ("events", "long"),
        ("names", "array<string>"),
        ("roles", "array<string>"),
        ("counts", "array<long>"),
        ("unpriced", "array<long>"),
        *((f"pop_{name}", "long") for name in POPULATION_SUMS),
        ("rows", "long"),
        ("seconds", "double"),
    )


def sum_part(params: PersonaParams, facts: LogFacts):
    """The partition function of pass 2."""

    def report(con, table) -> dict[str, Any]:
        from .. import activity
        from ..features import population_sums
        from ..load import load_events

        started = time.perf_counter()
        log = load_events(params, con, rows=table, facts=facts)
        names = dict(con.execute("SELECT code, event FROM event_names").fetchall())
        roles = dict(con.execute("SELECT event, role FROM event_names").fetchall())
        totals = activity.event_totals(con)
        counted = [names[code] for code in totals]
        return {
            "users": log.counts["users"],
            "events": log.counts["events"],
            "names": counted,
            "roles": [roles[name] for name in counted],
            "counts": [n for n, _ in totals.values()],
            "unpriced": [u for _, u in totals.values()],
            **{f"pop_{k}": v for k, v in population_sums(log).items()},
            "rows": table.num_rows,
            "seconds": time.perf_counter() - started,
        }

    return _reporting(params, sum_fields(), report)


# -- pass 3: features ----------------------------------------------------------------------------


def feature_part(params: PersonaParams, facts: LogFacts, columns: list[str]):
    """The partition function of pass 3: the partition's users' features, ``columns`` of them."""

    def features(con, table) -> pd.DataFrame:
        from ..features import compute_features
        from ..load import load_events

        return compute_features(load_events(params, con, rows=table, facts=facts))[0]

    def run(batches):
        import pyarrow as pa

        computed = on_partition(params, batches, features)
        if computed is not None:
            frame = computed.reset_index()[["user_id", *columns]]
            yield pa.RecordBatch.from_pandas(frame, preserve_index=False)

    return run


# -- the driver ----------------------------------------------------------------------------------


def spark_features(
    params: PersonaParams, say: Progress, target: Path, purchases: Path | None = None
) -> tuple[EventLog, list[str], dict[str, str]]:
    """The log's features computed on Spark and written by the executors to ``target``, a
    Parquet dataset (a folder of parts: ``user_id`` and the features, as the DuckDB engine
    computes them, its rows in no order; :func:`personas.features.read_features` reads a small
    one as the DuckDB engine's table). Returns the loaded log's record (an :class:`EventLog`
    without a connection), the feature columns and the notes on skipped features, as
    :func:`personas.features.compute_features` gives them.

    With ``purchases`` (a folder) and ``forecast``, a fourth pass over the users' partitions
    writes the forecast's purchase tables there (:func:`personas.spark.purchases.spark_purchases`)
    and the log's ``engine["purchases"]`` is their record.

    Raises the errors the DuckDB engine raises for the same input, and ParameterError for
    ``features_path``, which the Spark engine does not compute yet.
    """
    from .session import read_events, require_pyspark, spark_session

    require_pyspark()  # before pyspark is imported: one sentence saying how to install it
    from pyspark import StorageLevel
    from pyspark.sql import functions as F
    from pyspark.sql.types import NumericType

    from ..load.window import reference_time, timestamp_text

    if params.features_path:
        raise errors.ParameterError(
            f"parameter features_path={params.features_path!r}: your own features are computed "
            "by the DuckDB engine only so far; leave features_path empty or use engine=duckdb",
            name="features_path",
        )
    spark = spark_session(params)
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    frame, source, planted = read_events(spark, params)
    empty = frame.limit(0).toArrow()
    time_top = None
    if params.time_col in frame.columns and isinstance(
        frame.schema[params.time_col].dataType, NumericType
    ):
        time_top = frame.agg(F.max(F.abs(F.col(params.time_col)))).first()[0]
        time_top = float(time_top) if time_top is not None else None
    facts = LogFacts(now=_now_of_driver(), time_top=time_top)
    _check_columns(params, empty, facts)
    with say.stage("load", "reading rows on Spark") as stage:
        clean = _clean_pass(params, frame, facts, source)
        stage.done(f"{clean['total']:,} rows read")
    seconds["load"] = round(time.perf_counter() - started, 3)
    facts = replace(facts, span=clean["kept"], events=clean["names"])

    purchase_record = None
    started = time.perf_counter()
    partitions = max(
        spark.sparkContext.defaultParallelism, math.ceil(clean["total"] / ROWS_PER_PARTITION)
    )
    users_rows = frame.repartition(partitions, F.col(params.user_col)).persist(
        StorageLevel.DISK_ONLY
    )
    try:
        with say.stage("load", "summing events per user on Spark") as stage:
            sums = _sum_pass(params, users_rows, facts)
            stage.done(f"{sums['users']:,} users summed from {sums['events']:,} events")
        seconds["per_user"] = round(time.perf_counter() - started, 3)
        facts = replace(facts, event_counts=sums["event_counts"], population=sums["population"])
        started = time.perf_counter()
        with say.stage("features", "computing features per user on Spark") as computing:
            columns, skipped, shape = _feature_pass(params, users_rows, facts, empty, target)
            computing.done(f"{len(columns)} columns for {sums['users']:,} users written")
        seconds["features"] = round(time.perf_counter() - started, 3)
        if purchases is not None and params.forecast:
            started = time.perf_counter()
            with say.stage("features", "summing purchases per buyer on Spark") as summing:
                purchase_record = spark_purchases(
                    params,
                    users_rows,
                    facts,
                    reference_time(params, clean["kept"][1]),
                    str(clean["kept"][0]),
                    purchases,
                )
                summing.done(f"{purchase_record['buyers']:,} buyers")
            seconds["purchases"] = round(time.perf_counter() - started, 3)
    finally:
        users_rows.unpersist()
    quality = dict(clean["quality"])
    quality["duplicate"] = max(clean["total"] - sums["events"] - clean["dropped"], 0)
    quality["missing_amount"] = sums["unpriced"] if "amount" in shape.optional else 0
    first, last = params.time_window()
    tasks = sums["tasks"]
    engine_extra = {} if purchase_record is None else {"purchases": purchase_record}
    kept = clean["kept"]
    log = EventLog(
        con=None,
        source=source,
        has_event_column=shape.has_event_column,
        columns=shape.columns,
        optional=shape.optional,
        time_format=shape.time_format,
        role_map={name: sums["role_map"][name] for name in sums["event_counts"]},
        event_counts=sums["event_counts"],
        quality={rule: quality[rule] for rule in CLEANING_RULES},
        counts={
            "rows_read": clean["total"],
            "events": sums["events"],
            "users": sums["users"],
            "start": str(kept[0]),
            "end": str(kept[1]),
        },
        window={"start": timestamp_text(first), "end": timestamp_text(last)},
        reference=reference_time(params, kept[1]),
        reference_from="reference_date" if params.reference_date.strip() else "last event used",
        planted=planted,
        session_col=params.session_col,
        seconds=seconds,
        engine={
            "partitions": partitions,
            # the load of one partition's users (pass 2) on one core: rows and seconds, for
            # sizing a cluster (docs/scale.md)
            "partition_rows": sum(rows for rows, _ in tasks),
            "partition_seconds": round(sum(sec for _, sec in tasks), 3),
            "slowest_partition_seconds": round(max((sec for _, sec in tasks), default=0.0), 3),
            **engine_extra,
        },
    )
    return log, columns, skipped


def _clean_pass(params: PersonaParams, frame, facts: LogFacts, source: str) -> dict[str, Any]:
    """Pass 1 over the input's partitions: the rows read, the rows each rule touched, the rows
    dropped, the span kept and the event names kept, of the whole log."""
    from ..load.window import empty_window_error
    from .session import quote_spark

    # the columns no cleaning rule reads stay behind: less to move into Python
    named = {params.user_col, params.time_col, params.event_col, params.amount_col}
    unread = {"discount", "platform", "category", "product"} - named - {params.session_col}
    checked = frame.select(*[quote_spark(c) for c in frame.columns if c not in unread])
    rows = [
        row.asDict()
        for row in checked.mapInArrow(clean_part(params, facts), ddl(CLEAN_FIELDS)).collect()
    ]
    _raise_first(rows)
    total = sum(row["rows"] for row in rows)
    if total == 0:
        raise InputError(
            f"events file {source!r} has a header but no rows; export the log with its events",
            path=source,
        )
    quality = {rule: sum(row[rule] for row in rows) for rule in RULES}
    kept = _span(rows, "kept")
    if kept is None:
        usable = _span(rows, "usable")
        if usable is not None:
            raise empty_window_error(params, source, *usable)
        raise InputError(
            f"events file {source!r} has no usable rows after cleaning "
            f"({', '.join(f'{k}: {v}' for k, v in quality.items() if v)}); check "
            "the user and time columns",
            path=source,
        )
    return {
        "total": total,
        "quality": quality,
        "dropped": sum(row["dropped"] for row in rows),
        "kept": kept,
        "names": tuple(sorted({name for row in rows for name in row["events"]})),
    }


def _sum_pass(params: PersonaParams, users_rows, facts: LogFacts) -> dict[str, Any]:
    """Pass 2 over the partitions of users: users, events, events and unpriced purchases per
    name (most first), each name's role, the population's totals, and each task's rows and
    seconds."""
    from ..features import POPULATION_SUMS

    reports = users_rows.mapInArrow(sum_part(params, facts), ddl(sum_fields()))
    rows = [row.asDict() for row in reports.collect()]
    _raise_first(rows)
    per_name: dict[str, list[int]] = {}
    role_map: dict[str, str] = {}
    for row in rows:
        for name, role, n, unpriced in zip(
            row["names"], row["roles"], row["counts"], row["unpriced"]
        ):
            tally = per_name.setdefault(name, [0, 0])
            tally[0] += n
            tally[1] += unpriced
            role_map[name] = role
    return {
        "users": sum(row["users"] for row in rows),
        "events": sum(row["events"] for row in rows),
        "event_counts": {
            name: n for name, (n, _) in sorted(per_name.items(), key=lambda i: (-i[1][0], i[0]))
        },
        "unpriced": sum(unpriced for _, unpriced in per_name.values()),
        "role_map": role_map,
        "population": {name: sum(row[f"pop_{name}"] for row in rows) for name in POPULATION_SUMS},
        "tasks": [(row["rows"], row["seconds"]) for row in rows],
    }


def _feature_pass(params: PersonaParams, users_rows, facts: LogFacts, empty, target: Path):
    """Pass 3: the feature table written to ``target`` by the executors; returns its feature
    columns, the notes on skipped features and the load of no rows that gave the columns (an
    :class:`EventLog`)."""
    from ..features import compute_features
    from ..load import load_events
    from .session import quote_spark

    con = connect_partition(params)
    try:  # the columns and the skipped features, from no rows with every fact fixed
        shape = load_events(params, con, rows=empty, facts=facts)
        table, skipped = compute_features(shape)
    finally:
        con.close()
    columns = list(table.columns)
    # event names come from the data: quoted (``event:<name>`` columns)
    schema = "user_id string, " + ", ".join(f"{quote_spark(c)} double" for c in columns)
    computed = users_rows.mapInArrow(feature_part(params, facts, columns), schema)
    computed.write.mode("overwrite").parquet(str(target))
    return columns, skipped, shape


def _now_of_driver() -> datetime:
    """The run's "now", read once: the future rule drops the same rows in every partition."""
    import duckdb

    with duckdb.connect() as con:
        return con.execute("SELECT CAST(now() AS TIMESTAMP)").fetchone()[0]


def _check_columns(params: PersonaParams, empty, facts: LogFacts) -> None:
    """The load's checks of the columns, on the input's schema: a missing user or time column
    stops the run before Spark reads a row."""
    from ..load.stage import read_and_clean

    con = connect_partition(params)
    try:
        read_and_clean(params, con, Progress(quiet=True), rows=empty, facts=facts)
    finally:
        con.close()


def _span(rows: list[dict[str, Any]], which: str) -> tuple[datetime, datetime] | None:
    firsts = [row[f"{which}_first"] for row in rows if row[f"{which}_first"]]
    lasts = [row[f"{which}_last"] for row in rows if row[f"{which}_last"]]
    if not firsts:
        return None
    return datetime.fromisoformat(min(firsts, key=datetime.fromisoformat)), datetime.fromisoformat(
        max(lasts, key=datetime.fromisoformat)
    )
