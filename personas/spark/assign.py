"""The model on Spark: its fit users gathered on the driver, everyone assigned on the executors.

The model fits on the users whose ids hash lowest (:func:`personas.sampling.fit_users`), the
same users the DuckDB engine fits on, so both find the same personas. Spark finds them with the
same hash and gathers only their features on the driver, once a run: the features step stages
them (``fit_users.parquet``) and the model step fits on that file. The fitted model (the scaled
sample and its labels are all :meth:`~personas.model.PersonaModel.predict_with_confidence`
needs) is broadcast to the executors, which assign their users batch by batch and write the
assignments as a Parquet dataset, a folder of parts, not one file. The report step rewrites
that folder with the final persona ids (kept from ``compare_to``) and names, as
``assignments.parquet`` holds them (:func:`write_parts`).
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


def assigned(target: Path) -> pd.DataFrame:
    """The assignments dataset ``target`` (user_id, persona_id, confidence) ordered by user, as
    the DuckDB engine's model step gives them: three columns of every user on the driver, for
    ``assignments.parquet`` and the report step."""
    frame = pd.read_parquet(target, columns=["user_id", "persona_id", "confidence"])
    return frame.sort_values("user_id", ignore_index=True)


PART_ROWS = 1_000_000  # users per file of the assignments/ dataset


def write_parts(assignments: pd.DataFrame, target: Path) -> None:
    """Replace the dataset ``target`` with ``assignments`` as the report step leaves them (the
    ids kept from ``compare_to``, the persona names): files of at most :data:`PART_ROWS` rows,
    so that no one file grows with the log."""
    import shutil

    import pyarrow as pa
    import pyarrow.dataset as ds

    shutil.rmtree(target)
    ds.write_dataset(
        pa.Table.from_pandas(assignments, preserve_index=False),
        target,
        format="parquet",
        basename_template="part-{i}.parquet",
        max_rows_per_file=PART_ROWS,
        max_rows_per_group=min(PART_ROWS, 128 * 1024),
    )
