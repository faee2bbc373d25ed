"""The whole run in one process: its folder, its numbers and its agreement with planted personas."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from personas import PersonaParams, pipeline
from personas.errors import InputError, OutputError, ParameterError
from personas.features import BY_NAME
from personas.sample import FAMILIES

pytestmark = pytest.mark.slow

RUN_FILES = {
    "index.html",
    "personas.json",
    "personas.csv",
    "assignments.parquet",
    "assignments.csv",
    "features.parquet",
    "features.json",
    "model",
    "run.json",
    "planted.parquet",
    "purchases.parquet",
}


def test_run_folder_holds_every_output_and_nothing_half_written(demo_run):
    folder = demo_run.run_dir
    assert {p.name for p in folder.iterdir()} == RUN_FILES
    assert not list(folder.parent.glob(".*partial"))
    assert {"model.json", "reference.parquet", "map.parquet"} <= {
        p.name for p in (folder / "model").iterdir()
    }


def test_run_json_records_counts_timings_versions_and_input(demo_run):
    info = json.loads((demo_run.run_dir / "run.json").read_text())
    assert info["counts"]["users"] == 3000
    assert info["counts"]["personas"] == len(demo_run.profiles)
    assert info["counts"]["events"] > 100_000
    assert {"load", "per_user", "features", "model", "profile", "report", "total"} <= set(
        info["timings_s"]
    )
    assert info["timings_s"]["per_user"] > 0
    assert info["timings_s"]["total"] >= info["timings_s"]["model"] > 0
    assert info["input"]["fingerprint"] == "sample:users=3000:seed=0"
    assert {"pandas", "umap-learn", "hdbscan", "duckdb", "python"} <= set(info["versions"])
    assert info["parameters"]["sample_users"] == 3000
    assert info["event_roles"]["add_to_cart"]["role"] == "cart"


def test_four_to_eight_uniquely_named_personas_cover_every_user_once(demo_run):
    names = [p.name for p in demo_run.profiles]
    assert 4 <= len(names) <= 8
    assert len(set(names)) == len(names)
    a = demo_run.assignments
    assert a["user_id"].is_unique and len(a) == 3000
    assert set(a["persona"]) == set(names)
    assert a["confidence"].between(0, 1).all()
    assert sum(p.size for p in demo_run.profiles) == 3000


def test_personas_agree_with_the_planted_ones(demo_run):
    info = json.loads((demo_run.run_dir / "run.json").read_text())
    assert info["agreement_with_planted_ari"] >= 0.7


def test_each_planted_persona_lands_mostly_in_a_persona_of_its_family(demo_run):
    planted = pd.read_parquet(demo_run.run_dir / "planted.parquet")
    both = planted.merge(demo_run.assignments, on="user_id")
    family = {p.name: p.family for p in demo_run.profiles}
    both["family"] = both["persona_y"].map(family)
    for persona in sorted(set(planted["persona"]) - {"noise"}):
        rows = both[both["persona_x"] == persona]
        share = rows["family"].isin(FAMILIES[persona]).mean()
        assert share >= 0.6, (persona, rows["persona_y"].value_counts().to_dict())


def test_persona_stats_equal_figures_recomputed_from_the_exports(demo_run):
    folder = demo_run.run_dir
    personas = json.loads((folder / "personas.json").read_text())
    features = pd.read_parquet(folder / "features.parquet")
    assign = pd.read_parquet(folder / "assignments.parquet").set_index("user_id")
    joined = features.join(assign)
    for p in personas:
        group = joined[joined["persona_id"] == p["id"]]
        assert p["size"] == len(group)
        assert p["share"] == pytest.approx(len(group) / len(joined))
        assert p["revenue_share"] == pytest.approx(group["revenue"].sum() / joined["revenue"].sum())
        for key, stat in p["stats"].items():
            if key in BY_NAME and stat["statistic"] == "mean":
                assert stat["value"] == pytest.approx(group[key].mean()), key
                assert stat["overall"] == pytest.approx(joined[key].mean()), key
        conv = p["stats"]["conversion_rate"]
        assert conv["value"] == pytest.approx((group["orders"] > 0).mean())
        aov = p["stats"]["avg_order_value"]
        assert aov["value"] == pytest.approx(group["revenue"].sum() / group["orders"].sum())


def test_report_shows_every_persona_name_and_share_from_personas_json(demo_run):
    html = (demo_run.run_dir / "index.html").read_text()
    for p in json.loads((demo_run.run_dir / "personas.json").read_text()):
        assert f'data-persona-id="{p["id"]}"' in html
        assert p["name"] in html
        assert f"{p['share'] * 100:.1f} %" in html


def test_personas_csv_has_one_row_per_persona(demo_run):
    flat = pd.read_csv(demo_run.run_dir / "personas.csv")
    assert list(flat["name"]) == [p.name for p in demo_run.profiles]
    assert np.allclose(flat["share"], [p.share for p in demo_run.profiles])
    assert np.allclose(flat["clear_share"], [p.clear_share for p in demo_run.profiles])


def test_how_solid_the_personas_are_reaches_run_json_personas_json_and_the_report(demo_run):
    from personas.results import stability_verdict

    folder = demo_run.run_dir
    info = json.loads((folder / "run.json").read_text())
    model = info["model"]
    verdict = stability_verdict(model.get("stability"))
    assert info["segmentation"] == {
        "stability": model.get("stability"),
        "verdict": verdict,
        "firm_at_least": 0.9,
        "fair_at_least": 0.75,
    }
    refits = model.get("persona_stability") or {}
    html = (folder / "index.html").read_text()
    for p in json.loads((folder / "personas.json").read_text()):
        assert p["segmentation"] == info["segmentation"]
        assert p["reproducibility"] == refits.get(str(p["id"]))
        assert 0 <= p["clear_share"] <= 1
        card = html.split(f'data-persona-id="{p["id"]}"', 1)[1].split("</header>", 1)[0]
        assert f"{p['clear_share'] * 100:.0f} %</span> of members clearly belong" in card
        if p["reproducibility"] is not None:
            assert f"{p['reproducibility'] * 100:.0f} %</span> the same in refits" in card
    if verdict:
        assert f"{verdict.capitalize()}</strong> segmentation" in html
    assert ('class="solidity"' in html) == bool(verdict or model.get("count_scores"))


def test_a_failed_run_keeps_the_previous_good_run(demo_run, tmp_path):
    target = tmp_path / "kept"
    target.mkdir()
    (target / "index.html").write_text("earlier report")
    bad = PersonaParams(events_path=str(tmp_path / "missing.csv"), output_dir=str(target))
    with pytest.raises(InputError, match="does not exist"):
        pipeline.run(bad)
    assert (target / "index.html").read_text() == "earlier report"
    assert [p.name for p in tmp_path.iterdir()] == ["kept"]


def test_renames_follow_the_persona_and_unused_ones_are_reported(tmp_path):
    small = dict(sample_users=400, sample_size=400)
    first = pipeline.run(PersonaParams(**small, output_dir=str(tmp_path / "a")))
    old = first.profiles[0].name
    renames = tmp_path / "renames.yaml"
    renames.write_text(f"'{old}': Our Researchers\nNo Such Persona: Nobody\n")
    second = pipeline.run(
        PersonaParams(**small, output_dir=str(tmp_path / "b"), renames_path=str(renames))
    )
    top = second.profiles[0]
    assert (top.name, top.default_name, top.size) == (
        "Our Researchers",
        old,
        first.profiles[0].size,
    )
    assert [p.name for p in second.profiles[1:]] == [p.name for p in first.profiles[1:]]
    info = json.loads((second.run_dir / "run.json").read_text())
    assert info["renames_unused"] == ["No Such Persona"]
    exported = json.loads((second.run_dir / "personas.json").read_text())
    assert exported[0]["name"] == "Our Researchers" and exported[0]["default_name"] == old
    assert (second.assignments["persona"] == "Our Researchers").sum() == top.size


def test_a_rules_file_replaces_the_packaged_names(tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - name: Big Buyer\n    family: buyer\n    when: {orders: high}\n")
    result = pipeline.run(
        PersonaParams(
            sample_users=400,
            sample_size=400,
            output_dir=str(tmp_path / "run"),
            rules_path=str(rules),
        )
    )
    names = [p.name for p in result.profiles]
    assert "Big Buyer" in names and len(set(names)) == len(names)
    # the others are average, or named by the packaged words (the file has no tags of its own)
    assert all(p.rule in ("Big Buyer", "Everyday Customer", "") for p in result.profiles), names
    assert not any("·" in n for n in names), names


def test_each_step_takes_the_values_the_earlier_steps_used_and_02_names_like_03(tmp_path):
    """The notebooks' parameters cells are separate: a step given other values than an earlier
    one used stops and names both, and the names 02 shows are the report's."""
    params = PersonaParams(
        sample_users=400, sample_size=400, n_fits=2, output_dir=str(tmp_path / "run")
    )
    pipeline.features_step(params)
    with pytest.raises(
        OutputError,
        match=r"^no personas step found in .*; run 02_personas \(or "
        r"model_step\) first with the same output_dir$",
    ):
        pipeline.report_step(params)
    with pytest.raises(
        ParameterError,
        match=(
            r"^parameter session_gap_minutes=45 differs from session_gap_minutes=30, which the "
            r"features step \(01_features\) of this run used; give every notebook of the run the "
            r"same value, or re-run 01_features with session_gap_minutes=45$"
        ),
    ) as info:
        pipeline.model_step(params.replace(session_gap_minutes=45))
    assert info.value.name == "session_gap_minutes"
    pipeline.model_step(params.replace(max_personas=7))  # 02 may try other model settings
    pipeline.model_step(params)
    names = pipeline.persona_names(params)
    assert pipeline.model_info(params)["personas"] == len(names)
    assert set(pipeline.map_points(params)["persona_id"]) <= set(names)
    with pytest.raises(
        ParameterError,
        match=(
            r"^parameter max_personas=6 differs from max_personas=8, which the personas step "
            r"\(02_personas\) of this run used; give every notebook of the run the same value, "
            r"or re-run 02_personas with max_personas=6$"
        ),
    ):
        pipeline.report_step(params.replace(max_personas=6))
    result = pipeline.report_step(params.replace(title="Ours"))  # the report's own parameter
    assert names == {p.id: p.name for p in result.profiles}
    assert list(result.traits.index) == [p.name for p in result.profiles]
    assert json.loads((result.run_dir / "run.json").read_text())["parameters"]["max_personas"] == 8


def test_02_and_03_re_run_on_a_published_run_reuse_its_features_while_the_input_is_the_same(
    tmp_path,
):
    """The researcher's loop after 03 has published: other model settings need no 01 again."""
    events = tmp_path / "events.csv"
    from personas.sample import write_sample

    write_sample(events, 400, seed=3)
    params = PersonaParams(
        events_path=str(events), sample_size=400, n_fits=2, output_dir=str(tmp_path / "run")
    )
    pipeline.features_step(params)
    pipeline.model_step(params)
    first = pipeline.report_step(params)
    features = pd.read_parquet(first.run_dir / "features.parquet")
    other = params.replace(max_personas=5, min_personas=3)
    pipeline.model_step(other)  # no "no features step found"
    second = pipeline.report_step(other)
    assert second.run_dir == first.run_dir
    run = json.loads((second.run_dir / "run.json").read_text())
    assert (run["parameters"]["max_personas"], run["parameters"]["min_personas"]) == (5, 3)
    assert 3 <= len(second.profiles) <= 5
    pd.testing.assert_frame_equal(pd.read_parquet(second.run_dir / "features.parquet"), features)
    assert not pipeline.stage_dir(params).exists()
    with pytest.raises(
        ParameterError,
        match=r"^parameter session_gap_minutes=45 differs from "
        r"session_gap_minutes=30, which the features step",
    ):
        pipeline.model_step(params.replace(session_gap_minutes=45))
    write_sample(events, 500, seed=4)  # new data under the same name
    with pytest.raises(
        OutputError,
        match=r"^the input of '.*run' has changed since its features "
        r"were computed; run 01_features \(or features_step\) "
        r"again$",
    ):
        pipeline.model_step(params)
    assert (second.run_dir / "index.html").exists()  # the published run is untouched


def test_the_saved_model_assigns_a_few_users_as_it_assigned_them_among_everyone(demo_run):
    """``personas assign`` prepares new users with the fitted medians, not with their own."""
    from personas.features import model_matrix
    from personas.model import PersonaModel

    folder = demo_run.run_dir
    features = pd.read_parquet(folder / "features.parquet")
    published = demo_run.assignments.set_index("user_id")
    non_buyers = features[features["orders"] == 0].head(20)
    model = PersonaModel.load(folder / "model")
    labels, confidence = model.predict_with_confidence(non_buyers)
    assert labels.tolist() == published.loc[non_buyers.index, "persona_id"].tolist()
    assert np.allclose(confidence, published.loc[non_buyers.index, "confidence"], atol=1e-4)
    # with their own medians, non-buyers (no order value among them) would sit at order value 0
    own, columns = model_matrix(non_buyers)
    centre = model.preprocessor_.centres_["avg_order_value"]
    assert (own[:, columns.index("avg_order_value")] == 0).all() and centre > 3
    assert (model.preprocessor_.transform(non_buyers)["avg_order_value"] == centre).all()


def test_run_takes_a_model_of_your_own_and_records_its_settings(tmp_path):
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA

    from personas.model import PersonaModel

    mine = PersonaModel(
        reducer=PCA(n_components=3),
        clusterer=KMeans(n_clusters=5, n_init=4),
        max_personas=6,
        n_fits=2,
    )
    params = PersonaParams(sample_users=600, output_dir=str(tmp_path / "run"), random_state=3)
    result = pipeline.run(params, progress=False, model=mine)
    assert mine.random_state is None and not hasattr(mine.clusterer, "labels_")  # untouched
    run = json.loads((result.run_dir / "run.json").read_text())
    assert (run["parameters"]["max_personas"], run["parameters"]["n_fits"]) == (6, 2)
    assert run["parameters"]["random_state"] == 3  # the model had none: the run's
    model = run["model"]
    assert model["params"]["reducer"] == "PCA(n_components=3)"
    assert model["params"]["clusterer"] == "KMeans(n_clusters=5, n_init=4)"
    assert model["params"]["preprocessor"] == "FeatureMatrix()"
    assert (model["params"]["max_personas"], model["params"]["random_state"]) == (6, 3)
    assert (model["clusters_found"], model["split_by"]) == (5, "2-means bisection")
    assert set(model["count_scores"]) == {"4", "5", "6"}
    assert 4 <= len(result.profiles) <= 6 and len(result.assignments) == 600
    assert "KMeans(n_clusters=5, n_init=4)" in (result.run_dir / "index.html").read_text()
    # 02 with a model whose settings differ from the parameters: 03 must be given its values
    pipeline.model_step(params, progress=False, model=mine.set_params(max_personas=5))
    with pytest.raises(
        ParameterError,
        match=r"^parameter max_personas=8 differs from "
        r"max_personas=5, which the personas step",
    ):
        pipeline.report_step(params)
    with pytest.raises(
        ParameterError,
        match=r"^model=KMeans\(\) is not a PersonaModel; give "
        r"your clusterer or reducer to one",
    ):
        pipeline.run(params, progress=False, model=KMeans())


def test_above_csv_max_users_only_assignments_parquet_is_written(demo_run, tmp_path, monkeypatch):
    from personas import results

    users = len(demo_run.assignments)
    for limit, folder in ((users, tmp_path / "csv"), (users - 1, tmp_path / "parquet")):
        monkeypatch.setattr(results, "CSV_MAX_USERS", limit)
        folder.mkdir()
        pipeline._write_exports(folder, demo_run.profiles, demo_run.assignments)
    written = pd.read_parquet(tmp_path / "csv" / "assignments.parquet")
    # up to the limit both files, with the same rows; one user more, the Parquet file alone
    as_csv = pd.read_csv(tmp_path / "csv" / "assignments.csv", dtype={"user_id": str})
    assert as_csv["user_id"].tolist() == written["user_id"].tolist() and len(written) == users
    assert not (tmp_path / "parquet" / "assignments.csv").exists()
    assert pd.read_parquet(tmp_path / "parquet" / "assignments.parquet").equals(written)
    assert pipeline.users_export(users) == "assignments.parquet"
    monkeypatch.setattr(results, "CSV_MAX_USERS", users)
    assert pipeline.users_export(users) == "assignments.csv"
