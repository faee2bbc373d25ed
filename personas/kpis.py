"""The KPIs every persona card reports beside its behaviour figures, with the definitions
marketers use, and how naming rules refer to them (:func:`figure_key`).

Both :mod:`personas.profile` (which computes them) and :mod:`personas.naming` (whose claims
check them) read this catalogue; it depends on nothing but the feature catalogue's names.
"""

from __future__ import annotations

from collections.abc import Callable
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
    compute: Callable[[pd.DataFrame], float]
    column: str = ""  # the feature it summarises, when it is that feature's mean or median
    better: str = ""  # "higher" or "lower" is good news for the business, "" neither


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den else float("nan")


KPIS: tuple[Kpi, ...] = (
    Kpi(
        "conversion_rate",
        "Bought at least once",
        "share",
        "share of users",
        ("orders",),
        lambda f: float((f["orders"] > 0).mean()),
        better="higher",
    ),
    Kpi(
        "revenue_per_user",
        "Revenue per user",
        "currency",
        "mean",
        ("revenue",),
        lambda f: float(f["revenue"].mean()),
        "revenue",
        "higher",
    ),
    Kpi(
        "avg_order_value",
        "Average order value",
        "currency",
        "total revenue / orders",
        ("revenue", "orders", "avg_order_value"),
        lambda f: _ratio(f["revenue"].sum(), f["orders"].sum()),
        better="higher",
    ),
    Kpi(
        "purchase_frequency",
        "Orders per user",
        "orders",
        "mean",
        ("orders",),
        lambda f: float(f["orders"].mean()),
        "orders",
        "higher",
    ),
    Kpi(
        "days_since_seen",
        "Days since last activity",
        "days",
        "median",
        ("days_since_seen",),
        lambda f: float(f["days_since_seen"].median()),
        "days_since_seen",
        "lower",
    ),
    Kpi(
        "at_risk_share",
        f"Inactive for over {AT_RISK_DAYS} days",
        "share",
        "share of users",
        ("days_since_seen",),
        lambda f: float((f["days_since_seen"] > AT_RISK_DAYS).mean()),
        better="lower",
    ),
    Kpi(
        "engagement_rate",
        "Sessions per week",
        "sessions/week",
        "mean",
        ("sessions_per_week",),
        lambda f: float(f["sessions_per_week"].mean()),
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
