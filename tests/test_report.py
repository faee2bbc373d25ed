"""Tests of personas.report: the self-contained HTML report."""

from __future__ import annotations

import re
from pathlib import Path

import html5lib
import numpy as np
import pandas as pd
import pytest

from personas.report import render_report
from personas.report import render as report_render
from personas.report.render import days, lift, measure, minutes, money, num, pct, zscore
from personas.results import PersonaProfile, Play, RunSummary, Stat, Trait

EVIL_NAME = '<script>alert("x")</script> & "Co"'
EVIL_EVENT = 'add <b>"to"</b> cart'
EVIL_PARAM = "it's <i>roles</i>.yaml"
NS = {"h": "http://www.w3.org/1999/xhtml"}


# --- fixture data --------------------------------------------------------------------------------

def _stats(scale: float) -> tuple[Stat, ...]:
    return (
        Stat("orders", "Orders per user", 2.6 * scale, 1.1, 2.6 * scale / 1.1, "orders", "mean", 1.8),
        Stat("avg_order_value", "Average order value", 84.5 * scale, 61.2, 84.5 * scale / 61.2,
             "currency", "median", 0.9),
        Stat("sessions", "Sessions", 14.2 / scale, 9.0, 14.2 / scale / 9.0, "sessions", "mean", 0.4),
        Stat("cart_rate", "Views that lead to a cart", 0.08 * scale, 0.05, 1.6 * scale, "share",
             "mean", 0.6),
        Stat("days_since_purchase", "Days since last purchase", 21.0 / scale, 64.3,
             21.0 / scale / 64.3, "days", "median", -1.1),
        Stat("email_opens", "E-mail opens", 0.0, 0.0, None, "opens", "mean", 0.0),
    )


def _kpis(scale: float) -> tuple[Stat, ...]:
    return (
        Stat("conversion_rate", "Conversion rate", 0.31 * scale, 0.12, 0.31 * scale / 0.12, "share",
             "share of users"),
        Stat("revenue_per_user", "Revenue per user", 230.0 * scale, 75.0, 230.0 * scale / 75.0,
             "currency", "mean"),
        Stat("repeat_rate", "Repeat purchase rate", 0.44, 0.45, 0.44 / 0.45, "share",
             "share of users"),
    )


def _persona(pid: int, name: str, size: int, share: float, revenue_share: float,
             scale: float, family: str) -> PersonaProfile:
    return PersonaProfile(
        id=pid, name=name, family=family, size=size, share=share, revenue_share=revenue_share,
        traits=(
            Trait("orders", "Number of purchases", 1.8 * scale, f"buys {2.4 * scale:.1f}x as often as average"),
            Trait("days_since_purchase", "Days since the last purchase", -1.1,
                  "bought more recently than average"),
            Trait("avg_order_value", "Average order value", 0.9, "buys bigger baskets"),
            Trait("sessions", "Number of sessions", 0.4, "visits a little more"),
        ),
        stats=_stats(scale),
        kpis=_kpis(scale),
        description=f"{name} buys often & spends well; keep them close.",
        plays=(
            Play("Loyalty early access", "Invite them to new collections a week early.",
                 "Repeat purchase rate", "Early access vs standard launch e-mail, 50/50 split."),
            Play("Bundle offers", "Suggest bundles at checkout.", "Average order value",
                 "Bundle widget on vs off for 2 weeks."),
        ),
        event_mix=(("view", 0.52), ("cart", 0.18 * scale), ("purchase", 0.07 * scale),
                   ("search", 0.12), ("email_open", 0.05)),
        confidence=0.87,
        rule=f"{family}_rule",
    )


def make_summary() -> RunSummary:
    personas = (
        _persona(0, "Loyal Big Spender", 1234, 0.4114, 0.6237, 1.5, "rfm"),
        _persona(1, EVIL_NAME, 987, 0.3291, 0.2512, 1.0, "cart_abandoner"),
        _persona(2, "Window Shopper", 778, 0.2595, 0.1251, 0.5, "browser"),
    )
    return RunSummary(
        title="Shop events 2024",
        source="/data/events <2024>.parquet",
        window_start="2024-01-01",
        window_end="2024-12-31",
        users=2999,
        events=1234567,
        run_date="2025-01-02",
        personas=personas,
        features_used=(("orders", "Number of purchases"), ("sessions", "Number of sessions")),
        features_described=(("revenue", "Total revenue"),),
        features_skipped=(("discount_share", "no discount column"),),
        parameters=(("min_personas", "4"), ("max_personas", "8"), ("roles_path", EVIL_PARAM)),
        model_info={"clusters_found": 23, "action": "merged",
                    "silhouette": {"4": 0.41, "5": 0.47, "6": 0.44}, "personas": 3,
                    "noise_share": 0.083, "min_cluster_size": 30, "sample_size": 2999},
        quality=(("duplicate events", 120, "dropped"), ("missing user_id", 7, "dropped")),
        role_map=((EVIL_EVENT, "cart", 40210), ("page_view", "view", 800123)),
        versions=(("personas", "0.1.0"), ("numpy", np.__version__), ("pandas", pd.__version__)),
        agreement=0.84,
    )


def make_map_points(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0], [6.0, 2.0], [2.0, 7.0]])
    ids = rng.choice([0, 1, 2, -1], size=n, p=[0.4, 0.32, 0.25, 0.03])
    xy = centres[np.where(ids < 0, 0, ids)] + rng.normal(scale=1.2, size=(n, 2))
    xy[ids < 0] = rng.uniform(-3, 9, size=(int((ids < 0).sum()), 2))
    return pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "persona_id": ids})


def make_heatmap(summary: RunSummary) -> pd.DataFrame:
    labels = ["Number of purchases", "Average order value", "Number of sessions",
              "Views that lead to a cart", "Days since the last purchase", EVIL_EVENT]
    values = np.array([[1.8, 0.9, 0.4, 0.6, -1.1, 0.2],
                       [0.1, -0.2, 0.9, 1.7, 0.3, 2.3],
                       [-1.2, -0.6, 0.2, -0.9, 1.4, -3.6]])
    return pd.DataFrame(values, index=[p.name for p in summary.personas], columns=labels)


@pytest.fixture(scope="module")
def summary() -> RunSummary:
    return make_summary()


@pytest.fixture(scope="module")
def report(summary, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "index.html"
    path = render_report(summary, out, map_points=make_map_points(), heatmap=make_heatmap(summary))
    assert path == out
    return out


@pytest.fixture(scope="module")
def html(report) -> str:
    return report.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def tree(html):
    return html5lib.HTMLParser(strict=True, namespaceHTMLElements=True).parse(html)


def _text(el) -> str:
    return " ".join("".join(el.itertext()).split())


# --- the document --------------------------------------------------------------------------------

def test_parses_strictly(html):
    parser = html5lib.HTMLParser(strict=True)
    parser.parse(html)   # raises html5lib.html5parser.ParseError on any parse error
    assert parser.errors == []


def test_no_template_syntax_survives(html):
    assert "{{" not in html and "{%" not in html and "{#" not in html


def test_lang_title_and_headings_in_order(tree, summary):
    root = tree
    assert root.get("lang") == "en"
    assert _text(root.find(".//h:title", NS)).startswith(summary.title)
    levels = [int(el.tag[-1]) for el in root.iter() if re.fullmatch(r"\{[^}]+\}h[1-6]", str(el.tag))]
    assert levels[0] == 1 and levels.count(1) == 1
    assert all(b <= a + 1 for a, b in zip(levels, levels[1:])), levels


def test_evil_strings_only_escaped(html):
    assert "<script" not in html.lower()
    assert "<b>" not in html and "<i>roles" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &#34;Co&#34;" in html
    assert "add &lt;b&gt;&#34;to&#34;&lt;/b&gt; cart" in html
    assert "it&#39;s &lt;i&gt;roles&lt;/i&gt;.yaml" in html


def test_header_figures(tree, summary):
    head = tree.find(".//h:header[@class='report-head']", NS)
    assert _text(head.find(".//h:h1", NS)) == summary.title
    assert _text(head.find(".//h:dd[@class='users']", NS)) == "2,999"
    assert _text(head.find(".//h:dd[@class='events']", NS)) == "1,234,567"
    lead = _text(head.find(".//h:p[@class='lead']", NS))
    assert lead == ('3 personas: Loyal Big Spender (41 %), <script>alert("x")</script> & "Co" '
                    "(33 %), Window Shopper (26 %).")
    assert "2024-01-01 to 2024-12-31" in _text(head)


def test_one_card_per_persona(tree, summary):
    cards = tree.findall(".//h:section[@class='persona-card']", NS)
    assert len(cards) == len(summary.personas)
    for p in summary.personas:
        mine = [c for c in cards if c.get("data-persona-id") == str(p.id)]
        assert len(mine) == 1
        card = mine[0]
        h3s = card.findall(".//h:h3", NS)
        assert len(h3s) == 1 and _text(h3s[0]) == p.name
        assert _text(card.find(".//h:span[@class='persona-size']", NS)) == num(p.size)
        assert _text(card.find(".//h:span[@class='persona-share']", NS)) == pct(p.share)
        assert _text(card.find(".//h:span[@class='persona-revenue-share']", NS)) == pct(p.revenue_share)
        why = [_text(li) for li in card.findall(".//h:ul[@class='why']/h:li", NS)]
        assert why == [t.text for t in p.traits[:3]]
        rows = card.findall(".//h:table[@class='stats']/h:tbody/h:tr", NS)
        assert len(rows) == 6
        for row, stat in zip(rows, p.stats):
            cells = [_text(c) for c in row]
            assert cells[0] == f"{stat.label} {stat.statistic}"
            assert cells[1] == measure(stat.value, stat.unit)
            assert cells[2] == measure(stat.overall, stat.unit)
            arrow = {"up": "▲", "down": "▼", "same": "≈"}[report_render.direction(stat)]
            assert cells[3].startswith(f"{arrow} {lift(stat.lift)}")
        assert [_text(h) for h in card.findall(".//h:h5", NS)] == [pl.title for pl in p.plays]
        assert card.find(".//{http://www.w3.org/2000/svg}svg") is not None


def test_lift_arrows(tree, summary):
    card = tree.find(".//h:section[@data-persona-id='0']", NS)
    rows = card.findall(".//h:table[@class='stats']/h:tbody/h:tr", NS)
    orders = [_text(c) for c in rows[0]]
    assert orders[1:] == ["3.90", "1.10", "▲ 3.5× (higher than all users)"]
    recency = [_text(c) for c in rows[4]]
    assert recency[1:] == ["14 days", "64 days", "▼ 0.2× (lower than all users)"]
    opens = [_text(c) for c in rows[5]]
    assert opens[1:] == ["0", "0", "≈ – (about the same as all users)"]
    aov = [_text(c) for c in rows[1]]
    assert aov[1] == "126.75" and aov[2] == "61.20"


def test_methodology(tree, summary):
    section = tree.find(".//h:section[@class='methodology']", NS)
    text = _text(section)
    assert "23 small, tight groups" in text and "3, was kept" in text
    assert "8.3 % of the users" in text
    assert "Adjusted Rand index" in text and "0.84" in text
    for name, _ in summary.features_used + summary.features_described + summary.features_skipped:
        assert name in text
    assert "no discount column" in text
    assert EVIL_PARAM in text and EVIL_EVENT in text and "40,210" in text
    rows = {_text(r[0]): _text(r[1]) for r in section.iter(f"{{{NS['h']}}}tr") if len(r) == 2}
    assert rows["Noise share"] == "8.3 %"
    assert rows["Silhouette"] == "4: 0.41; 5: 0.47; 6: 0.44"
    assert rows["numpy"] == np.__version__


def test_files_section(tree):
    section = tree.find(".//h:section[@class='files']", NS)
    text = _text(section)
    for name in ("personas.json", "personas.csv", "assignments.parquet", "assignments.csv",
                 "features.parquet", "model/", "run.json", "notebooks/"):
        assert name in text
    assert "user_id, persona_id, persona, confidence" in text
    assert section.find(".//h:a", NS) is None


def test_self_contained(html, tree):
    assert not re.search(r"""\b(?:src|href)\s*=\s*["']?\s*(?:https?:|//)""", html, re.I)
    assert "<script" not in html.lower() and "<link" not in html.lower()
    assert "@import" not in html and "url(http" not in html and "@font-face" not in html
    assert tree.findall(".//h:a", NS) == [] and tree.findall(".//h:link", NS) == []
    for el in tree.iter():
        for attr in ("src", "href", "{http://www.w3.org/1999/xlink}href"):
            value = el.get(attr)
            if value is not None:
                assert value.startswith(("data:", "#")), value


def test_charts_have_alt_text(tree, summary):
    svgs = list(tree.iter("{http://www.w3.org/2000/svg}svg"))
    assert len(svgs) == 3 + len(summary.personas)   # shares, map, heatmap + one per card
    for svg in svgs:
        assert svg.get("role") == "img"
        assert svg.get("aria-label", "").strip()
        assert svg.get("viewBox")
    for img in tree.iter(f"{{{NS['h']}}}img"):
        assert img.get("alt", "").strip()
    figures = tree.findall(".//h:figure", NS)
    assert len(figures) == len(svgs)
    for fig in figures:
        assert _text(fig.find("h:figcaption", NS))
    labels = " ".join(svg.get("aria-label") for svg in svgs)
    assert EVIL_NAME in labels   # data in the label, escaped in the markup (see above)
    assert "41.1 % of users, 62.4 % of revenue" in labels


def test_chart_ids_unique(html):
    ids = re.findall(r'\bid="([^"]+)"', html)
    assert len(ids) == len(set(ids))
    for ref in set(re.findall(r"url\(#([^)]+)\)", html)):
        assert f'id="{ref}"' in html


def test_print_and_responsive_css(html):
    assert "@media print" in html and "break-before: page" in html
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html


def test_report_size_with_3000_map_points(report):
    assert report.stat().st_size < 1_000_000


def test_consistent_persona_colours(html, summary):
    from personas.report.charts import persona_colours
    colours = persona_colours([p.id for p in summary.personas])
    assert len(set(colours.values())) == len(summary.personas)
    for p in summary.personas:
        colour = colours[p.id]
        card = re.search(rf'data-persona-id="{p.id}"[^>]*style="--persona: ([^"]+)"', html)
        assert card and card.group(1) == colour
        assert colour.lower() in html.lower().split("<main", 1)[1].split('class="persona-card"', 1)[0]


# --- writing -------------------------------------------------------------------------------------

def test_render_is_atomic(summary, tmp_path):
    out = tmp_path / "run" / "index.html"
    render_report(summary, out)
    first = out.read_text(encoding="utf-8")
    assert [p.name for p in out.parent.iterdir()] == ["index.html"]
    assert render_report(summary, out.parent) == out   # a folder gets index.html inside
    assert [p.name for p in out.parent.iterdir()] == ["index.html"]
    assert out.read_text(encoding="utf-8") == first


def test_failed_render_leaves_old_file(summary, tmp_path, monkeypatch):
    out = tmp_path / "index.html"
    out.write_text("old", encoding="utf-8")

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(report_render.os, "replace", boom)
    with pytest.raises(OSError):
        render_report(summary, out)
    assert out.read_text(encoding="utf-8") == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["index.html"]


def test_without_optional_charts(summary, tmp_path):
    out = render_report(summary, tmp_path / "index.html")
    text = out.read_text(encoding="utf-8")
    html5lib.HTMLParser(strict=True).parse(text)
    assert text.count("<svg") == 1 + len(summary.personas)


def test_import_has_no_pyplot_side_effects():
    import subprocess
    import sys
    code = ("import sys; import personas.report; "
            "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'; "
            "assert 'seaborn' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])


# --- filters -------------------------------------------------------------------------------------

def test_pct():
    assert pct(0.153) == "15.3 %"
    assert pct(0.1, 0) == "10 %"
    assert pct(1) == "100.0 %"
    assert pct(0) == "0.0 %"
    assert pct(0.0004) == "< 0.1 %"
    assert pct(None) == "–"
    assert pct(float("nan")) == "–"


def test_num():
    assert num(1234567) == "1,234,567"
    assert num(np.int64(2999)) == "2,999"
    assert num(1234.56) == "1,235"
    assert num(123.4) == "123"
    assert num(12.345) == "12.3"
    assert num(3.14159) == "3.14"
    assert num(0.0042) == "0.0042"
    assert num(0.0) == "0"
    assert num(-2.5) == "-2.50"
    assert num(None) == "–"


def test_lift():
    assert lift(2.41) == "2.4×"
    assert lift(1.0) == "1.0×"
    assert lift(12.6) == "13×"
    assert lift(0.04) == "0.04×"
    assert lift(None) == "–"


def test_other_filters():
    assert money(1234.5) == "1,234"
    assert money(56.789) == "56.79"
    assert money(56.789, "€") == "€56.79"
    assert days(1) == "1 day"
    assert days(3.46) == "3.5 days"
    assert days(41.7) == "42 days"
    assert minutes(4.25) == "4.2 min"
    assert zscore(1.23) == "+1.2"
    assert zscore(-0.84) == "−0.8"
    assert zscore(-0.04) == "0.0"
    assert measure(0.25, "share") == "25.0 %"
    assert measure(61.2, "currency") == "61.20"
    assert measure(2.0, "orders") == "2.00"


def test_environment_is_strict_and_escaping():
    from jinja2 import StrictUndefined
    env = report_render.make_environment()
    assert env.autoescape is True and env.undefined is StrictUndefined
    assert env.from_string("{{ x }}").render(x="<b>") == "&lt;b&gt;"
    assert set(report_render.FILTERS) <= set(env.filters)


def test_minimal_summary_renders(tmp_path):
    bare = RunSummary(title="Empty <run>", source="x.csv", window_start=None, window_end=None,
                      users=0, events=0, run_date="2025-01-02", personas=(), features_used=(),
                      features_described=(), features_skipped=(), parameters=())
    text = render_report(bare, tmp_path / "index.html").read_text(encoding="utf-8")
    html5lib.HTMLParser(strict=True).parse(text)
    assert "0 personas." in text and "No personas were found." in text
    assert "all events in the data" in text and "<svg" not in text
    assert "no persona count control was recorded" in text


def test_many_personas_get_distinct_colours(tmp_path):
    from dataclasses import replace
    from personas.report.charts import UNASSIGNED_COLOUR, persona_colours
    colours = persona_colours(list(range(14)) + [-1])
    assert len(set(colours.values())) == 15 and colours[-1] == UNASSIGNED_COLOUR
    base = make_summary()
    personas = tuple(replace(base.personas[i % 3], id=i, name=f"Persona {i}", event_mix=())
                     for i in range(12))
    many = replace(base, personas=personas)
    points = make_map_points(500).assign(persona_id=lambda d: d.index % 13 - 1)
    out = render_report(many, tmp_path / "index.html", map_points=points)
    text = out.read_text(encoding="utf-8")
    html5lib.HTMLParser(strict=True).parse(text)
    assert text.count('class="persona-card"') == 12
    assert text.count("Strongest traits") == 12   # trait chart when there is no event mix
