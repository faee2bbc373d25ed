"""Per-persona statistics, traits, lifts and KPIs -> PersonaProfile.

Every figure here is a plain aggregate of ``features.parquet`` grouped by the persona in
``assignments.parquet``, so anyone can recompute it: the median and the mean of each behaviour
stat (users without a value, such as the order value of non-buyers, are left out), the KPI's own
definition (in :data:`KPIS`) for KPIs. Which of median and mean a stat's headline and lift use is
decided by :func:`stat_basis` and recorded on the stat. Traits are standardised differences of
means, computed on the same transformed scale the model sees (log1p for heavy-tailed counts).
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
    column: str = ""      # the feature it summarises, when it is that feature's mean or median


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den else float("nan")


KPIS: tuple[Kpi, ...] = (
    Kpi("conversion_rate", "Bought at least once", "share", "share of users", ("orders",),
        lambda f: float((f["orders"] > 0).mean())),
    Kpi("revenue_per_user", "Revenue per user", "currency", "mean", ("revenue",),
        lambda f: float(f["revenue"].mean()), "revenue"),
    Kpi("avg_order_value", "Average order value", "currency", "total revenue / orders",
        ("revenue", "orders", "avg_order_value"),
        lambda f: _ratio(f["revenue"].sum(), f["orders"].sum())),
    Kpi("purchase_frequency", "Orders per user", "orders", "mean", ("orders",),
        lambda f: float(f["orders"].mean()), "orders"),
    Kpi("days_since_seen", "Days since last activity", "days", "median", ("days_since_seen",),
        lambda f: float(f["days_since_seen"].median()), "days_since_seen"),
    Kpi("at_risk_share", f"Inactive for over {AT_RISK_DAYS} days", "share", "share of users",
        ("days_since_seen",), lambda f: float((f["days_since_seen"] > AT_RISK_DAYS).mean())),
    Kpi("engagement_rate", "Sessions per week", "sessions/week", "mean", ("sessions_per_week",),
        lambda f: float(f["sessions_per_week"].mean()), "sessions_per_week"),
)
"""KPIs keep the definition marketers use (revenue per user is total revenue / users, a mean,
however skewed revenue is); the ones that summarise one feature also carry its median and mean."""


def model_scale(name: str, values: pd.Series) -> np.ndarray:
    """A catalogue feature on the model's scale (log1p for heavy-tailed counts), NaN kept."""
    out = values.to_numpy(dtype="float64", na_value=np.nan)
    if BY_NAME[name].transform == "log1p":
        out = np.log1p(np.clip(out, 0, None))
    return out


def _mean_and_std(values: np.ndarray) -> tuple[float, float]:
    """Mean and population std (ddof 0) of ``values`` leaving NaN out: numpy's nanmean and
    nanstd, the same numbers as ``DataFrame.mean()`` and ``DataFrame.std(ddof=0)`` at a fraction
    of the time. NaN for both when there is no value; a std of 0 (no variation) as NaN."""
    if np.isnan(values).all():
        return float("nan"), float("nan")
    std = float(np.nanstd(values, ddof=0))
    return float(np.nanmean(values)), std if std else float("nan")


def trait_table(features: pd.DataFrame, labels: np.ndarray) -> pd.DataFrame:
    """Persona id x feature: (persona mean - overall mean) / overall std, on the model's scale.

    Only catalogue columns count, each on its own: users without a value are left out, the std
    is the population one (ddof 0) and a feature that does not vary has no z (NaN). So the table
    of some columns is exactly those columns of the table of all of them.
    """
    scaled = {name: model_scale(name, features[name]) for name in features.columns
              if name in BY_NAME}
    centre_spread = np.array([_mean_and_std(v) for v in scaled.values()]).reshape(-1, 2)
    means = pd.DataFrame(scaled, index=features.index).groupby(np.asarray(labels)).mean()
    return (means - centre_spread[:, 0]) / centre_spread[:, 1]


def _fmt(value: float) -> str:
    if pd.isna(value):
        return "n/a"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def lift_of(value: float, overall: float) -> float | None:
    """value / overall, or None when the ratio means nothing (overall 0 or either missing)."""
    if pd.isna(value) or pd.isna(overall) or not overall:
        return None
    return float(value / overall)


def stat_basis(feature: str, overall_median: float) -> str:
    """Which centre, "median" or "mean", a behaviour stat's headline and lift use.

    The rule: heavy-tailed features -- those the catalogue log-transforms, i.e. counts of orders,
    sessions, e-mails or carts, and money (revenue, order value) -- use the median, because a few
    extreme users drag the mean far from the typical member and the lift with it. Shares, smoothed
    rates and day counts (bounded by the data window) use the mean. One exception: when the
    overall median is 0 (most users have none, e.g. abandoned carts), a ratio to it is undefined,
    so the mean is used there too. Both centres are always recorded; ``basis`` says which leads.
    """
    spec = BY_NAME.get(feature)
    skewed = spec is not None and spec.transform == "log1p"
    return "median" if skewed and pd.notna(overall_median) and overall_median != 0 else "mean"


def _centres(values: pd.Series) -> tuple[float, float]:
    """(median, mean) of a feature, leaving out users without a value."""
    return float(values.median()), float(values.mean())


def _stat(key: str, label: str, unit: str, statistic: str, value: float, overall: float,
          z: float = 0.0, **centres) -> Stat:
    return Stat(key=key, label=label, value=float(value), overall=float(overall),
                lift=lift_of(value, overall), unit=unit, statistic=statistic,
                z=float(z) if pd.notna(z) else 0.0, **centres)


def behaviour_stat(feature: str, group: pd.Series, everyone: pd.Series, z: float = 0.0) -> Stat:
    """A key stat: the persona's median and mean of ``feature`` against all users', the headline
    and lift on the centre :func:`stat_basis` picks."""
    return _behaviour_stat(feature, group, _centres(everyone), z)


def _behaviour_stat(feature: str, group: pd.Series, everyone: tuple[float, float],
                    z: float = 0.0) -> Stat:
    """:func:`behaviour_stat` with all users' (median, mean) already computed."""
    median, mean = _centres(group)
    overall_median, overall_mean = everyone
    basis = stat_basis(feature, overall_median)
    value, overall = (median, overall_median) if basis == "median" else (mean, overall_mean)
    spec = BY_NAME[feature]
    return _stat(feature, spec.label, spec.unit, basis, value, overall, z, basis=basis,
                 median=median, mean=mean, overall_median=overall_median,
                 overall_mean=overall_mean)


def kpi_stat(kpi: Kpi, group: pd.DataFrame, everyone: pd.DataFrame) -> Stat:
    """A KPI by its own definition; one that summarises a feature also carries both centres."""
    return _kpi_stat(kpi, group, _kpi_overall(kpi, everyone))


def _kpi_overall(kpi: Kpi, everyone: pd.DataFrame) -> tuple[float, tuple[float, float] | None]:
    """A KPI over all users, and the (median, mean) of its feature when it summarises one."""
    return kpi.compute(everyone), (_centres(everyone[kpi.column]) if kpi.column else None)


def _kpi_stat(kpi: Kpi, group: pd.DataFrame,
              everyone: tuple[float, tuple[float, float] | None]) -> Stat:
    """:func:`kpi_stat` with the figures over all users already computed (:func:`_kpi_overall`)."""
    overall, overall_centres = everyone
    centres = {}
    if overall_centres is not None:
        median, mean = _centres(group[kpi.column])
        overall_median, overall_mean = overall_centres
        centres = dict(basis=kpi.statistic, median=median, mean=mean,
                       overall_median=overall_median, overall_mean=overall_mean)
    return _stat(kpi.key, kpi.label, kpi.unit, kpi.statistic, kpi.compute(group), overall,
                 **centres)


def _trait_text(stat: Stat) -> str:
    """"Number of sessions: median 12 vs 5 for all users (2.4× as high)", on the stat's basis."""
    value, overall = stat.value, stat.overall
    centre = "median " if stat.basis == "median" else ""
    text = f"{stat.label}: {centre}{_fmt(value)} vs {_fmt(overall)} for all users"
    if stat.lift is None or overall < 0:
        return text
    if stat.lift >= 1.15:
        rel = f"{stat.lift:.1f}× as high"
    elif stat.lift <= 0.87:
        rel = f"{(1 - stat.lift) * 100:.0f} % lower"
    else:
        rel = "about the same"
    return f"{text} ({rel})"


def build_profiles(features: pd.DataFrame, labels: np.ndarray, confidence: np.ndarray, *,
                   order_table: bool, role_counts: pd.DataFrame | None = None,
                   rules: RuleBook | None = None, renames: dict[str, str] | None = None,
                   traits: pd.DataFrame | None = None) -> tuple[PersonaProfile, ...]:
    """Profile and name every persona; return them by decreasing size.

    ``features`` has one row per user (catalogue columns), ``labels``/``confidence`` align with
    its rows. ``role_counts`` (user x role event counts) gives each persona's event mix.
    ``traits`` is ``trait_table(features, labels)`` when the caller has it already (the report
    step also draws its heatmap from it); it is computed here otherwise. Figures over all users
    are computed once, not once per persona.
    """
    from .naming import apply_renames

    labels = np.asarray(labels)
    if traits is None:
        traits = trait_table(features, labels)
    namings = name_personas(traits, order_table=order_table, book=rules)
    names = apply_renames({pid: n.name for pid, n in namings.items()}, renames or {})
    revenue = features["revenue"] if "revenue" in features else None
    total_revenue = float(revenue.sum()) if revenue is not None else 0.0
    kpis = [k for k in KPIS if all(c in features.columns for c in k.needs)]
    kpi_overall = {k.key: _kpi_overall(k, features) for k in kpis}
    everyone: dict[str, tuple[float, float]] = {}    # feature -> all users' (median, mean)

    profiles = []
    for pid in sorted(traits.index, key=lambda p: (-(labels == p).sum(), p)):
        mask = labels == pid
        group = features[mask]
        z = traits.loc[pid].dropna()
        naming = namings[int(pid)]
        order = list(naming.evidence) + [f for f in z.abs().sort_values(ascending=False).index
                                         if f not in naming.evidence]
        for f in order[:6]:
            if f not in everyone:
                everyone[f] = _centres(features[f])
        figures = {f: _behaviour_stat(f, group[f], everyone[f], z[f]) for f in order[:6]}
        trait_list = tuple(Trait(feature=f, label=BY_NAME[f].label, z=float(z[f]),
                                 text=_trait_text(figures[f])) for f in order[:6])
        stats = tuple(figures[f] for f in order[:KEY_STATS])
        kpi_stats = tuple(_kpi_stat(k, group, kpi_overall[k.key]) for k in kpis)
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
