"""PersonaModel: count control, determinism, assignment, save/load, tiny inputs, plug-ins,
fitted preprocessing and scikit-learn's estimator checks."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from personas import model as model_module
from personas.errors import InputError, ParameterError, TooFewUsersError
from personas.features import model_matrix
from personas.grouping import (
    align,
    bisect_groups,
    choose_count,
    common_counts,
    consensus,
    cut_condensed_tree,
    join_noise,
    merge_by_ward,
    relabel_by_size,
)
from personas.model import MIN_USERS, FeatureMatrix, PersonaModel


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
    b = np.array([1, 1, 1, 0, 0, 0, 2, 2, 2])  # a renumbered
    c = np.array([0, 0, 1, 1, 1, 1, 2, 2, 2])  # one row moved
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
    model = PersonaModel(sample_size=1000, random_state=0, min_personas=4, max_personas=8)
    return model.fit(X), X, y


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
    # the planted count is reproduced as well as any (merging the six blobs into four the same
    # way every time is reproducible too: choose_count then prefers the better separated one)
    assert scores[6] == max(scores.values()) and scores[6] > 0.95
    assert model.info_["fits"] == model.info_["fits_fitted"] == 5 and model.stability_ > 0.95
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


def test_bisection_splits_the_widest_group_until_k_and_the_splits_nest():
    rng = np.random.default_rng(0)
    # group 0: two tight halves far apart (wide); group 1: tight; the last row is noise
    embedding = np.concatenate(
        [rng.normal(0, 0.1, 20), rng.normal(3, 0.1, 20), rng.normal(10, 0.1, 15)]
    )[:, None]
    labels = np.array([0] * 40 + [1] * 14 + [-1])
    three = bisect_groups(embedding, labels, 3, seed=0)
    assert three.max() + 1 == 3 and three[-1] == -1
    assert len(set(three[:20])) == len(set(three[20:40])) == len(set(three[40:54])) == 1
    assert len({three[0], three[20], three[40]}) == 3  # the wide group was split
    four = bisect_groups(embedding, labels, 4, seed=0)
    assert four.max() + 1 == 4
    assert all(len(set(three[four == g])) == 1 for g in range(4))  # inside the groups of 3
    # all rows noise: they are one group to split; identical rows cannot be split
    assert bisect_groups(embedding, np.full(55, -1), 2, seed=0).max() + 1 == 2
    assert bisect_groups(np.zeros((10, 2)), np.zeros(10, np.int64), 3, 0).tolist() == [0] * 10


def test_pca_and_kmeans_replace_umap_and_hdbscan_and_stay_unfitted():
    X, y = blobs(60, SIX)
    reducer, clusterer = PCA(n_components=3), KMeans(n_clusters=6, n_init=4, random_state=0)
    model = PersonaModel(
        reducer=reducer,
        clusterer=clusterer,
        n_fits=2,
        random_state=0,
        min_personas=4,
        max_personas=8,
    ).fit(X)
    assert not hasattr(reducer, "components_") and not hasattr(clusterer, "labels_")
    assert model.embedding_.shape == (360, 3) and model.info_["clusters_found"] == 6
    # k-means' six groups are merged to 4 and 5 and split (2-means, no tree) to 7 and 8
    assert set(model.info_["count_scores"]) == {"4", "5", "6", "7", "8"}
    assert model.info_["split_by"] == "2-means bisection"
    assert model.info_["personas"] == 6
    assert adjusted_rand_score(y, model.predict(X)) == 1.0
    assert model.info_["reducer"] == "PCA(n_components=3)"
    assert model.info_["clusterer"] == "KMeans(n_clusters=6, n_init=4, random_state=0)"


def test_kmeans_with_too_few_groups_is_split_up_to_the_persona_count():
    X, y = blobs(60, SIX)
    model = PersonaModel(
        reducer=PCA(n_components=3),
        clusterer=KMeans(n_clusters=2, n_init=4),
        n_fits=2,
        random_state=0,
        min_personas=4,
        max_personas=8,
    ).fit(X)
    assert model.info_["clusters_found"] == 2
    assert set(model.info_["count_scores"]) == {"4", "5", "6", "7", "8"}
    assert model.info_["personas"] == 6
    assert adjusted_rand_score(y, model.predict(X)) == 1.0


def test_common_counts_keeps_the_counts_every_fit_reached_or_only_the_first_fit():
    a, b = np.array([0, 1]), np.array([1, 0])
    fits, votes = common_counts([{4: a, 5: b}, {5: a, 6: b}, {5: b, 4: a}])
    assert fits == 3 and list(votes) == [5]
    assert [v.tolist() for v in votes[5]] == [[1, 0], [0, 1], [1, 0]]
    fits, votes = common_counts([{5: b, 4: a}, {6: a}])  # nothing in common: the first fit
    assert fits == 1 and list(votes) == [4, 5] and votes[4][0] is a


class RandomGroups(KMeans):
    """A clusterer whose groups are random: fits with other seeds never agree."""

    def fit_predict(self, X, y=None, sample_weight=None):
        return np.random.default_rng(self.random_state).integers(0, 8, len(X))


def test_fits_that_reproduce_no_count_get_rounds_of_more_fits_up_to_max_fits():
    X, _ = blobs(60, SIX)
    kwargs = dict(reducer=PCA(n_components=3), clusterer=RandomGroups(), random_state=0)
    model = PersonaModel(n_fits=2, max_fits=5, **kwargs).fit(X)
    assert max(model.info_["count_scores"].values()) < 0.5
    assert model.info_["fits_fitted"] == model.info_["fits"] == 5  # rounds of 2, 2 and 1
    assert "the 5 independent fits" in model.info_["count_rule"]
    assert PersonaModel(n_fits=2, max_fits=2, **kwargs).fit(X).info_["fits_fitted"] == 2
    assert PersonaModel(n_fits=1, max_fits=5, **kwargs).fit(X).info_["fits_fitted"] == 1
    # the first five fits are the same with or without the later rounds
    first = PersonaModel(n_fits=5, max_fits=5, **kwargs).fit(X)
    assert (first.sample_index_ == model.sample_index_).all()
    # a clear count is reproduced by the first round: no more fits
    clear = PersonaModel(
        reducer=PCA(n_components=3),
        clusterer=KMeans(n_clusters=6, n_init=4),
        n_fits=2,
        max_fits=10,
        random_state=0,
    ).fit(X)
    assert clear.info_["fits_fitted"] == 2 and clear.info_["personas"] == 6


class CentredRows:
    """A reducer with ``fit`` and ``transform`` only (no fit_transform, no get_params)."""

    def fit(self, X):
        self.mean_ = X.mean(axis=0)
        return self

    def transform(self, X):
        return X - self.mean_


class LabelsOnly:
    """A clusterer with ``fit`` and ``labels_`` only (no fit_predict, no get_params)."""

    def __init__(self, k):
        self.k = k

    def fit(self, X):
        self.labels_ = KMeans(n_clusters=self.k, n_init=4, random_state=0).fit_predict(X)
        return self


def test_any_object_with_fit_and_transform_or_labels_is_a_reducer_or_clusterer():
    X, y = blobs(60, SIX)
    reducer, clusterer = CentredRows(), LabelsOnly(6)
    model = PersonaModel(reducer=reducer, clusterer=clusterer, n_fits=2, random_state=0).fit(X)
    assert not hasattr(reducer, "mean_") and not hasattr(clusterer, "labels_")
    assert model.info_["reducer"] == "CentredRows" and model.info_["clusterer"] == "LabelsOnly"
    assert model.info_["personas"] == 6
    assert adjusted_rand_score(y, model.predict(X)) == 1.0


def test_persona_bounds_fit_count_and_preprocessor_are_checked_before_fitting():
    X, _ = blobs(20, SIX)
    with pytest.raises(ParameterError, match="min_personas=5 and max_personas=4"):
        PersonaModel(min_personas=5, max_personas=4).fit(X)
    with pytest.raises(ParameterError, match="n_fits=0 must be at least 1"):
        PersonaModel(n_fits=0).fit(X)
    with pytest.raises(
        ParameterError,
        match=r"preprocessor=StandardScaler\(\) is not "
        r"supported: a saved model holds JSON",
    ):
        PersonaModel(preprocessor=StandardScaler()).fit(X)


def test_missing_values_take_the_fitted_medians_whatever_else_is_assigned():
    X, _ = blobs(60, SIX)
    X.iloc[::7, 0] = np.nan
    model = PersonaModel(
        reducer=PCA(n_components=3),
        clusterer=KMeans(n_clusters=6, n_init=4),
        n_fits=1,
        random_state=0,
    ).fit(X)
    assert model.medians_ == pytest.approx(X.median().to_numpy())
    alone = X.iloc[[0]]  # f0 missing
    assert model.predict(alone)[0] == model.predict(X)[0]
    assert model.predict(alone)[0] == model.predict(alone.fillna({"f0": model.medians_[0]}))[0]
    # the rows with f0 missing, assigned among themselves, get what they got among everyone
    assert np.array_equal(model.predict(X.iloc[::7]), model.predict(X)[::7])


def feature_table(n: int, seed: int) -> pd.DataFrame:
    """A small table of catalogue features: order value only for buyers, some recency missing."""
    rng = np.random.default_rng(seed)
    orders = rng.poisson(1.0, n).astype("float64")
    table = pd.DataFrame(
        {
            "orders": orders,
            "avg_order_value": np.where(orders > 0, rng.lognormal(3, 0.5, n), np.nan),
            "purchase_rate": rng.beta(2, 8, n),
            "days_since_seen": rng.exponential(30, n),
            "active_days": rng.integers(1, 20, n).astype("float64"),
            "weekend_share": rng.uniform(0, 1, n),
            "role_view": rng.poisson(10, n).astype("float64"),
        },
        index=pd.Index([f"u{i}" for i in range(n)], name="user_id"),
    )
    table.iloc[:5, table.columns.get_loc("days_since_seen")] = np.nan
    return table


def test_feature_matrix_learns_the_centres_and_prepares_new_users_with_them():
    table = feature_table(200, 0)
    prep = FeatureMatrix().fit(table)
    assert list(prep.centres_) == [
        "avg_order_value",
        "purchase_rate",
        "days_since_seen",
        "weekend_share",
    ]
    assert prep.centres_["avg_order_value"] == pytest.approx(
        np.median(np.log1p(table["avg_order_value"].dropna()))
    )
    assert prep.needs_ == [*prep.centres_, "active_days", "orders"]
    everyone = prep.transform(table)
    assert np.array_equal(everyone.to_numpy(), model_matrix(table)[0])  # as before, on the fit
    non_buyers = table[table["orders"] == 0]
    alone = prep.transform(non_buyers)
    assert np.array_equal(alone.to_numpy(), everyone.loc[non_buyers.index].to_numpy())
    assert (alone["avg_order_value"] == prep.centres_["avg_order_value"]).all()
    # with their own medians, the non-buyers (no order value among them) would sit at 0
    assert (model_matrix(non_buyers)[0][:, 0] == 0).all()
    assert np.array_equal(prep.transform(table.iloc[:5]).to_numpy(), everyone.iloc[:5].to_numpy())
    with pytest.raises(InputError, match="the users to assign lack the model's features orders"):
        prep.transform(table.drop(columns="orders"))
    with pytest.raises(InputError, match="FeatureMatrix prepares a feature table .* got ndarray"):
        prep.transform(table.to_numpy())


def test_a_saved_model_prepares_a_few_users_as_it_prepared_everyone(tmp_path):
    table = feature_table(300, 1)
    given = FeatureMatrix()
    model = PersonaModel(
        preprocessor=given,
        reducer=PCA(n_components=2),
        clusterer=KMeans(n_clusters=3, n_init=4),
        n_fits=1,
        min_personas=2,
        max_personas=4,
        random_state=0,
    ).fit(table)
    assert not hasattr(given, "centres_")
    assert list(model.feature_names_in_) == list(model.preprocessor_.centres_)
    everyone, confidence = model.predict_with_confidence(table)
    few = table.iloc[:12]
    assert np.array_equal(model.predict(few), everyone[:12])
    with pytest.MonkeyPatch.context() as patch:  # assigned in chunks (of 7 here), same answer
        patch.setattr(model_module, "ASSIGN_CHUNK", 7)
        chunked, chunked_confidence = model.predict_with_confidence(table)
    assert np.array_equal(chunked, everyone) and np.array_equal(chunked_confidence, confidence)
    model.save(tmp_path / "model")
    state = json.loads((tmp_path / "model" / "model.json").read_text())
    assert state["preprocessor"]["centres"] == model.preprocessor_.centres_
    assert state["medians"] == model.medians_.tolist()
    loaded = PersonaModel.load(tmp_path / "model")
    labels, again = loaded.predict_with_confidence(few)
    assert np.array_equal(labels, everyone[:12]) and np.allclose(again, confidence[:12])
    assert isinstance(loaded.preprocessor, FeatureMatrix)


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
    with pytest.raises(InputError, match="Feature names seen at fit time, yet now missing:\n- f2"):
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


# scikit-learn's estimator checks. Their data sets have fewer than MIN_USERS rows in these
# checks, so fitting stops with TooFewUsersError there; every other check must pass.
FEW_ROWS = f"the check fits on fewer than MIN_USERS={MIN_USERS} rows: TooFewUsersError"
FITS_FEW_ROWS = (
    "check_fit_score_takes_y",
    "check_estimators_overwrite_params",
    "check_dont_overwrite_parameters",
    "check_estimators_fit_returns_self",
    "check_readonly_memmap_input",
    "check_n_features_in_after_fitting",
    "check_estimators_dtypes",
    "check_pipeline_consistency",
    "check_estimators_pickle",
    "check_f_contiguous_array_estimator",
    "check_methods_sample_order_invariance",
    "check_methods_subset_invariance",
    "check_fit2d_1sample",
    "check_fit2d_1feature",
    "check_dict_unchanged",
    "check_fit2d_predict1d",
)


def few_rows_fail(estimator) -> dict[str, str]:
    return dict.fromkeys(FITS_FEW_ROWS, FEW_ROWS)


SMALL = dict(n_fits=2, sample_size=200, min_personas=2, max_personas=3, random_state=0)


@parametrize_with_checks(
    [PersonaModel(reducer=PCA(n_components=2), clusterer=KMeans(n_clusters=3, n_init=2), **SMALL)],
    expected_failed_checks=few_rows_fail,
    xfail_strict=True,
)
def test_scikit_learn_checks_with_pca_and_kmeans(estimator, check):
    check(estimator)


@pytest.mark.slow
@parametrize_with_checks(
    [PersonaModel(n_epochs=20, n_neighbors=10, **SMALL)],
    expected_failed_checks=few_rows_fail,
    xfail_strict=True,
)
def test_scikit_learn_checks_with_umap_and_hdbscan(estimator, check):
    check(estimator)


def test_umaps_compiled_functions_are_cached_on_disk():
    # umap-learn and pynndescent compile hundreds of functions without numba's cache; the model
    # switches it on for every one of them, so a fresh process loads them instead of compiling
    from numba.core.caching import FunctionCache
    from umap import layouts

    from personas.model import cache_numba_compilation

    assert cache_numba_compilation() > 100
    assert isinstance(layouts._nb_optimize_layout_euclidean_single_epoch._cache, FunctionCache)


def _order_table(habit_spread: float, seed: int = 0) -> pd.DataFrame:
    """An order table's features: 2,000 users with 2-6 active days, of whom a weekend share of
    their days; every user's weekend chance is 2/7 give or take ``habit_spread``."""
    rng = np.random.RandomState(seed)
    days = rng.randint(2, 7, 2000)
    chance = np.clip(2 / 7 + rng.uniform(-habit_spread, habit_spread, 2000), 0, 1)
    weekend = rng.binomial(days, chance)
    return pd.DataFrame(
        {
            "orders": days,
            "days_since_seen": rng.uniform(0, 300, 2000),
            "weekend_share": weekend / days,
            "active_days": days,
        },
        index=pd.Index([f"u{i}" for i in range(2000)], name="user_id"),
    )


def test_a_share_that_is_only_luck_is_weighted_down_and_a_habit_is_not(tmp_path):
    from personas.features import share_reliability

    luck, habit = _order_table(0.0), _order_table(0.7)
    assert share_reliability(luck, ["weekend_share"])["weekend_share"] < 0.2
    assert share_reliability(habit, ["weekend_share"])["weekend_share"] > 0.6
    assert "days_since_seen" not in share_reliability(luck, ["days_since_seen", "weekend_share"])

    noisy = FeatureMatrix().fit(luck)
    assert set(noisy.weights_) == {"weekend_share"}
    assert FeatureMatrix().fit(habit).weights_ == {}
    # the weight is the column's share of every distance, and a saved model keeps it
    model = PersonaModel(preprocessor=FeatureMatrix(), n_fits=2, sample_size=500,
                         random_state=0).fit(luck)  # fmt: skip
    scaled = model.scaler_.transform(model._prepare(luck))
    j = list(model.preprocessor_.centres_).index("weekend_share")
    weight = max(noisy.weights_["weekend_share"], model_module.MIN_WEIGHT)
    assert scaled[:, j].std() == pytest.approx(weight, rel=1e-6)
    assert scaled[:, list(model.preprocessor_.centres_).index("orders")].std() == pytest.approx(1)
    assert model.info_["feature_weights"] == noisy.weights_
    again = PersonaModel.load(model.save(tmp_path / "model"))
    assert again.preprocessor_.weights_ == noisy.weights_
    assert (again.predict(luck) == model.predict(luck)).all()
