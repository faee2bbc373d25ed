"""The profiles on Spark: every persona's figures as aggregates over the feature dataset.

The profiles, the names and the report need, of the users, only per-persona aggregates
(:class:`~personas.profile.PersonaFigures`): sizes, each feature's median and mean, its mean
and spread on the model's scale (the traits), the KPIs, the revenue, the events per kind and the
confidence. The executors compute them in one aggregation over the features (``features.parquet``,
the executors' dataset) joined to the assignments (``assignments/``) on the user id, grouped by
persona and over everyone (a rollup), and the driver gets one row per persona. From there the
profiles and the report are made by the same code as on the DuckDB engine
(:func:`personas.profile.profiles_from`).

Each figure is the DuckDB engine's aggregate: means, sums and shares leave users without a value
out (or count them as not above) as pandas does, medians are Spark's exact ``percentile`` (of an
even count the mean of the two middle values, as pandas gives it), the spread is the population
one (ddof 0), and the KPIs are their own definitions (:mod:`personas.kpis`, each an aggregate
both engines compute). Sums run in another order than pandas' on the driver, so a mean may
differ in its last bits; the figures agree to 1e-12 and the names and texts are the same.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from ..params import PersonaParams

if TYPE_CHECKING:
    from ..profile import PersonaFigures


def _number(value) -> float:
    """A Spark aggregate as a float: null (no value) as NaN."""
    return float("nan") if value is None else float(value)


def spark_figures(params: PersonaParams, stage: Path) -> PersonaFigures:
    """The :class:`~personas.profile.PersonaFigures` of the staged features
    (``features.parquet/``) per persona of the staged assignments (``assignments/``), aggregated
    on Spark."""
    from pyspark.sql import functions as F

    from ..activity import ROLE_PREFIX
    from ..features import BY_NAME, EVENT_PREFIX
    from ..kpis import KPIS
    from ..results import CLEAR_CONFIDENCE
    from .session import quote_spark, spark_session

    spark = spark_session(params)
    features = spark.read.parquet(str(stage / "features.parquet"))
    assigned = spark.read.parquet(str(stage / "assignments")).select(
        "user_id", "persona_id", "confidence"
    )
    catalogue = [c for c in features.columns if c in BY_NAME]
    roles = [c for c in features.columns if c.startswith(ROLE_PREFIX)]
    unknown = [c for c in features.columns if c.startswith(EVENT_PREFIX)]
    kpis = [k for k in KPIS if all(c in catalogue for c in k.needs)]

    def column(name: str):  # a feature, NaN read as missing (pandas leaves both out)
        value = F.col(quote_spark(name))
        return F.when(~F.isnan(value), value)

    table = features.select(
        "user_id", *[column(c).alias(c) for c in dict.fromkeys([*catalogue, *roles, *unknown])]
    ).join(assigned, "user_id")

    def scaled(name: str):  # on the model's scale, as personas.profile.model_scale
        value = F.col(quote_spark(name))
        if BY_NAME[name].transform == "log1p":
            return F.when(value.isNotNull(), F.log1p(F.greatest(value, F.lit(0.0))))
        return value

    clear = F.when(F.col("confidence") >= CLEAR_CONFIDENCE, 1.0).otherwise(0.0)
    aggregates = [
        F.grouping("persona_id").alias("everyone"),
        F.count(F.lit(1)).alias("size"),
        F.avg("confidence").alias("confidence"),
        F.avg(clear).alias("clear"),
    ]
    for i, name in enumerate(catalogue):
        value = F.col(quote_spark(name))
        aggregates += [
            F.percentile(value, F.lit(0.5)).alias(f"median{i}"),
            F.avg(value).alias(f"mean{i}"),
            F.avg(scaled(name)).alias(f"scaled{i}"),
            F.stddev_pop(scaled(name)).alias(f"spread{i}"),
        ]
    aggregates += [k.compute.spark().alias(f"kpi{i}") for i, k in enumerate(kpis)]
    aggregates += [
        F.sum(F.col(quote_spark(c))).alias(f"count{i}") for i, c in enumerate([*roles, *unknown])
    ]
    if "revenue" in catalogue:
        aggregates.append(F.sum(F.col("revenue")).alias("revenue"))
    rows = [row.asDict() for row in table.rollup("persona_id").agg(*aggregates).collect()]
    everyone = next(row for row in rows if row["everyone"])
    personas = sorted(
        (row for row in rows if not row["everyone"]), key=lambda row: row["persona_id"]
    )
    return _figures(personas, everyone, catalogue, kpis, roles, unknown, "revenue" in catalogue)


def _figures(
    personas, everyone, catalogue, kpis, roles, unknown, has_revenue: bool
) -> PersonaFigures:
    """:class:`~personas.profile.PersonaFigures` from the rollup's rows."""
    from ..activity import ROLE_PREFIX
    from ..profile import FigureTable, PersonaFigures, kpi_figure, stat_from_centres

    ids = [int(row["persona_id"]) for row in personas]
    by_feature = {pid: {} for pid in ids}
    centre, spread = {}, {}
    for i, name in enumerate(catalogue):
        overall = (_number(everyone[f"median{i}"]), _number(everyone[f"mean{i}"]))
        for pid, row in zip(ids, personas):
            centres = (_number(row[f"median{i}"]), _number(row[f"mean{i}"]))
            by_feature[pid][name] = stat_from_centres(name, centres, overall)
        centre[name] = _number(everyone[f"scaled{i}"])
        std = _number(everyone[f"spread{i}"])
        spread[name] = std if std else float("nan")  # no variation: no z
    by_kpi = {pid: {} for pid in ids}
    for i, kpi in enumerate(kpis):
        column = catalogue.index(kpi.column) if kpi.column else None

        def centres(row, at=column):
            return None if at is None else (_number(row[f"median{at}"]), _number(row[f"mean{at}"]))

        overall = (_number(everyone[f"kpi{i}"]), centres(everyone))
        for pid, row in zip(ids, personas):
            by_kpi[pid][kpi.key] = kpi_figure(kpi, _number(row[f"kpi{i}"]), centres(row), overall)
    means = pd.DataFrame(
        {
            name: [_number(row[f"scaled{i}"]) for row in personas]
            for i, name in enumerate(catalogue)
        },
        index=pd.Index(ids),
        columns=catalogue,
    )
    traits = (means - pd.Series(centre)) / pd.Series(spread)
    counts = pd.DataFrame(
        [[row[f"count{i}"] or 0.0 for i in range(len(roles) + len(unknown))] for row in personas],
        index=pd.Index(ids),
        columns=[c.removeprefix(ROLE_PREFIX) for c in roles] + unknown,
    )
    if unknown and "other" in counts:  # the top unknown events, out of "other" (event_mix_counts)
        counts["other"] = counts["other"] - counts[unknown].sum(axis=1)
    # a sum of no values is 0, as pandas gives it
    revenue = None
    if has_revenue:
        revenue = {pid: row["revenue"] or 0.0 for pid, row in zip(ids, personas)}
    total = (everyone["revenue"] or 0.0) if has_revenue else 0.0
    return PersonaFigures(
        sizes={pid: int(row["size"]) for pid, row in zip(ids, personas)},
        users=int(everyone["size"]),
        figures=FigureTable(by_feature, by_kpi),
        traits=traits,
        revenue=revenue,
        total_revenue=float(total),
        roles=counts if len(counts.columns) else None,
        confidence={pid: _number(row["confidence"]) for pid, row in zip(ids, personas)},
        clear={pid: _number(row["clear"]) for pid, row in zip(ids, personas)},
    )
