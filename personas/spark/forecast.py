"""The forecast on Spark: fitted on the driver, every buyer predicted on the executors.

The purchase tables are the executors' (:mod:`personas.spark.purchases`). The report step:

1. gathers the DuckDB engine's fit buyers (:func:`personas.spark.purchases.drawn_buyers`, at
   most :data:`~personas.forecast.FIT_SAMPLE` rows) and fits the two models on the driver, as
   the DuckDB engine does (:func:`personas.forecast.fit_drawn`);
2. sends the fitted models to the executors (pickled with the partition function, a few hundred
   KB) and each partition of ``purchases.parquet/`` predicts its buyers with the DuckDB
   engine's own code (:func:`personas.forecast.buyer_forecast`) and formats their assignment
   columns (:func:`personas.forecast.assignment_frame`), written to ``forecast.users/`` in the
   staging folder (removed once the assignment files have the columns);
3. joins that dataset to ``assignments/`` and sums per persona (:data:`PERSONA_SUMS`): the
   driver gets a row per persona and makes the figures with
   :func:`personas.forecast.persona_figures`, as the DuckDB engine does from its pandas sums.

The held-out check (``holdout_days``) runs on the driver over the buyers' rows of the
calibration and holdout tables (:func:`personas.forecast.forecast_info`): its deciles rank every
buyer by predicted value, a global order; a buyer's row is 10 numbers (about 80 bytes).
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from ..forecast import COLUMNS
from ..params import PersonaParams

USERS = "forecast.users"  # the staged per-buyer forecast (removed by write_assignments)
FIELDS = [
    ("user_id", "string"),
    ("p_active", "double"),
    ("expected_purchases", "double"),
    ("p_buys", "double"),
    ("expected_revenue", "double"),
    ("next_purchase_due", "date"),
    ("a_p_active", "double"),
    ("a_expected_purchases", "double"),
    ("a_expected_revenue", "double"),
    ("a_next_purchase_due", "string"),
]


def predict_part(fitted, horizon_days: int, reference):
    """The partition function: the partition's buyers (rows of ``purchases.parquet/``)
    predicted, with their assignment columns (prefixed ``a_``)."""

    def run(batches):
        import pyarrow as pa

        from ..forecast import assignment_frame, buyer_forecast, normal_purchases
        from .partitions import arrow_schema, arrow_table

        table = arrow_table(batches)
        if table is None or not table.num_rows:
            return
        summary = normal_purchases(table.to_pandas())
        predicted = buyer_forecast(fitted, summary, horizon_days, reference)
        shown = assignment_frame(predicted)
        frame = pd.DataFrame(
            {
                "user_id": predicted.index,
                **{
                    c: predicted[c].to_numpy()
                    for c in ("p_active", "expected_purchases", "p_buys", "expected_revenue")
                },
                "next_purchase_due": predicted["next_purchase_due"].dt.date.to_numpy(),
                **{f"a_{c}": shown[c].to_numpy() for c in COLUMNS},
            }
        )
        schema = arrow_schema(FIELDS)
        yield pa.RecordBatch.from_arrays(
            [pa.array(frame[f.name], type=f.type, from_pandas=True) for f in schema],
            schema=schema,
        )

    return run


def spark_forecast(
    params: PersonaParams, stage: Path, state: dict, model_labels: Mapping[int, int], users: int
):
    """The run's forecast (:class:`personas.forecast.RunForecast`, its ``users`` None: every
    buyer's row stays on the executors, in ``stage/forecast.users/``), its personas under their
    final ids (``model_labels``: model number -> persona id)."""
    from pyspark.sql import functions as F

    from ..forecast import (
        FIT_SAMPLE,
        PURCHASES,
        RunForecast,
        due_by,
        fit_drawn,
        forecast_info,
        persona_figures,
    )
    from .partitions import ddl
    from .purchases import drawn_buyers
    from .session import spark_session

    shutil.rmtree(stage / USERS, ignore_errors=True)  # an earlier, failed report step's
    reference = pd.Timestamp(state["purchases"]["reference"]).to_pydatetime()
    drawn, buyers, repeat, priced = drawn_buyers(
        params, stage / PURCHASES, FIT_SAMPLE, params.random_state
    )
    fitted = fit_drawn(drawn, buyers, repeat, priced)
    if fitted.purchases is None:
        info = forecast_info(stage, params, state, fitted, users, None)
        return RunForecast(None, {}, info)
    spark = spark_session(params)
    target = stage / USERS
    (
        spark.read.parquet(str(stage / PURCHASES))
        .mapInArrow(predict_part(fitted, params.horizon_days, reference), ddl(FIELDS))
        .write.mode("overwrite")
        .parquet(str(target))
    )
    predicted = spark.read.parquet(str(target))
    totals = predicted.agg(
        F.sum("expected_purchases").alias("expected_purchases"),
        F.sum("expected_revenue").alias("expected_revenue"),
        F.count("expected_revenue").alias("priced"),
        F.count("next_purchase_due").alias("regular_buyers_due"),
    ).first()
    has_revenue = totals["priced"] > 0
    info = forecast_info(
        stage,
        params,
        state,
        fitted,
        users,
        {
            "expected_purchases": float(totals["expected_purchases"] or 0.0),
            "expected_revenue": float(totals["expected_revenue"]) if has_revenue else None,
            "regular_buyers_due": int(totals["regular_buyers_due"]),
        },
    )
    assigned = spark.read.parquet(str(stage / "assignments")).select("user_id", "persona_id")
    last = due_by(reference, params.horizon_days).date()
    due = F.when(F.col("next_purchase_due") <= F.lit(last), F.col("next_purchase_due"))
    sums = (
        assigned.join(predicted, "user_id", "left")
        .groupBy("persona_id")
        .agg(
            F.count(F.lit(1)).alias("users"),
            F.count("p_active").alias("buyers"),
            *(
                F.coalesce(F.sum(c), F.lit(0.0)).alias(c)
                for c in ("p_active", "expected_purchases", "expected_revenue", "p_buys")
            ),
            F.count(due).alias("regular_buyers"),
            F.min(due).alias("due_first"),
            F.max(due).alias("due_last"),
        )
        .toArrow()
        .to_pandas()
    )
    sums["persona_id"] = [int(model_labels.get(int(k), int(k))) for k in sums["persona_id"]]
    sums = sums.set_index("persona_id").sort_index()
    personas = persona_figures(sums, params.horizon_days, has_revenue)
    return RunForecast(None, personas, info)
