"""The report step's work on every user, on Spark: the assignments stay on the executors.

The report step gives the model's personas their final ids (kept from ``compare_to``,
:mod:`personas.migration`) and names. On the DuckDB engine it does so in a pandas table of every
user; here the executors do it over the assignments dataset (``assignments/``) joined to a
mapping of a row per persona, and write the files a run hands on:

- ``assignments/`` again, with the final ids and names (:func:`write_assignments`);
- ``assignments.parquet``, one file sorted by user as the DuckDB engine writes it, by one task
  (the rows are shuffled to one partition and sorted there, spilling to the executor's disk);
- ``assignments.csv`` up to :data:`~personas.results.CSV_MAX_USERS` users, from that file on
  the driver: a bounded table (about 100 MB at 1M users), written by pandas as on the DuckDB
  engine, so the two engines' CSVs are the same bytes.

The agreement with the planted personas (:func:`planted_agreement`) and the migration's counts
against ``compare_to`` (:func:`count_flows`) are Spark joins and aggregates too: the driver gets
a row per pair of personas.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from ..forecast import COLUMNS as FORECAST_COLUMNS
from ..params import PersonaParams

PART_ROWS = 1_000_000  # users per file of the assignments/ dataset, at most
COLUMNS = ("user_id", "persona_id", "persona", "confidence")


def write_assignments(
    params: PersonaParams,
    stage: Path,
    model_labels: Mapping[int, int],
    names: Mapping[int, str],
    users: int,
    forecast: bool = False,
) -> pd.DataFrame | None:
    """Give ``stage/assignments/`` (the model's numbers) the run's ids (``model_labels``: model
    number -> persona id) and ``names`` (persona id -> name) on the executors, then write
    ``assignments.parquet`` and, up to :data:`~personas.results.CSV_MAX_USERS` ``users``,
    ``assignments.csv``. With ``forecast`` (the run forecast) the files have the forecast's
    columns too (:data:`personas.forecast.COLUMNS`), joined from the per-buyer forecast the
    executors staged (``forecast.users/``, :mod:`personas.spark.forecast`, removed here), empty
    for users with no purchase history or when there is no forecast.

    Returns the assignments read back for the CSV (user_id, persona_id, persona, confidence and
    with ``forecast`` its columns, by user), or None above CSV_MAX_USERS users, when no table of
    every user comes to the driver.
    """
    from pyspark.sql import functions as F

    from ..results import CSV_MAX_USERS
    from .session import spark_session

    spark = spark_session(params)
    # every number the model gave is a profile's (the profiles are made from these rows); a
    # number not in the map would keep itself, as personas.migration.relabel does
    mapping = spark.createDataFrame(
        [(int(k), int(v), names.get(int(v))) for k, v in model_labels.items()],
        "model_id long, final_id long, persona string",
    )
    target = stage / "assignments"
    rows = spark.read.parquet(str(target))
    final = rows.join(F.broadcast(mapping), rows["persona_id"] == mapping["model_id"], "left")
    final = final.select(
        "user_id",
        F.coalesce("final_id", rows["persona_id"]).alias("persona_id"),
        "persona",
        "confidence",
    )
    columns = list(COLUMNS)
    if forecast:
        final = _with_forecast(spark, final, stage)
        columns += list(FORECAST_COLUMNS)
    fresh = stage / "assignments.final"
    final.write.option("maxRecordsPerFile", PART_ROWS).mode("overwrite").parquet(str(fresh))
    shutil.rmtree(target)
    os.replace(fresh, target)
    one = stage / "assignments.one"
    (
        spark.read.parquet(str(target))
        .repartition(1)
        .sortWithinPartitions("user_id")
        .write.mode("overwrite")
        .parquet(str(one))
    )
    (part,) = one.glob("part-*.parquet")
    os.replace(part, stage / "assignments.parquet")
    shutil.rmtree(one)
    shutil.rmtree(stage / "forecast.users", ignore_errors=True)
    if users > CSV_MAX_USERS:
        return None
    frame = pd.read_parquet(stage / "assignments.parquet", columns=columns)
    frame.to_csv(stage / "assignments.csv", index=False)
    return frame


def _with_forecast(spark, final, stage: Path):
    """``final`` with the forecast's assignment columns, from the staged per-buyer forecast
    (absent when the run has no forecast: the columns are then empty, as on DuckDB)."""
    from pyspark.sql import functions as F

    from .forecast import USERS

    path = stage / USERS
    if not path.exists():
        kinds = ("double", "double", "double", "string")
        return final.select(
            *final.columns,
            *(F.lit(None).cast(k).alias(c) for c, k in zip(FORECAST_COLUMNS, kinds)),
        )
    predicted = spark.read.parquet(str(path)).select(
        F.col("user_id").alias("buyer_id"), *(F.col(f"a_{c}").alias(c) for c in FORECAST_COLUMNS)
    )
    joined = final.join(predicted, final["user_id"] == predicted["buyer_id"], "left")
    return joined.select(*final.columns, *FORECAST_COLUMNS)


def adjusted_rand(counts: np.ndarray) -> float:
    """The adjusted Rand index of the contingency table ``counts`` (true classes x clusters,
    users in each pair): :func:`sklearn.metrics.adjusted_rand_score` of the labels the table
    counts, computed from the table as scikit-learn does (its pair confusion matrix), so the
    same number.

    Examples
    --------
    >>> adjusted_rand(np.array([[2, 0], [0, 2]])), adjusted_rand(np.array([[1, 1], [1, 1]]))
    (1.0, -0.5)
    """
    counts = np.asarray(counts, dtype=np.int64)
    n_samples = int(counts.sum())
    n_c = counts.sum(axis=1)
    n_k = counts.sum(axis=0)
    sum_squares = int((counts**2).sum())
    tp = sum_squares - n_samples
    fp = int((counts @ n_k).sum()) - sum_squares
    fn = int((counts.T @ n_c).sum()) - sum_squares
    tn = n_samples**2 - fp - fn - sum_squares
    if fn == 0 and fp == 0:  # a perfect match, or one class and one cluster
        return 1.0
    return 2.0 * (tp * tn - fn * fp) / ((tp + fn) * (fn + tn) + (tp + fp) * (fp + tn))


def planted_agreement(params: PersonaParams, stage: Path) -> float | None:
    """Adjusted Rand index of ``stage/assignments/`` against the planted personas
    (``planted.parquet``, the bundled sample only, noise excluded), as the DuckDB engine's
    :func:`personas.pipeline._agreement`: the executors count the users of each pair (planted,
    persona) and the index is computed from those counts."""
    from pyspark.sql import functions as F

    from .session import spark_session

    path = stage / "planted.parquet"
    if not path.exists():
        return None
    spark = spark_session(params)
    planted = spark.read.parquet(str(path)).select("user_id", F.col("persona").alias("planted"))
    assigned = spark.read.parquet(str(stage / "assignments")).select("user_id", "persona_id")
    pairs = (
        planted.join(assigned, "user_id")
        .where(F.col("planted") != "noise")
        .groupBy("planted", "persona_id")
        .count()
        .toArrow()
        .to_pandas()
    )
    if pairs.empty:
        return None
    table = pairs.pivot(index="planted", columns="persona_id", values="count").fillna(0)
    return round(float(adjusted_rand(table.to_numpy())), 4)


def count_flows(params: PersonaParams, earlier: Path, later: Path) -> pd.DataFrame:
    """:func:`personas.migration.count_flows` on Spark: the two assignment files (Parquet or
    CSV; the executors must reach both, as they reach the run's folder) joined on user_id by
    the executors, a row per pair of personas to the driver. The same checks and sentences: a
    file that cannot be read as assignments, or that holds a user twice, is an InputError."""
    from pyspark.errors import PySparkException
    from pyspark.sql import functions as F

    from ..migration import repeated_users_error, unreadable_assignments_error
    from .session import spark_session

    spark = spark_session(params)
    sides = []
    for path in (earlier, later):
        try:
            if path.suffix == ".parquet":
                frame = spark.read.parquet(str(path))
            else:  # every column as text, as the DuckDB reader reads the ids
                frame = spark.read.option("header", True).csv(str(path))
            table = frame.select(
                F.col("user_id").cast("string").alias("user_id"),
                F.col("persona_id").cast("long").alias("persona_id"),
                F.col("persona").cast("string").alias("persona"),
            )
            rows, users = table.agg(F.count(F.lit(1)), F.countDistinct("user_id")).first()
        except PySparkException as exc:
            lines = str(exc).strip().splitlines()
            raise unreadable_assignments_error(
                path, lines[0] if lines else type(exc).__name__
            ) from None
        if rows != users:
            raise repeated_users_error(path, rows - users)
        sides.append(table)
    a, b = (side.alias(name) for side, name in zip(sides, "ab"))
    counts = (
        a.join(b, F.col("a.user_id") == F.col("b.user_id"), "full_outer")
        .groupBy(F.col("a.persona_id").alias("from_id"), F.col("b.persona_id").alias("to_id"))
        .agg(
            F.any_value(F.col("a.persona")).alias("from_name"),
            F.any_value(F.col("b.persona")).alias("to_name"),
            F.count(F.lit(1)).alias("users"),
        )
    )
    return counts.select("from_id", "from_name", "to_id", "to_name", "users").toArrow().to_pandas()
