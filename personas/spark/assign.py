"""The model on Spark: its fit users gathered on the driver, everyone assigned on the executors.

The model fits on the users whose ids hash lowest (:func:`personas.sampling.fit_users`), the
same users the DuckDB engine fits on, so both find the same personas. Spark finds them with the
same hash and gathers only their features on the driver, once a run: the features step stages
them (``fit_users.parquet``) and the model step fits on that file. The fitted model (the scaled
sample and its labels are all :meth:`~personas.model.PersonaModel.predict_with_confidence`
needs) is broadcast to the executors, which assign their users batch by batch and write the
assignments as a Parquet dataset, a folder of parts, not one file; of them only the fit users'
come to the driver (:func:`fit_assignments`, for 02_personas' charts). The report step gives
that folder the final persona ids (kept from ``compare_to``) and names on the executors too
(:func:`personas.spark.report.write_assignments`).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..params import PersonaParams
from ..sampling import user_hash

ASSIGNED = "user_id string, persona_id long, confidence double"


def _hash_column(ids: pd.Series) -> pd.Series:
    return pd.Series(user_hash(ids.to_numpy()), index=ids.index)


def fit_table(params: PersonaParams, features_path: Path) -> pd.DataFrame:
    """The features (index ``user_id``, sorted) of the fit users, read and chosen on Spark."""
    from .. import sampling
    from .session import require_pyspark, spark_session

    require_pyspark()
    from pyspark.sql import functions as F

    size = sampling.FIT_USERS
    table = spark_session(params).read.parquet(str(features_path))
    if table.count() > size:
        lowest = F.pandas_udf(_hash_column, "long")
        table = (
            table.withColumn("_hash", lowest(F.col("user_id")))
            .orderBy("_hash", "user_id")
            .limit(size)
            .drop("_hash")
        )
    frame = table.toArrow().to_pandas().set_index("user_id").sort_index()
    frame.index = pd.Index(frame.index, dtype="str", name="user_id")
    return frame


def assign_all(params: PersonaParams, features_path: Path, model, target: Path) -> int:
    """Assign every user of ``features_path`` on the executors with ``model`` broadcast; write
    ``target`` (a Parquet dataset: user_id, persona_id, confidence). Returns the users."""
    from .session import spark_session

    spark = spark_session(params)
    shared = spark.sparkContext.broadcast(model)

    def assign(frames):
        fitted = shared.value
        for frame in frames:
            users = frame.set_index("user_id")
            labels, confidence = fitted.predict_with_confidence(users)
            yield pd.DataFrame(
                {
                    "user_id": users.index.astype(str),
                    "persona_id": labels,
                    "confidence": confidence.round(4),
                }
            )

    table = spark.read.parquet(str(features_path))
    table.mapInPandas(assign, ASSIGNED).write.mode("overwrite").parquet(str(target))
    shared.destroy()
    return int(spark.read.parquet(str(target)).count())


def fit_assignments(params: PersonaParams, target: Path, fit_users: Path) -> pd.DataFrame:
    """The rows of the fit users (``fit_users``, the staged table of their features) in the
    assignments dataset ``target``: user_id, persona_id, confidence, ordered by user. At most
    :data:`~personas.sampling.FIT_USERS` rows, whatever the log: the model step's table on
    Spark, where every user's stays on the executors."""
    from .session import spark_session

    spark = spark_session(params)
    ids = spark.read.parquet(str(fit_users)).select("user_id")
    rows = spark.read.parquet(str(target)).join(ids, "user_id", "left_semi")
    frame = rows.select("user_id", "persona_id", "confidence").toArrow().to_pandas()
    return frame.sort_values("user_id", ignore_index=True)
