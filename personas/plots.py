"""Figures a researcher checks while iterating in the notebooks.

Each function returns a :class:`matplotlib.figure.Figure` (no pyplot state), which Jupyter shows
when it is the cell's last value.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .features import BY_NAME, CATALOGUE, model_columns


def catalogue_table(features: pd.DataFrame) -> pd.DataFrame:
    """The feature catalogue, with each feature's median and share of missing values here."""
    rows = []
    for f in CATALOGUE:
        present = f.name in features.columns
        rows.append({"feature": f.name, "group": f.group, "description": f.description,
                     "unit": f.unit, "higher means": f.higher, "used by model": f.model,
                     "transform": f.transform,
                     "median": features[f.name].median() if present else np.nan,
                     "missing": features[f.name].isna().mean() if present else np.nan,
                     "present": present})
    return pd.DataFrame(rows).set_index("feature")


def feature_distributions(features: pd.DataFrame, columns: list[str] | None = None) -> Figure:
    """Histograms of the model's features on the scale the model sees (log1p for counts)."""
    columns = columns or model_columns(features.columns)
    ncols = 4
    nrows = max(1, -(-len(columns) // ncols))
    fig = Figure(figsize=(3.2 * ncols, 2.4 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, name in zip(axes, columns):
        values = features[name].dropna().to_numpy(dtype="float64")
        log = BY_NAME[name].transform == "log1p"
        ax.hist(np.log1p(np.clip(values, 0, None)) if log else values, bins=40, color="#4c72b0")
        ax.set_title(f"log1p({name})" if log else name, fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in axes[len(columns):]:
        ax.set_visible(False)
    return fig


def persona_sizes(assignments: pd.DataFrame) -> Figure:
    """Users per persona (by id, or by name once named)."""
    key = "persona" if "persona" in assignments else "persona_id"
    counts = assignments[key].astype(str).value_counts()
    fig = Figure(figsize=(7, 0.4 * len(counts) + 1), layout="constrained")
    ax = fig.subplots()
    ax.barh(counts.index[::-1], counts.to_numpy()[::-1], color="#4c72b0")
    ax.set_xlabel("users")
    return fig


def persona_map(points: pd.DataFrame, names: dict[int, str] | None = None) -> Figure:
    """The 2-D UMAP map of the fitted sample, one colour per persona."""
    import seaborn as sns

    names = names or {}
    labels = points["persona_id"].map(lambda p: names.get(int(p), f"persona {p}"))
    fig = Figure(figsize=(7, 6), layout="constrained")
    ax = fig.subplots()
    sns.scatterplot(x=points["x"], y=points["y"], hue=labels, s=6, linewidth=0, ax=ax,
                    palette="tab10")
    ax.set(xticks=[], yticks=[], xlabel="", ylabel="")
    ax.legend(fontsize=8, markerscale=2, frameon=False)
    return fig


def persona_table(profiles) -> pd.DataFrame:
    """One row per persona: name, users, shares and the traits that earned the name."""
    return pd.DataFrame([{"persona": p.name, "users": p.size, "share": round(p.share, 3),
                          "revenue share": (None if p.revenue_share is None   # no amounts
                                            else round(p.revenue_share, 3)),
                          "why": "; ".join(t.text for t in p.traits[:2])} for p in profiles])
