"""PersonaModel: count control, determinism, assignment, save/load, tiny inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from personas.errors import InputError, ParameterError, TooFewUsersError
from personas.model import (MIN_USERS, PersonaModel, align, choose_count, consensus,
                            cut_condensed_tree, join_noise, merge_by_ward, relabel_by_size)


def blobs(n_per: int, centres: list[list[float]], seed: int = 0, spread: float = 0.3):
    rng = np.random.default_rng(seed)
    X = np.vstack([rng.normal(c, spread, size=(n_per, len(c))) for c in centres])
    y = np.repeat(np.arange(len(centres)), n_per)
    return pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])]), y


SIX = [[0, 0, 0], [6, 0, 0], [0, 6, 0], [0, 0, 6], [6, 6, 0], [6, 0, 6]]


def test_relabel_by_size_numbers_largest_first_and_keeps_noise():
    assert relabel_by_size(np.array([5, 5, 2, -1, 2, 2, 9])).tolist() == [1, 1, 0, -1, 0, 0, 2]


def test_ward_merge_joins_the_nearest_clusters():
    X = np.array([[0.0], [0.1], [1.0], [1.1], [10.0], [10.1]])
    labels = np.array([0, 0, 1, 1, 2, 2])
    merged = merge_by_ward(X, labels, 2)
    assert merged[0] == merged[2] != merged[4]
    assert merge_by_ward(X, labels, 3).tolist() == labels.tolist()


def test_condensed_tree_cut_gives_exactly_k_clusters_along_the_hierarchy():
    import hdbscan

    X, y = blobs(40, [[0, 0], [0, 3], [20, 0], [20, 3]], spread=0.4)
    clusterer = hdbscan.HDBSCAN(min_cluster_size=15).fit(X.to_numpy())
    tree = clusterer.condensed_tree_.to_pandas()
    two = cut_condensed_tree(tree, len(X), 2)
    # the first split separates the far pairs: left blobs together, right blobs together
    assert two.max() + 1 == 2
    assert len(set(two[:80]) - {-1}) == 1 and len(set(two[80:]) - {-1}) == 1
    four = cut_condensed_tree(tree, len(X), 4)
    keep = four >= 0
    assert four.max() + 1 == 4
    assert adjusted_rand_score(y[keep], four[keep]) > 0.95


def test_noise_rows_join_the_persona_of_their_nearest_grouped_rows():
    X = np.concatenate([np.linspace(0, 1, 20), np.linspace(5, 6, 20), [1.5, 4.4]])[:, None]
    labels = np.array([0] * 20 + [1] * 20 + [-1, -1])
    joined = join_noise(X, labels)
    assert (joined >= 0).all()
    assert joined[40] == joined[0] != joined[41] == joined[20]


def test_align_renumbers_labels_to_match_an_anchor():
    anchor = np.array([0, 0, 1, 1, 2, 2])
    assert align(np.array([2, 2, 0, 0, 1, 1]), anchor).tolist() == anchor.tolist()
    # one row disagrees: the numbering still follows the majority of each group
    assert align(np.array([1, 1, 2, 0, 0, 0]), anchor).tolist() == [0, 0, 1, 2, 2, 2]


def test_consensus_takes_each_rows_most_frequent_persona_and_measures_agreement():
    a = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2])
    b = np.array([1, 1, 1, 0, 0, 0, 2, 2, 2])    # a renumbered
    c = np.array([0, 0, 1, 1, 1, 1, 2, 2, 2])    # one row moved
    final, per_fit, overlap = consensus([a, b, c])
    assert adjusted_rand_score(final, a) == 1.0
    assert per_fit[0] == per_fit[1] == 1.0 and per_fit[2] < 1.0
    # persona of rows 0-2: in fit c only two of its three rows stay together (Jaccard 2/3)
    first = final[0]
    assert overlap[first] == pytest.approx((1 + 1 + 2 / 3) / 3)
    assert all(v == 1.0 for p, v in overlap.items() if p == final[6])


def test_the_best_separated_reproducible_count_wins():
    separation = {4: 0.30, 5: 0.20, 6: 0.40}
    assert choose_count({4: 0.85, 5: 0.95, 6: 0.82}, separation) == 6
    assert choose_count({4: 0.85, 5: 0.95, 6: 0.70}, separation) == 4
    # no count reproduced: the most reproduced one, whatever its separation
    assert choose_count({4: 0.50, 5: 0.70, 6: 0.60}, separation) == 5


@pytest.fixture(scope="module")
def six_blob_model():
    X, y = blobs(60, SIX)
    return PersonaModel(sample_size=1000, random_state=0, min_personas=4, max_personas=8).fit(X), X, y


@pytest.mark.slow
def test_model_finds_planted_blobs_and_assigns_with_confidence(six_blob_model):
    model, X, y = six_blob_model
    labels, confidence = model.predict_with_confidence(X)
    assert adjusted_rand_score(y, labels) > 0.95
    assert model.info_["personas"] == 6 and len(np.unique(labels)) == 6
    assert ((0 <= confidence) & (confidence <= 1)).all() and confidence.mean() > 0.9


@pytest.mark.slow
def test_the_fits_agree_on_clear_structure_and_say_so(six_blob_model):
    model, _, _ = six_blob_model
    scores = {int(k): v for k, v in model.info_["count_scores"].items()}
    assert sorted(scores) == [4, 5, 6, 7, 8]
    assert max(scores, key=scores.get) == 6 and scores[6] > 0.95
    assert model.info_["fits"] == 5 and model.stability_ > 0.95
    assert set(model.persona_stability_) == set(range(6))
    assert all(0.9 < v <= 1 for v in model.persona_stability_.values())


@pytest.mark.slow
def test_count_control_merges_when_bounds_are_lower_than_the_structure(six_blob_model):
    _, X, y = six_blob_model
    model = PersonaModel(sample_size=1000, random_state=0, min_personas=2, max_personas=3).fit(X)
    assert model.info_["personas"] in (2, 3)
    assert len(np.unique(model.predict(X))) == model.info_["personas"]
    assert set(model.info_["count_scores"]) == {"2", "3"}


@pytest.mark.slow
def test_fit_predict_labels_every_row_not_only_the_sample():
    X, y = blobs(200, SIX, seed=1)
    model = PersonaModel(sample_size=300, n_fits=2, random_state=0)
    labels = model.fit_predict(X)
    assert len(labels) == len(X) and adjusted_rand_score(y, labels) > 0.95


@pytest.mark.slow
def test_user_given_reducer_and_clusterer_are_cloned_and_may_lack_a_hierarchy():
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA

    X, y = blobs(60, SIX)
    reducer, clusterer = PCA(n_components=3), KMeans(n_clusters=6, n_init=4, random_state=0)
    model = PersonaModel(reducer=reducer, clusterer=clusterer, n_fits=2, random_state=0,
                         min_personas=4, max_personas=8).fit(X)
    assert not hasattr(reducer, "components_") and not hasattr(clusterer, "labels_")
    assert adjusted_rand_score(y, model.predict(X)) > 0.95
    # k-means has no condensed tree: asked for more personas than it finds, it keeps its own
    few = PersonaModel(reducer=reducer, clusterer=KMeans(n_clusters=2, n_init=4, random_state=0),
                       n_fits=1, random_state=0, min_personas=4, max_personas=8).fit(X)
    assert few.info_["personas"] == 2


def test_persona_bounds_and_fit_count_are_checked_before_fitting():
    X, _ = blobs(20, SIX)
    with pytest.raises(ParameterError, match="min_personas=5 and max_personas=4"):
        PersonaModel(min_personas=5, max_personas=4).fit(X)
    with pytest.raises(ParameterError, match="n_fits=0 must be at least 1"):
        PersonaModel(n_fits=0).fit(X)


@pytest.mark.slow
def test_same_seed_gives_identical_personas_and_another_seed_agrees(six_blob_model):
    model, X, _ = six_blob_model
    again = PersonaModel(sample_size=1000, random_state=0, min_personas=4, max_personas=8).fit(X)
    assert np.array_equal(model.predict(X), again.predict(X))
    other = PersonaModel(sample_size=1000, random_state=1, min_personas=4, max_personas=8).fit(X)
    assert adjusted_rand_score(model.predict(X), other.predict(X)) > 0.9


@pytest.mark.slow
def test_fit_on_a_sample_assigns_unseen_users(six_blob_model):
    X, y = blobs(200, SIX, seed=1)
    model = PersonaModel(sample_size=400, random_state=0).fit(X)
    assert len(model.sample_index_) == 400
    unseen, y_unseen = blobs(30, SIX, seed=2)
    assert adjusted_rand_score(y_unseen, model.predict(unseen)) > 0.95


@pytest.mark.slow
def test_save_and_load_round_trip_gives_the_same_assignments(six_blob_model, tmp_path):
    model, X, _ = six_blob_model
    model.save(tmp_path / "model", versions={"personas": "test"})
    loaded = PersonaModel.load(tmp_path / "model")
    a, ca = model.predict_with_confidence(X)
    b, cb = loaded.predict_with_confidence(X)
    assert np.array_equal(a, b) and np.allclose(ca, cb)
    assert list(loaded.feature_names_in_) == list(X.columns)
    assert not list((tmp_path / "model").glob("*.pkl"))


@pytest.mark.slow
def test_assigning_users_without_the_model_features_is_a_clear_error(six_blob_model):
    model, X, _ = six_blob_model
    with pytest.raises(InputError, match="lack the model's features f2"):
        model.predict(X.drop(columns="f2"))


def test_loading_a_folder_without_a_model_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="does not hold a saved persona model"):
        PersonaModel.load(tmp_path)


def test_too_few_users_is_a_clear_error():
    X, _ = blobs(5, SIX[:2])
    with pytest.raises(TooFewUsersError, match=f"at least {MIN_USERS}") as info:
        PersonaModel().fit(X)
    assert info.value.found == 10 and info.value.minimum == MIN_USERS


@pytest.mark.slow
def test_unstructured_data_still_yields_bounded_personas():
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(MIN_USERS + 10, 3)), columns=list("abc"))
    model = PersonaModel(random_state=0, min_personas=2, max_personas=4).fit(X)
    labels = model.predict(X)
    assert 1 <= len(np.unique(labels)) <= 4
    assert (labels >= 0).all()
