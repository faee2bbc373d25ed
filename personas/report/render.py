"""Render a :class:`~personas.results.RunSummary` into one self-contained HTML file.

One Jinja2 environment, autoescaping on; every figure is formatted by a filter; the templates get
the dataclasses themselves. The only markup that is not escaped is chart SVG, made by
:mod:`personas.report.charts` and marked safe in exactly one place, :func:`trusted_svg`.
"""

from __future__ import annotations

import math
import numbers
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from ..results import RunSummary, Stat
from . import charts

DASH = "\u2013"          # shown for a missing figure
MINUS = "\u2212"         # typographic minus for signed figures
SIMILAR = 0.05           # |lift - 1| below this reads as "similar to all users"


# --- filters -------------------------------------------------------------------------------------

def _missing(x: Any) -> bool:
    if x is None:
        return True
    try:
        return math.isnan(float(x))
    except (TypeError, ValueError):
        return False


def pct(x: float | None, digits: int = 1) -> str:
    """Share as a percentage: 0.153 -> "15.3 %"; pct(0.1, 0) -> "10 %"; a tiny share -> "< 0.1 %"."""
    if _missing(x):
        return DASH
    value = 100 * float(x)
    smallest = 10 ** -digits
    if 0 < abs(value) < smallest:
        return f"< {smallest:.{digits}f} %"
    return f"{value:.{digits}f} %"


def num(x: float | int | None) -> str:
    """Number with thousands separators and about three significant digits.

    1234567 -> "1,234,567"; 1234.56 -> "1,235"; 12.345 -> "12.3"; 3.14159 -> "3.14"; 0.0042 -> "0.0042".
    """
    if _missing(x):
        return DASH
    if isinstance(x, numbers.Integral) and not isinstance(x, bool):
        return f"{int(x):,}"
    v = float(x)
    a = abs(v)
    if a == 0:
        return "0"
    if a >= 100:
        return f"{v:,.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 0.01:
        return f"{v:.2f}"
    return f"{v:.2g}"


def lift(x: float | None) -> str:
    """Ratio to all users: 2.41 -> "2.4×"; 12.6 -> "13×"; 0.04 -> "0.04×"; None -> "–"."""
    if _missing(x):
        return DASH
    v = float(x)
    if v >= 10:
        return f"{v:.0f}×"
    if v >= 0.1:
        return f"{v:.1f}×"
    return f"{v:.2f}×"


def money(x: float | None, symbol: str = "") -> str:
    """Amount: 1234.5 -> "1,234"; 56.789 -> "56.79" (currency is unknown, so no symbol by default)."""
    if _missing(x):
        return DASH
    v = float(x)
    text = f"{v:,.0f}" if abs(v) >= 1000 else f"{v:,.2f}"
    return f"{symbol}{text}"


def days(x: float | None) -> str:
    """Days: 1 -> "1 day"; 3.46 -> "3.5 days"; 41.7 -> "42 days"."""
    if _missing(x):
        return DASH
    v = float(x)
    text = f"{v:,.0f}" if abs(v) >= 10 or float(v).is_integer() else f"{v:.1f}"
    return f"{text} day" if text == "1" else f"{text} days"


def minutes(x: float | None) -> str:
    """Minutes: 4.25 -> "4.2 min"; 75 -> "75 min"."""
    if _missing(x):
        return DASH
    v = float(x)
    return f"{v:,.0f} min" if abs(v) >= 10 else f"{v:.1f} min"


def zscore(x: float | None) -> str:
    """Signed standardised difference: 1.23 -> "+1.2"; -0.84 -> "−0.8"; -0.04 -> "0.0"."""
    if _missing(x):
        return DASH
    z = round(float(x), 1)
    return "0.0" if z == 0 else f"{z:+.1f}".replace("-", MINUS)


def measure(x: float | None, unit: str) -> str:
    """A figure in its unit: share -> pct, currency -> money, days, minutes; anything else -> num."""
    unit = (unit or "").lower()
    if unit in ("share", "rate", "percent"):
        return pct(x)
    if unit in ("currency", "money", "revenue"):
        return money(x)
    if unit == "days":
        return days(x)
    if unit == "minutes":
        return minutes(x)
    return num(x)


def direction(stat: Stat) -> str:
    """"up", "down" or "same": the persona's figure against all users (by lift, else by value)."""
    if stat.lift is not None and not _missing(stat.lift):
        if stat.lift >= 1 + SIMILAR:
            return "up"
        if stat.lift <= 1 - SIMILAR:
            return "down"
        return "same"
    if _missing(stat.value) or _missing(stat.overall) or stat.value == stat.overall:
        return "same"
    return "up" if stat.value > stat.overall else "down"


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


FILTERS = {
    "pct": pct, "num": num, "lift": lift, "money": money, "days": days, "minutes": minutes,
    "zscore": zscore, "measure": measure, "direction": direction, "humanize": humanize,
    "info": info,
}


def make_environment() -> Environment:
    """The report's one Jinja2 environment (autoescape on explicitly: .j2 is not auto-detected)."""
    env = Environment(loader=PackageLoader("personas.report", "templates"), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(FILTERS)
    return env


# --- charts --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Chart:
    svg: Markup     # trusted SVG markup from personas.report.charts
    alt: str        # also the SVG's aria-label
    caption: str
    title: str = ""  # heading shown above a persona card's chart


def trusted_svg(svg: str, alt: str) -> Markup:
    """THE one place where markup bypasses autoescaping.

    ``svg`` must come from :mod:`personas.report.charts`: matplotlib's SVG writer escapes every
    text it draws, and the charts draw text as paths anyway, with comments stripped, so no data
    string reaches this markup as HTML. The alt text is data (persona names) and is escaped here
    into the ``aria-label`` attribute.
    """
    if not svg.startswith("<svg"):
        raise ValueError("not a chart SVG from personas.report.charts")
    return Markup('<svg role="img" aria-label="{}" focusable="false"').format(alt) + Markup(
        svg[len("<svg"):])


def _chart(svg: str, alt: str, caption: str, title: str = "") -> Chart:
    return Chart(trusted_svg(svg, alt), alt, caption, title)


def _list(items: list[str]) -> str:
    return "; ".join(items)


def build_charts(summary: RunSummary, colours: Mapping[int, str],
                 map_points: pd.DataFrame | None, heatmap: pd.DataFrame | None
                 ) -> tuple[dict[str, Chart], dict[int, Chart]]:
    """Overview charts (by name) and one small chart per persona id."""
    personas = summary.personas
    overview: dict[str, Chart] = {}
    if personas:
        overview["shares"] = _chart(
            charts.share_chart(personas, colours),
            "Bar chart of each persona's share of users next to its share of revenue: "
            + _list([f"{p.name}, {pct(p.share)} of users, {pct(p.revenue_share)} of revenue"
                     for p in personas]) + ".",
            "Share of users (solid bars) and share of revenue (hatched bars) per persona. A "
            "persona whose revenue bar is longer than its user bar spends more than average.")
    if map_points is not None and len(map_points):
        missing = {"x", "y", "persona_id"} - set(map_points.columns)
        if missing:
            raise ValueError(f"map_points lacks columns {sorted(missing)}")
        overview["map"] = _chart(
            charts.map_chart(map_points, personas, colours),
            f"Scatter map of {num(len(map_points))} sampled users in two dimensions, coloured by "
            "persona, with each persona's name at the centre of its users: "
            + ", ".join(p.name for p in personas) + ".",
            f"Persona map: {num(len(map_points))} sampled users, placed so that users who behave "
            "alike lie close together (a 2-D projection of the scaled behaviour features). "
            "The axes have no units; distances are only roughly comparable.")
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
            + _list(strongest) + ".",
            "How each persona differs from all users, feature by feature: the difference of "
            "means in standard deviations (z). Red: higher than average, blue: lower; colours "
            "are capped at ±3.")
    cards: dict[int, Chart] = {}
    for i, p in enumerate(personas):
        colour = colours.get(p.id, charts.UNASSIGNED_COLOUR)
        if p.event_mix:
            cards[p.id] = _chart(
                charts.event_mix_chart(p.event_mix, colour, key=f"p{i}"),
                f"Bar chart of {p.name}'s events by kind: "
                + ", ".join(f"{role.replace('_', ' ')} {pct(share)}"
                            for role, share in p.event_mix) + ".",
                "Share of this persona's events by kind of event.", "Event mix")
        elif p.traits:
            cards[p.id] = _chart(
                charts.traits_chart([(t.label, t.z) for t in p.traits[:6]], colour, key=f"p{i}"),
                f"Bar chart of {p.name}'s strongest traits as z-scores: "
                + ", ".join(f"{t.label} {zscore(t.z)}" for t in p.traits[:6]) + ".",
                "Difference from all users in standard deviations (z).", "Strongest traits")
    return overview, cards


# --- rendering -----------------------------------------------------------------------------------

def render_html(summary: RunSummary, *, map_points: pd.DataFrame | None = None,
                heatmap: pd.DataFrame | None = None) -> str:
    """The report as an HTML string."""
    colours = charts.persona_colours([p.id for p in summary.personas])
    overview, cards = build_charts(summary, colours, map_points, heatmap)
    template = make_environment().get_template("report.html.j2")
    return template.render(summary=summary, colours=colours, overview=overview, cards=cards)


def render_report(summary: RunSummary, out_path: str | Path, *,
                  map_points: pd.DataFrame | None = None,
                  heatmap: pd.DataFrame | None = None) -> Path:
    """Render index.html. map_points: columns x, y, persona_id (a sample of users, ≤ 3000 rows) for
    the 2-D persona map; heatmap: index = persona names (in persona order), columns = feature
    labels, values = standardised differences (z) of each persona vs all users. Writes atomically
    (temp file + os.replace). Returns out_path.

    When ``out_path`` is an existing folder, the report is written as ``index.html`` inside it.
    """
    out_path = Path(out_path)
    if out_path.is_dir():
        out_path = out_path / "index.html"
    html = render_html(summary, map_points=map_points, heatmap=heatmap)
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


__all__ = ["render_report", "render_html", "make_environment", "FILTERS", "Chart", "trusted_svg"]
