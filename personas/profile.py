"""Per-persona statistics, traits, lifts and KPIs -> PersonaProfile.

Every figure here is a plain aggregate of ``features.parquet`` grouped by the persona in
``assignments.parquet``, so anyone can recompute it: the median and the mean of each behaviour
stat (users without a value, such as the order value of non-buyers, are left out), the KPI's own
definition (in :data:`KPIS`) for KPIs. Which of median and mean a stat's headline and lift use is
decided by :func:`stat_basis` and recorded on the stat. Traits are standardised differences of
means, computed on the same transformed scale the model sees (log1p for heavy-tailed counts).

:func:`figure_table` computes every figure once; the cards show them and the naming rules' claims
check them, so the number a name rests on is the number on the card.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from .features import BY_NAME
from .formatting import figure_name, measure, pct
from .kpis import KPIS, Kpi, figure_key
from .naming import RuleBook, apply_renames, name_personas
from .plays import persona_plays
from .results import CLEAR_CONFIDENCE, PersonaProfile, Play, Stat, Trait

KEY_STATS = 5  # behaviour stats on a card


FIGURE_LABELS: dict[str, str] = {
    **{k.column: k.label for k in KPIS if k.column},
    # counted to the reference date: in plain words, as "days since last activity" is
    "days_since_first_seen": "Days since first seen",
    "days_since_purchase": "Days since last purchase",
}
"""One quantity, one name: a feature a KPI summarises is called by the KPI's label on the cards
("Orders per user", not "Number of purchases"), so its median and the KPI's mean read as two
statistics of one figure, each label saying which (:func:`personas.formatting.figure_name`).
Features counted to the reference date get the words the KPI uses ("Days since ..."): the
catalogue's "reference date" is the run's, not the reader's."""


class FeatureColumns:
    """The feature table of ``features.parquet``, read one column at a time.

    The profiles need each column on its own (a median and a mean per persona, a KPI's two or
    three columns), so reading a column when it is asked for holds one column of users (80 MB at
    10M users) where the whole table and its copies held 13 GB. ``table[name]`` is the column as
    a float Series, ``table[[names]]`` those columns as a DataFrame, rows in the file's order
    without the user index (the labels align by position); ``columns`` are the features, and
    :meth:`only` narrows them. A folder (the Spark engine's dataset) gives its columns; the
    Spark engine's profiles aggregate it on Spark (:mod:`personas.spark.profile`).
    """

    def __init__(self, path: str | Path, columns: list[str] | None = None) -> None:
        import pyarrow.parquet as pq

        self.path = Path(path)
        if self.path.is_dir():  # the Spark engine's dataset: its parts have a user_id column
            schema, index = pq.ParquetDataset(self.path).schema, {"user_id"}
        else:
            schema = pq.read_schema(self.path)
            pandas_meta = json.loads((schema.metadata or {}).get(b"pandas", b"{}"))
            index = {c for c in pandas_meta.get("index_columns", []) if isinstance(c, str)}
        names = [n for n in schema.names if n not in index] if columns is None else columns
        self.columns = pd.Index(names, dtype=object)

    def only(self, columns: list[str]) -> FeatureColumns:
        """The same file with ``columns`` only."""
        return FeatureColumns(self.path, [c for c in columns if c in self.columns])

    def __contains__(self, name: object) -> bool:
        return name in self.columns

    def __getitem__(self, key: str | list[str]) -> pd.Series | pd.DataFrame:
        import pyarrow.parquet as pq

        names = [key] if isinstance(key, str) else list(key)
        missing = [n for n in names if n not in self.columns]
        if missing:
            raise KeyError(missing[0])
        frame = pq.read_table(self.path, columns=names).to_pandas(ignore_metadata=True)
        return frame[key] if isinstance(key, str) else frame[names]


def feature_label(feature: str) -> str:
    """The words for a catalogue feature's figure on cards, in texts and in the exports."""
    return FIGURE_LABELS.get(feature) or BY_NAME[feature].label


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


def trait_table(features: pd.DataFrame | FeatureColumns, labels: np.ndarray) -> pd.DataFrame:
    """Persona id x feature: (persona mean - overall mean) / overall std, on the model's scale.

    Only catalogue columns count, each on its own: users without a value are left out, the std
    is the population one (ddof 0) and a feature that does not vary has no z (NaN). So the table
    of some columns is exactly those columns of the table of all of them, and it is computed one
    column at a time: a scaled copy of the whole table would be 3.3 GB at 10M users.
    """
    labels = np.asarray(labels)
    names = [name for name in features.columns if name in BY_NAME]
    centre_spread = np.empty((len(names), 2))
    means = {}
    for i, name in enumerate(names):
        scaled = model_scale(name, features[name])
        centre_spread[i] = _mean_and_std(scaled)
        means[name] = pd.Series(scaled).groupby(labels).mean()
    means = pd.DataFrame(means, columns=names)
    if not names:  # no catalogue column: one row per persona all the same
        means = pd.DataFrame(index=np.unique(labels))
    return (means - centre_spread[:, 0]) / centre_spread[:, 1]


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


def _stat(
    key: str,
    label: str,
    unit: str,
    statistic: str,
    value: float,
    overall: float,
    z: float = 0.0,
    better: str = "",
    **centres,
) -> Stat:
    return Stat(
        key=key,
        label=label,
        value=float(value),
        overall=float(overall),
        lift=lift_of(value, overall),
        unit=unit,
        statistic=statistic,
        z=float(z) if pd.notna(z) else 0.0,
        better=better,
        **centres,
    )


def behaviour_stat(feature: str, group: pd.Series, everyone: pd.Series, z: float = 0.0) -> Stat:
    """A key stat: the persona's median and mean of ``feature`` against all users', the headline
    and lift on the centre :func:`stat_basis` picks."""
    return stat_from_centres(feature, _centres(group), _centres(everyone), z)


def stat_from_centres(
    feature: str, centres: tuple[float, float], everyone: tuple[float, float], z: float = 0.0
) -> Stat:
    """A key stat from the persona's and all users' (median, mean) of ``feature``."""
    median, mean = centres
    overall_median, overall_mean = everyone
    basis = stat_basis(feature, overall_median)
    value, overall = (median, overall_median) if basis == "median" else (mean, overall_mean)
    spec = BY_NAME[feature]
    return _stat(
        feature,
        feature_label(feature),
        spec.unit,
        basis,
        value,
        overall,
        z,
        spec.better,
        basis=basis,
        median=median,
        mean=mean,
        overall_median=overall_median,
        overall_mean=overall_mean,
    )


def kpi_stat(kpi: Kpi, group: pd.DataFrame, everyone: pd.DataFrame) -> Stat:
    """A KPI by its own definition; one that summarises a feature also carries both centres."""
    return _kpi_stat(kpi, group, _kpi_overall(kpi, everyone))


def _kpi_overall(kpi: Kpi, everyone: pd.DataFrame) -> tuple[float, tuple[float, float] | None]:
    """A KPI over all users, and the (median, mean) of its feature when it summarises one."""
    return kpi.compute(everyone), (_centres(everyone[kpi.column]) if kpi.column else None)


def _kpi_stat(
    kpi: Kpi, group: pd.DataFrame, everyone: tuple[float, tuple[float, float] | None]
) -> Stat:
    """:func:`kpi_stat` with the figures over all users already computed (:func:`_kpi_overall`)."""
    centres = _centres(group[kpi.column]) if everyone[1] is not None else None
    return kpi_figure(kpi, kpi.compute(group), centres, everyone)


def kpi_figure(
    kpi: Kpi,
    value: float,
    centres: tuple[float, float] | None,
    everyone: tuple[float, tuple[float, float] | None],
) -> Stat:
    """A KPI's Stat from its value for the persona, the (median, mean) of its feature in the
    persona when it summarises one, and the same two over all users (:func:`_kpi_overall`)."""
    overall, overall_centres = everyone
    extra = {}
    if overall_centres is not None and centres is not None:
        median, mean = centres
        overall_median, overall_mean = overall_centres
        extra = dict(
            basis=kpi.statistic,
            median=median,
            mean=mean,
            overall_median=overall_median,
            overall_mean=overall_mean,
        )
    return _stat(
        kpi.key,
        kpi.label,
        kpi.unit,
        kpi.statistic,
        value,
        overall,
        better=kpi.better,
        **extra,
    )


@dataclass(frozen=True)
class FigureTable:
    """Every figure of every persona next to all users': the key stats (one per catalogue
    feature, z left at 0) and the KPIs. The cards show these Stats and the naming claims check
    them."""

    features: dict[int, dict[str, Stat]]  # persona id -> feature -> its key stat
    kpis: dict[int, dict[str, Stat]]  # persona id -> KPI key -> the KPI

    def of(self, pid: int) -> dict[str, Stat]:
        """One persona's figures by the keys naming rules use (:func:`figure_key`)."""
        return {
            **self.features.get(pid, {}),
            **{figure_key(k): s for k, s in self.kpis.get(pid, {}).items()},
        }


def figure_table(features: pd.DataFrame | FeatureColumns, labels: np.ndarray) -> FigureTable:
    """Every persona's figures: each catalogue column of ``features`` as a key stat
    (:func:`behaviour_stat`: median and mean, the headline on :func:`stat_basis`'s centre) and
    each KPI the columns allow, by its own definition, all against all users'.

    One column at a time (a KPI: the few columns it needs), so that no copy of the whole table
    is made; the figures are those of a group-by over the whole table, column by column.
    """
    labels = np.asarray(labels)
    personas = [int(pid) for pid in np.unique(labels)]
    by_feature: dict[int, dict[str, Stat]] = {pid: {} for pid in personas}
    for c in [c for c in features.columns if c in BY_NAME]:
        values = features[c]
        grouped = values.groupby(labels)
        medians, means, everyone = grouped.median(), grouped.mean(), _centres(values)
        for pid in personas:
            by_feature[pid][c] = stat_from_centres(
                c, (float(medians.at[pid]), float(means.at[pid])), everyone
            )
    by_kpi: dict[int, dict[str, Stat]] = {pid: {} for pid in personas}
    for k in [k for k in KPIS if all(c in features.columns for c in k.needs)]:
        needed = features[list(dict.fromkeys((*k.needs, *([k.column] if k.column else []))))]
        overall = _kpi_overall(k, needed)
        for pid, group in needed.groupby(labels):
            by_kpi[int(pid)][k.key] = _kpi_stat(k, group, overall)
    return FigureTable(by_feature, by_kpi)


def _trait_text(stat: Stat, currency: str = "") -> str:
    """ "Orders per user (median): 12 vs 5 for all users (2.4× as high)": the figure as the card
    shows it, named and formatted the same way (:mod:`personas.formatting`)."""
    value, overall = stat.value, stat.overall
    text = (
        f"{figure_name(stat.label, stat.statistic)}: "
        f"{measure(value, stat.unit, currency)} vs {measure(overall, stat.unit, currency)} "
        "for all users"
    )
    if stat.lift is None or overall < 0:
        return text
    if stat.lift >= 1.15:
        rel = f"{stat.lift:.1f}× as high"
    elif stat.lift <= 0.87:
        rel = f"{(1 - stat.lift) * 100:.0f} % lower"
    else:
        rel = "about the same"
    return f"{text} ({rel})"


@dataclass(frozen=True)
class PersonaFigures:
    """Everything the cards and the names need of the users, aggregated per persona: sizes, the
    figures (:class:`FigureTable`), the traits (:func:`trait_table`), revenue, the event mix's
    counts and the confidence. Made from the feature table here (:func:`persona_figures`), or by
    Spark's aggregates over the feature dataset (:func:`personas.spark.profile.spark_figures`):
    the profiles and the report are made from this alone (:func:`profiles_from`)."""

    sizes: dict[int, int]  # persona id -> users
    users: int  # all users
    figures: FigureTable
    traits: pd.DataFrame  # persona id x catalogue feature: z
    revenue: dict[int, float] | None  # persona id -> total revenue; None: no revenue column
    total_revenue: float
    roles: pd.DataFrame | None  # persona id x kind of event: events (event_mix_counts, summed)
    confidence: dict[int, float]  # persona id -> mean confidence
    clear: dict[int, float]  # persona id -> clear_share


def persona_figures(
    features: pd.DataFrame | FeatureColumns,
    labels: np.ndarray,
    confidence: np.ndarray,
    role_counts: pd.DataFrame | None = None,
    traits: pd.DataFrame | None = None,
) -> PersonaFigures:
    """:class:`PersonaFigures` from the feature table (a row per user, catalogue columns) and
    its users' ``labels`` and ``confidence``; ``role_counts`` is user x kind of event
    (:func:`personas.features.event_mix_counts`), ``traits`` the trait table when the caller has
    it already."""
    labels = np.asarray(labels)
    confidence = np.asarray(confidence)
    if traits is None:
        traits = trait_table(features, labels)
    masks = {int(pid): labels == pid for pid in traits.index}
    revenue = features["revenue"] if "revenue" in features else None
    roles = None
    if role_counts is not None and len(role_counts.columns):
        roles = pd.DataFrame({pid: role_counts[mask].sum() for pid, mask in masks.items()}).T
    return PersonaFigures(
        sizes={pid: int(mask.sum()) for pid, mask in masks.items()},
        users=len(labels),
        figures=figure_table(features, labels),
        traits=traits,
        revenue=(
            None
            if revenue is None
            else {pid: float(revenue[mask].sum()) for pid, mask in masks.items()}
        ),
        total_revenue=float(revenue.sum()) if revenue is not None else 0.0,
        roles=roles,
        confidence={
            pid: float(np.mean(confidence[mask])) if mask.any() else 0.0
            for pid, mask in masks.items()
        },
        clear={pid: clear_share(confidence[mask]) for pid, mask in masks.items()},
    )


def build_profiles(
    features: pd.DataFrame | FeatureColumns,
    labels: np.ndarray,
    confidence: np.ndarray,
    *,
    order_table: bool,
    role_counts: pd.DataFrame | None = None,
    rules: RuleBook | None = None,
    renames: dict[str, str] | None = None,
    traits: pd.DataFrame | None = None,
    persona_stability: Mapping[str, float] | None = None,
    currency: str = "",
) -> tuple[PersonaProfile, ...]:
    """Profile and name every persona; return them by decreasing size.

    ``features`` has one row per user (catalogue columns), ``labels``/``confidence`` align with
    its rows. ``role_counts`` (user x role event counts) gives each persona's event mix; an order
    table has none (every row is a purchase). ``traits`` is ``trait_table(features, labels)`` when
    the caller has it already (the report step also draws its heatmap from it); it is computed
    here otherwise. The figures come from :func:`figure_table`, once for cards and names alike.
    The other arguments are :func:`profiles_from`'s.
    """
    return profiles_from(
        persona_figures(features, labels, confidence, role_counts, traits),
        order_table=order_table,
        rules=rules,
        renames=renames,
        persona_stability=persona_stability,
        currency=currency,
    )


def profiles_from(
    aggregates: PersonaFigures,
    *,
    order_table: bool,
    rules: RuleBook | None = None,
    renames: dict[str, str] | None = None,
    persona_stability: Mapping[str, float] | None = None,
    currency: str = "",
) -> tuple[PersonaProfile, ...]:
    """Profile and name every persona of ``aggregates``; return them by decreasing size.

    The revenue share is None (unknown) when the log has no amounts. ``persona_stability`` is the
    model's ``info_["persona_stability"]`` (persona id as text -> how reliably refits find the
    persona again, 0..1); it becomes each profile's ``reproducibility``, None where it is
    missing (a model fitted once, or saved before it was measured). ``currency`` (an ISO 4217
    code, or "") is the money figures' currency, in texts and on the cards. Plays are the
    rule's and those the persona's figures call for (:func:`personas.plays.persona_plays`).
    """
    traits, table = aggregates.traits, aggregates.figures
    namings = name_personas(
        traits,
        {int(p): table.of(int(p)) for p in traits.index},
        order_table=order_table,
        book=rules,
    )
    names = apply_renames({pid: n.name for pid, n in namings.items()}, renames or {})
    total_revenue = aggregates.total_revenue

    profiles = []
    for pid in sorted(traits.index, key=lambda p: (-aggregates.sizes[int(p)], p)):
        size = aggregates.sizes[int(pid)]
        z = traits.loc[pid].dropna()
        naming = namings[int(pid)]
        order = list(naming.evidence) + [
            f for f in z.abs().sort_values(ascending=False).index if f not in naming.evidence
        ]
        figures = {f: replace(table.features[int(pid)][f], z=float(z[f])) for f in order[:6]}
        trait_list = tuple(
            Trait(
                feature=f,
                label=feature_label(f),
                z=float(z[f]),
                text=_trait_text(figures[f], currency),
            )
            for f in order[:6]
        )
        share = size / aggregates.users
        revenue_share = (
            aggregates.revenue[int(pid)] / total_revenue
            if aggregates.revenue is not None and total_revenue
            else None
        )
        description = (
            f"{names[int(pid)]} ({pct(share)} of users): the typical member "
            f"{naming.description}. " + " ".join(t.text.rstrip(".") + "." for t in trait_list[:2])
        )
        profiles.append(
            PersonaProfile(
                id=int(pid),
                name=names[int(pid)],
                family=naming.family,
                size=size,
                share=share,
                revenue_share=revenue_share,
                traits=trait_list,
                stats=tuple(figures[f] for f in order[:KEY_STATS]),
                kpis=tuple(table.kpis[int(pid)].values()),
                description=description,
                plays=persona_plays(
                    tuple(Play(**p) for p in naming.plays),
                    share=share,
                    revenue_share=revenue_share,
                    kpis=table.kpis[int(pid)],
                    family=naming.family,
                ),
                event_mix=() if order_table else _event_mix(aggregates.roles, int(pid)),
                confidence=aggregates.confidence[int(pid)],
                reproducibility=_reproducibility(persona_stability, int(pid)),
                clear_share=aggregates.clear[int(pid)],
                rule=naming.rule.name if naming.rule else "",
                default_name=naming.name,
                claims=naming.claims,
                currency=currency,
            )
        )
    return tuple(profiles)


def clear_share(confidence: np.ndarray) -> float:
    """Share of users whose confidence is at least :data:`CLEAR_CONFIDENCE`: those a clear
    majority of their nearest fitted users puts in their persona (0 for no users).

    Examples
    --------
    >>> clear_share(np.array([1.0, 0.6, 0.53, 0.9]))
    0.75
    """
    confidence = np.asarray(confidence, dtype="float64")
    return float(np.mean(confidence >= CLEAR_CONFIDENCE)) if len(confidence) else 0.0


def _reproducibility(persona_stability: Mapping[str, float] | None, pid: int) -> float | None:
    """The model's overlap figure for persona ``pid`` (keys are ids as text, as in run.json)."""
    value = (persona_stability or {}).get(str(pid))
    return None if value is None else float(value)


def _event_mix(roles: pd.DataFrame | None, pid: int) -> tuple[tuple[str, float], ...]:
    """Each kind of event's share of the persona's events, most frequent first; ``roles`` is
    persona id x kind of event: events."""
    if roles is None or not len(roles.columns):
        return ()
    sums = roles.loc[pid]
    total = float(sums.sum())
    if not total:
        return ()
    return tuple(
        (str(role), float(v / total))
        for role, v in sums.sort_values(ascending=False).items()
        if v > 0
    )
