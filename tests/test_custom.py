"""Your own features (features_path): checked definitions, values that are what they say, and
the way into the model, the profiles, the report and ``personas assign``."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pandas as pd
import pytest

from personas import PersonaParams, pipeline
from personas.cli import main
from personas.custom import load_custom_features
from personas.errors import ParameterError
from personas.features import BY_NAME
from personas.sample import write_sample

FEATURES_YAML = """\
searches_made:
  description: Searches made
  sql: count(*) FILTER (WHERE event = 'search')
  unit: searches
  higher: searches more
  transform: log1p
  model: true
orders_per_active_day:
  description: Purchases per active day
  python: shop_features:orders_per_active_day
"""
SHOP_FEATURES = """\
def orders_per_active_day(table):
    return table["orders"] / table["active_days"]
"""


def _file(tmp_path, text: str, name: str = "features.yaml") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(
    "text, message",
    [
        ("- a\n- b\n", r"must map feature names to their definitions"),
        (
            "Plays:\n  description: x\n  sql: count(*)\n",
            r"feature 'Plays': a name is lower-case letters, digits and underscores",
        ),
        (
            "orders:\n  description: x\n  sql: count(*)\n",
            r"feature 'orders' is already in the catalogue; give yours another name",
        ),
        ("plays:\n  sql: count(*)\n", r"feature 'plays': needs a description"),
        ("plays:\n  description: x\n", r"give either sql .* or python .*, not both or neither"),
        ("plays:\n  description: x\n  sql: count(*)\n  python: m:f\n", r"not both or neither"),
        (
            "plays:\n  description: x\n  sql: count(*)\n  model: yes please\n",
            r"feature 'plays': model is true or false, got 'yes please'",
        ),
        (
            "plays:\n  description: x\n  sql: count(*)\n  transform: sqrt\n",
            r"transform is one of none, log1p, got 'sqrt'",
        ),
        (
            "plays:\n  description: x\n  sql: count(*)\n  colour: red\n",
            r"feature 'plays': unknown key 'colour'",
        ),
        ("plays: [\n", r"is not valid YAML"),
    ],
)
def test_a_bad_definition_is_one_sentence_naming_the_file_and_the_feature(tmp_path, text, message):
    path = _file(tmp_path, text)
    with pytest.raises(ParameterError, match=message) as info:
        load_custom_features(path)
    assert str(info.value).startswith(f"features file {path!r}: ")
    assert info.value.name == "features_path"


def test_a_missing_file_says_so(tmp_path):
    with pytest.raises(
        ParameterError,
        match=r"features file '.*nothing.yaml': cannot be read "
        r"\(No such file or directory\); check "
        r"features_path",
    ):
        load_custom_features(str(tmp_path / "nothing.yaml"))


@pytest.fixture(scope="module")
def custom_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("custom")
    events, _ = write_sample(folder / "events.parquet", 1200, seed=5)
    path = _file(folder, FEATURES_YAML)
    _file(folder, SHOP_FEATURES, "shop_features.py")
    params = PersonaParams(
        events_path=str(events),
        features_path=path,
        sample_size=1200,
        n_fits=2,
        output_dir=str(folder / "run"),
    )
    return params, pipeline.run(params), events


@pytest.mark.slow
def test_own_features_are_computed_as_defined_and_reach_model_profiles_and_report(custom_run):
    params, result, events = custom_run
    features = pd.read_parquet(result.run_dir / "features.parquet")
    log = pd.read_parquet(events)
    searches = (
        log[log["event"] == "search"]
        .groupby(log["user_id"].astype(str))
        .size()
        .reindex(features.index, fill_value=0)
    )
    np.testing.assert_array_equal(features["searches_made"], searches.to_numpy(dtype="float64"))
    np.testing.assert_allclose(
        features["orders_per_active_day"], features["orders"] / features["active_days"]
    )
    # after the catalogue's features, before the event counts
    columns = list(features.columns)
    assert columns.index("orders_per_active_day") == columns.index("searches_made") + 1
    assert not any(c.startswith("role_") for c in columns[: columns.index("searches_made")])
    run = json.loads((result.run_dir / "run.json").read_text())
    assert "searches_made" in run["model"]["features"]  # model: true
    assert "orders_per_active_day" not in run["model"]["features"]  # describes only
    record = json.loads((result.run_dir / "features.json").read_text())
    assert [c["feature"]["name"] for c in record["custom_features"]] == [
        "searches_made",
        "orders_per_active_day",
    ]
    html = (result.run_dir / "index.html").read_text()
    assert "Searches made" in html and "Purchases per active day" in html
    assert BY_NAME["searches_made"].transform == "log1p"


@pytest.mark.slow
def test_assign_computes_the_own_features_the_model_was_fitted_with(custom_run, tmp_path, capsys):
    params, result, events = custom_run
    out = tmp_path / "scored.csv"
    argv = [
        "assign",
        "--model",
        str(result.run_dir / "model"),
        "--events",
        str(events),
        "--out",
        str(out),
        "--quiet",
    ]
    assert main(argv + ["-p", f"features_path={params.features_path}"]) == 0
    scored = pd.read_csv(out, dtype={"user_id": str}).set_index("user_id")
    published = result.assignments.set_index("user_id")
    assert (scored.loc[published.index, "persona_id"] == published["persona_id"]).all()


@pytest.mark.slow
def test_a_failing_sql_or_function_names_the_feature_and_writes_nothing(tmp_path):
    events, _ = write_sample(tmp_path / "events.parquet", 300, seed=1)
    bad_sql = _file(tmp_path, "plays:\n  description: Plays\n  sql: count(no_such_column)\n")
    params = PersonaParams(
        events_path=str(events), features_path=bad_sql, output_dir=str(tmp_path / "run")
    )
    with pytest.raises(
        ParameterError,
        match=r"feature 'plays': its sql failed \(.*no_such_column"
        r".*\); write one aggregate over the columns "
        r"user_id, ts, event",
    ):
        pipeline.features_step(params)
    _file(tmp_path, "def short(table):\n    return [1.0]\n", "bad_features.py")
    bad_python = _file(
        tmp_path, "plays:\n  description: Plays\n  python: bad_features:short\n", "python.yaml"
    )
    with pytest.raises(
        ParameterError,
        match=r"feature 'plays': bad_features:short must return "
        r"one value per user \(300\)",
    ):
        pipeline.features_step(params.replace(features_path=bad_python))
    assert not (tmp_path / "run").exists() and not pipeline.stage_dir(params).exists()
