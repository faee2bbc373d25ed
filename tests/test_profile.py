"""Profiles: key stats (median and mean, the basis rule), lifts, KPIs and traits.

Small hand-made tables check the figures against answers worked out by hand; a real run checks
that every figure in personas.json (and personas.csv) is what pandas recomputes from
assignments.parquet and features.parquet, with the definitions written out again here.
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pandas as pd
import pytest
from kpis import KPI_DEFINITIONS

from personas.features import BY_NAME, ROLE_PREFIX
from personas.kpis import KPIS
from personas.profile import (
    behaviour_stat,
    build_profiles,
    clear_share,
    figure_table,
    kpi_stat,
    lift_of,
    stat_basis,
    trait_table,
)

# -- hand-made data --------------------------------------------------------------------------------

# Eight users, persona 0 (first four) and persona 1 (last four).
LABELS = np.array([0, 0, 0, 0, 1, 1, 1, 1])
SMALL = pd.DataFrame(
    {
        "orders": [0, 1, 1, 10, 2, 3, 3, 3],
        "revenue": [0, 50, 50, 1000, 100, 100, 150, 150],
        "avg_order_value": [np.nan, 50, 50, 100, 50, 50, 50, 50],
        "days_since_seen": [100, 70, 10, 5, 1, 2, 3, 90],
        "sessions_per_week": [1, 2, 3, 4, 1, 1, 1, 1],
        "discount_share": [0.1, 0.2, 0.3, 0.6, 0.8, 0.8, 0.8, 0.8],
        "abandoned_carts": [0, 0, 4, 4, 0, 0, 0, 0],
    },
    index=[f"u{i}" for i in range(8)],
    dtype="float64",
)


def test_basis_is_the_median_for_heavy_tailed_features_and_the_mean_otherwise():
    assert stat_basis("orders", 2.0) == "median"  # count (log1p in the catalogue)
    assert stat_basis("revenue", 80.0) == "median"  # money
    assert stat_basis("avg_order_value", 55.0) == "median"
    assert stat_basis("discount_share", 0.5) == "mean"  # share
    assert stat_basis("days_since_seen", 30.0) == "mean"  # days, bounded by the window
    assert stat_basis("abandoned_carts", 0.0) == "mean"  # median 0: no ratio to it
    assert stat_basis("orders", float("nan")) == "mean"
    assert stat_basis("not_a_feature", 3.0) == "mean"


def test_a_skewed_stat_leads_with_the_median_and_keeps_the_mean():
    persona = SMALL["orders"][LABELS == 0]  # 0, 1, 1, 10
    s = behaviour_stat("orders", persona, SMALL["orders"], z=-0.2)
    assert (s.median, s.mean) == (1.0, 3.0)
    assert (s.overall_median, s.overall_mean) == (2.5, 23 / 8)  # 0 1 1 2 3 3 3 10
    assert (s.basis, s.statistic) == ("median", "median")
    assert (s.value, s.overall, s.lift) == (1.0, 2.5, 0.4)
    assert (s.label, s.unit, s.z) == ("Orders per user", "orders", -0.2)  # the KPI's name


def test_a_share_leads_with_the_mean():
    s = behaviour_stat(
        "discount_share", SMALL["discount_share"][LABELS == 0], SMALL["discount_share"]
    )
    assert s.basis == "mean" and s.value == pytest.approx(0.3)
    assert s.overall == pytest.approx(0.55)
    assert s.lift == pytest.approx(0.3 / 0.55)
    assert s.median == pytest.approx(0.25) and s.overall_median == pytest.approx(0.7)


def test_users_without_a_value_are_left_out_of_both_centres():
    s = behaviour_stat(
        "avg_order_value", SMALL["avg_order_value"][LABELS == 0], SMALL["avg_order_value"]
    )
    assert (s.median, s.mean) == (50.0, 200 / 3)  # non-buyer (NaN) left out
    assert (s.overall_median, s.overall_mean) == (50.0, 400 / 7)
    assert s.lift == 1.0


def test_a_zero_overall_median_falls_back_to_the_mean_and_zero_overall_has_no_lift():
    s = behaviour_stat(
        "abandoned_carts", SMALL["abandoned_carts"][LABELS == 0], SMALL["abandoned_carts"]
    )
    assert (s.basis, s.value, s.overall, s.lift) == ("mean", 2.0, 1.0, 2.0)
    assert s.median == 2.0 and s.overall_median == 0.0
    zero = pd.Series([0.0, 0.0, 0.0])
    assert behaviour_stat("email_opens", zero, zero).lift is None
    assert lift_of(3.0, 0.0) is None and lift_of(float("nan"), 2.0) is None
    assert lift_of(3.0, 2.0) == 1.5


def test_kpis_follow_their_definitions():
    kpis = {k.key: k for k in KPIS}
    group = SMALL[LABELS == 0]
    expected = {  # persona 0, all users -- worked out by hand
        "conversion_rate": (3 / 4, 7 / 8),
        "revenue_per_user": (1100 / 4, 1600 / 8),
        "avg_order_value": (1100 / 12, 1600 / 23),
        "purchase_frequency": (12 / 4, 23 / 8),
        "days_since_seen": (40.0, 7.5),
        "at_risk_share": (2 / 4, 3 / 8),
        "engagement_rate": (10 / 4, 14 / 8),
    }
    assert set(kpis) == set(expected)
    for key, (value, overall) in expected.items():
        s = kpi_stat(kpis[key], group, SMALL)
        assert (s.value, s.overall) == (pytest.approx(value), pytest.approx(overall)), key
        assert s.lift == pytest.approx(value / overall), key
    revenue = kpi_stat(kpis["revenue_per_user"], group, SMALL)
    assert (revenue.basis, revenue.median, revenue.overall_median) == ("mean", 50.0, 100.0)
    assert kpi_stat(kpis["conversion_rate"], group, SMALL).basis == ""  # a share: no centres


def test_traits_are_standardised_differences_of_means_on_the_model_scale():
    z = trait_table(SMALL, LABELS)
    spread = np.sqrt(np.mean((SMALL["discount_share"] - 0.55) ** 2))  # ddof 0
    assert z.loc[0, "discount_share"] == pytest.approx((0.3 - 0.55) / spread)
    assert z.loc[1, "discount_share"] == pytest.approx((0.8 - 0.55) / spread)
    logged = np.log1p(SMALL["orders"])  # orders are log1p
    expected = (logged[:4].mean() - logged.mean()) / logged.std(ddof=0)
    assert z.loc[0, "orders"] == pytest.approx(expected)
    # the two personas are equal halves, so where every user has a value their z-values mirror
    complete = z.columns.drop("avg_order_value")
    assert (z.loc[0, complete] + z.loc[1, complete]).abs().max() == pytest.approx(0, abs=1e-12)


def test_profiles_carry_both_centres_kpis_shares_and_traits():
    profiles = build_profiles(SMALL, LABELS, np.full(8, 0.5), order_table=False)
    assert [p.size for p in profiles] == [4, 4] and [p.share for p in profiles] == [0.5, 0.5]
    first = next(p for p in profiles if p.id == 0)
    assert first.revenue_share == pytest.approx(1100 / 1600)
    assert first.confidence == 0.5
    stats = {s.key: s for s in first.stats}
    assert len(first.stats) == 5
    for s in first.stats:
        assert s.basis in ("median", "mean") and s.statistic == s.basis
        assert s.value == (s.median if s.basis == "median" else s.mean)
        assert s.overall == (s.overall_median if s.basis == "median" else s.overall_mean)
    if "orders" in stats:
        assert (stats["orders"].value, stats["orders"].overall) == (1.0, 2.0)
    kpis = {k.key: k for k in first.kpis}
    assert kpis["days_since_seen"].value == 40.0 and kpis["at_risk_share"].value == 0.5
    z = trait_table(SMALL, LABELS).loc[0]
    assert [t.z for t in first.traits] == [pytest.approx(z[t.feature]) for t in first.traits]
    strongest = max(z.index, key=lambda f: abs(z[f]))
    assert strongest in [t.feature for t in first.traits]


def test_clear_share_counts_members_with_a_clear_majority_and_reproducibility_is_the_models():
    confidence = np.array([1.0, 0.6, 0.5999, 0.2, 0.6667, 0.9333, 0.4, 0.8])
    profiles = build_profiles(
        SMALL, LABELS, confidence, order_table=False, persona_stability={"0": 0.96, "7": 0.5}
    )
    by_id = {p.id: p for p in profiles}
    assert by_id[0].clear_share == 0.5  # 1.0 and 0.6 (at the bound) of four
    assert by_id[1].clear_share == 0.75  # all but 0.4
    assert by_id[0].reproducibility == 0.96
    assert by_id[1].reproducibility is None  # the model has no figure for it
    assert clear_share(np.array([])) == 0.0
    old = build_profiles(SMALL, LABELS, confidence, order_table=False)  # a model fitted once
    assert [p.reproducibility for p in old] == [None, None]


def test_the_figure_table_holds_every_figure_as_the_cards_show_it():
    table = figure_table(SMALL, LABELS)
    assert set(table.features) == set(table.kpis) == {0, 1}
    kpis = {k.key: k for k in KPIS}
    for pid in (0, 1):
        group = SMALL[LABELS == pid]
        for feature in SMALL.columns:  # a group-by for all, the same numbers as one by one
            got = dataclasses.asdict(table.features[pid][feature])
            want = dataclasses.asdict(behaviour_stat(feature, group[feature], SMALL[feature]))
            assert got.keys() == want.keys()
            assert all(
                same(got[k], want[k]) if isinstance(want[k], float) else got[k] == want[k]
                for k in want
            ), feature
        assert table.kpis[pid] == {key: kpi_stat(kpis[key], group, SMALL) for key in kpis}
    # the names claims use: a bare key is the feature, as in a rule's "when"; a KPI sharing a
    # feature's key is "kpi:<key>"
    figures = table.of(0)
    assert set(figures) == set(SMALL.columns) | {
        "conversion_rate",
        "revenue_per_user",
        "kpi:avg_order_value",
        "purchase_frequency",
        "kpi:days_since_seen",
        "at_risk_share",
        "engagement_rate",
    }
    assert figures["avg_order_value"].value == 50.0  # median order value
    assert figures["kpi:avg_order_value"].value == 1100 / 12  # revenue / orders
    assert figures["kpi:days_since_seen"].value == 40.0  # the median
    assert figures["days_since_seen"].value == 185 / 4  # the card's mean


def test_a_name_claims_the_numbers_on_its_card():
    profiles = build_profiles(SMALL, LABELS, np.ones(8), order_table=False)
    table = figure_table(SMALL, LABELS)
    for p in profiles:
        assert p.claims, p.name
        for c in p.claims:
            figure = table.of(p.id)[c.figure]
            assert (c.value, c.overall, c.lift) == (figure.value, figure.overall, figure.lift)
            assert c.holds
        assert p.description.startswith(f"{p.name} (50.0 % of users): the typical member ")


def test_a_log_without_amounts_has_revenue_unknown_not_zero():
    no_amounts = SMALL.drop(columns=["revenue", "avg_order_value"])
    profiles = build_profiles(no_amounts, LABELS, np.ones(8), order_table=False)
    assert [p.revenue_share for p in profiles] == [None, None]
    keys = {s.key for p in profiles for s in (*p.kpis, *p.stats)}
    assert not keys & {"revenue_per_user", "avg_order_value", "revenue"}
    assert not any(c.figure in ("revenue_per_user", "revenue") for p in profiles for c in p.claims)


def test_an_order_table_has_no_event_mix():
    roles = pd.DataFrame({"role_purchase": SMALL["orders"]}).rename(columns=lambda c: c[5:])
    events = build_profiles(SMALL, LABELS, np.ones(8), order_table=False, role_counts=roles)
    orders = build_profiles(SMALL, LABELS, np.ones(8), order_table=True, role_counts=roles)
    assert all(p.event_mix == (("purchase", 1.0),) for p in events)
    assert all(p.event_mix == () for p in orders)


def test_trait_text_states_the_basis_and_the_ratio():
    """The figure as its card shows it: the same name (the statistic in it) and format."""
    profiles = build_profiles(SMALL, LABELS, np.ones(8), order_table=False, currency="EUR")
    texts = {t.feature: t.text for p in profiles if p.id == 1 for t in p.traits}
    assert texts["discount_share"] == (
        "Share of purchases made with a discount (mean): 80.0 % "
        "vs 55.0 % for all users (1.5× as high)"
    )
    assert texts["orders"] == ("Orders per user (median): 3 vs 2.50 for all users (1.2× as high)")
    money = [t.text for p in profiles for t in p.traits if t.feature == "avg_order_value"]
    assert money and all("€" in t for t in money), money


# -- a real run: every exported figure recomputed with pandas --------------------------------------

KPI_COLUMNS = {
    "revenue_per_user": "revenue",
    "purchase_frequency": "orders",
    "days_since_seen": "days_since_seen",
    "engagement_rate": "sessions_per_week",
}


def same(a, b) -> bool:
    """Equal to float precision, with NaN equal to NaN and None only to None."""
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) and math.isnan(a) or isinstance(b, float) and math.isnan(b):
        return bool(pd.isna(a) and pd.isna(b))
    return a == pytest.approx(b, rel=1e-9, abs=1e-12)


def ratio(value: float, overall: float):
    return None if pd.isna(value) or pd.isna(overall) or overall == 0 else value / overall


@pytest.fixture(scope="module")
def exported(demo_run):
    folder = demo_run.run_dir
    features = pd.read_parquet(folder / "features.parquet")
    assign = pd.read_parquet(folder / "assignments.parquet").set_index("user_id")
    joined = features.join(assign, how="inner")
    assert len(joined) == len(features) == len(assign)
    personas = json.loads((folder / "personas.json").read_text(encoding="utf-8"))
    flat = pd.read_csv(folder / "personas.csv")
    return personas, joined, flat


@pytest.mark.slow
def test_sizes_shares_and_revenue_shares_recompute(exported):
    personas, joined, _ = exported
    assert sum(p["size"] for p in personas) == len(joined)
    for p in personas:
        group = joined[joined["persona_id"] == p["id"]]
        assert p["size"] == len(group)
        assert same(p["share"], len(group) / len(joined))
        assert same(p["revenue_share"], group["revenue"].sum() / joined["revenue"].sum())
        assert same(p["confidence"], group["confidence"].mean())
        assert same(p["clear_share"], (group["confidence"] >= 0.6).mean())


@pytest.mark.slow
def test_every_key_stat_recomputes_as_median_and_mean(exported):
    personas, joined, _ = exported
    checked = 0
    for p in personas:
        group = joined[joined["persona_id"] == p["id"]]
        assert len(p["key_stats"]) == 5
        for s in p["key_stats"]:
            key = s["key"]
            mine, everyone = group[key], joined[key]
            centres = {
                "median": mine.median(),
                "mean": mine.mean(),
                "overall_median": everyone.median(),
                "overall_mean": everyone.mean(),
            }
            for field, expected in centres.items():
                assert same(s[field], float(expected)), (p["name"], key, field)
            skewed = BY_NAME[key].transform == "log1p" and centres["overall_median"] != 0
            assert s["basis"] == s["statistic"] == ("median" if skewed else "mean"), key
            head = s["basis"]
            assert same(s["value"], centres[head]), key
            assert same(s["overall"], centres[f"overall_{head}"]), key
            assert same(s["lift"], ratio(centres[head], centres[f"overall_{head}"])), key
            if key not in KPI_DEFINITIONS:  # a KPI keeps the shared key in "stats"
                kept = p["stats"][key]
                assert kept.keys() == s.keys() - {"key"}
                assert all(
                    same(kept[f], s[f]) if isinstance(s[f], float) else kept[f] == s[f]
                    for f in kept
                ), key
            checked += 1
    assert checked == 5 * len(personas)
    assert {s["basis"] for p in personas for s in p["key_stats"]} == {"median", "mean"}


@pytest.mark.slow
def test_every_kpi_recomputes_from_its_definition(exported):
    personas, joined, _ = exported
    for p in personas:
        group = joined[joined["persona_id"] == p["id"]]
        kpis = {k: v for k, v in p["stats"].items() if k in KPI_DEFINITIONS}
        assert set(kpis) == set(KPI_DEFINITIONS)
        for key, define in KPI_DEFINITIONS.items():
            value, overall = float(define(group)), float(define(joined))
            k = kpis[key]
            assert same(k["value"], value), (p["name"], key)
            assert same(k["overall"], overall), (p["name"], key)
            assert same(k["lift"], ratio(value, overall)), (p["name"], key)
            column = KPI_COLUMNS.get(key)
            if column:
                assert same(k["median"], float(group[column].median()))
                assert same(k["mean"], float(group[column].mean()))
                assert same(k["overall_median"], float(joined[column].median()))
                assert same(k["overall_mean"], float(joined[column].mean()))
            else:
                assert k["basis"] == "" and k["median"] is None


@pytest.mark.slow
def test_traits_and_event_mix_recompute(exported):
    personas, joined, _ = exported
    for p in personas:
        mask = joined["persona_id"] == p["id"]
        for t in p["traits"]:
            values = joined[t["feature"]].astype("float64")
            if BY_NAME[t["feature"]].transform == "log1p":
                values = np.log1p(values.clip(lower=0))
            z = (values[mask].mean() - values.mean()) / values.std(ddof=0)
            assert same(t["z"], float(z)), (p["name"], t["feature"])
        roles = joined.loc[mask, [c for c in joined.columns if c.startswith(ROLE_PREFIX)]].sum()
        mix = {r.removeprefix(ROLE_PREFIX): v / roles.sum() for r, v in roles.items() if v > 0}
        assert p["event_mix"].keys() == mix.keys()
        assert all(same(p["event_mix"][r], mix[r]) for r in mix)


@pytest.mark.slow
def test_personas_csv_holds_the_same_figures_as_the_json(exported):
    personas, _, flat = exported
    assert list(flat["id"]) == [p["id"] for p in personas]
    for p, (_, row) in zip(personas, flat.iterrows()):
        for field in ("confidence", "reproducibility", "clear_share"):
            assert same(None if pd.isna(row[field]) else float(row[field]), p[field]), field
        for key, s in p["stats"].items():
            for suffix, field in (("", "value"), ("_overall", "overall"), ("_lift", "lift")):
                cell = row[f"{key}{suffix}"]
                assert same(
                    None if pd.isna(cell) and s[field] is None else float(cell), s[field]
                ), (key, field)
            if s["basis"]:
                assert row[f"{key}_basis"] == s["basis"]
                for field in ("median", "mean", "overall_median", "overall_mean"):
                    assert same(float(row[f"{key}_{field}"]), s[field]), (key, field)
