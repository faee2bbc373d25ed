"""Figures a researcher checks while iterating in the notebooks.

Each function returns a :class:`PlotFigure`: a matplotlib figure built without pyplot (no global
state) that shows itself as a picture when it is a cell's last value. Personas keep the report's
colours (largest first) and, given ``names`` (``pipeline.persona_names``), the report's names.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .features import BY_NAME, model_columns

CHOSEN, OTHER = "#0072B2", "#C9D3E0"  # the kept persona count and the other candidates


class PlotFigure(Figure):
    """A matplotlib figure that Jupyter shows as a PNG in every front end.

    IPython draws figures only through the inline backend, which registers its formatter when
    pyplot is imported (or ``%matplotlib inline`` runs); these figures never touch pyplot, so a
    bare Figure would print as ``<Figure size 1280x960 with 16 Axes>`` in JupyterLab, papermill
    and nbconvert alike. ``_repr_png_`` is the hook every front end asks for first.
    """

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", dpi=100, bbox_inches="tight", facecolor="white")
        return buffer.getvalue()


def _figure(width: float, height: float) -> PlotFigure:
    return PlotFigure(figsize=(width, height), layout="constrained")


def catalogue_table(features: pd.DataFrame) -> pd.DataFrame:
    """The feature catalogue (your own features from ``features_path`` last), with each feature's
    median and share of missing values here."""
    rows = []
    for f in BY_NAME.values():
        present = f.name in features.columns
        rows.append(
            {
                "feature": f.name,
                "group": f.group,
                "description": f.description,
                "unit": f.unit,
                "higher means": f.higher,
                "used by model": f.model,
                "transform": f.transform,
                "median": features[f.name].median() if present else np.nan,
                "missing": features[f.name].isna().mean() if present else np.nan,
                "present": present,
            }
        )
    return pd.DataFrame(rows).set_index("feature")


def feature_distributions(features: pd.DataFrame, columns: list[str] | None = None) -> PlotFigure:
    """Histograms of the model's features on the scale the model sees (log1p for counts)."""
    columns = columns or model_columns(features.columns)
    ncols = 4
    nrows = max(1, -(-len(columns) // ncols))
    fig = _figure(3.2 * ncols, 2.4 * nrows)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, name in zip(axes, columns):
        values = features[name].dropna().to_numpy(dtype="float64")
        log = BY_NAME[name].transform == "log1p"
        ax.hist(np.log1p(np.clip(values, 0, None)) if log else values, bins=40, color="#4c72b0")
        ax.set_title(f"log1p({name})" if log else name, fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in axes[len(columns) :]:
        ax.set_visible(False)
    return fig


def count_scores(model_info: Mapping) -> PlotFigure:
    """Why this many personas: the score of every persona count the model tried.

    ``model_info`` is the model's ``info_`` (``pipeline.model_info``). With several fits a
    count's score is how alike the fits group the users into that many personas (1 = the same
    grouping every time), and the dashed line is the agreement from which a count counts as
    reproduced; with one fit it is how well separated the personas are (mean silhouette). The
    kept count is dark, and the model's rule for choosing it is the subtitle.
    """
    from .report.render import count_scores as scores_of

    scores = scores_of(model_info)
    chosen = model_info.get("personas")
    several = (model_info.get("fits") or 1) > 1
    fig = _figure(max(4.5, 0.6 * len(scores) + 2.5), 3.4)
    ax = fig.subplots()
    ax.bar(
        [str(k) for k in scores],
        list(scores.values()),
        color=[CHOSEN if k == chosen else OTHER for k in scores],
    )
    if several:
        from .grouping import REPRODUCIBLE

        ax.axhline(REPRODUCIBLE, color="#6B7280", linestyle="--", linewidth=1)
    lowest = min([0.0, *scores.values()])
    ax.set(
        xlabel="personas",
        ylim=(lowest, 1.05),
        ylabel="agreement between the fits" if several else "separation (mean silhouette)",
    )
    fig.suptitle(f"Why {chosen} personas", x=0.02, ha="left", fontsize=12)
    rule = str(model_info.get("count_rule", "")).strip()
    ax.set_title(
        "\n".join(textwrap.wrap(f"kept: {rule}", 70)) if rule else "",
        loc="left",
        fontsize=8,
        color="#4B5563",
    )
    return fig


def _labels(ids: pd.Series, names: Mapping[int, str] | None) -> pd.Series:
    """Persona ids as names: ``names`` where given, else "persona <id>"."""
    names = names or {}
    return ids.map(lambda p: names.get(int(p), f"persona {p}"))


def _by_size(ids: pd.Series) -> list[int]:
    """Persona ids largest first, ties by id: the report's order, which fixes the colours."""
    counts = ids.value_counts()
    return sorted(counts.index, key=lambda p: (-counts[p], p))


def _palette(ids: pd.Series, names: Mapping[int, str] | None) -> dict[str, str]:
    """Label -> the persona's colour in the report."""
    from .report.charts import persona_colours

    order = _by_size(ids)
    labels = _labels(pd.Series(order), names)
    return dict(zip(labels, persona_colours(order).values()))


def persona_sizes(assignments: pd.DataFrame, names: Mapping[int, str] | None = None) -> PlotFigure:
    """Users per persona, largest on top, by name when ``names`` are given."""
    ids = assignments["persona_id"]
    order = _by_size(ids)
    counts = ids.value_counts()[order]
    labels = _labels(pd.Series(order), names)
    palette = _palette(ids, names)
    fig = _figure(7, 0.4 * len(order) + 1)
    ax = fig.subplots()
    ax.barh(labels[::-1], counts.to_numpy()[::-1], color=[palette[x] for x in labels[::-1]])
    ax.set_xlabel("users")
    return fig


def persona_confidence(
    assignments: pd.DataFrame, names: Mapping[int, str] | None = None
) -> PlotFigure:
    """How clearly each persona's users belong: their confidence (share of their 15 nearest
    fitted users in the same persona), with the line from which a user clearly belongs."""
    import seaborn as sns

    from .results import CLEAR_CONFIDENCE

    ids = assignments["persona_id"]
    labels = _labels(ids, names)
    palette = _palette(ids, names)
    fig = _figure(7, 0.45 * len(palette) + 1.2)
    ax = fig.subplots()
    sns.boxplot(
        x=assignments["confidence"],
        y=labels,
        hue=labels,
        order=list(palette),
        palette=palette,
        legend=False,
        fliersize=1,
        ax=ax,
    )
    ax.axvline(CLEAR_CONFIDENCE, color="#6B7280", linestyle="--", linewidth=1)
    ax.set(
        xlim=(0, 1.02), xlabel="confidence (right of the dashed line: clearly belongs)", ylabel=""
    )
    return fig


def persona_map(points: pd.DataFrame, names: Mapping[int, str] | None = None) -> PlotFigure:
    """The 2-D UMAP map of the fitted sample, one colour per persona."""
    import seaborn as sns

    labels = _labels(points["persona_id"], names)
    palette = _palette(points["persona_id"], names)
    fig = _figure(7, 6)
    ax = fig.subplots()
    sns.scatterplot(
        x=points["x"],
        y=points["y"],
        hue=labels,
        hue_order=list(palette),
        s=6,
        linewidth=0,
        ax=ax,
        palette=palette,
    )
    ax.set(xticks=[], yticks=[], xlabel="", ylabel="")
    ax.legend(fontsize=8, markerscale=2, frameon=False)
    return fig


def trait_heatmap(traits: pd.DataFrame) -> PlotFigure:
    """How each persona differs from all users on every model feature.

    ``traits`` is ``PersonaResult.traits``: personas (by name) x features (by label), the
    difference of means in standard deviations (z). Drawn with the features down the side,
    where their long labels read, and capped at ±3 like the report's heatmap.
    """
    import seaborn as sns

    table = traits.T
    fig = _figure(1.1 * table.shape[1] + 4, 0.32 * table.shape[0] + 1.8)
    ax = fig.subplots()
    sns.heatmap(
        table,
        cmap="RdBu_r",
        center=0,
        vmin=-3,
        vmax=3,
        annot=True,
        fmt=".1f",
        annot_kws={"fontsize": 7},
        linewidths=0.5,
        ax=ax,
        cbar_kws={"label": "z: persona mean vs all users, in standard deviations"},
    )
    ax.set(xlabel="", ylabel="")
    ax.set_xticklabels(ax.get_xticklabels(), rotation=30, ha="right", fontsize=8)
    ax.tick_params(axis="y", labelsize=8)
    return fig
