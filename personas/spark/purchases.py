"""The forecast's purchase summaries on Spark, and the buyers its models are fitted on.

A buyer's row of :func:`personas.forecast.purchase_summary` (and of the held-out check's tables)
depends on that buyer's events alone, and the features' passes have already moved each user's
rows into one partition (:mod:`personas.spark.features`). So a fourth pass over those
partitions loads each one's users as pass 3 does and runs the DuckDB engine's own SQL on them
(:func:`personas.forecast.purchase_tables`): one definition for both engines, every column of
every buyer the same. The executors write the tables as Parquet datasets in the staging folder
under the DuckDB engine's file names (``purchases.parquet/`` ...), read back with
:func:`personas.forecast.read_purchases`.

The models are fitted on the driver on at most :data:`~personas.forecast.FIT_SAMPLE` buyers:
the DuckDB engine's draw, by rank in user_id order (:func:`personas.forecast.sample_positions`,
which depends on the buyers' count alone), so :func:`drawn_buyers` ranks the ids on the
executors and gathers only the drawn buyers' rows.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from ..params import PersonaParams

TABLE = "purchase_table"  # the column saying which table a row of the fourth pass is of
SUMMARY_FIELDS = [
    ("frequency", "double"),
    ("recency", "double"),
    ("T", "double"),
    ("monetary_value", "double"),
    ("last_purchase", "date"),
    ("gap_mean", "double"),
    ("gap_sd", "double"),
]
HOLDOUT_FIELDS = [("purchases", "double"), ("revenue", "double")]
FIELDS = [("user_id", "string"), (TABLE, "string"), *SUMMARY_FIELDS, *HOLDOUT_FIELDS]


def purchase_part(params: PersonaParams, facts, reference: datetime, cutoff: datetime | None):
    """The partition function of the fourth pass: the partition's rows of every purchase table,
    each marked with its table's file name."""

    def tables(con, table) -> list[pd.DataFrame]:
        from ..forecast import purchase_tables
        from ..load import load_events

        load_events(params, con, rows=table, facts=facts)
        out = []
        for name, frame in purchase_tables(con, reference, cutoff).items():
            frame = frame.reset_index()
            frame[TABLE] = name
            if "last_purchase" in frame.columns:
                frame["last_purchase"] = frame["last_purchase"].dt.date
            out.append(frame)
        return out

    def run(batches):
        import pyarrow as pa

        from .partitions import arrow_schema, on_partition

        schema = arrow_schema(FIELDS)
        for frame in on_partition(params, batches, tables) or ():
            columns = [
                pa.array(frame[field.name], type=field.type, from_pandas=True)
                if field.name in frame.columns
                else pa.nulls(len(frame), type=field.type)
                for field in schema
            ]
            yield pa.RecordBatch.from_arrays(columns, schema=schema)

    return run


def spark_purchases(
    params: PersonaParams, users_rows, facts, reference: datetime, start: str | None, stage: Path
) -> dict[str, Any]:
    """The purchase tables of the log whose users' rows are ``users_rows`` (one user's rows in
    one partition), written by the executors to ``stage`` as the DuckDB engine names its files;
    returns the record :func:`personas.forecast.purchase_history` gives.

    Raises ParameterError when ``holdout_days`` leaves no day to fit on, before any work."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    from ..forecast import CALIBRATION, HOLDOUT, PURCHASES, calibration_cutoff, purchase_record
    from .partitions import ddl

    cutoff = calibration_cutoff(params, reference, start)
    rows = users_rows.mapInArrow(
        purchase_part(params, facts, reference, cutoff), ddl(FIELDS)
    ).persist(StorageLevel.DISK_ONLY)
    try:
        buyers = 0
        for name in (PURCHASES, CALIBRATION, HOLDOUT) if cutoff is not None else (PURCHASES,):
            fields = HOLDOUT_FIELDS if name == HOLDOUT else SUMMARY_FIELDS
            table = rows.where(F.col(TABLE) == name).select(
                "user_id", *[field for field, _ in fields]
            )
            table.write.mode("overwrite").parquet(str(stage / name))
            if name == PURCHASES:
                buyers = spark_count(params, stage / name)
    finally:
        rows.unpersist()
    return purchase_record(reference, buyers, cutoff)


def spark_count(params: PersonaParams, path: Path) -> int:
    from .session import spark_session

    return spark_session(params).read.parquet(str(path)).count()


def drawn_buyers(
    params: PersonaParams, path: Path, size: int, seed: int
) -> tuple[pd.DataFrame, int, bool, int]:
    """(the drawn buyers' rows, buyers, whether any bought on more than one day, buyers with a
    monetary_value) of the purchase table at ``path`` (a dataset the executors wrote): the
    arguments of :func:`personas.forecast.fit_drawn`. The drawn buyers are the DuckDB engine's
    (:func:`personas.forecast.sample_positions`): the executors rank the ids (Spark orders text
    by its UTF-8 bytes, which is the code points' order, as Python's sort) and only the drawn
    ranks come to the driver, at most ``size`` rows."""
    from pyspark.sql import functions as F

    from ..forecast import normal_purchases, sample_positions
    from .session import spark_session

    spark = spark_session(params)
    table = spark.read.parquet(str(path))
    buyers, repeat, priced = table.agg(
        F.count(F.lit(1)),
        F.max((F.col("frequency") > 0).cast("int")),
        F.count("monetary_value"),
    ).first()
    positions = sample_positions(buyers, size, seed)
    if positions is None:
        drawn = table
    else:
        wanted = set(int(p) for p in positions)
        ranked = table.orderBy("user_id").rdd.zipWithIndex()
        picked = ranked.filter(lambda pair: pair[1] in wanted).map(lambda pair: pair[0])
        drawn = spark.createDataFrame(picked, table.schema)
    frame = normal_purchases(drawn.toArrow().to_pandas())
    return frame, int(buyers), bool(repeat), int(priced)
