"""What the notebooks show: figures that render as pictures, and the persona cards as HTML."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from IPython.core.formatters import DisplayFormatter
from matplotlib.colors import to_rgb

from personas import PersonaParams, plots
from personas.pipeline import PersonaResult

NAMES = {0: "Frequent Browser", 1: "Cart Abandoner", 2: "Lapsed"}
INFO = {
    "count_scores": {"4": 0.71, "5": 0.93, "6": 0.86},
    "personas": 5,
    "fits": 5,
    "count_rule": "the best separated count among those the fits reproduce",
}


@pytest.fixture(scope="module")
def assignments() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    ids = rng.choice([0, 1, 2], size=300, p=[0.2, 0.5, 0.3])
    return pd.DataFrame(
        {
            "user_id": np.arange(300).astype(str),
            "persona_id": ids,
            "confidence": rng.uniform(0.3, 1.0, size=300).round(4),
        }
    )


def _shown(value) -> dict:
    """What Jupyter would show for a cell's last value: mime type -> data (IPython's formatter,
    without the inline backend or pyplot: what a papermill or JupyterLab kernel has)."""
    data, _ = DisplayFormatter().format(value)
    return data


def _texts(fig) -> list[str]:
    return [
        t.get_text()
        for ax in fig.axes
        for t in (*ax.get_yticklabels(), *ax.get_xticklabels(), ax.title)
    ] + [fig._suptitle.get_text() if fig._suptitle else ""]


def test_every_figure_shows_as_a_png_without_pyplot_or_the_inline_backend(assignments):
    features = pd.DataFrame({"orders": [1, 2, 3, 8], "purchase_rate": [0.1, 0.2, 0.0, 0.5]})
    points = pd.DataFrame(
        {"x": np.arange(300.0), "y": np.arange(300.0) % 7, "persona_id": assignments["persona_id"]}
    )
    figures = [
        plots.feature_distributions(features),
        plots.count_scores(INFO),
        plots.persona_sizes(assignments, NAMES),
        plots.persona_confidence(assignments, NAMES),
        plots.persona_map(points, NAMES),
        plots.trait_heatmap(
            pd.DataFrame(
                [[1.2, -0.4], [0.1, 2.5]],
                index=["Lapsed", "Cart Abandoner"],
                columns=["Orders", "Carts"],
            )
        ),
    ]
    for fig in figures:
        assert isinstance(fig, plots.PlotFigure)
        assert _shown(fig)["image/png"].startswith(b"\x89PNG\r\n\x1a\n")


def test_charts_name_the_personas_largest_first_in_the_reports_colours(assignments):
    from personas.report.charts import PALETTE

    sizes = plots.persona_sizes(assignments, NAMES)
    bars = sizes.axes[0].patches
    labels = [t.get_text() for t in sizes.axes[0].get_yticklabels()]
    assert labels == ["Frequent Browser", "Lapsed", "Cart Abandoner"]  # largest on top
    assert [round(b.get_width()) for b in bars] == [
        (assignments["persona_id"] == p).sum() for p in (0, 2, 1)
    ]
    top = bars[-1]  # drawn last, shown on top: the largest persona
    assert np.allclose(top.get_facecolor()[:3], to_rgb(PALETTE[0]))
    unnamed = plots.persona_sizes(assignments)
    assert [t.get_text() for t in unnamed.axes[0].get_yticklabels()] == [
        "persona 0",
        "persona 2",
        "persona 1",
    ]
    confidence = plots.persona_confidence(assignments, NAMES)
    assert {"Cart Abandoner", "Lapsed", "Frequent Browser"} <= set(_texts(confidence))


def test_the_count_chart_says_why_this_many_personas():
    fig = plots.count_scores(INFO)
    ax = fig.axes[0]
    assert fig._suptitle.get_text() == "Why 5 personas"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["4", "5", "6"]
    assert [round(b.get_height(), 2) for b in ax.patches] == [0.71, 0.93, 0.86]
    dark = [b for b in ax.patches if b.get_facecolor()[:3] != ax.patches[0].get_facecolor()[:3]]
    assert [round(b.get_height(), 2) for b in dark] == [0.93]  # the kept count stands out
    assert "reproduce" in ax.get_title(loc="left") and ax.get_ylabel() == (
        "agreement between the fits"
    )
    assert len(ax.lines) == 1  # the reproduced line
    one_fit = plots.count_scores(
        {"count_scores": {"4": 0.35, "5": -0.02}, "personas": 4, "fits": 1}
    )
    assert one_fit.axes[0].get_ylabel() == "separation (mean silhouette)"
    assert not one_fit.axes[0].lines and one_fit.axes[0].get_ylim()[0] < 0


# --- the persona cards ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def profiles(report_fixtures):
    return report_fixtures.make_summary().personas


def _style(html: str) -> str:
    style = re.search(r"<style>(.*?)</style>", html, re.S).group(1)
    return re.sub(r"/\*.*?\*/", "", style, flags=re.S).strip()


def test_cards_are_the_reports_with_names_escaped_and_styles_kept_to_themselves(profiles):
    html = PersonaResult(
        params=PersonaParams(),
        run_dir=Path("/tmp/run"),
        profiles=profiles,
        assignments=pd.DataFrame(),
        info={},
    )._repr_html_()
    assert html.count('class="persona-card"') == len(profiles)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "{{" not in html and "{%" not in html
    style = _style(html)
    # one rule at the top, on the cards' own element: nested rules reach nothing else
    assert style.startswith(".personas-cards {") and style.endswith("}")
    depth, closed = 0, []
    for i, char in enumerate(style):
        depth += {"{": 1, "}": -1}.get(char, 0)
        if char == "}" and depth == 0:
            closed.append(i)
    assert closed == [len(style) - 1]
    assert "--persona:" in style and ".persona-card {" in style


def test_a_profile_shows_its_own_card(profiles):
    html = profiles[2]._repr_html_()
    assert html.count('class="persona-card"') == 1 and "Window Shopper" in html
    assert "The report:" not in html


def test_the_report_link_opens_from_the_notebook_in_jupyterlab(profiles, monkeypatch, tmp_path):
    report = tmp_path / "reports" / "sample" / "index.html"
    result = PersonaResult(
        params=PersonaParams(),
        run_dir=report.parent,
        profiles=profiles,
        assignments=pd.DataFrame(),
        info={},
    )
    monkeypatch.setenv("JPY_SESSION_NAME", str(tmp_path / "notebooks" / "03_report.ipynb"))
    assert 'href="../reports/sample/index.html"' in result._repr_html_()
    monkeypatch.delenv("JPY_SESSION_NAME")  # papermill, nbconvert: the file's URI
    assert f'href="{report.as_uri()}"' in result._repr_html_()
