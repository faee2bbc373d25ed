"""Report charts: matplotlib figures rendered to small, self-contained inline SVG strings.

Figures are built with :class:`matplotlib.figure.Figure` directly (never pyplot), inside an
``rc_context``, so importing or using this module changes no global matplotlib state. Text is
drawn as paths (``svg.fonttype='path'``): the SVG needs no font at all, looks the same in every
browser, and carries no font URL. Scatter points are rasterised (one embedded ``data:`` PNG), so
a map of thousands of users stays small. Each SVG is cleaned (no XML prolog, DOCTYPE, metadata or
comments) and its ids are prefixed, so several charts can live in one HTML page without clashes.

The functions return plain strings; only :func:`personas.report.render.trusted_svg` turns them
into markup for the template, adding ``role="img"`` and the escaped ``aria-label``.

Why it is long: one function per chart of the report (shares, map, heatmap, event mix, traits,
counts), each short, with the shared figure set-up they all use.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Mapping, Sequence

import matplotlib
import numpy as np
import pandas as pd
from matplotlib import colors as mcolors
from matplotlib import patheffects, ticker
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle

from ..results import PersonaProfile

# One qualitative palette for every chart and card: colour-blind friendly, strong enough to read
# as a thin bar on white. Persona i (in report order) gets PALETTE[i]; beyond that, husl hues.
PALETTE: tuple[str, ...] = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # green
    "#CC79A7",  # pink
    "#D55E00",  # vermilion
    "#56B4E9",  # sky
    "#8E6C8A",  # mauve
    "#A6761D",  # ochre
    "#332288",  # indigo
    "#117733",  # dark green
)
UNASSIGNED_COLOUR = "#9CA3AF"  # noise / unassigned users (persona id -1 or unknown)
INK = "#1F2937"  # text
MUTED = "#6B7280"  # secondary text, axes
GRID = "#E5E7EB"

RC = {
    "svg.fonttype": "path",
    "svg.hashsalt": "personas-report",  # stable ids -> reproducible output
    "font.family": "DejaVu Sans",  # ships with matplotlib
    "font.size": 9,
    "axes.edgecolor": MUTED,
    "axes.labelcolor": INK,
    "axes.titlesize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "xtick.color": MUTED,
    "ytick.color": MUTED,
    "xtick.labelcolor": INK,
    "ytick.labelcolor": INK,
    "text.color": INK,
    "legend.frameon": False,
    "figure.facecolor": "white",
    "axes.facecolor": "white",
    "savefig.facecolor": "white",
    "path.simplify": True,
    "hatch.linewidth": 0.7,
}

_MAX_LABEL = 34  # characters of a persona or feature name shown on an axis before "…"


def persona_colours(persona_ids: Sequence[int]) -> dict[int, str]:
    """Persona id -> hex colour, by position in ``persona_ids`` (the report's persona order)."""
    colours: dict[int, str] = {}
    extra = None
    for i, pid in enumerate(persona_ids):
        if pid < 0:
            colours[pid] = UNASSIGNED_COLOUR
        elif i < len(PALETTE):
            colours[pid] = PALETTE[i]
        else:
            if extra is None:
                import colorsys

                extra = []
                for k in range(len(persona_ids)):
                    r, g, b = colorsys.hls_to_rgb((0.13 + k * 0.618034) % 1.0, 0.42, 0.65)
                    extra.append(mcolors.to_hex((r, g, b)))
            colours[pid] = extra[i]
    return colours


def _short(text: str, limit: int = _MAX_LABEL) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _signed(z: float) -> str:
    """+1.2 / −0.8 / 0.0 (no "−0.0")."""
    z = round(float(z), 1)
    return "0.0" if z == 0 else f"{z:+.1f}".replace("-", "\u2212")


def _tint(colour: str, strength: float) -> str:
    """``colour`` mixed with white (opaque, so a hatch drawn over it stays visible)."""
    rgb = np.array(mcolors.to_rgb(colour))
    return mcolors.to_hex(1 - strength * (1 - rgb))


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %" if abs(x) < 0.995 or x == 1 else f"{100 * x:.0f} %"


# --- SVG post-processing -------------------------------------------------------------------------

_PROLOG = re.compile(r"<\?xml[^>]*\?>\s*|<!DOCTYPE[^>]*>\s*", re.S)
_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.S)
_COMMENT = re.compile(r"<!--.*?-->\s*", re.S)
_ID = re.compile(r'\bid="([^"]+)"')
_SIZE = re.compile(r'\s(?:width|height)="[^"]*"')
_NS = re.compile(r'\sxmlns(?::\w+)?="[^"]*"')


def _to_svg(fig: Figure, key: str, **savefig) -> str:
    """Serialise ``fig`` to a cleaned SVG string with ids prefixed by ``key``; drop the figure."""
    buf = io.StringIO()
    with matplotlib.rc_context(RC):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None}, **savefig)
    fig.clear()
    svg = buf.getvalue()
    svg = _PROLOG.sub("", svg)
    svg = _METADATA.sub("", svg)
    svg = _COMMENT.sub("", svg)  # path text leaves the original text in comments
    # Unique ids per chart: several SVGs share one HTML document, and matplotlib's ids repeat.
    prefix = f"{key}-"
    ids = set(_ID.findall(svg))
    svg = _ID.sub(lambda m: f'id="{prefix}{m.group(1)}"', svg)
    if ids:
        refs = re.compile(
            r"#("
            + "|".join(re.escape(i) for i in sorted(ids, key=len, reverse=True))
            + r")(?=[\")])"
        )
        svg = refs.sub(lambda m: f"#{prefix}{m.group(1)}", svg)
    # The root tag: size comes from CSS (viewBox keeps the aspect ratio); an HTML parser puts an
    # inline <svg> in the SVG namespace by itself, so the namespace declarations can go.
    head_end = svg.index(">", svg.index("<svg"))
    head = svg[:head_end]
    head = _SIZE.sub("", head)
    head = _NS.sub("", head)
    view = re.search(r'viewBox="[\d.]+ [\d.]+ ([\d.]+) [\d.]+"', head)
    if view:  # never scale a chart up beyond its drawn size (1 pt = 4/3 CSS px)
        head += f' style="max-width: {float(view.group(1)) * 4 / 3:.0f}px"'
    svg = head + svg[head_end:]
    return svg.strip()


def _new_figure(width: float, height: float) -> Figure:
    with matplotlib.rc_context(RC):
        return Figure(figsize=(width, height), layout="constrained")


# --- charts --------------------------------------------------------------------------------------


def share_chart(
    personas: Sequence[PersonaProfile], colours: Mapping[int, str], key: str = "shares"
) -> str:
    """Horizontal bars per persona: share of users (solid) next to share of revenue (hatched).

    A persona whose revenue share is unknown (None: the log has no amounts) gets no revenue bar.
    """
    n = len(personas)
    with matplotlib.rc_context(RC):
        fig = _new_figure(7.2, 0.62 * n + 1.0)
        ax = fig.add_subplot()
        y = np.arange(n)
        h = 0.38
        users = [p.share for p in personas]
        known = [(yi, p.revenue_share) for yi, p in zip(y, personas) if p.revenue_share is not None]
        revenue = [r for _, r in known]
        cols = [colours.get(p.id, UNASSIGNED_COLOUR) for p in personas]
        ax.barh(y - h / 2, users, height=h, color=cols, edgecolor=cols, linewidth=0.8)
        if known:
            rows = [yi for yi, _ in known]
            ax.barh(
                np.array(rows) + h / 2,
                revenue,
                height=h,
                color=[_tint(cols[yi], 0.25) for yi in rows],
                edgecolor=[cols[yi] for yi in rows],
                linewidth=0.8,
                hatch="///",
            )
        top = max(users + revenue + [0.01])
        for yi, u in zip(y, users):
            ax.text(u + top * 0.01, yi - h / 2, _pct(u), va="center", fontsize=8, color=INK)
        for yi, r in known:
            ax.text(r + top * 0.01, yi + h / 2, _pct(r), va="center", fontsize=8, color=INK)
        ax.set_yticks(y, [_short(p.name) for p in personas])
        ax.invert_yaxis()
        ax.set_xlim(0, top * 1.18)
        ax.xaxis.set_major_formatter(ticker.PercentFormatter(1.0, decimals=0, symbol=" %"))
        ax.tick_params(axis="y", length=0)
        ax.grid(axis="x", color=GRID, linewidth=0.6)
        ax.set_axisbelow(True)
        ax.spines["left"].set_visible(False)
        handles = [Patch(facecolor="#4B5563", edgecolor="#4B5563", label="Share of users")]
        if known:
            handles.append(
                Patch(
                    facecolor=_tint("#4B5563", 0.25),
                    edgecolor="#4B5563",
                    hatch="///",
                    label="Share of revenue",
                )
            )
        ax.legend(
            handles=handles,
            loc="lower center",
            bbox_to_anchor=(0.5, 1.0),
            ncol=len(handles),
            fontsize=8.5,
        )
        return _to_svg(fig, key)


def map_chart(
    points: pd.DataFrame,
    personas: Sequence[PersonaProfile],
    colours: Mapping[int, str],
    key: str = "map",
) -> str:
    """2-D persona map: a user sample (x, y, persona_id) coloured and labelled by persona."""
    names = {p.id: p.name for p in personas}
    pts = points.dropna(subset=["x", "y"])
    ids = pts["persona_id"].astype(int).to_numpy()
    x = pts["x"].to_numpy(dtype=float)
    y = pts["y"].to_numpy(dtype=float)
    with matplotlib.rc_context(RC):
        fig = _new_figure(7.2, 5.0)
        ax = fig.add_subplot()
        point_colours = [colours.get(i, UNASSIGNED_COLOUR) for i in ids]
        size = 9 if len(ids) <= 1000 else 5
        ax.scatter(x, y, s=size, c=point_colours, alpha=0.7, linewidths=0, rasterized=True)
        halo = [patheffects.withStroke(linewidth=3, foreground="white")]
        for pid in [p.id for p in personas]:
            mask = ids == pid
            if not mask.any():
                continue
            ax.text(
                float(np.median(x[mask])),
                float(np.median(y[mask])),
                _short(names[pid], 24),
                ha="center",
                va="center",
                fontsize=8.5,
                fontweight="bold",
                color=INK,
                path_effects=halo,
            )
        ax.set_xticks([])
        ax.set_yticks([])
        for side in ("left", "bottom"):
            ax.spines[side].set_color(GRID)
        ax.spines["top"].set_visible(True)
        ax.spines["right"].set_visible(True)
        for side in ("top", "right"):
            ax.spines[side].set_color(GRID)
        handles = [
            Patch(color=colours.get(p.id, UNASSIGNED_COLOUR), label=_short(p.name, 28))
            for p in personas
            if (ids == p.id).any()
        ]
        if (~np.isin(ids, list(names))).any():
            handles.append(Patch(color=UNASSIGNED_COLOUR, label="Unassigned"))
        ax.legend(
            handles=handles,
            loc="upper center",
            bbox_to_anchor=(0.5, -0.02),
            ncol=min(3, max(1, len(handles))),
            fontsize=8,
            handlelength=1.0,
        )
        return _to_svg(fig, key, dpi=110)


def heatmap_chart(heatmap: pd.DataFrame, colours: Mapping[str, str], key: str = "heatmap") -> str:
    """Annotated heatmap of z-scores: features as rows, personas as columns (names -> colours).

    Transposed from the input (personas x features) so long feature names read horizontally.
    Colours are clipped to +-3 standard deviations; the annotations show the real values.
    """
    data = heatmap.T
    z = data.to_numpy(dtype=float)
    n_rows, n_cols = z.shape
    limit = 3.0
    with matplotlib.rc_context(RC):
        width = min(10.0, 3.4 + 1.05 * n_cols)
        fig = _new_figure(width, 0.36 * n_rows + 2.1)
        ax = fig.add_subplot()
        cmap = matplotlib.colormaps["RdBu_r"]
        norm = mcolors.Normalize(vmin=-limit, vmax=limit)
        mesh = ax.pcolormesh(
            np.clip(np.nan_to_num(z), -limit, limit),
            cmap=cmap,
            norm=norm,
            edgecolors="white",
            linewidth=1.0,
        )
        for i in range(n_rows):
            for j in range(n_cols):
                v = z[i, j]
                if not math.isfinite(v):
                    continue
                shade = cmap(norm(max(-limit, min(limit, v))))
                luminance = 0.2126 * shade[0] + 0.7152 * shade[1] + 0.0722 * shade[2]
                ax.text(
                    j + 0.5,
                    i + 0.5,
                    _signed(v),
                    ha="center",
                    va="center",
                    fontsize=9,
                    color="white" if luminance < 0.5 else INK,
                )
        ax.set_xlim(0, n_cols)
        ax.set_ylim(n_rows, 0)
        ax.set_yticks(np.arange(n_rows) + 0.5, [_short(c, 40) for c in data.index], fontsize=10)
        ax.set_xticks(
            np.arange(n_cols) + 0.5,
            [_short(c, 22) for c in data.columns],
            rotation=35,
            ha="left",
            rotation_mode="anchor",
            fontsize=10,
        )
        ax.xaxis.tick_top()
        ax.tick_params(length=0)
        for spine in ax.spines.values():
            spine.set_visible(False)
        # persona colour strip above the columns, so the heatmap speaks the cards' colours
        for j, name in enumerate(data.columns):
            ax.add_patch(
                Rectangle(
                    (j + 0.06, -0.22),
                    0.88,
                    0.16,
                    color=colours.get(str(name), UNASSIGNED_COLOUR),
                    clip_on=False,
                    linewidth=0,
                )
            )
        bar = fig.colorbar(mesh, ax=ax, location="bottom", shrink=0.6, aspect=35, pad=0.02)
        bar.set_label("Standardised difference from all users (z)", fontsize=9)
        bar.ax.tick_params(labelsize=8.5)
        bar.outline.set_visible(False)
        return _to_svg(fig, key)


def event_mix_chart(event_mix: Sequence[tuple[str, float]], colour: str, key: str = "mix") -> str:
    """Small horizontal bar chart: share of the persona's events per event role."""
    roles = [r for r, _ in event_mix]
    shares = [float(s) for _, s in event_mix]
    with matplotlib.rc_context(RC):
        fig = _new_figure(4.0, 0.3 * len(roles) + 0.4)
        ax = fig.add_subplot()
        y = np.arange(len(roles))
        ax.barh(y, shares, height=0.68, color=colour)
        top = max(shares + [0.01])
        for yi, s in zip(y, shares):
            ax.text(s + top * 0.02, yi, _pct(s), va="center", fontsize=9, color=INK)
        ax.set_yticks(y, [_short(r.replace("_", " "), 24) for r in roles], fontsize=9.5)
        ax.invert_yaxis()
        ax.set_xlim(0, top * 1.28)
        ax.set_xticks([])
        ax.tick_params(axis="y", length=0)
        for side in ("left", "bottom"):
            ax.spines[side].set_visible(False)
        return _to_svg(fig, key)


def traits_chart(traits: Sequence[tuple[str, float]], colour: str, key: str = "traits") -> str:
    """Diverging bars of trait z-scores (label, z) for a persona without an event mix."""
    labels = [_short(t, 30) for t, _ in traits]
    zs = [float(z) for _, z in traits]
    with matplotlib.rc_context(RC):
        fig = _new_figure(4.0, 0.32 * len(labels) + 0.7)
        ax = fig.add_subplot()
        y = np.arange(len(labels))
        ax.barh(y, zs, height=0.65, color=colour)
        ax.axvline(0, color=MUTED, linewidth=0.8)
        ax.set_yticks(y, labels)
        ax.invert_yaxis()
        lim = max([abs(z) for z in zs] + [1.0]) * 1.15
        ax.set_xlim(-lim, lim)
        ax.set_xlabel("standard deviations from all users", fontsize=8)
        ax.tick_params(axis="y", length=0)
        ax.spines["left"].set_visible(False)
        return _to_svg(fig, key)


def count_chart(scores: Mapping[int, float], chosen: int, key: str = "counts") -> str:
    """One bar per candidate persona count: its score (0..1, higher is better).

    The chosen count's bar is dark and carries the word "chosen" under its value and a bold
    tick label; the others are light and outlined. So the winner reads without colour, in
    greyscale print and at phone width (a narrow figure: its text is scaled down least).
    """
    counts = sorted(scores)
    values = [float(scores[k]) for k in counts]
    x = np.arange(len(counts))
    with matplotlib.rc_context(RC):
        fig = _new_figure(min(7.2, max(4.2, 0.55 * len(counts) + 1.4)), 2.7)
        ax = fig.add_subplot()
        picked = [k == chosen for k in counts]
        ax.bar(
            x,
            values,
            width=0.66,
            linewidth=1.0,
            edgecolor=[INK if p else MUTED for p in picked],
            color=[PALETTE[0] if p else _tint(MUTED, 0.18) for p in picked],
        )
        top = max(values + [0.0])
        for xi, v, p in zip(x, values, picked):
            value = f"{v:.2f}".replace("-", "\u2212")
            label = f"{value}\nchosen" if p else value
            ax.text(
                xi,
                max(v, 0) + 0.02,
                label,
                ha="center",
                va="bottom",
                fontsize=9,
                fontweight="bold" if p else "normal",
                color=INK,
                linespacing=1.1,
            )
        ax.set_xticks(x, [str(k) for k in counts], fontsize=9.5)
        for tick, p in zip(ax.get_xticklabels(), picked):
            tick.set_fontweight("bold" if p else "normal")
        ax.set_xlabel("Number of personas", fontsize=9)
        ax.set_ylabel("Agreement between fits", fontsize=9)
        ax.set_ylim(min(0.0, min(values) - 0.05), max(1.0, top) * 1.25)
        ax.set_yticks([0, 0.5, 1.0])
        ax.tick_params(axis="x", length=0)
        ax.grid(axis="y", color=GRID, linewidth=0.6)
        ax.set_axisbelow(True)
        return _to_svg(fig, key)
