"""Real data: the CDNOW order table (shipped by the ``lifetimes`` package, a test dependency).

23,570 customers who all made their first purchase in the first quarter of 1997, followed to
mid-1998: one row per order (customer, date, CDs, dollars), no event column. The personas must be
named truthfully on data the rules were not written against: every claim a name makes holds on
the persona's own figures, recomputed here from the run's files with the definitions written
out again, and nobody is "New".
"""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from kpis import KPI_DEFINITIONS

from personas import PersonaParams, pipeline
from personas.features import BY_NAME
from personas.kpis import figure_key
from personas.naming import clashes

pytestmark = pytest.mark.slow

# The figures claims may name, by their written-out definitions (KPIs as rules key them).
KPI_FIGURES = {figure_key(k): define for k, define in KPI_DEFINITIONS.items()}


def headline(feature: str, group: pd.DataFrame, everyone: pd.DataFrame) -> tuple[float, float]:
    """A feature as the card shows it: the median for log-scaled counts and money (unless all
    users' median is 0), else the mean; users without a value left out."""
    if BY_NAME[feature].transform == "log1p" and everyone[feature].median() != 0:
        return group[feature].median(), everyone[feature].median()
    return group[feature].mean(), everyone[feature].mean()


def figure(key: str, group: pd.DataFrame, everyone: pd.DataFrame) -> tuple[float, float]:
    if key in KPI_FIGURES:
        return KPI_FIGURES[key](group), KPI_FIGURES[key](everyone)
    return headline(key, group, everyone)


def holds(test: str, bound: float, value: float, overall: float) -> bool:
    measured = value / overall if test.startswith("lift_") else value
    return measured >= bound if test.endswith("at_least") else measured <= bound


@pytest.fixture(scope="module")
def cdnow(tmp_path_factory, cdnow_csv):
    """The pipeline run on CDNOW as a CSV (customer_id, date, quantity, amount)."""
    folder = tmp_path_factory.mktemp("cdnow")
    path = cdnow_csv
    result = pipeline.run(
        PersonaParams(
            events_path=str(path),
            user_col="customer_id",
            time_col="date",
            output_dir=str(folder / "run"),
            random_state=0,
        )
    )
    features = pd.read_parquet(result.run_dir / "features.parquet")
    assign = pd.read_parquet(result.run_dir / "assignments.parquet").set_index("user_id")
    joined = features.join(assign, how="inner")
    personas = json.loads((result.run_dir / "personas.json").read_text(encoding="utf-8"))
    return result, personas, joined


def test_the_data_is_what_the_tests_assume(cdnow):
    result, _, joined = cdnow
    assert result.info["input"]["order_table"] is True
    assert result.info["counts"]["users"] == len(joined) == 23_570
    assert joined["days_since_first_seen"].min() > 400  # nobody arrived in the last year


def test_every_claim_holds_on_the_persona_figures_recomputed(cdnow):
    _, personas, joined = cdnow
    checked = 0
    for p in personas:
        group = joined[joined["persona_id"] == p["id"]]
        assert p["claims"], p["name"]
        for c in p["claims"]:
            value, overall = figure(c["figure"], group, joined)
            assert c["value"] == pytest.approx(value, rel=1e-9), (p["name"], c["figure"])
            assert c["overall"] == pytest.approx(overall, rel=1e-9), (p["name"], c["figure"])
            for test, bound in c["bounds"].items():
                assert holds(test, bound, value, overall), (p["name"], c["figure"], test, bound)
            assert c["holds"] is True
            checked += 1
    assert checked >= len(personas)


def test_names_are_unique_apart_and_untagged(cdnow):
    result, personas, _ = cdnow
    names = [p["name"] for p in personas]
    assert 4 <= len(names) <= 8 and len(set(names)) == len(names)
    assert not any("·" in n or re.search(r" \d+$", n) for n in names), names
    heads = [n.split()[0].split("-")[0].casefold() for n in names]
    assert len(set(heads)) == len(heads), names
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert not clashes(a, b), (a, b)


def test_nobody_is_new_and_the_big_spenders_really_spend(cdnow):
    _, personas, joined = cdnow
    for p in personas:
        group = joined[joined["persona_id"] == p["id"]]
        if "New" in p["name"].split():
            assert group["days_since_first_seen"].mean() <= 60, p["name"]
        if p["name"] in ("Big Spenders", "Champions"):
            assert group["revenue"].mean() >= 1.5 * joined["revenue"].mean(), p["name"]
    assert not any("New" in p["name"].split() for p in personas)
    richest = max(personas, key=lambda p: p["revenue_share"])
    assert richest["name"] != "Everyday Customer"


def test_an_order_table_card_has_no_event_mix_and_nothing_per_session(cdnow):
    result, personas, _ = cdnow
    per_session = {
        "sessions",
        "events_per_session",
        "session_minutes",
        "sessions_per_week",
        "sessions_per_active_week",
        "regularity",
        "engagement_rate",
    }
    for p in personas:
        assert p["event_mix"] == {}
        assert not per_session & (set(p["stats"]) | {t["feature"] for t in p["traits"]})
    assert not np.isin(list(per_session), result.info["features"]["used"]).any()
