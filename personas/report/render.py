"""Render a :class:`~personas.results.RunSummary` into one self-contained HTML file, and the
persona cards alone into an HTML fragment a notebook shows (:func:`render_cards`).

One Jinja2 environment, autoescaping on; every figure is formatted by a filter; the templates get
the dataclasses themselves. The only markup that is not escaped is chart SVG, made by
:mod:`personas.report.charts` and marked safe in exactly one place, :func:`trusted_svg`.

Why it is long: the filters that format each kind of figure and the assembly of the report's
context are here, in one place the templates read from; the markup itself is in ``templates/``.
"""

from __future__ import annotations

import math
import numbers
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from ..formatting import (
    DASH,
    day,
    days,
    figure_name,
    lift,
    measure,
    minutes,
    money,
    num,
    pct,
    points,
    zscore,
)
from ..formatting import missing as _missing
from ..migration import Migration
from ..results import (
    CLEAR_CONFIDENCE,
    CSV_MAX_USERS,
    STABILITY_FAIR,
    STABILITY_FIRM,
    ClaimCheck,
    PersonaProfile,
    RunSummary,
    Stat,
    stability_verdict,
)
from . import charts, flows
from .brief import glossary, make_brief, parameter_text, source_name
from .compare import Comparison

SIMILAR = 0.05  # |lift - 1| below this reads as "similar to all users"
MAP_POINTS = 3000  # most users drawn on the persona map: keeps the HTML small at any scale


# --- filters -------------------------------------------------------------------------------------


def direction(stat: Stat) -> str:
    """ "up", "down" or "same": the persona's figure against all users (by lift, else by value)."""
    if stat.lift is not None and not _missing(stat.lift):
        if stat.lift >= 1 + SIMILAR:
            return "up"
        if stat.lift <= 1 - SIMILAR:
            return "down"
        return "same"
    if _missing(stat.value) or _missing(stat.overall) or stat.value == stat.overall:
        return "same"
    return "up" if stat.value > stat.overall else "down"


def judgement(stat: Stat) -> str:
    """ "good", "bad" or "neutral": the persona's figure against all users', judged by which way
    the figure is better (``Stat.better``). A figure with no better way, or about the same as
    all users', is neutral; so the colour says good or bad, the arrow says up or down."""
    way = direction(stat)
    if way == "same" or stat.better not in ("higher", "lower"):
        return "neutral"
    return "good" if (way == "up") == (stat.better == "higher") else "bad"


def humanize(key: Any) -> str:
    """A snake_case key for people: "noise_share" -> "Noise share"."""
    text = str(key).replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def info(value: Any) -> str:
    """A model-info value as text: numbers via num, mappings as "k: v; ...", sequences joined."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, numbers.Number):
        return num(value)
    if isinstance(value, Mapping):
        return "; ".join(f"{k}: {info(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple, set)):
        return ", ".join(info(v) for v in value)
    if value is None:
        return DASH
    return str(value)


def revenue_share(x: float | None) -> str:
    """A persona's share of revenue; "unknown" when the log has no amounts (None)."""
    return "unknown" if x is None else pct(x)


def _bound(test: str, bound: float, unit: str) -> str:
    """ "at least 2", "at most 60 days", "at least 1.25× that of all users" (a bound keeps its
    digits: 1.25 is not rounded to the 1.2 a lift would show)."""
    words = "at least" if test.endswith("at_least") else "at most"
    if test.startswith("lift_"):
        return f"{words} {bound:.3g}× that of all users"
    return f"{words} {measure(int(bound) if float(bound).is_integer() else bound, unit)}"


def claim(c: ClaimCheck, currency: str = "") -> str:
    """A claim with its numbers: "Orders per user (mean): 3.30 vs 1.40 for all users (2.4×);
    needs at least 2 and at least 1.5× that of all users", the word it backs first, if any. The
    figure is named and formatted as on the card (:func:`personas.formatting.figure_name`)."""
    needs = " and ".join(_bound(test, bound, c.unit) for test, bound in c.bounds)
    text = (
        f"{figure_name(c.label, c.statistic)}: {measure(c.value, c.unit, currency)} vs "
        f"{measure(c.overall, c.unit, currency)} for all users ({lift(c.lift)}); "
        f"needs {needs}"
    )
    return f"{c.word}: {text[:1].lower()}{text[1:]}" if c.word else text


FILTERS = {
    "pct": pct,
    "num": num,
    "lift": lift,
    "money": money,
    "days": days,
    "minutes": minutes,
    "zscore": zscore,
    "measure": measure,
    "direction": direction,
    "humanize": humanize,
    "info": info,
    "points": points,
    "revenue_share": revenue_share,
    "claim": claim,
    "day": day,
    "figure_name": figure_name,
    "judgement": judgement,
    "source_name": source_name,
    "parameter_text": parameter_text,
}


def make_environment() -> Environment:
    """The report's one Jinja2 environment (autoescape on explicitly: .j2 is not auto-detected)."""
    env = Environment(
        loader=PackageLoader("personas.report", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(FILTERS)
    return env


# --- charts --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Chart:
    svg: Markup  # trusted SVG markup from personas.report.charts
    alt: str  # also the SVG's aria-label
    caption: str
    title: str = ""  # heading shown above a persona card's chart


def trusted_svg(svg: str, alt: str) -> Markup:
    """THE one place where markup bypasses autoescaping.

    ``svg`` must come from :mod:`personas.report.charts` (or :mod:`~personas.report.flows`,
    which draws through it): matplotlib's SVG writer escapes every
    text it draws, and the charts draw text as paths anyway, with comments stripped, so no data
    string reaches this markup as HTML. The alt text is data (persona names) and is escaped here
    into the ``aria-label`` attribute.
    """
    if not svg.startswith("<svg"):
        raise ValueError("not a chart SVG from personas.report.charts")
    return Markup('<svg role="img" aria-label="{}" focusable="false"').format(alt) + Markup(
        svg[len("<svg") :]
    )


def _chart(svg: str, alt: str, caption: str, title: str = "") -> Chart:
    return Chart(trusted_svg(svg, alt), alt, caption, title)


def _list(items: list[str]) -> str:
    return "; ".join(items)


# --- how solid the segmentation is ---------------------------------------------------------------

VERDICT_MEANING = {
    "firm": "Refitting gives essentially the same personas: they are a sound basis for "
    "segments and campaigns.",
    "fair": "The personas hold in the large, but users near their borders can move between "
    "them: use them, and read the less reliable personas (see each card) with care.",
    "shaky": "Refitting can give noticeably different personas: treat the names and sizes as a "
    "first look, not as lasting segments.",
}
SCORE_MEANING = "1 = the same grouping every time, 0 = no better than chance"


@dataclass(frozen=True)
class Solidity:
    """How solid the segmentation is, in words for the overview (and the header's verdict).

    Every part comes from the model info and is empty when the model did not record it (a model
    fitted once, or saved before these figures existed); the template leaves such parts out.
    """

    stability: float | None  # agreement between independent refits (mean adjusted Rand)
    verdict: str | None  # "firm", "fair" or "shaky" (results.stability_verdict)
    meaning: str  # what the verdict means for someone using the personas
    scale: str  # the thresholds, in words
    scores: dict[int, float]  # candidate persona count -> its score
    chosen: int | None  # the persona count the model kept
    count_text: str  # what the score means and why the chosen count won

    @property
    def shown(self) -> bool:
        """Whether the report has anything to say about it."""
        return self.verdict is not None or bool(self.scores)


def _number(x: Any) -> float | None:
    """A finite number from model info, else None (a missing key, null or text)."""
    if isinstance(x, bool) or not isinstance(x, numbers.Real) or _missing(x):
        return None
    return float(x)


def count_scores(model_info: Mapping[str, Any]) -> dict[int, float]:
    """The model's score of every candidate persona count, by count; empty when not recorded."""
    scores = model_info.get("count_scores")
    if not isinstance(scores, Mapping):
        return {}
    found = {}
    for k, v in scores.items():
        value = _number(v)
        if value is not None and str(k).strip().isdigit():
            found[int(k)] = value
    return dict(sorted(found.items()))


def count_text(
    scores: Mapping[int, float], chosen: int | None, rule: str = "", fits: int | None = None
) -> str:
    """What a candidate count's score means and why ``chosen`` won, in plain words.

    ``rule`` is the model's own sentence for how the count was chosen; without it the text says
    whether the chosen count simply scored highest. One scored count means the clustering found
    a count within the bounds and no other count was tried.
    """
    if not scores or chosen is None:
        return ""
    who = f"the model's {fits} independent fits" if fits else "the model's independent fits"
    if len(scores) == 1:
        ((count, score),) = scores.items()
        return (
            f"The clustering found {count} personas directly, within the allowed range, so no "
            f"other count was scored; {who} group the users alike at {num(score)} "
            f"({SCORE_MEANING})."
        )
    rule = rule.strip().rstrip(".")
    if not rule:
        best = max(scores.values())
        rule = (
            "it scores highest"
            if scores.get(chosen) == best
            else "the model's rule for the count picked it (see Methodology)"
        )
    return (
        f"Each bar is a possible number of personas; its score is how alike {who} group the "
        f"users into that many personas ({SCORE_MEANING}). Why {chosen}: {rule}."
    )


def solidity(model_info: Mapping[str, Any], personas: int) -> Solidity:
    """What the overview says about how firm the segmentation is (see :class:`Solidity`)."""
    stability = _number(model_info.get("stability"))
    verdict = stability_verdict(stability)
    scores = count_scores(model_info)
    chosen = model_info.get("personas", personas)
    chosen = int(chosen) if _number(chosen) is not None else None
    fits = model_info.get("fits")
    rule = model_info.get("count_rule")
    return Solidity(
        stability=stability,
        verdict=verdict,
        meaning=VERDICT_MEANING.get(verdict or "", ""),
        scale=(
            f"Firm at {STABILITY_FIRM:.2f} or more, fair from {STABILITY_FAIR:.2f}, shaky "
            f"below {STABILITY_FAIR:.2f}."
        ),
        scores=scores,
        chosen=chosen,
        count_text=count_text(
            scores,
            chosen,
            rule if isinstance(rule, str) else "",
            int(fits) if _number(fits) is not None else None,
        ),
    )


def build_charts(
    summary: RunSummary,
    colours: Mapping[int, str],
    map_points: pd.DataFrame | None,
    heatmap: pd.DataFrame | None,
    solid: Solidity | None = None,
) -> tuple[dict[str, Chart], dict[int, Chart]]:
    """Overview charts (by name) and one small chart per persona id.

    ``solid`` (:func:`solidity`) adds the "why this many personas" chart when the model scored
    more than one candidate count.
    """
    personas = summary.personas
    overview: dict[str, Chart] = {}
    if solid is not None and len(solid.scores) > 1:
        overview["counts"] = _chart(
            charts.count_chart(solid.scores, solid.chosen),
            "Bar chart of the agreement between independent fits for each possible number of "
            "personas: "
            + _list(
                [
                    f"{k} personas {num(v)}" + (" (chosen)" if k == solid.chosen else "")
                    for k, v in solid.scores.items()
                ]
            )
            + ".",
            solid.count_text,
        )
    if personas:
        overview["shares"] = _chart(
            charts.share_chart(personas, colours),
            "Bar chart of each persona's share of users next to its share of revenue: "
            + _list(
                [
                    f"{p.name}, {pct(p.share)} of users, "
                    + (
                        f"{pct(p.revenue_share)} of revenue"
                        if p.revenue_share is not None
                        else "revenue unknown"
                    )
                    for p in personas
                ]
            )
            + ".",
            "Share of users (solid bars) and share of revenue (hatched bars) per persona. A "
            "persona whose revenue bar is longer than its user bar spends more than average."
            if any(p.revenue_share is not None for p in personas)
            else "Share of users per persona. The data has no amounts, so revenue is unknown.",
        )
    if map_points is not None and len(map_points):
        missing = {"x", "y", "persona_id"} - set(map_points.columns)
        if missing:
            raise ValueError(f"map_points lacks columns {sorted(missing)}")
        overview["map"] = _chart(
            charts.map_chart(map_points, personas, colours),
            f"Scatter map of {num(len(map_points))} sampled users in two dimensions, coloured by "
            "persona, with each persona's name at the centre of its users: "
            + ", ".join(p.name for p in personas)
            + ".",
            f"Persona map: {num(len(map_points))} sampled users, placed so that users who behave "
            "alike lie close together (a 2-D projection of the scaled behaviour features). "
            "The axes have no units; distances are only roughly comparable.",
        )
    if heatmap is not None and heatmap.size:
        by_name = {p.name: colours.get(p.id, charts.UNASSIGNED_COLOUR) for p in personas}
        strongest = []
        for name, row in heatmap.iterrows():
            row = row.dropna()
            if len(row):
                feature = row.abs().idxmax()
                strongest.append(f"{name}: {feature} {zscore(row[feature])}")
        overview["heatmap"] = _chart(
            charts.heatmap_chart(heatmap, by_name),
            f"Heatmap of standardised differences (z-scores) of {heatmap.shape[0]} personas "
            f"against all users on {heatmap.shape[1]} features. Strongest feature per persona: "
            + _list(strongest)
            + ".",
            "How each persona differs from all users, feature by feature: the difference of "
            "means in standard deviations (z). Red: higher than average, blue: lower; colours "
            "are capped at ±3.",
        )
    cards: dict[int, Chart] = {}
    for i, p in enumerate(personas):
        colour = colours.get(p.id, charts.UNASSIGNED_COLOUR)
        if p.event_mix:
            cards[p.id] = _chart(
                charts.event_mix_chart(p.event_mix, colour, key=f"p{i}"),
                f"Bar chart of {p.name}'s events by kind: "
                + ", ".join(f"{role.replace('_', ' ')} {pct(share)}" for role, share in p.event_mix)
                + ".",
                "Share of this persona's events by kind of event.",
                "Event mix",
            )
        elif p.traits:
            cards[p.id] = _chart(
                charts.traits_chart([(t.label, t.z) for t in p.traits[:6]], colour, key=f"p{i}"),
                f"Bar chart of how far {p.name} stands from all users on its strongest "
                "traits, in standard deviations: "
                + ", ".join(f"{t.label} {zscore(t.z)}" for t in p.traits[:6])
                + ".",
                "How far this persona's average is from all users', in standard deviations (0 = "
                "the same as all users, beyond ±1 a clear difference).",
                "Strongest traits",
            )
    return overview, cards


def sample_points(points: pd.DataFrame | None, limit: int = MAP_POINTS) -> pd.DataFrame | None:
    """At most ``limit`` map points, drawn with a fixed seed (same input, same report).

    The map is the only part of the report whose input can grow with the users; capping it here
    keeps the file size and render time flat however many points a caller passes.
    """
    if points is None or len(points) <= limit:
        return points
    return points.sample(n=limit, random_state=0).sort_index()


# --- the export explanation ----------------------------------------------------------------------

# personas.csv: the columns every persona row has, then one group of columns per figure.
PERSONA_COLUMNS = {
    "id": "The persona's number, the persona_id of the assignments file.",
    "name": "The persona's name.",
    "size": "Users in the persona.",
    "share": "Share of all users in the persona.",
    "revenue_share": "Share of all revenue that the persona's users brought.",
    "confidence": "How clearly the persona's users belong to it, from 0 to 1: the mean of "
    "their confidence in the assignments file.",
    "reproducibility": "From 0 to 1: how much of the persona the model finds again as one "
    "persona when it is refitted on other samples (mean best overlap of "
    "members); empty when the model was not refitted.",
    "clear_share": "Share of the persona's users who clearly belong: confidence at least "
    f"{CLEAR_CONFIDENCE}.",
    "description": "The description shown on the persona's card.",
    "currency": "The ISO 4217 code of the money figures (parameter currency); empty when not "
    "given.",
    "traits": "The three traits under \u201cWhy this name\u201d on the persona's card, separated "
    "by semicolons.",
}
# personas.csv with the forecast (personas.forecast): its forecast_* columns, written only then.
FORECAST_COLUMNS = {
    "forecast_horizon_days": "Days ahead the forecast covers (parameter horizon_days).",
    "forecast_users": "Users in the persona.",
    "forecast_buyers": "Its users with a purchase history, the only ones forecast.",
    "forecast_churn_rate": "Predicted churn: the mean, over its buyers, of the probability that "
    "they are no longer active.",
    "forecast_expected_purchases": "Purchase days its buyers are expected to make over the "
    "horizon, in total.",
    "forecast_expected_purchases_per_user": "The same per user of the persona.",
    "forecast_expected_revenue": "Revenue its buyers are expected to bring over the horizon; "
    "empty when the data has no amounts.",
    "forecast_expected_revenue_per_user": "The same per user of the persona.",
    "forecast_expected_revenue_per_buyer": "The same per buyer of the persona.",
    "forecast_expected_revenue_share": "Its share of all users' expected revenue.",
    "forecast_expected_purchases_share": "Its share of all users' expected purchases.",
    "forecast_buying_share": "Share of its users expected to buy within the horizon (users "
    "without a purchase history counted as not buying): the baseline "
    "of its A/B tests' sizes.",
    "forecast_regular_buyers": "Regular buyers whose next purchase is due by the end of the "
    "horizon (overdue ones included).",
    "forecast_due_dates": "The first and last of those due dates (first..last).",
}
# A figure's columns are its key plus these suffixes ("" is the key itself), in the order the
# pipeline writes them: the headline three always, the centres where the figure is a median or a
# mean (the stat's ``basis`` is set).
HEADLINE_SUFFIXES = ("", "overall", "lift")
CENTRE_SUFFIXES = ("basis", "median", "mean", "overall_median", "overall_mean")


@dataclass(frozen=True)
class ExportColumns:
    """One row of the report's personas.csv guide: one or more columns and what they hold."""

    columns: tuple[str, ...]
    meaning: str  # the column, or the figure a group belongs to
    parts: tuple[tuple[str, str], ...] = ()  # a group's columns, each with what it holds


def _figure_of(column: str, keys: list[str]) -> tuple[str, str] | None:
    """(key, suffix) when ``column`` belongs to a key figure; the longest key wins, so a key that
    starts with another key ("revenue_per_user" after "revenue") is not split wrongly."""
    for key in sorted(keys, key=len, reverse=True):
        if column == key:
            return key, ""
        if column.startswith(key + "_"):
            return key, column[len(key) + 1 :]
    return None


@dataclass(frozen=True)
class _Figure:
    """What personas.csv holds under one key: the KPI where there is one (as in personas.json,
    a KPI wins over a key stat of the same key), else the key stat of the persona cards."""

    key: str
    stat: Stat  # the figure written (one persona's; labels agree)
    kpi: bool
    bases: tuple[str, ...]  # the centres its rows use: ("median",), ("mean",) or ()
    card: Stat | None = None  # a key stat sharing a KPI's key, when a card shows one
    card_is_centre: bool = False  # that card figure equals the KPI's column key_<card basis>
    feature: str = ""  # description of a behaviour feature sharing a KPI's key


def _same(a: float | None, b: float | None) -> bool:
    return (_missing(a) and _missing(b)) or (
        not _missing(a) and not _missing(b) and math.isclose(float(a), float(b))
    )


def _figures(summary: RunSummary) -> dict[str, _Figure]:
    """Every key personas.csv has a group of columns for, in the order it writes them."""
    features = dict((*summary.features_used, *summary.features_described))
    kpis: dict[str, Stat] = {}
    cards: dict[str, Stat] = {}
    bases: dict[str, set[str]] = {}
    order: dict[str, None] = {}
    card_is_centre: dict[str, bool] = {}
    for p in summary.personas:
        mine = {s.key: s for s in p.kpis}
        for stat in (*p.stats, *p.kpis):
            order.setdefault(stat.key)
        for stat in p.stats:
            cards.setdefault(stat.key, stat)
            kpi = mine.get(stat.key)
            if kpi is None:
                bases.setdefault(stat.key, set()).add(stat.basis)
            elif stat.basis:  # is the card's figure one of the KPI's centre columns?
                card_is_centre[stat.key] = (
                    card_is_centre.get(stat.key, True)
                    and bool(kpi.basis)
                    and _same(stat.value, getattr(kpi, stat.basis))
                )
        for stat in p.kpis:
            kpis[stat.key] = stat
            bases.setdefault(stat.key, set()).add(stat.basis)
    figures = {}
    for key in order:
        kpi = kpis.get(key)
        card = cards.get(key) if kpi is not None else None
        figures[key] = _Figure(
            key,
            kpi or cards[key],
            kpi is not None,
            tuple(sorted(b for b in bases[key] if b)),
            card,
            card_is_centre.get(key, False) if card is not None else False,
            features.get(key, "") if kpi is not None else "",
        )
    return figures


def export_columns(
    summary: RunSummary, header: list[str] | None = None
) -> tuple[ExportColumns, ...]:
    """The report's guide to personas.csv, one row per fixed column or per key figure.

    ``header`` is the file's real header (the pipeline passes it), so the guide lists exactly the
    columns the file has, whatever columns a later version adds. Without it (a report rendered
    on its own), the guide lists the columns the pipeline would write for these personas: the
    fixed ones, then per figure key, key_overall and key_lift, and where the figure is a median
    or a mean also key_basis, key_median, key_mean, key_overall_median and key_overall_mean.
    """
    figures = _figures(summary)
    if header is None:
        header = list(PERSONA_COLUMNS) + [
            f"{key}_{suffix}".rstrip("_")
            for key, figure in figures.items()
            for suffix in HEADLINE_SUFFIXES + (CENTRE_SUFFIXES if figure.bases else ())
        ]
    # Columns in header order; a figure's columns are gathered at its first column.
    order: list[str | tuple[str]] = []  # a column name, or (figure key,)
    groups: dict[str, list[tuple[str, str]]] = {}
    for column in header:
        found = None if column in PERSONA_COLUMNS else _figure_of(column, list(figures))
        if found is None:
            order.append(column)
            continue
        key, suffix = found
        if key not in groups:
            groups[key] = []
            order.append((key,))
        groups[key].append((column, suffix))
    return tuple(
        _figure_row(figures[item[0]], groups[item[0]])
        if isinstance(item, tuple)
        else ExportColumns(
            (item,),
            PERSONA_COLUMNS.get(item)
            or FORECAST_COLUMNS.get(item, "See the same field in personas.json."),
        )
        for item in order
    )


def _figure_row(figure: _Figure, columns: list[tuple[str, str]]) -> ExportColumns:
    stat = figure.stat
    what = f"{stat.label} ({' or '.join(figure.bases) or stat.statistic})"
    if not figure.kpi:
        meaning = f"{what}: a key stat, empty for a persona whose card does not show it."
    else:
        meaning = f"{what}: a KPI, filled for every persona." + _shared_key(figure)
    parts = tuple((column, _column_text(suffix, figure)) for column, suffix in columns)
    return ExportColumns(tuple(c for c, _ in columns), meaning, parts)


def _shared_key(figure: _Figure) -> str:
    """For a KPI whose key is also a behaviour feature's (avg_order_value, days_since_seen):
    which of the two figures the columns hold, and where the other one is."""
    card = figure.card
    name = (
        figure_name(card.label, card.statistic)
        if card is not None
        else figure.feature.split(" (")[0]
    )
    if not name:
        return ""
    text = f" Not the behaviour feature of the same name (\u201c{name}\u201d)"
    if card is None or not card.basis:
        return text + "."
    text += f", which some cards show as a key stat, as its {card.basis}: that figure is "
    if figure.card_is_centre:
        return text + f"the column {figure.key}_{card.basis}."
    return text + "not in this file but in personas.json, under key_stats."


def _column_text(suffix: str, figure: _Figure) -> str:
    """What the column ``key_<suffix>`` of ``figure`` holds, in words."""
    bases = figure.bases
    centre = " or ".join(bases)  # "median", "mean", "mean or median" or ""
    if suffix == "":
        return (
            f"the persona's {centre}"
            if centre
            else f"the persona's figure ({figure.stat.statistic})"
        )
    if suffix == "overall":
        return f"the {centre} over all users" if centre else "the same figure over all users"
    if suffix == "lift":
        return (
            "the persona's figure divided by all users' (1.5 = 50\u00a0% higher); empty when "
            "all users' figure is 0"
        )
    if suffix == "basis":
        words = " or ".join(f"\u201c{b}\u201d" for b in bases or ("median", "mean"))
        return f"{words}: which centre the figure, all users' figure and the lift use"
    centres = {
        "median": "the persona's median",
        "mean": "the persona's mean",
        "overall_median": "the median over all users",
        "overall_mean": "the mean over all users",
    }
    return centres.get(suffix, "see the same figure in personas.json")


# --- rendering -----------------------------------------------------------------------------------


def render_html(
    summary: RunSummary,
    *,
    map_points: pd.DataFrame | None = None,
    heatmap: pd.DataFrame | None = None,
    comparison: Comparison | None = None,
    export_header: list[str] | None = None,
    migration: Migration | None = None,
) -> str:
    """The report as an HTML string (see :func:`render_report` for the arguments)."""
    colours = charts.persona_colours([p.id for p in summary.personas])
    solid = solidity(summary.model_info, len(summary.personas))
    overview, cards = build_charts(summary, colours, sample_points(map_points), heatmap, solid)
    moves = (
        None
        if migration is None
        else flows.migration_view(
            migration,
            _chart(
                flows.flow_chart(migration, colours), flows.flow_alt(migration), flows.FLOW_CAPTION
            ),
        )
    )
    template = make_environment().get_template("report.html.j2")
    return template.render(
        summary=summary,
        colours=colours,
        overview=overview,
        cards=cards,
        comparison=comparison,
        migration=moves,
        solidity=solid,
        clear_confidence=CLEAR_CONFIDENCE,
        brief=make_brief(
            summary, solid.verdict, solid.stability, solid.meaning, comparison, migration
        ),
        glossary=glossary(summary),
        export_columns=export_columns(summary, export_header),
        csv_max_users=CSV_MAX_USERS,
    )


def render_cards(
    personas: Sequence[PersonaProfile],
    *,
    report: str | Path | None = None,
    assignments_file: str = "assignments.csv",
) -> str:
    """The persona cards of the report as an HTML fragment for a notebook (``_repr_html_``).

    The same card macro as the report, without the small card charts; ``report``, the path of
    the run's index.html, adds a line linking to it (:func:`notebook_href`);
    ``assignments_file`` is the run's file of users the cards name.
    """
    personas = tuple(personas)
    colours = charts.persona_colours([p.id for p in personas])
    template = make_environment().get_template("cards.html.j2")
    return template.render(
        personas=personas,
        colours=colours,
        report=report,
        href=notebook_href(Path(report)) if report else "",
        assignments_file=assignments_file,
    )


def notebook_href(target: Path) -> str:
    """A link to ``target`` that works from the notebook showing it.

    JupyterLab opens a relative link from the notebook's own folder, which it tells the kernel
    in ``JPY_SESSION_NAME``; elsewhere (papermill, nbconvert, plain IPython) the notebook's
    folder is unknown, and the file's URI is the link.
    """
    notebook = os.environ.get("JPY_SESSION_NAME", "")
    target = Path(target).absolute()
    if os.path.isabs(notebook):
        return Path(os.path.relpath(target, Path(notebook).parent)).as_posix()
    return target.as_uri()


def render_report(
    summary: RunSummary,
    out_path: str | Path,
    *,
    map_points: pd.DataFrame | None = None,
    heatmap: pd.DataFrame | None = None,
    comparison: Comparison | None = None,
    export_header: list[str] | None = None,
    migration: Migration | None = None,
) -> Path:
    """Render index.html. map_points: columns x, y, persona_id for the 2-D persona map (a sample
    of users; more than MAP_POINTS rows are sampled down); heatmap: index = persona names (in
    persona order), columns = feature labels, values = standardised differences (z) of each
    persona vs all users; comparison: this run against an earlier one (see
    :mod:`personas.report.compare`), shown as its own section; export_header: the header of the
    run's personas.csv, explained column by column (see :func:`export_columns`); migration: who
    moved where since the earlier run (:mod:`personas.migration`), shown as its own section after
    the comparison. Writes atomically
    (temp file + os.replace). Returns out_path.

    When ``out_path`` is an existing folder, the report is written as ``index.html`` inside it.
    """
    out_path = Path(out_path)
    if out_path.is_dir():
        out_path = out_path / "index.html"
    html = render_html(
        summary,
        map_points=map_points,
        heatmap=heatmap,
        comparison=comparison,
        export_header=export_header,
        migration=migration,
    )
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out_path.name}.", suffix=".tmp", dir=out_path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(html)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, out_path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return out_path


__all__ = [
    "render_report",
    "render_html",
    "render_cards",
    "make_environment",
    "FILTERS",
    "Chart",
    "trusted_svg",
    "export_columns",
    "sample_points",
]
