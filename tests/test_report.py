"""Tests of personas.report: the self-contained HTML report."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import html5lib
import numpy as np
import pandas as pd
import pytest

from personas.formatting import figure_name
from personas.report import render as report_render
from personas.report import render_report
from personas.report.render import days, lift, measure, minutes, money, num, pct, zscore
from personas.results import ClaimCheck, PersonaProfile, Play, RunSummary, Stat, Trait

EVIL_NAME = '<script>alert("x")</script> & "Co"'
EVIL_EVENT = 'add <b>"to"</b> cart'
EVIL_PARAM = "it's <i>roles<i>.yaml"  # a file name: shown without its folder
NS = {"h": "http://www.w3.org/1999/xhtml"}


# --- fixture data --------------------------------------------------------------------------------


def _stats(scale: float) -> tuple[Stat, ...]:
    return (
        Stat(
            "orders", "Orders per user", 2.6 * scale, 1.1, 2.6 * scale / 1.1, "orders", "mean", 1.8
        ),
        Stat(
            "avg_order_value",
            "Average order value",
            84.5 * scale,
            61.2,
            84.5 * scale / 61.2,
            "currency",
            "median",
            0.9,
        ),
        Stat(
            "sessions", "Sessions", 14.2 / scale, 9.0, 14.2 / scale / 9.0, "sessions", "mean", 0.4
        ),
        Stat(
            "cart_rate",
            "Views that lead to a cart",
            0.08 * scale,
            0.05,
            1.6 * scale,
            "share",
            "mean",
            0.6,
        ),
        Stat(
            "days_since_purchase",
            "Days since last purchase",
            21.0 / scale,
            64.3,
            21.0 / scale / 64.3,
            "days",
            "median",
            -1.1,
        ),
        Stat("email_opens", "E-mail opens", 0.0, 0.0, None, "opens", "mean", 0.0),
    )


def _kpis(scale: float) -> tuple[Stat, ...]:
    return (
        Stat(
            "conversion_rate",
            "Conversion rate",
            0.31 * scale,
            0.12,
            0.31 * scale / 0.12,
            "share",
            "share of users",
        ),
        Stat(
            "revenue_per_user",
            "Revenue per user",
            230.0 * scale,
            75.0,
            230.0 * scale / 75.0,
            "currency",
            "mean",
        ),
        Stat(
            "repeat_rate",
            "Repeat purchase rate",
            0.44,
            0.45,
            0.44 / 0.45,
            "share",
            "share of users",
        ),
    )


def _persona(
    pid: int, name: str, size: int, share: float, revenue_share: float, scale: float, family: str
) -> PersonaProfile:
    return PersonaProfile(
        id=pid,
        name=name,
        family=family,
        size=size,
        share=share,
        revenue_share=revenue_share,
        traits=(
            Trait(
                "orders",
                "Number of purchases",
                1.8 * scale,
                f"buys {2.4 * scale:.1f}x as often as average",
            ),
            Trait(
                "days_since_purchase",
                "Days since the last purchase",
                -1.1,
                "bought more recently than average",
            ),
            Trait("avg_order_value", "Average order value", 0.9, "buys bigger baskets"),
            Trait("sessions", "Number of sessions", 0.4, "visits a little more"),
        ),
        stats=_stats(scale),
        kpis=_kpis(scale),
        description=f"{name} buys often & spends well; keep them close.",
        plays=(
            Play(
                "Loyalty early access",
                "Invite them to new collections a week early.",
                "Repeat purchase rate",
                "Early access vs standard launch e-mail, 50/50 split.",
            ),
            Play(
                "Bundle offers",
                "Suggest bundles at checkout.",
                "Average order value",
                "Bundle widget on vs off for 2 weeks.",
            ),
        ),
        event_mix=(
            ("view", 0.52),
            ("cart", 0.18 * scale),
            ("purchase", 0.07 * scale),
            ("search", 0.12),
            ("email_open", 0.05),
        ),
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
        parameters=(
            ("min_personas", "4"),
            ("max_personas", "8"),
            ("roles_path", "/home/ana/private/" + EVIL_PARAM),
        ),
        model_info={
            "clusters_found": 23,
            "action": "merged",
            "silhouette": {"4": 0.41, "5": 0.47, "6": 0.44},
            "personas": 3,
            "noise_share": 0.083,
            "min_cluster_size": 30,
            "sample_size": 2999,
        },
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
    labels = [
        "Number of purchases",
        "Average order value",
        "Number of sessions",
        "Views that lead to a cart",
        "Days since the last purchase",
        EVIL_EVENT,
    ]
    values = np.array(
        [
            [1.8, 0.9, 0.4, 0.6, -1.1, 0.2],
            [0.1, -0.2, 0.9, 1.7, 0.3, 2.3],
            [-1.2, -0.6, 0.2, -0.9, 1.4, -3.6],
        ]
    )
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
    parser.parse(html)  # raises html5lib.html5parser.ParseError on any parse error
    assert parser.errors == []


def test_no_template_syntax_survives(html):
    assert "{{" not in html and "{%" not in html and "{#" not in html


def test_lang_title_and_headings_in_order(tree, summary):
    root = tree
    assert root.get("lang") == "en"
    assert _text(root.find(".//h:title", NS)).startswith(summary.title)
    levels = [
        int(el.tag[-1]) for el in root.iter() if re.fullmatch(r"\{[^}]+\}h[1-6]", str(el.tag))
    ]
    assert levels[0] == 1 and levels.count(1) == 1
    assert all(b <= a + 1 for a, b in zip(levels, levels[1:])), levels


def test_evil_strings_only_escaped(html):
    assert "<script" not in html.lower()
    assert "<b>" not in html and "<i>roles" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &#34;Co&#34;" in html
    assert "add &lt;b&gt;&#34;to&#34;&lt;/b&gt; cart" in html
    assert "it&#39;s &lt;i&gt;roles&lt;i&gt;.yaml" in html


def test_header_figures(tree, summary):
    head = tree.find(".//h:header[@class='report-head']", NS)
    assert _text(head.find(".//h:h1", NS)) == summary.title
    assert _text(head.find(".//h:dd[@class='users']", NS)) == "2,999"
    assert _text(head.find(".//h:dd[@class='events']", NS)) == "1,234,567"
    lead = _text(head.find(".//h:p[@class='lead']", NS))
    # each share as everywhere else in the report (one figure, one way of writing it)
    assert lead == (
        '3 personas: Loyal Big Spender (41.1 %), <script>alert("x")</script> & "Co" '
        "(32.9 %), Window Shopper (25.9 %)."
    )
    assert _text(head.find(".//h:dd[@class='window']", NS)) == "1 Jan 2024 to 31 Dec 2024"
    assert _text(head.find(".//h:dd[@class='path source']", NS)) == "events <2024>.parquet"


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
        share = card.find(".//h:span[@class='persona-revenue-share']", NS)
        assert _text(share) == pct(p.revenue_share)
        why = [_text(li) for li in card.findall(".//h:ul[@class='why']/h:li", NS)]
        assert why == [t.text for t in p.traits[:3]]
        rows = card.findall(".//h:table[@class='stats']/h:tbody/h:tr", NS)
        assert len(rows) == 6
        for row, stat in zip(rows, p.stats):
            cells = [_text(c) for c in row]
            assert cells[0] == figure_name(stat.label, stat.statistic)
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
    assert "23 small, dense groups" in text and "3, was kept" in text
    assert "nearest persona centre" in text
    assert "8.3 % of the users" in text
    assert "Adjusted Rand index" in text and "0.84" in text
    for name, _ in summary.features_used + summary.features_described + summary.features_skipped:
        assert name in text
    assert "no discount column" in text
    assert EVIL_PARAM in text and EVIL_EVENT in text and "40,210" in text
    assert "/home/ana" not in text  # the full path is in run.json only
    rows = {_text(r[0]): _text(r[1]) for r in section.iter(f"{{{NS['h']}}}tr") if len(r) == 2}
    assert rows["Noise share"] == "8.3 %"
    assert "Silhouette" not in rows  # a mapping: its own table, not one cell
    assert (rows["4"], rows["5"], rows["6"]) == ("0.41", "0.47", "0.44")
    assert rows["numpy"] == np.__version__


def test_files_section(tree):
    section = tree.find(".//h:section[@class='files']", NS)
    text = _text(section)
    for name in (
        "personas.json",
        "personas.csv",
        "assignments.parquet",
        "assignments.csv",
        "features.parquet",
        "features.json",
        "model/",
        "run.json",
        "notebooks/",
    ):
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
    assert len(svgs) == 3 + len(summary.personas)  # shares, map, heatmap + one per card
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
    assert EVIL_NAME in labels  # data in the label, escaped in the markup (see above)
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
        before_cards = html.lower().split("<main", 1)[1].split('class="persona-card"', 1)[0]
        assert colour.lower() in before_cards


# --- writing -------------------------------------------------------------------------------------


def test_render_is_atomic(summary, tmp_path):
    out = tmp_path / "run" / "index.html"
    render_report(summary, out)
    first = out.read_text(encoding="utf-8")
    assert [p.name for p in out.parent.iterdir()] == ["index.html"]
    assert render_report(summary, out.parent) == out  # a folder gets index.html inside
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

    code = (
        "import sys; import personas.report; "
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'; "
        "assert 'seaborn' not in sys.modules"
    )
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
    # two amounts side by side are shown alike: both without cents when either has four digits
    assert (money(417.2, like=2760.0), money(2760.0, like=417.2)) == ("417", "2,760")
    assert money(417.2, like=99.0) == "417.20"
    assert days(1) == "1 day"
    assert days(3.46) == "3.5 days"
    assert days(41.7) == "42 days"
    assert minutes(4.25) == "4.2 min"
    assert zscore(1.23) == "+1.2"
    assert zscore(-0.84) == "−0.8"
    assert zscore(-0.04) == "0.0"
    assert measure(0.25, "share") == "25.0 %"
    assert measure(61.2, "currency") == "61.20"
    assert measure(2.0, "orders") == "2"  # a whole count has no decimals
    assert measure(2.5, "orders") == "2.50"


def test_environment_is_strict_and_escaping():
    from jinja2 import StrictUndefined

    env = report_render.make_environment()
    assert env.autoescape is True and env.undefined is StrictUndefined
    assert env.from_string("{{ x }}").render(x="<b>") == "&lt;b&gt;"
    assert set(report_render.FILTERS) <= set(env.filters)


def test_minimal_summary_renders(tmp_path):
    bare = RunSummary(
        title="Empty <run>",
        source="x.csv",
        window_start=None,
        window_end=None,
        users=0,
        events=0,
        run_date="2025-01-02",
        personas=(),
        features_used=(),
        features_described=(),
        features_skipped=(),
        parameters=(),
    )
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
    personas = tuple(
        replace(base.personas[i % 3], id=i, name=f"Persona {i}", event_mix=()) for i in range(12)
    )
    many = replace(base, personas=personas)
    points = make_map_points(500).assign(persona_id=lambda d: d.index % 13 - 1)
    out = render_report(many, tmp_path / "index.html", map_points=points)
    text = out.read_text(encoding="utf-8")
    html5lib.HTMLParser(strict=True).parse(text)
    assert text.count('class="persona-card"') == 12
    assert text.count("Strongest traits") == 12  # trait chart when there is no event mix


def test_a_claim_reads_with_its_numbers_and_bounds():
    often = ClaimCheck(
        "purchase_frequency",
        "Orders per user",
        "orders",
        "mean",
        3.3,
        1.4,
        3.3 / 1.4,
        (("at_least", 2.0), ("lift_at_least", 1.5)),
        True,
    )
    assert report_render.claim(often) == (
        "Orders per user (mean): 3.30 vs 1.40 for all users "
        "(2.4×); needs at least 2 and at least 1.5× that "
        "of all users"
    )
    app = ClaimCheck(
        "app_share",
        "Share of activity in the app",
        "share",
        "mean",
        0.8,
        0.5,
        1.6,
        (("lift_at_least", 1.25),),
        True,
        word="App",
    )
    assert report_render.claim(app) == (
        "App: share of activity in the app (mean): 80.0 % vs "
        "50.0 % for all users (1.6×); needs at least 1.25× "
        "that of all users"
    )
    recent = ClaimCheck(
        "days_since_first_seen",
        "Days since first seen",
        "days",
        "",
        12.0,
        250.0,
        0.048,
        (("at_most", 60.0),),
        True,
    )
    assert report_render.claim(recent) == (
        "Days since first seen: 12 days vs 250 days for all users (0.05×); needs at most 60 days"
    )


def test_cards_show_the_claims_and_an_unknown_revenue(tmp_path):
    """A persona named by claims lists them under "Why this name"; without amounts its revenue
    share reads "unknown" on the card, in the overview and in the chart's description."""
    from dataclasses import replace

    base = make_summary()
    claims = (
        ClaimCheck(
            "purchase_frequency",
            "Orders per user",
            "orders",
            "mean",
            3.3,
            1.4,
            3.3 / 1.4,
            (("at_least", 2.0), ("lift_at_least", 1.5)),
            True,
        ),
        ClaimCheck(
            "kpi:days_since_seen",
            "Days since last activity",
            "days",
            "median",
            5.0,
            30.0,
            5 / 30,
            (("at_most", 30.0),),
            True,
        ),
    )
    personas = tuple(
        replace(
            p,
            revenue_share=None,
            claims=claims if p.id == 0 else (),
            rule="" if p.id == 2 else p.rule,
        )
        for p in base.personas
    )
    out = render_report(replace(base, personas=personas), tmp_path / "index.html")
    tree = html5lib.HTMLParser(strict=True, namespaceHTMLElements=True).parse(
        out.read_text(encoding="utf-8")
    )
    cards = {
        c.get("data-persona-id"): c for c in tree.findall(".//h:section[@class='persona-card']", NS)
    }
    why = [_text(li) for li in cards["0"].findall(".//h:ul[@class='why']/h:li", NS)]
    assert why == [report_render.claim(c) for c in claims]
    assert why[1] == (
        "Days since last activity (median): 5 days vs 30 days for all users "
        "(0.2×); needs at most 30 days"
    )
    others = [_text(li) for li in cards["1"].findall(".//h:ul[@class='why']/h:li", NS)]
    assert others == [t.text for t in personas[1].traits[:3]]  # no claims: the traits
    for card in cards.values():
        assert _text(card.find(".//h:span[@class='persona-revenue-share']", NS)) == "unknown"
    assert _text(cards["2"].find(".//h:p[@class='card-foot']", NS)) == (
        "Named after the figures that set it apart: no ready-made name fits it. Persona number "
        "2 in assignments.csv."
    )
    rows = tree.findall(".//h:table[@class='overview-table']/h:tbody/h:tr", NS)
    assert [_text(r.findall("h:td", NS)[2]) for r in rows] == ["unknown"] * 3
    label = tree.find(".//h:section[@class='overview']//{http://www.w3.org/2000/svg}svg", NS)
    assert "41.1 % of users, revenue unknown" in label.get("aria-label")


# --- comparison with an earlier run (parameter compare_to) ---------------------------------------


def _record(pid: int, name: str, share: float, lifts: dict[str, float | None]) -> dict:
    """A persona as personas.json holds it, with only what the comparison reads."""
    stats = {
        key: {
            "label": key,
            "value": 1.0,
            "overall": 1.0,
            "lift": lift,
            "unit": "orders",
            "statistic": "mean",
        }
        for key, lift in lifts.items()
    }
    return {"id": pid, "name": name, "size": round(share * 1000), "share": share, "stats": stats}


# Lifts are powers of two, so log2 distances are small integers: by hand,
# Basket Leaver vs Cart Abandoner: log2 differences (1, 0, -1) -> RMS sqrt(2/3) = 0.8165 <= 1.0;
# Night Owl vs every earlier persona: at least 3 -> no match; Lapsed keeps its name.
PREVIOUS = [
    _record(0, "Frequent Browser", 0.30, {"a": 1, "b": 1, "c": 1}),
    _record(1, "Cart Abandoner", 0.25, {"a": 4, "b": 0.5, "c": 1}),
    _record(2, "Email-Engaged", 0.15, {"a": 1, "b": 8, "c": 1}),
    _record(3, "Lapsed", 0.30, {"a": 0.25, "b": 0.25, "c": 0.25}),
]
CURRENT = [
    _record(5, "Frequent Browser", 0.25, {"a": 1, "b": 1, "c": 1}),
    _record(6, "Basket Leaver", 0.20, {"a": 2, "b": 0.5, "c": 2}),
    _record(7, EVIL_NAME, 0.20, {"a": 64, "b": 64, "c": 64}),
    _record(8, "Lapsed", 0.35, {"a": 0.25, "b": 0.25, "c": 0.5}),
]


def _write_run(folder: Path, records: list[dict], users: int | None = None) -> Path:
    import json

    folder.mkdir(parents=True)
    (folder / "personas.json").write_text(json.dumps(records), encoding="utf-8")
    if users is not None:
        (folder / "run.json").write_text(
            json.dumps(
                {
                    "counts": {"users": users},
                    "input": {"window": {"start": "2023-01-01", "end": "2023-12-31"}},
                }
            ),
            encoding="utf-8",
        )
    return folder


def make_comparison(folder: Path):
    from personas.report.compare import compare_runs, read_previous_run

    return compare_runs(CURRENT, read_previous_run(_write_run(folder, PREVIOUS, users=4000)))


def test_comparison_matches_by_name_then_by_profile(tmp_path):
    c = make_comparison(tmp_path / "earlier")
    rows = [
        (
            ch.now.name,
            ch.then.name if ch.then else None,
            ch.matched_by,
            ch.change_points,
            ch.distance,
        )
        for ch in c.changes
    ]
    assert rows == [
        ("Frequent Browser", "Frequent Browser", "name", -5.0, 0.0),
        ("Basket Leaver", "Cart Abandoner", "profile", -5.0, 0.8165),
        (EVIL_NAME, None, "", None, None),
        ("Lapsed", "Lapsed", "name", 5.0, 0.5774),  # sqrt(1/3): one lift doubled
    ]
    assert [p.name for p in c.appeared] == [EVIL_NAME]
    assert [(p.name, p.share) for p in c.disappeared] == [("Email-Engaged", 0.15)]
    assert (c.previous_users, c.previous_window) == (4000, ("2023-01-01", "2023-12-31"))
    assert (c.count("name"), c.count("profile")) == (2, 1)


def test_comparison_for_run_json(tmp_path):
    import json

    data = json.loads(json.dumps(make_comparison(tmp_path / "earlier").to_dict()))
    assert data["previous_run"] == str(tmp_path / "earlier")
    assert data["previous_users"] == 4000
    assert data["personas"][1] == {
        "id": 6,
        "name": "Basket Leaver",
        "size": 200,
        "share": 0.2,
        "previous_id": 1,
        "previous_name": "Cart Abandoner",
        "previous_size": 250,
        "previous_share": 0.25,
        "change_points": -5.0,
        "matched_by": "profile",
        "distance": 0.8165,
    }
    new = data["personas"][2]
    assert new["previous_name"] is None and new["matched_by"] is None
    assert new["change_points"] is None
    assert [p["name"] for p in data["appeared"]] == [EVIL_NAME]
    assert data["disappeared"] == [{"id": 2, "name": "Email-Engaged", "size": 150, "share": 0.15}]


def test_profile_matching_takes_the_closest_pair_first_and_needs_shared_stats():
    from personas.report.compare import PreviousRun, compare_runs

    earlier = PreviousRun(
        "earlier",
        (
            _record(0, "Old", 0.5, {"a": 4, "b": 4, "c": 4}),
            _record(1, "Sparse", 0.5, {"a": 1, "b": 1}),
        ),
    )
    now = [
        _record(0, "Near", 0.3, {"a": 2, "b": 2, "c": 2}),  # distance 1.0: at the limit
        _record(1, "Nearer", 0.3, {"a": 4, "b": 4, "c": 2}),  # distance sqrt(1/3)
        _record(2, "Same as Sparse", 0.4, {"a": 1, "b": 1}),
    ]  # only 2 shared stats
    c = compare_runs(now, earlier)
    assert [(ch.now.name, ch.then.name if ch.then else None) for ch in c.changes] == [
        ("Near", None),
        ("Nearer", "Old"),
        ("Same as Sparse", None),
    ]
    assert [p.name for p in c.disappeared] == ["Sparse"]


def test_lift_profile_clips_and_skips_missing_lifts():
    from personas.report.compare import lift_profile

    record = _record(0, "x", 1.0, {"a": 0.0, "b": 1000.0, "c": None, "d": 2.0})
    assert lift_profile(record) == {"a": -4.0, "b": 4.0, "d": 1.0}


@pytest.mark.parametrize(
    "make, why",
    [
        (lambda d: d / "missing", "no such folder"),
        (lambda d: d, "the folder has no personas.json"),
    ],
)
def test_bad_compare_to_is_a_parameter_error(tmp_path, make, why):
    from personas import PersonaParams
    from personas.errors import ParameterError
    from personas.report.compare import read_previous_run

    folder = make(tmp_path)
    for attempt in (
        lambda: PersonaParams(compare_to=str(folder)).validate(),
        lambda: read_previous_run(folder),
    ):
        with pytest.raises(
            ParameterError,
            match=f"compare_to=.*{why}.*set compare_to to the folder of an earlier run",
        ) as caught:
            attempt()
        assert caught.value.name == "compare_to"


@pytest.mark.parametrize("content", ["{not json", '{"name": "x"}', '[{"name": "x"}]'])
def test_unreadable_personas_json_is_a_parameter_error(tmp_path, content):
    from personas.errors import ParameterError
    from personas.report.compare import read_previous_run

    (tmp_path / "personas.json").write_text(content, encoding="utf-8")
    with pytest.raises(ParameterError, match="compare_to=.*personas.json"):
        read_previous_run(tmp_path)


def test_bad_compare_to_fails_before_anything_is_written(tmp_path):
    from personas import PersonaParams, pipeline
    from personas.errors import ParameterError

    params = PersonaParams(
        sample_users=200, output_dir=str(tmp_path / "run"), compare_to=str(tmp_path / "no-such-run")
    )
    with pytest.raises(ParameterError, match="compare_to"):
        pipeline.run(params)
    assert list(tmp_path.iterdir()) == []


def make_summary_comparison(summary: RunSummary, folder: Path):
    """make_summary()'s personas against an earlier run: one kept, two new, one gone."""
    from personas.report.compare import compare_runs, read_previous_run

    current = [_record(p.id, p.name, p.share, {}) for p in summary.personas]
    previous = [
        _record(0, "Loyal Big Spender", 0.3, {}),
        _record(1, "Gone <b>persona</b>", 0.2, {}),
    ]
    return compare_runs(
        current, read_previous_run(_write_run(folder / "old <run>", previous, users=2500))
    )


@pytest.fixture(scope="module")
def compared_html(summary, tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("compare")
    out = render_report(
        summary,
        folder / "index.html",
        map_points=make_map_points(),
        heatmap=make_heatmap(summary),
        comparison=make_summary_comparison(summary, folder),
    )
    return out.read_text(encoding="utf-8")


def test_comparison_section_in_the_report(compared_html, summary):
    parser = html5lib.HTMLParser(strict=True, namespaceHTMLElements=True)
    tree = parser.parse(compared_html)
    assert parser.errors == []
    section = tree.find(".//h:section[@class='comparison']", NS)
    assert _text(section.find("h:h2", NS)) == "Compared with the previous run"
    assert "2,500 users, data from 1 Jan 2023 to 31 Dec 2023" in _text(section)
    assert (
        "Of 3 personas now, 1 kept its name, 0 match an earlier persona by profile and 2 are "
        "new; 1 earlier persona has no counterpart now."
    ) in _text(section)
    rows = [[_text(cell) for cell in row] for row in section.findall(".//h:table/h:tbody/h:tr", NS)]
    assert rows == [
        ["Loyal Big Spender", "Loyal Big Spender same name", "30.0 %", "41.1 %", "+11.1 pts"],
        [EVIL_NAME, "new persona", "–", "32.9 %", "new"],
        ["Window Shopper", "new persona", "–", "25.9 %", "new"],
        ["none", "Gone <b>persona</b> disappeared", "20.0 %", "–", "gone"],
    ]
    assert "Gone &lt;b&gt;persona&lt;/b&gt;" in compared_html and "<b>persona" not in compared_html
    assert "old &lt;run&gt;" in compared_html
    # between the overview and the persona cards, headings still in order
    order = [el.get("class") for el in tree.iter(f"{{{NS['h']}}}section")]
    assert order.index("overview") < order.index("comparison") < order.index("personas")


def test_no_comparison_section_without_compare_to(html):
    assert 'class="comparison"' not in html and "Compared with the previous run" not in html


def test_points_filter():
    from personas.report.render import points

    assert points(1.84) == "+1.8 pts"
    assert points(-0.4) == "−0.4 pts"
    assert points(0.01) == "0.0 pts"
    assert points(None) == "–"


# --- exports explained, and a report that does not grow with users --------------------------------


def _export_columns(tree, file: str) -> list[str]:
    table = tree.find(f".//h:table[@data-file='{file}']", NS)
    names = []
    for row in table.findall("h:tbody/h:tr", NS):
        names += [_text(code) for code in row.find("h:th", NS).findall("h:code", NS)]
    return names


def test_above_a_million_users_the_report_names_the_parquet_file(summary, tmp_path):
    # a run of more users than CSV_MAX_USERS writes assignments.parquet alone
    big = dataclasses.replace(summary, users=2_000_000, assignments_file="assignments.parquet")
    out = render_report(big, tmp_path / "index.html", map_points=make_map_points())
    html = out.read_text(encoding="utf-8")
    tree = html5lib.HTMLParser(strict=True, namespaceHTMLElements=True).parse(html)
    assert _export_columns(tree, "assignments.parquet") == [
        "user_id",
        "persona_id",
        "persona",
        "confidence",
    ]
    assert "assignments.csv" not in html.replace("no <code>assignments.csv</code> is written", "")
    assert "no <code>assignments.csv</code> is written (one is, up to 1,000,000 users)" in html
    foot = tree.find(".//h:p[@class='card-foot']", NS)
    assert _text(foot).endswith("in assignments.parquet.")
    assert "The CSV file is UTF-8" in html and "Both CSV files" not in html


def test_exports_are_explained_column_by_column(tree, summary):
    assert _export_columns(tree, "assignments.csv") == [
        "user_id",
        "persona_id",
        "persona",
        "confidence",
    ]
    keys = list(dict.fromkeys(s.key for p in summary.personas for s in (*p.stats, *p.kpis)))
    assert _export_columns(tree, "personas.csv") == [
        "id",
        "name",
        "size",
        "share",
        "revenue_share",
        "confidence",
        "reproducibility",
        "clear_share",
        "description",
        "currency",
        "traits",
        *[c for k in keys for c in (k, f"{k}_overall", f"{k}_lift")],
    ]
    section = tree.find(".//h:section[@class='export']", NS)
    text = _text(section)
    assert "(2,999 rows)" in text
    assert "matching user_id to the tool's customer or external id" in text
    assert len(section.findall(".//h:ol[@class='import-steps']/h:li", NS)) == 3


def test_export_guide_follows_the_real_header(summary):
    from personas.report.render import export_columns

    header = [
        "id",
        "name",
        "orders",
        "orders_overall",
        "orders_lift",
        "orders_basis",
        "orders_median",
        "orders_mean",
        "orders_overall_median",
        "orders_overall_mean",
        "conversion_rate",
        "conversion_rate_overall",
        "conversion_rate_lift",
        "segment_code",
    ]
    rows = export_columns(summary, header)
    assert [r.columns for r in rows] == [
        ("id",),
        ("name",),
        tuple(header[2:10]),
        tuple(header[10:13]),
        ("segment_code",),
    ]
    assert rows[2].meaning == (
        "Orders per user (mean): a key stat, empty for a persona whose card does not show it."
    )
    assert [c for c, _ in rows[2].parts] == list(rows[2].columns)
    assert dict(rows[2].parts) == {
        "orders": "the persona's figure (mean)",
        "orders_overall": "the same figure over all users",
        "orders_lift": "the persona's figure divided by all users' (1.5 = 50\u00a0% higher); "
        "empty when all users' figure is 0",
        "orders_basis": "\u201cmedian\u201d or \u201cmean\u201d: which centre the figure, all "
        "users' figure and the lift use",
        "orders_median": "the persona's median",
        "orders_mean": "the persona's mean",
        "orders_overall_median": "the median over all users",
        "orders_overall_mean": "the mean over all users",
    }
    assert rows[3].meaning == "Conversion rate (share of users): a KPI, filled for every persona."
    assert rows[3].parts[0] == ("conversion_rate", "the persona's figure (share of users)")
    assert rows[4].meaning == "See the same field in personas.json." and rows[4].parts == ()


def _with_centres(stat: Stat, basis: str, median: float, mean: float) -> Stat:
    """``stat`` as the pipeline makes it: headline on ``basis``, both centres kept."""
    value = median if basis == "median" else mean
    return dataclasses.replace(
        stat,
        statistic=basis,
        basis=basis,
        value=value,
        median=median,
        mean=mean,
        overall_median=1.0,
        overall_mean=2.0,
        overall=1.0 if basis == "median" else 2.0,
    )


def _shared_key_summary() -> RunSummary:
    """Two personas whose cards show avg_order_value and days_since_seen as key stats, while
    both keys are also KPIs (as in a real run): the KPI is what personas.csv writes."""
    aov = Stat("avg_order_value", "Average revenue per purchase", 0, 0, None, "currency", "")
    seen = Stat(
        "days_since_seen",
        "Days from the last activity to the reference date",
        0,
        0,
        None,
        "days",
        "",
    )
    orders = Stat("orders", "Number of purchases", 0, 0, None, "orders", "")
    kpi_aov = Stat(
        "avg_order_value",
        "Average order value",
        80.0,
        60.0,
        4 / 3,
        "currency",
        "total revenue / orders",
    )
    kpi_seen = Stat("days_since_seen", "Days since last activity", 0, 0, None, "days", "")
    personas = []
    for pid, mean_seen in ((0, 12.5), (1, 40.0)):
        stats = (
            _with_centres(orders, "median", 3.0, 4.0),
            _with_centres(aov, "median", 55.0, 70.0),
            _with_centres(seen, "mean", 9.0, mean_seen),
        )
        kpis = (kpi_aov, _with_centres(kpi_seen, "median", 9.0, mean_seen))
        personas.append(dataclasses.replace(make_summary().personas[pid], stats=stats, kpis=kpis))
    return dataclasses.replace(
        make_summary(),
        personas=tuple(personas),
        features_described=(
            ("avg_order_value", "Average revenue per purchase (empty for non-buyers)"),
            ("days_since_seen", "Days from the last activity to the reference date"),
        ),
    )


def test_a_kpi_sharing_a_feature_key_says_which_figure_its_columns_hold():
    from personas.report.render import export_columns

    rows = {r.columns[0]: r for r in export_columns(_shared_key_summary())}
    # without a header: the columns the pipeline writes, centres where the figure has a basis
    assert rows["orders"].columns == (
        "orders",
        "orders_overall",
        "orders_lift",
        "orders_basis",
        "orders_median",
        "orders_mean",
        "orders_overall_median",
        "orders_overall_mean",
    )
    assert rows["avg_order_value"].columns == (
        "avg_order_value",
        "avg_order_value_overall",
        "avg_order_value_lift",
    )
    assert len(rows["days_since_seen"].columns) == 8
    assert rows["avg_order_value"].meaning == (
        "Average order value (total revenue / orders): a KPI, filled for every persona. Not the "
        "behaviour feature of the same name (\u201cAverage revenue per purchase (median)\u201d), "
        "which "
        "some cards show as a key stat, as its median: that figure is not in this file but in "
        "personas.json, under key_stats."
    )
    assert rows["days_since_seen"].meaning == (
        "Days since last activity (median): a KPI, filled for every persona. Not the behaviour "
        "feature of the same name (\u201cDays from the last activity to the reference "
        "date (mean)\u201d), which some cards show as a key stat, as its mean: that figure is the "
        "column days_since_seen_mean."
    )
    assert dict(rows["days_since_seen"].parts)["days_since_seen"] == "the persona's median"
    assert rows["orders"].meaning == (
        "Number of purchases (median): a key stat, empty for a persona whose card does not show it."
    )


def test_a_shared_key_with_no_card_showing_it_still_names_the_feature():
    from personas.report.render import export_columns

    summary = _shared_key_summary()
    summary = dataclasses.replace(
        summary, personas=tuple(dataclasses.replace(p, stats=p.stats[:1]) for p in summary.personas)
    )
    rows = {r.columns[0]: r for r in export_columns(summary)}
    assert rows["avg_order_value"].meaning.endswith(
        "Not the behaviour feature of the same name (\u201cAverage revenue per purchase\u201d)."
    )


def test_export_guide_renders_every_column_and_parses_strictly():
    html = report_render.render_html(
        _shared_key_summary(),
        export_header=[
            "id",
            "name",
            "avg_order_value",
            "avg_order_value_overall",
            "avg_order_value_lift",
            "days_since_seen",
            "days_since_seen_basis",
            "days_since_seen_mean",
        ],
    )
    parser = html5lib.HTMLParser(strict=True, namespaceHTMLElements=True)
    tree = parser.parse(html)
    assert parser.errors == []
    assert _export_columns(tree, "personas.csv") == [
        "id",
        "name",
        "avg_order_value",
        "avg_order_value_overall",
        "avg_order_value_lift",
        "days_since_seen",
        "days_since_seen_basis",
        "days_since_seen_mean",
    ]
    table = tree.find(".//h:table[@data-file='personas.csv']", NS)
    cells = {
        _text(r.find("h:th", NS)): r.find("h:td", NS) for r in table.findall("h:tbody/h:tr", NS)
    }
    seen = cells["days_since_seen, days_since_seen_basis, days_since_seen_mean"]
    assert [_text(c) for c in seen.findall("h:code", NS)] == [
        "days_since_seen",
        "days_since_seen_basis",
        "days_since_seen_mean",
    ]
    assert "days_since_seen_mean: the persona's mean" in _text(seen)


def test_a_key_that_starts_with_another_key_keeps_its_columns():
    from personas.report.render import _figure_of

    keys = ["revenue", "revenue_per_user"]
    assert _figure_of("revenue_per_user_lift", keys) == ("revenue_per_user", "lift")
    assert _figure_of("revenue_overall", keys) == ("revenue", "overall")
    assert _figure_of("revenue", keys) == ("revenue", "")
    assert _figure_of("traits", keys) is None


def test_map_points_are_sampled_down(summary):
    from personas.report.render import MAP_POINTS, sample_points

    many = make_map_points(50_000, seed=1)
    drawn = sample_points(many)
    assert len(drawn) == MAP_POINTS and drawn.index.is_monotonic_increasing
    assert drawn.equals(sample_points(many))  # same input, same points
    assert sample_points(many.head(10)) is not None and len(sample_points(many.head(10))) == 10
    text = report_render.render_html(summary, map_points=many)
    assert f"Persona map: {num(MAP_POINTS)} sampled users" in text
    assert len(text.encode()) < 1_000_000


@pytest.mark.slow
def test_compare_to_in_a_whole_run(tmp_path):
    """A renamed persona is found again by its profile; everything else by name, shares equal.

    The second run replaces the first in the same folder: the earlier personas are read before
    the new run is published over them."""
    import json

    from personas import PersonaParams, pipeline

    small = dict(sample_users=400, sample_size=400)
    first = pipeline.run(PersonaParams(**small, output_dir=str(tmp_path / "a")))
    old = first.profiles[0].name
    renames = tmp_path / "renames.yaml"
    renames.write_text(f"'{old}': Our Researchers\n", encoding="utf-8")
    second = pipeline.run(
        PersonaParams(
            **small,
            output_dir=str(first.run_dir),
            renames_path=str(renames),
            compare_to=str(first.run_dir),
        )
    )
    assert second.run_dir == first.run_dir
    comparison = json.loads((second.run_dir / "run.json").read_text())["comparison"]
    assert comparison["previous_run"] == str(first.run_dir)
    assert comparison["previous_users"] == 400
    assert [
        (p["name"], p["previous_name"], p["matched_by"], p["change_points"])
        for p in comparison["personas"]
    ] == (
        [("Our Researchers", old, "profile", 0.0)]
        + [(p.name, p.name, "name", 0.0) for p in first.profiles[1:]]
    )
    assert comparison["personas"][0]["distance"] == 0.0
    assert comparison["appeared"] == [] and comparison["disappeared"] == []
    html = (second.run_dir / "index.html").read_text(encoding="utf-8")
    tree = html5lib.HTMLParser(strict=True, namespaceHTMLElements=True).parse(html)
    rows = tree.findall(".//h:section[@class='comparison']//h:tbody/h:tr", NS)
    assert [_text(r[0]) for r in rows] == [p.name for p in second.profiles]
    assert _text(rows[0][1]) == f"{old} similar profile"
    # the export guide lists exactly the columns the CSV files have
    with open(second.run_dir / "personas.csv", encoding="utf-8") as fh:
        assert _export_columns(tree, "personas.csv") == fh.readline().strip().split(",")
    with open(second.run_dir / "assignments.csv", encoding="utf-8") as fh:
        assert _export_columns(tree, "assignments.csv") == fh.readline().strip().split(",")
    # KPIs sharing a feature's key: the CSV holds what the guide says, the KPI, and the card's
    # figure where the guide points to a column
    table = tree.find(".//h:table[@data-file='personas.csv']", NS)
    guide = {
        _text(r.find("h:th/h:code", NS)): _text(r.find("h:td", NS))
        for r in table.findall("h:tbody/h:tr", NS)
    }
    flat = pd.read_csv(second.run_dir / "personas.csv").set_index("id")
    records = json.loads((second.run_dir / "personas.json").read_text(encoding="utf-8"))
    for key in ("avg_order_value", "days_since_seen"):
        assert (
            "a KPI, filled for every persona. Not the behaviour feature of the same name"
            in guide[key]
        )
        for p in records:
            assert flat.loc[p["id"], key] == pytest.approx(p["stats"][key]["value"])
            for card in (s for s in p["key_stats"] if s["key"] == key):
                column = f"{key}_{card['basis']}"
                if f"that figure is the column {column}." in guide[key]:
                    assert flat.loc[p["id"], column] == pytest.approx(card["value"])
                else:
                    assert "in personas.json, under key_stats" in guide[key]
    assert first.info["comparison"] is None


def test_comparison_rows_of_personas_without_a_colour_use_the_default(summary, tmp_path):
    # make_comparison's current personas (ids 5-8) are not the summary's: no colour, no error
    text = report_render.render_html(summary, comparison=make_comparison(tmp_path / "earlier"))
    parser = html5lib.HTMLParser(strict=True)
    parser.parse(text)
    assert parser.errors == []
    assert '<tr class="matched" data-persona-id="6"><th scope="row">' in text
    assert "Basket Leaver" in text and "Cart Abandoner" in text


# --- how solid the segmentation is ---------------------------------------------------------------

SOLID_INFO = {
    "count_scores": {"2": 0.71, "3": 0.83, "4": 0.78},
    "personas": 3,
    "count_rule": "the count whose groupings the 5 independent fits agree on most",
    "silhouette": {"2": 0.30, "3": 0.35, "4": 0.33},
    "stability": 0.93,
    "persona_stability": {"0": 0.96, "1": 0.71, "2": 0.88},
    "fits": 5,
}


def _solid(model_info: dict, reproducibility=(0.96, 0.71, 0.88), clear=(0.88, 0.6, 0.75)):
    """The fixture summary with the model's solidity figures and the per-persona ones."""
    base = make_summary()
    personas = tuple(
        dataclasses.replace(p, reproducibility=r, clear_share=c)
        for p, r, c in zip(base.personas, reproducibility, clear)
    )
    return dataclasses.replace(
        base, personas=personas, model_info={**base.model_info, **model_info}
    )


def _parse(summary: RunSummary):
    parser = html5lib.HTMLParser(strict=True, namespaceHTMLElements=True)
    tree = parser.parse(report_render.render_html(summary))
    assert parser.errors == []
    return tree


@pytest.mark.parametrize(
    "stability, verdict",
    [
        (0.97, "firm"),
        (0.9, "firm"),
        (0.8999, "fair"),
        (0.75, "fair"),
        (0.7499, "shaky"),
        (0.1, "shaky"),
        (None, None),
        (float("nan"), None),
    ],
)
def test_the_stability_verdict_follows_the_thresholds(stability, verdict):
    from personas.results import stability_record, stability_verdict

    assert stability_verdict(stability) == verdict
    assert stability_record(stability) == {
        "stability": stability,
        "verdict": verdict,
        "firm_at_least": 0.9,
        "fair_at_least": 0.75,
    }


@pytest.mark.parametrize(
    "stability, words",
    [
        (
            0.93,
            "Firm segmentation: independent refits of the model agree with these personas at 0.93",
        ),
        (
            0.82,
            "Fair segmentation: independent refits of the model agree with these personas at 0.82",
        ),
        (
            0.6,
            "Shaky segmentation: independent refits of the model agree with these personas at 0.60",
        ),
    ],
)
def test_the_overview_and_header_say_how_solid_the_segmentation_is(stability, words):
    tree = _parse(_solid({**SOLID_INFO, "stability": stability}))
    section = tree.find(".//h:section[@class='solidity']", NS)
    verdict = section.find(".//h:p", NS)
    assert _text(verdict).startswith(words)
    assert verdict.get("class") == f"stability verdict-{words.split()[0].lower()}"
    assert "Firm at 0.90 or more, fair from 0.75, shaky below 0.75." in _text(section)
    header = tree.find(".//h:dd[@class='stability']", NS)
    assert _text(header) == f"{words.split()[0]} ({num(stability)} agreement between refits)"
    methodology = _text(tree.find(".//h:section[@class='methodology']", NS))
    assert f"a {words.split()[0].lower()} segmentation" in methodology


def test_the_why_n_chart_scores_every_count_and_marks_the_chosen_one():
    tree = _parse(_solid(SOLID_INFO))
    section = tree.find(".//h:section[@class='solidity']", NS)
    assert _text(section.find("h:h4", NS)) == "Why 3 personas"
    svg = section.find(".//{http://www.w3.org/2000/svg}svg")
    assert svg.get("aria-label") == (
        "Bar chart of the agreement between independent fits for each possible number of "
        "personas: 2 personas 0.71; 3 personas 0.83 (chosen); 4 personas 0.78."
    )
    assert _text(section.find(".//h:figcaption", NS)) == (
        "Each bar is a possible number of personas; its score is how alike the model's 5 "
        "independent fits group the users into that many personas (1 = the same grouping every "
        "time, 0 = no better than chance). Why 3: the count whose groupings the 5 independent "
        "fits agree on most."
    )
    methodology = _text(tree.find(".//h:section[@class='methodology']", NS))
    assert (
        "3 personas were kept: the count whose groupings the 5 independent fits agree on "
        "most; the scores are under"
    ) in methodology
    assert "within two standard errors" not in methodology
    rows = [
        [_text(c) for c in r]
        for r in tree.findall(".//h:table[@class='kv count-scores']/h:tbody/h:tr", NS)
    ]
    assert rows == [["2", "0.71", "0.30"], ["3 (chosen)", "0.83", "0.35"], ["4", "0.78", "0.33"]]


def test_the_chosen_count_is_marked_by_words_and_weight_not_colour_alone(monkeypatch):
    from personas.report import charts

    monkeypatch.setitem(charts.RC, "svg.fonttype", "none")  # text as <text>, to read it
    svg = charts.count_chart({4: 0.71, 5: 0.83, 6: -0.02}, 5)
    texts = re.findall(r'<text style="([^"]*)"[^>]*>([^<]*)</text>', svg)
    assert sorted(t for style, t in texts if "font-weight: 700" in style) == ["0.83", "5", "chosen"]
    assert [t for _, t in texts].count("chosen") == 1
    assert "\u22120.02" in [t for _, t in texts]
    assert svg.count(charts.PALETTE[0].lower()) == 1  # one bar in the accent colour


def test_a_count_rule_missing_or_a_single_count_still_reads_plainly():
    from personas.report.render import count_text

    scores = {4: 0.7, 5: 0.9}
    assert count_text(scores, 5).endswith("Why 5: it scores highest.")
    assert count_text(scores, 4, fits=3).endswith(
        "how alike the model's 3 independent fits group the users into that many personas (1 = "
        "the same grouping every time, 0 = no better than chance). Why 4: the model's rule for "
        "the count picked it (see Methodology)."
    )
    assert count_text({6: 0.88}, 6, "ignored", 5) == (
        "The clustering found 6 personas directly, within the allowed range, so no other count "
        "was scored; the model's 5 independent fits group the users alike at 0.88 (1 = the same "
        "grouping every time, 0 = no better than chance)."
    )
    assert count_text({}, 5) == "" and count_text(scores, None) == ""


def test_each_card_says_how_reliably_the_persona_comes_back_and_who_clearly_belongs():
    summary = _solid(SOLID_INFO, reproducibility=(0.96, None, 0.884), clear=(0.88, 0.6, None))
    tree = _parse(summary)
    cards = {
        c.get("data-persona-id"): c for c in tree.findall(".//h:section[@class='persona-card']", NS)
    }
    line = ".//h:p[@class='card-meta card-solidity']"
    assert _text(cards["0"].find(line, NS)) == (
        "96 % the same in refits · 88 % of members clearly belong"
    )
    assert _text(cards["1"].find(line, NS)) == "60 % of members clearly belong"
    assert _text(cards["2"].find(line, NS)) == "88 % the same in refits"
    assert "confidence" not in _text(cards["0"].find(".//h:header", NS))
    table = tree.find(".//h:table[@class='overview-table']", NS)
    head = [_text(th) for th in table.findall("h:thead/h:tr/h:th", NS)]
    assert head[-2:] == ["Same in refits", "Clearly belong"]
    rows = table.findall("h:tbody/h:tr", NS)
    assert [[_text(td) for td in r.findall("h:td", NS)[-2:]] for r in rows] == [
        ["96 %", "88 %"],
        ["–", "60 %"],
        ["88 %", "–"],
    ]
    lead = _text(tree.find(".//h:section[@class='personas']/h:p", NS))
    assert "Clearly belong: members most of whose look-alikes (at least 60 % of" in lead


def test_an_old_model_without_these_figures_renders_without_the_section(html, tree):
    """The fixture is an old run: silhouette only, no stability, no per-persona figures."""
    assert tree.find(".//h:section[@class='solidity']", NS) is None
    assert tree.find(".//h:dd[@class='stability']", NS) is None
    assert tree.find(".//h:p[@class='card-meta card-solidity']", NS) is None
    assert "Same in refits" not in html and "Clearly belong" not in html
    assert "How solid" not in html
    methodology = _text(tree.find(".//h:section[@class='methodology']", NS))
    assert "within two standard errors of the best, 3, was kept" in methodology


def test_methodology_describes_the_consensus_model_and_lists_no_raw_mappings():
    """Today's model info (no "action"): merges and the noise vote described, no k-means."""
    info = {k: v for k, v in make_summary().model_info.items() if k != "action"}
    summary = dataclasses.replace(_solid(SOLID_INFO), model_info={**info, **SOLID_INFO})
    section = _parse(summary).find(".//h:section[@class='methodology']", NS)
    text = _text(section)
    assert (
        "The clustering found 23 small, dense groups in the first of 5 fits, each on its own "
        "random sample of users with its own random layout. For every allowed persona count "
        "the groups were merged step by step by Ward linkage"
    ) in text
    assert (
        "3 personas were kept: the count whose groupings the 5 independent fits agree on most;"
    ) in text
    assert "each joined the persona most of its nearest grouped neighbours have" in text
    assert "nearest persona centre" not in text and "k-means" not in text
    rows = [_text(th) for th in section.findall(".//h:table[@class='kv']/h:tbody/h:tr/h:th", NS)]
    assert "Noise share" in rows and "Fits" in rows
    assert not {"Count scores", "Persona stability", "Silhouette"} & set(rows)


def test_a_model_fitted_once_shows_its_one_count_without_a_chart_or_verdict():
    summary = _solid(
        {
            "count_scores": {"3": 0.8},
            "personas": 3,
            "stability": None,
            "persona_stability": {},
            "action": "kept",
            "clusters_found": 3,
        },
        reproducibility=(None,) * 3,
    )
    tree = _parse(summary)
    section = tree.find(".//h:section[@class='solidity']", NS)
    assert section.find(".//{http://www.w3.org/2000/svg}svg") is None
    assert section.find(".//h:p[@class='stability verdict-firm']", NS) is None
    assert _text(section.find("h:p[@class='count-text']", NS)).startswith(
        "The clustering found 3 personas directly"
    )
    assert tree.find(".//h:dd[@class='stability']", NS) is None
    assert len(list(tree.iter("{http://www.w3.org/2000/svg}svg"))) == 1 + len(summary.personas)


def test_the_export_guide_explains_the_new_persona_columns():
    from personas.report.render import export_columns

    rows = {r.columns[0]: r.meaning for r in export_columns(make_summary())}
    assert rows["clear_share"] == (
        "Share of the persona's users who clearly belong: confidence at least 0.6."
    )
    assert rows["reproducibility"].startswith("From 0 to 1: how much of the persona")
