"""The KPIs every persona card reports beside its behaviour figures, with the definitions
marketers use, and how naming rules refer to them (:func:`figure_key`).

Both :mod:`personas.profile` (which computes them) and :mod:`personas.naming` (whose claims
check them) read this catalogue; it depends on nothing but the feature catalogue's names.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from .features import BY_NAME

AT_RISK_DAYS = 60  # "at risk of churn": no activity for this many days


@dataclass(frozen=True)
class Kpi:
    key: str
    label: str
    unit: str
    statistic: str
    needs: tuple[str, ...]
    compute: Mean | Median | ShareAbove | RatioOfSums  # called on a persona's rows
    column: str = ""  # the feature it summarises, when it is that feature's mean or median
    better: str = ""  # "higher" or "lower" is good news for the business, "" neither


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den else float("nan")


# A KPI's figure is one of four aggregates of the users' feature table, each defined once and
# computed by pandas (a call on the persona's rows) or by Spark (:meth:`spark`, an aggregate
# expression over the persona's rows; personas.spark.profile), with the same missing values:
# a share counts users without a value as not above, a sum leaves them out.


def _spark_column(name: str):
    from pyspark.sql import functions as F

    return F.col("`" + name.replace("`", "``") + "`")


@dataclass(frozen=True)
class Mean:
    """The mean of a column, users without a value left out."""

    column: str

    def __call__(self, f: pd.DataFrame) -> float:
        return float(f[self.column].mean())

    def spark(self):
        from pyspark.sql import functions as F

        return F.avg(_spark_column(self.column))


@dataclass(frozen=True)
class Median:
    """The median of a column, users without a value left out (of an even count, the mean of
    the two middle values, as pandas and Spark's exact ``percentile`` both give it)."""

    column: str

    def __call__(self, f: pd.DataFrame) -> float:
        return float(f[self.column].median())

    def spark(self):
        from pyspark.sql import functions as F

        return F.percentile(_spark_column(self.column), F.lit(0.5))


@dataclass(frozen=True)
class ShareAbove:
    """The share of users whose value of a column is above ``threshold`` (no value: not)."""

    column: str
    threshold: float

    def __call__(self, f: pd.DataFrame) -> float:
        return float((f[self.column] > self.threshold).mean())

    def spark(self):
        from pyspark.sql import functions as F

        above = F.when(_spark_column(self.column) > self.threshold, 1.0).otherwise(0.0)
        return F.avg(above)


@dataclass(frozen=True)
class RatioOfSums:
    """The sum of one column over the sum of another (NaN when that is 0)."""

    numerator: str
    denominator: str

    def __call__(self, f: pd.DataFrame) -> float:
        return _ratio(f[self.numerator].sum(), f[self.denominator].sum())

    def spark(self):
        from pyspark.sql import functions as F

        num = F.coalesce(F.sum(_spark_column(self.numerator)), F.lit(0.0))
        den = F.coalesce(F.sum(_spark_column(self.denominator)), F.lit(0.0))
        return F.when(den != 0, num / den)


KPIS: tuple[Kpi, ...] = (
    Kpi(
        "conversion_rate",
        "Bought at least once",
        "share",
        "share of users",
        ("orders",),
        ShareAbove("orders", 0),
        better="higher",
    ),
    Kpi(
        "revenue_per_user",
        "Revenue per user",
        "currency",
        "mean",
        ("revenue",),
        Mean("revenue"),
        "revenue",
        "higher",
    ),
    Kpi(
        "avg_order_value",
        "Average order value",
        "currency",
        "total revenue / orders",
        ("revenue", "orders", "avg_order_value"),
        RatioOfSums("revenue", "orders"),
        better="higher",
    ),
    Kpi(
        "purchase_frequency",
        "Orders per user",
        "orders",
        "mean",
        ("orders",),
        Mean("orders"),
        "orders",
        "higher",
    ),
    Kpi(
        "days_since_seen",
        "Days since last activity",
        "days",
        "median",
        ("days_since_seen",),
        Median("days_since_seen"),
        "days_since_seen",
        "lower",
    ),
    Kpi(
        "at_risk_share",
        f"Inactive for over {AT_RISK_DAYS} days",
        "share",
        "share of users",
        ("days_since_seen",),
        ShareAbove("days_since_seen", AT_RISK_DAYS),
        better="lower",
    ),
    Kpi(
        "engagement_rate",
        "Sessions per week",
        "sessions/week",
        "mean",
        ("sessions_per_week",),
        Mean("sessions_per_week"),
        "sessions_per_week",
        "higher",
    ),
)
"""KPIs keep the definition marketers use (revenue per user is total revenue / users, a mean,
however skewed revenue is); the ones that summarise one feature also carry its median and mean."""


KPI_PREFIX = "kpi:"


def figure_key(kpi: str) -> str:
    """How rules name a KPI: by its key, or ``kpi:<key>`` where a catalogue feature has that key
    (``kpi:avg_order_value`` is total revenue / orders, ``avg_order_value`` the feature), so a
    bare name means the same figure in ``claims`` as in ``when``."""
    return KPI_PREFIX + kpi if kpi in BY_NAME else kpi
