"""Per-persona statistics, traits, lifts and KPIs -> PersonaProfile.

Every figure here is a plain aggregate of ``features.parquet`` grouped by the persona in
``assignments.parquet``, so anyone can recompute it: means for behaviour stats, the KPI's own
definition (in :data:`KPIS`) for KPIs. Traits are standardised differences of means, computed on
the same transformed scale the model sees (log1p for heavy-tailed counts).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from .features import BY_NAME
from .naming import RuleBook, describe, name_personas
from .results import PersonaProfile, Play, Stat, Trait

KEY_STATS = 5          # behaviour stats on a card
AT_RISK_DAYS = 60      # "at risk of churn": no activity for this many days


@dataclass(frozen=True)
class Kpi:
    key: str
    label: str
    unit: str
    statistic: str
    needs: tuple[str, ...]
    compute: Callable[[pd.DataFrame], float]


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den else float("nan")


KPIS: tuple[Kpi, ...] = (
    Kpi("conversion_rate", "Bought at least once", "share", "share of users", ("orders",),
        lambda f: float((f["orders"] > 0).mean())),
    Kpi("revenue_per_user", "Revenue per user", "currency", "mean", ("revenue",),
        lambda f: float(f["revenue"].mean())),
    Kpi("avg_order_value", "Average order value", "currency", "total revenue / orders",
        ("revenue", "orders", "avg_order_value"),
        lambda f: _ratio(f["revenue"].sum(), f["orders"].sum())),
    Kpi("purchase_frequency", "Orders per user", "orders", "mean", ("orders",),
        lambda f: float(f["orders"].mean())),
    Kpi("days_since_seen", "Days since last activity", "days", "median", ("days_since_seen",),
        lambda f: float(f["days_since_seen"].median())),
    Kpi("at_risk_share", f"Inactive for over {AT_RISK_DAYS} days", "share", "share of users",
        ("days_since_seen",), lambda f: float((f["days_since_seen"] > AT_RISK_DAYS).mean())),
    Kpi("engagement_rate", "Sessions per week", "sessions/week", "mean", ("sessions_per_week",),
        lambda f: float(f["sessions_per_week"].mean())),
)


def transformed(features: pd.DataFrame) -> pd.DataFrame:
    """Catalogue features on the model's scale (log1p for heavy-tailed counts)."""
    out = {}
    for name in features.columns:
        spec = BY_NAME.get(name)
        if spec is None:
            continue
        values = features[name].astype("float64")
        out[name] = np.log1p(values.clip(lower=0)) if spec.transform == "log1p" else values
    return pd.DataFrame(out, index=features.index)


def trait_table(features: pd.DataFrame, labels: np.ndarray) -> pd.DataFrame:
    """Persona id x feature: (persona mean - overall mean) / overall std, on the model's scale."""
    scaled = transformed(features)
    std = scaled.std(ddof=0).replace(0, np.nan)
    means = scaled.groupby(np.asarray(labels)).mean()
    return (means - scaled.mean()) / std


def _fmt(value: float) -> str:
    if pd.isna(value):
        return "n/a"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _stat(key: str, label: str, unit: str, statistic: str, value: float, overall: float,
          z: float = 0.0) -> Stat:
    lift = None if not overall or pd.isna(overall) or pd.isna(value) else float(value / overall)
    return Stat(key=key, label=label, value=float(value), overall=float(overall), lift=lift,
                unit=unit, statistic=statistic, z=float(z) if pd.notna(z) else 0.0)


def _trait_text(label: str, value: float, overall: float) -> str:
    if overall and pd.notna(overall) and pd.notna(value) and overall > 0:
        ratio = value / overall
        if ratio >= 1.15:
            rel = f"{ratio:.1f}× the average"
        elif ratio <= 0.87:
            rel = f"{(1 - ratio) * 100:.0f} % below average"
        else:
            rel = "about average"
        return f"{label}: {_fmt(value)} vs {_fmt(overall)} on average ({rel})"
    return f"{label}: {_fmt(value)} vs {_fmt(overall)} on average"


def build_profiles(features: pd.DataFrame, labels: np.ndarray, confidence: np.ndarray, *,
                   order_table: bool, role_counts: pd.DataFrame | None = None,
                   rules: RuleBook | None = None, renames: dict[str, str] | None = None
                   ) -> tuple[PersonaProfile, ...]:
    """Profile and name every persona; return them by decreasing size.

    ``features`` has one row per user (catalogue columns), ``labels``/``confidence`` align with
    its rows. ``role_counts`` (user x role event counts) gives each persona's event mix.
    """
    from .naming import apply_renames

    labels = np.asarray(labels)
    traits = trait_table(features, labels)
    namings = name_personas(traits, order_table=order_table, book=rules)
    names = apply_renames({pid: n.name for pid, n in namings.items()}, renames or {})
    overall_means = features.mean()
    revenue = features["revenue"] if "revenue" in features else None
    total_revenue = float(revenue.sum()) if revenue is not None else 0.0
    kpis = [k for k in KPIS if all(c in features.columns for c in k.needs)]
    overall_kpis = {k.key: k.compute(features) for k in kpis}

    profiles = []
    for pid in sorted(traits.index, key=lambda p: (-(labels == p).sum(), p)):
        mask = labels == pid
        group = features[mask]
        z = traits.loc[pid].dropna()
        naming = namings[int(pid)]
        means = group.mean()
        order = list(naming.evidence) + [f for f in z.abs().sort_values(ascending=False).index
                                         if f not in naming.evidence]
        trait_list = tuple(
            Trait(feature=f, label=BY_NAME[f].label, z=float(z[f]),
                  text=_trait_text(BY_NAME[f].label, means[f], overall_means[f]))
            for f in order[:6])
        stats = tuple(
            _stat(f, BY_NAME[f].label, BY_NAME[f].unit, "mean", means[f], overall_means[f],
                  z[f]) for f in order[:KEY_STATS])
        kpi_stats = tuple(_stat(k.key, k.label, k.unit, k.statistic, k.compute(group),
                                overall_kpis[k.key]) for k in kpis)
        info = describe(naming.rule)
        share = float(mask.mean())
        revenue_share = (float(revenue[mask].sum()) / total_revenue) if total_revenue else 0.0
        mix = ()
        if role_counts is not None and len(role_counts.columns):
            sums = role_counts[mask].sum()
            total = float(sums.sum())
            if total:
                mix = tuple((str(role), float(v / total))
                            for role, v in sums.sort_values(ascending=False).items() if v > 0)
        description = (f"{names[int(pid)]} ({share:.0%} of users): the typical member "
                       f"{info['description']}. "
                       + " ".join(t.text.rstrip(".") + "." for t in trait_list[:2]))
        profiles.append(PersonaProfile(
            id=int(pid), name=names[int(pid)], family=info["family"], size=int(mask.sum()),
            share=share, revenue_share=revenue_share, traits=trait_list, stats=stats,
            kpis=kpi_stats, description=description,
            plays=tuple(Play(**p) for p in info["plays"]), event_mix=mix,
            confidence=float(np.mean(confidence[mask])) if mask.any() else 0.0,
            rule=naming.rule.name if naming.rule else "", default_name=naming.name))
    return tuple(profiles)
