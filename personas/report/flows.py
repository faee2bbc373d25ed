"""Charts of a series of runs: the flow of users between two runs' personas (an alluvial chart)
and each persona's share over time.

Drawn with matplotlib like every other chart of the report, through :mod:`personas.report.charts`
(its rc settings, text drawn as paths, cleaned SVG with prefixed ids), so the result goes through
:func:`personas.report.render.trusted_svg` like the others. No script, no font, no network.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib
import numpy as np
from matplotlib.patches import PathPatch, Rectangle
from matplotlib.path import Path as MPath

from ..migration import (
    GONE,
    NEW,
    Migration,
    gone_sentence,
    move_sentence,
    new_sentence,
    summary_sentence,
)
from . import charts

GAP = 0.025  # space between two bars of one column, as a share of the tallest column
BAR = 0.035  # width of a column's bars, as a share of the distance between the columns
LABEL = 30  # characters of a persona name shown before "…"


def _column(
    sizes: Sequence[tuple[object, int]], height: float
) -> dict[object, tuple[float, float]]:
    """Key -> (top, bottom) of each bar of a column, top to bottom, centred in ``height``."""
    used = sum(s for _, s in sizes) + GAP * height * (len(sizes) - 1)
    y = (height + used) / 2
    out = {}
    for key, size in sizes:
        out[key] = (y, y - size)
        y -= size + GAP * height
    return out


def _band(x0: float, x1: float, top0: float, bottom0: float, top1: float, bottom1: float) -> MPath:
    """A ribbon from the slice (top0, bottom0) at x0 to (top1, bottom1) at x1, S-shaped."""
    mid = (x0 + x1) / 2
    vertices = [
        (x0, top0),
        (mid, top0),
        (mid, top1),
        (x1, top1),
        (x1, bottom1),
        (mid, bottom1),
        (mid, bottom0),
        (x0, bottom0),
        (x0, top0),
    ]
    codes = [
        MPath.MOVETO,
        MPath.CURVE4,
        MPath.CURVE4,
        MPath.CURVE4,
        MPath.LINETO,
        MPath.CURVE4,
        MPath.CURVE4,
        MPath.CURVE4,
        MPath.CLOSEPOLY,
    ]
    return MPath(vertices, codes)


def flow_colours(migration: Migration, colours: Mapping[int, str]) -> dict[int, str]:
    """``colours`` (this run's persona colours by id) plus colours for earlier personas that
    have none (gone personas), continuing the palette."""
    ids = [p.id for p in migration.later.personas]
    ids += [p.id for p in migration.earlier.personas if p.id not in colours and p.id not in ids]
    fallback = charts.persona_colours(ids)
    return {i: colours.get(i, fallback[i]) for i in ids}


def flow_chart(
    migration: Migration,
    colours: Mapping[int, str],
    key: str = "flow",
    left: str = "Earlier run",
    right: str = "This run",
) -> str:
    """Alluvial chart: the earlier run's personas (left, ``(new)`` last) to this run's (right,
    ``(gone)`` last); each ribbon is the users of one row of migration.csv, coloured by the
    persona they came from (new users by the one they joined)."""
    flows = [f for f in migration.flows if f.users > 0]
    left_keys = [(p.id, p.name) for p in migration.earlier.personas] + [(None, NEW)]
    right_keys = [(p.id, p.name) for p in migration.later.personas] + [(None, GONE)]
    left_sizes = [
        (k, sum(f.users for f in flows if (f.source_id, f.source) == k)) for k in left_keys
    ]
    right_sizes = [
        (k, sum(f.users for f in flows if (f.target_id, f.target) == k)) for k in right_keys
    ]
    left_sizes = [(k, s) for k, s in left_sizes if s > 0]
    right_sizes = [(k, s) for k, s in right_sizes if s > 0]
    total = max(sum(s for _, s in left_sizes), sum(s for _, s in right_sizes), 1)
    bars = max(len(left_sizes), len(right_sizes), 1)
    height = total * (1 + GAP * (bars - 1)) * 1.02
    left_bars, right_bars = _column(left_sizes, height), _column(right_sizes, height)
    palette = flow_colours(migration, colours)

    def colour(pid: int | None) -> str:
        return (
            charts.UNASSIGNED_COLOUR if pid is None else palette.get(pid, charts.UNASSIGNED_COLOUR)
        )

    x0, x1 = BAR, 1 - BAR
    with matplotlib.rc_context(charts.RC):
        fig = charts._new_figure(8.6, 0.42 * bars + 1.3)
        ax = fig.add_subplot()
        # ribbons: a source bar is cut in the order of the right column, a target bar in the
        # order of the left one, so ribbons do not cross inside a bar
        left_pos = {k: top for k, (top, _) in left_bars.items()}
        right_pos = {k: top for k, (top, _) in right_bars.items()}
        right_order = {k: i for i, (k, _) in enumerate(right_sizes)}
        left_order = {k: i for i, (k, _) in enumerate(left_sizes)}
        out_order = sorted(
            flows,
            key=lambda f: (
                left_order.get((f.source_id, f.source), 0),
                right_order.get((f.target_id, f.target), 0),
            ),
        )
        starts = {}
        for f in out_order:
            k = (f.source_id, f.source)
            starts[id(f)] = left_pos[k]
            left_pos[k] -= f.users
        in_order = sorted(
            flows,
            key=lambda f: (
                right_order.get((f.target_id, f.target), 0),
                left_order.get((f.source_id, f.source), 0),
            ),
        )
        for f in in_order:
            k = (f.target_id, f.target)
            top0, top1 = starts[id(f)], right_pos[k]
            right_pos[k] -= f.users
            pid = f.source_id if f.source_id is not None else f.target_id
            alpha = 0.55 if f.stay else 0.32
            ax.add_patch(
                PathPatch(
                    _band(x0, x1, top0, top0 - f.users, top1, top1 - f.users),
                    facecolor=colour(pid),
                    edgecolor="none",
                    alpha=alpha,
                    zorder=1,
                )
            )
        for bars_of, x, align, dx in (
            (left_bars, 0, "right", -0.012),
            (right_bars, x1, "left", BAR + 0.012),
        ):
            for (pid, name), (top, bottom) in bars_of.items():
                ax.add_patch(
                    Rectangle(
                        (x, bottom),
                        BAR,
                        top - bottom,
                        facecolor=colour(pid),
                        edgecolor="none",
                        zorder=2,
                    )
                )
                size = top - bottom
                ax.text(
                    x + dx,
                    (top + bottom) / 2,
                    f"{charts._short(name, LABEL)}  {size:,.0f}",
                    ha=align,
                    va="center",
                    fontsize=8.5,
                    color=charts.INK,
                    parse_math=False,
                )
        ax.text(
            BAR / 2,
            height * 1.01,
            left,
            ha="center",
            va="bottom",
            fontsize=9,
            fontweight="bold",
            color=charts.MUTED,
            parse_math=False,
        )
        ax.text(
            x1 + BAR / 2,
            height * 1.01,
            right,
            ha="center",
            va="bottom",
            fontsize=9,
            fontweight="bold",
            color=charts.MUTED,
            parse_math=False,
        )
        ax.set_xlim(-0.62, 1.62)
        ax.set_ylim(0, height * 1.07)
        ax.axis("off")
    return charts._to_svg(fig, key)


def flow_alt(migration: Migration, limit: int = 8) -> str:
    """Words for a flow chart's aria-label: its largest ribbons."""
    flows = sorted((f for f in migration.flows if f.users > 0), key=lambda f: -f.users)
    parts = [f"{f.source} to {f.target}: {f.users:,}" for f in flows[:limit]]
    more = len(flows) - len(parts)
    return (
        "Flow chart of users from the earlier run's personas (left) to this run's "
        "(right); largest flows: "
        + "; ".join(parts)
        + (f"; and {more} smaller flow{'s' * (more != 1)}." if more else ".")
    )


def share_lines(
    runs: Sequence[str],
    series: Sequence[tuple[int, str, Sequence[float | None]]],
    colours: Mapping[int, str],
    key: str = "shares-over-time",
) -> str:
    """Each persona's share of its run's users, one line per persona id across the runs (a gap
    where a run lacks the persona)."""
    n = len(runs)
    with matplotlib.rc_context(charts.RC):
        fig = charts._new_figure(8.6, 4.2)
        ax = fig.add_subplot()
        x = np.arange(n)
        for pid, name, shares in series:
            y = np.array([np.nan if s is None else 100 * s for s in shares], dtype=float)
            ax.plot(
                x,
                y,
                marker="o",
                markersize=4,
                linewidth=2,
                color=colours.get(pid, charts.UNASSIGNED_COLOUR),
                label=charts._short(name, LABEL),
            )
        ax.set_xticks(x)
        ax.set_xticklabels(
            [charts._short(r, 22) for r in runs],
            rotation=0 if n < 6 else 30,
            ha="center" if n < 6 else "right",
        )
        ax.set_ylabel("Share of the run's users (%)")
        ax.set_ylim(bottom=0)
        ax.grid(axis="y", color=charts.GRID, linewidth=0.8)
        ax.set_axisbelow(True)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
        for text in ax.get_legend().get_texts():
            text.set_parse_math(False)
        for label in ax.get_xticklabels():
            label.set_parse_math(False)
    return charts._to_svg(fig, key)


# -- what the report's migration section gets ------------------------------------------------------

FLOW_CAPTION = (
    "Each ribbon is a group of users: from their persona in the earlier run (left) "
    "to their persona in this run (right), as wide as the group. (new): users only "
    "in this run; (gone): users only in the earlier run. Darker ribbons stayed in "
    "their persona."
)


@dataclass(frozen=True)
class MigrationView:
    """The migration section: the data, its chart and its sentences, ready for the template."""

    migration: Migration
    chart: Any  # render.Chart of :func:`flow_chart`
    summary: str
    moves: tuple[str, ...]
    new: str
    gone: str


def migration_view(migration: Migration, chart: Any) -> MigrationView:
    m = migration
    return MigrationView(
        m,
        chart,
        summary_sentence(m),
        tuple(move_sentence(m, f) for f in m.largest_moves()),
        new_sentence(m),
        gone_sentence(m),
    )
