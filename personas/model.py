"""PersonaModel: scale -> UMAP -> HDBSCAN -> count control, over several fits -> assign everyone.

The model is fitted on random samples of users (UMAP is the costly step) and then assigns every
user to the persona of its nearest fitted neighbours in the scaled feature space, with the share of
agreeing neighbours as the confidence. That rule needs only the scaled sample and its labels, so a
saved model is a folder of JSON and Parquet, with no pickle.

One fit, step by step:

1. UMAP embeds the scaled sample. Its neighbour graph is computed exactly by scikit-learn and
   handed to UMAP (``precomputed_knn``): that skips pynndescent, whose numba compilation costs
   ~20 s in every fresh process, and UMAP's small-data path, which calls a Python distance
   function n^2 times.
2. HDBSCAN, with ``leaf`` selection and a small ``min_samples``, finds many small, dense, pure
   groups in the embedding and leaves the users between them as noise.
3. Count control: for every count in [min_personas, max_personas] the groups are merged by Ward
   linkage of their centres in the scaled feature space (or, when HDBSCAN found fewer groups,
   split along its condensed tree; a clusterer without one has its widest group split by
   2-means instead), and each noise user joins the persona most of its nearest
   grouped users have. No k-means afterwards: moving every user to its nearest persona centre
   undid the shapes the groups had and lowered the agreement with planted personas on the
   random worlds of docs/model.md.

Several fits (``n_fits``), each on its own sample with its own UMAP seed, then decide together:

4. The count: among the counts whose groupings the fits reproduce (mean adjusted Rand index
   between the fits' personas of the same users at least ``REPRODUCIBLE``), the one whose
   personas are best separated (mean silhouette over the fits). A count that only one layout
   of the data supports changes from seed to seed, and two clear groups merged the same way
   every time are reproducible too: the count has to pass both tests. When the fits reproduce
   no count, rounds of ``n_fits`` more fits are added, up to ``max_fits``, and then the most
   reproduced count is taken: averaged over fifteen layouts instead of five (the defaults),
   which count that is and how its users are grouped change far less with the seed
   (docs/model-variants.md, "Fifth sitting").
5. The personas: each user of the first fit's sample takes the persona most fits give it, once
   the fits' persona numbers are matched to those of the fit that agrees best with the others.
   The agreement of each fit with this consensus is the model's stability, and how well each
   persona comes back in every fit its reproducibility: both go to the report.

Before all this, ``fit`` learns how to prepare users, and :meth:`PersonaModel.save` keeps it:
the optional ``preprocessor`` (:class:`FeatureMatrix` turns a feature table into the model
columns, with the fitted users' medians as the values missing and thin data are pulled toward),
the medians that fill any value still missing, and the standardisation. Users assigned later
are prepared with these, never with statistics of their own batch.

UMAP and HDBSCAN are the defaults, not requirements: ``reducer`` takes any object with
``fit_transform`` (PCA...) and ``clusterer`` any with ``fit_predict`` or ``labels_`` (k-means...).

Steps 2 to 5 work on arrays of labels and live in :mod:`personas.grouping`; this module holds
the estimator (preparing, fitting, assigning, saving). Why each step is there, with the
measurements on many random worlds: docs/model.md.

Why it is long: one scikit-learn estimator with its preprocessor, fit, assignment, persistence
and their checks; the grouping steps are in :mod:`personas.grouping`.
"""

from __future__ import annotations

import functools
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClusterMixin, TransformerMixin, clone
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from .errors import InputError, ParameterError, TooFewUsersError
from .grouping import (
    ASSIGN_NEIGHBOURS,
    REPRODUCIBLE,
    candidate_groupings,
    choose_count,
    common_counts,
    consensus,
    mean_agreement,
    vote,
)

MIN_USERS = 50  # below this there is nothing to cluster
ASSIGN_CHUNK = 100_000  # users assigned per batch, to bound memory
MIN_SAMPLES = 10  # HDBSCAN density smoothing: small, so clusters come out small and pure
MIN_WEIGHT = 0.01  # the least weight a noisy share keeps (0 would divide by zero)
MAP_EPOCHS = 100  # UMAP rounds of the 2-D persona map (a picture, not the model)


def require_users(found: int, source: str | None = None) -> None:
    """Raise TooFewUsersError below :data:`MIN_USERS` users (naming the file when known)."""
    if found >= MIN_USERS:
        return
    if source is None:
        message = (
            f"found {found} users; persona discovery needs at least {MIN_USERS} (use a "
            "longer window or a larger export)"
        )
    else:
        message = (
            f"events file {source!r} has {found} users after cleaning; persona "
            f"discovery needs at least {MIN_USERS}; use a longer window or a larger export"
        )
    raise TooFewUsersError(message, found=found, minimum=MIN_USERS, path=source)


def draw_sample(n_rows: int, size: int, rng: np.random.RandomState) -> np.ndarray:
    """Sorted row indices of a uniform sample of ``size`` rows (all rows when fewer)."""
    if n_rows <= size:
        return np.arange(n_rows)
    return np.sort(rng.choice(n_rows, size=size, replace=False))


UMAP_MODULES = (
    "umap.umap_",
    "umap.layouts",
    "umap.spectral",
    "umap.utils",
    "umap.distances",
    "umap.sparse",
    "pynndescent.distances",
    "pynndescent.utils",
    "pynndescent.sparse",
    "pynndescent.rp_trees",
    "pynndescent.pynndescent_",
)


@functools.cache
def cache_numba_compilation() -> int:
    """Turn on numba's on-disk cache for umap-learn's and pynndescent's compiled functions.

    Most of them are compiled without ``cache=True``, so every fresh process (each notebook kernel,
    each CLI run) compiles them again. With the cache, the compiled machine code is written once
    (beside the module, or in numba's user cache folder when that is read-only) and loaded
    afterwards: a 2,000-user run in a fresh process takes about a fifth less CPU
    (docs/benchmarks.md). ``enable_caching`` is the dispatcher's own method, the one
    ``cache=True`` calls; calling it on a function already cached changes nothing. Done once per
    process (every fit embeds twice: the model and the map). Returns the number of functions.
    """
    import importlib

    from numba.core.dispatcher import Dispatcher

    cached = 0
    for name in UMAP_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        for obj in vars(module).values():
            if isinstance(obj, Dispatcher):
                obj.enable_caching()
                cached += 1
    return cached


def embed(
    scaled: np.ndarray, n_components: int, n_neighbors: int, seed: int, n_epochs: int
) -> np.ndarray:
    """UMAP embedding of ``scaled`` (min_dist=0 packs groups tightly, as clustering wants).

    The exact neighbour graph comes from scikit-learn (a tree or BLAS search, well under a second
    for the sample sizes fitted here) and is handed to UMAP, see the module docstring.
    """
    import umap  # imported here: it compiles with numba, and only fitting needs it
    from sklearn.neighbors import NearestNeighbors

    cache_numba_compilation()
    n_neighbors = min(n_neighbors, len(scaled) - 1)
    distances, indices = NearestNeighbors(n_neighbors=n_neighbors).fit(scaled).kneighbors(scaled)
    reducer = umap.UMAP(
        n_components=n_components,
        n_neighbors=n_neighbors,
        min_dist=0.0,
        n_epochs=n_epochs,
        random_state=seed,
        n_jobs=1,
        precomputed_knn=(indices, distances),
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*n_jobs value.*")
        warnings.filterwarnings("ignore", message=".*precomputed_knn.*")
        return np.asarray(reducer.fit_transform(scaled), dtype="float64")


def default_min_cluster_size(n_rows: int) -> int:
    """HDBSCAN's smallest group when ``min_cluster_size`` is 0: 0.5 % of the fitted sample, at
    least 10 users."""
    return max(10, int(0.005 * n_rows))


def make_clusterer(min_cluster_size: int):
    """The default clusterer: HDBSCAN with ``leaf`` selection (module docstring, step 2)."""
    import hdbscan

    return hdbscan.HDBSCAN(
        min_cluster_size=min_cluster_size, min_samples=MIN_SAMPLES, cluster_selection_method="leaf"
    )


def fresh(estimator, seed: int):
    """An unfitted copy of a user's reducer or clusterer (the caller's object stays unfitted),
    given this fit's ``seed`` when it takes a ``random_state``: the fits differ from one another,
    and the model's ``random_state`` repeats them all."""
    copy = clone(estimator, safe=False)  # objects without get_params are deep-copied
    if hasattr(copy, "get_params") and "random_state" in copy.get_params():
        copy.set_params(random_state=seed)
    return copy


def describe(estimator) -> str:
    """A user's reducer or clusterer as written in Python (``PCA(n_components=3)``), for
    ``info_`` and run.json; the class name for an object that is no scikit-learn estimator."""
    if hasattr(estimator, "get_params"):
        return " ".join(repr(estimator).split())
    return type(estimator).__name__


def reduce(reducer, sample: np.ndarray) -> np.ndarray:
    """A user reducer's embedding of ``sample``: ``fit_transform`` where it has one, else
    ``fit`` then ``transform``."""
    if hasattr(reducer, "fit_transform"):
        embedding = reducer.fit_transform(sample)
    else:
        reducer.fit(sample)
        embedding = reducer.transform(sample)
    return np.asarray(embedding, dtype="float64")


class FeatureMatrix(TransformerMixin, BaseEstimator):
    """Feature table -> the model's matrix (:func:`personas.features.model_matrix`), with the
    typical values of the users it was fitted on.

    The model columns of the catalogue are kept, heavy-tailed counts log1p-transformed, and
    missing or thinly evidenced values filled or pulled toward the fitted users' medians
    (``centres_``). As :class:`PersonaModel`'s ``preprocessor`` it is fitted and saved with the
    model, so that users assigned later (``personas assign``) are prepared with the fitted users'
    medians, not their own: a lone new user is filled exactly as the same user was at fit time.
    The pipeline gives every model this preprocessor.

    Attributes
    ----------
    centres_ : model column -> median of its transformed values over the fitted users
    needs_ : the columns :meth:`transform` reads (the model columns and their evidence counts)
    weights_ : noisy share -> its weight in the model's distances, its reliability
        (:func:`personas.features.share_reliability`), for the shares below
        :data:`~personas.features.NOISY_SHARE`: a weekend share of users seen on a few days is
        mostly luck, and would otherwise split personas by it (docs/model-variants.md)
    """

    def fit(self, X, y=None):
        from .features import BY_NAME, NOISY_SHARE, model_centres, share_reliability

        self.centres_ = model_centres(self._table(X))
        if not self.centres_:
            raise InputError(
                "the feature table has none of the catalogue's model features "
                f"(found: {', '.join(map(str, list(X.columns)[:8]))}); give the "
                "table of personas.features.compute_features"
            )
        evidence = {BY_NAME[c].evidence for c in self.centres_} - {""}
        self.needs_ = [*self.centres_, *sorted(evidence - set(self.centres_))]
        reliability = share_reliability(X, list(self.centres_))
        self.weights_ = {c: round(r, 4) for c, r in reliability.items() if r < NOISY_SHARE}
        return self

    def column_weights(self) -> np.ndarray:
        """The weight of each column :meth:`transform` gives, once standardised: 1, or a noisy
        share's reliability (never below :data:`MIN_WEIGHT`)."""
        return np.array([max(self.weights_.get(c, 1.0), MIN_WEIGHT) for c in self.centres_])

    def transform(self, X) -> pd.DataFrame:
        """The model columns of the table ``X`` (one row per user, index kept)."""
        from .features import BY_NAME, model_matrix

        check_is_fitted(self, "centres_")
        table = self._table(X)
        unknown = [c for c in self.centres_ if c not in BY_NAME]
        if unknown:
            raise InputError(
                f"the model uses your own features {', '.join(unknown)}, which are "
                "not defined here; give the features_path the model was fitted "
                "with (-p features_path=...)"
            )
        missing = [c for c in self.needs_ if c not in table.columns]
        if missing:
            raise InputError(
                f"the users to assign lack the model's features "
                f"{', '.join(missing)}; compute them from the same kind of event "
                "log the model was fitted on"
            )
        matrix, columns = model_matrix(table, self.centres_)
        return pd.DataFrame(matrix, columns=columns, index=table.index)

    @staticmethod
    def _table(X) -> pd.DataFrame:
        if not isinstance(X, pd.DataFrame):
            raise InputError(
                f"FeatureMatrix prepares a feature table (a DataFrame with the "
                f"catalogue's columns, as compute_features returns), got "
                f"{type(X).__name__}"
            )
        return X

    def to_dict(self) -> dict:
        """The fitted state, for ``model.json``."""
        return {
            "kind": "FeatureMatrix",
            "centres": self.centres_,
            "needs": self.needs_,
            "weights": self.weights_,
        }

    @classmethod
    def from_dict(cls, state: dict) -> FeatureMatrix:
        fitted = cls()
        fitted.centres_ = {str(k): float(v) for k, v in state["centres"].items()}
        fitted.needs_ = list(state["needs"])
        fitted.weights_ = {str(k): float(v) for k, v in state.get("weights", {}).items()}
        return fitted


def column_medians(X: np.ndarray) -> np.ndarray:
    """Median of each column over its present values (0 for a column with none)."""
    present = ~np.isnan(X)
    return np.array(
        [
            float(np.median(X[present[:, j], j])) if present[:, j].any() else 0.0
            for j in range(X.shape[1])
        ]
    )


class PersonaModel(ClusterMixin, BaseEstimator):
    """Find personas in a user x feature matrix; assign any user to one.

    Parameters
    ----------
    n_components, n_neighbors
        UMAP embedding size and neighbourhood (see :class:`personas.params.PersonaParams`);
        unused with a ``reducer``.
    min_personas, max_personas
        Persona count bounds (see the module docstring for how the count is chosen).
    min_cluster_size
        HDBSCAN's smallest cluster; 0 = 0.5 % of the fitted sample (at least 10). Unused with a
        ``clusterer``.
    sample_size
        Users each fit is fitted on.
    n_epochs
        UMAP's optimisation rounds (its own default is 500 below 10,000 points; the layout is
        only clustered, so 100 do: docs/model.md).
    n_fits
        Independent fits, each on its own sample with its own UMAP seed, that choose the count
        and the personas together (see the module docstring); 1 = a single fit, whose count is
        then the one with the best silhouette.
    max_fits
        The most fits: while the fits so far reproduce no persona count, another ``n_fits`` are
        fitted, up to ``max(n_fits, max_fits)``. Data with a clear count costs ``n_fits`` fits;
        a count the layouts disagree on gets more of them to average, so that the seed changes
        the answer less (docs/model-variants.md). ``max_fits=n_fits`` turns the extra fits off.
    reducer
        Replaces UMAP: any object with ``fit_transform``, or ``fit`` and ``transform`` (PCA,
        ...).
    clusterer
        Replaces HDBSCAN: any object with ``fit_predict``, or ``fit`` and ``labels_`` (-1 =
        noise). Count control works on its groups: merged by Ward linkage down to each count,
        split up to it along HDBSCAN's ``condensed_tree_`` where the clusterer has one, else by
        2-means on the widest group (:func:`bisect_groups`). ``KMeans(n_clusters=6)`` gives six
        groups, which become 4 and 5 by merging and 7 and 8 by splitting.
        The reducer and clusterer are cloned before fitting (yours stay unfitted) and given each
        fit's seed when they take a ``random_state``; the fitted model keeps no reference to
        them, so it saves without pickle.
    preprocessor
        None, or :class:`FeatureMatrix` to fit on a feature table (the pipeline's choice); it is
        fitted and saved with the model. After it, missing values take the fitted medians and
        every feature is standardised, both learned in :meth:`fit` and saved too.
    random_state
        Seed of the sample draws, the UMAP layouts and the user reducer's and clusterer's seeds.

    Attributes
    ----------
    preprocessor_ : the fitted :class:`FeatureMatrix`, or None
    medians_ : per feature, the value missing values take (fitted medians)
    scaler_ : StandardScaler fitted on all users
    n_features_in_, feature_names_in_ : the features the model uses (names when it was fitted
        on a DataFrame, or through the preprocessor)
    sample_index_ : rows of X the personas are kept for (the first fit's sample)
    embedding_ : the first fit's embedding of that sample
    labels_ : persona of each sample row, as :meth:`predict` gives it
    cluster_labels_ : the clusterer's own groups in that embedding (-1 = noise), before count
        control
    reference_ : scaled features of the sample, used by :meth:`predict`
    reference_labels_ : persona of each reference row, as the fits agreed
    stability_ : mean adjusted Rand index between each fit and the agreed personas
    persona_stability_ : persona -> mean best Jaccard overlap of its users with one persona of
        each fit: how reliably the persona comes back
    info_ : what was found and chosen: ``count_scores`` (agreement of the fits at every
        candidate count), ``silhouette``, ``personas``, ``stability``, ``persona_stability``,
        ``reducer`` and ``clusterer`` (as written, or the built-in ones)...

    Examples
    --------
    >>> from sklearn.cluster import KMeans
    >>> from sklearn.datasets import make_blobs
    >>> from sklearn.decomposition import PCA
    >>> X, _ = make_blobs(300, n_features=4, centers=5, random_state=0)
    >>> model = PersonaModel(reducer=PCA(n_components=2), clusterer=KMeans(5, n_init=4),
    ...                      n_fits=2, random_state=0)
    >>> labels = model.fit_predict(X)
    >>> len(labels), model.info_["personas"] in range(4, 9)
    (300, True)
    """

    def __init__(
        self,
        n_components=5,
        n_neighbors=30,
        min_personas=4,
        max_personas=8,
        min_cluster_size=0,
        sample_size=5_000,
        n_epochs=100,
        n_fits=5,
        max_fits=15,
        reducer=None,
        clusterer=None,
        preprocessor=None,
        random_state=None,
    ):
        self.n_components = n_components
        self.n_neighbors = n_neighbors
        self.min_personas = min_personas
        self.max_personas = max_personas
        self.min_cluster_size = min_cluster_size
        self.sample_size = sample_size
        self.n_epochs = n_epochs
        self.n_fits = n_fits
        self.max_fits = max_fits
        self.reducer = reducer
        self.clusterer = clusterer
        self.preprocessor = preprocessor
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # missing values take the fitted medians
        return tags

    def _check_params(self) -> None:
        """Raise ParameterError for values :meth:`fit` cannot work with (before any work)."""
        if not 2 <= self.min_personas <= self.max_personas:
            raise ParameterError(
                f"min_personas={self.min_personas} and max_personas="
                f"{self.max_personas} must satisfy 2 <= min <= max",
                name="min_personas",
            )
        if self.n_fits < 1:
            raise ParameterError(f"n_fits={self.n_fits} must be at least 1", name="n_fits")
        if self.preprocessor is not None and not isinstance(self.preprocessor, FeatureMatrix):
            raise ParameterError(
                f"preprocessor={self.preprocessor!r} is not supported: a saved "
                "model holds JSON and Parquet, no pickle, so it is None or "
                "personas.model.FeatureMatrix(); transform X before fit "
                "instead",
                name="preprocessor",
            )

    def fit(self, X, y=None):
        self._check_params()
        X = self._prepare(X, fitting=True)
        require_users(len(X))
        rng = check_random_state(self.random_state)
        # one fit has nothing to agree with: it is never followed by more
        most = max(self.n_fits, self.max_fits) if self.n_fits > 1 else 1
        self.scaler_ = StandardScaler().fit(X)
        if self.preprocessor_ is not None:  # noisy shares weigh less in every distance
            self.scaler_.scale_ = self.scaler_.scale_ / self.preprocessor_.column_weights()
        scaled = self.scaler_.transform(X)
        fits = [self._fit_sample(scaled, rng) for _ in range(self.n_fits)]
        self.sample_index_, self.embedding_, _, self.cluster_labels_, info = fits[0]
        reference = scaled[self.sample_index_]
        # every fit labels the same users: the first fit's sample, by its own vote
        fit_votes = [self._votes(fit, scaled, reference) for fit in fits]
        while True:
            agreed, votes = common_counts(fit_votes)
            scores = {k: mean_agreement(v) for k, v in votes.items()} if agreed > 1 else {}
            settled = any(v >= REPRODUCIBLE for v in scores.values())
            # fits with no count in common never gain one from more fits
            if settled or agreed == 1 or len(fits) >= most:
                break
            # no count reproduced yet: another round of fits, as many as the first
            more = min(self.n_fits, most - len(fits))
            fits += [self._fit_sample(scaled, rng) for _ in range(more)]
            fit_votes += [self._votes(fit, scaled, reference) for fit in fits[-more:]]
        fitted, fits = len(fits), fits[:agreed]
        separation = {k: float(np.mean([f[4]["silhouette"][str(k)] for f in fits])) for k in votes}
        if agreed > 1:
            rule = (
                f"the best separated count among those the {len(fits)} independent fits "
                f"reproduce (agreement at least {REPRODUCIBLE}; if none does, the most "
                "reproduced count)"
            )
        else:
            scores = separation
            rule = "the count whose personas are best separated (mean silhouette)"
        best = choose_count(scores, separation)
        personas, per_fit, overlap = consensus(votes[best])
        self.stability_ = round(float(np.mean(per_fit)), 4) if len(fits) > 1 else None
        self.persona_stability_ = {p: round(v, 4) for p, v in overlap.items()}
        self.info_ = {
            **info,
            "fits": len(fits),
            "fits_fitted": fitted,
            "reducer": "UMAP" if self.reducer is None else describe(self.reducer),
            "clusterer": ("HDBSCAN" if self.clusterer is None else describe(self.clusterer)),
            "count_scores": {str(k): round(v, 4) for k, v in scores.items()},
            "silhouette": {str(k): round(v, 4) for k, v in separation.items()},
            "count_rule": rule,
            "feature_weights": {} if self.preprocessor_ is None else self.preprocessor_.weights_,
            "personas": int(personas.max()) + 1,
            "stability": self.stability_,
            "persona_stability": {str(p): v for p, v in self.persona_stability_.items()},
        }
        self._fit_assigner(reference, personas)
        self.labels_, _ = self._vote(reference)
        return self

    def fit_predict(self, X, y=None):
        """Fit, then assign every row of ``X`` (not only the fitted sample)."""
        return self.fit(X).predict(X)

    def _fit_sample(self, scaled: np.ndarray, rng: np.random.RandomState):
        """One fit on its own sample: (sample rows, embedding, {count: personas of the sample},
        the clusterer's groups, info)."""
        seed = int(rng.randint(0, 2**31 - 1))
        index = draw_sample(len(scaled), self.sample_size, rng)
        sample = scaled[index]
        if self.reducer is None:
            embedding = embed(sample, self.n_components, self.n_neighbors, seed, self.n_epochs)
        else:
            embedding = reduce(fresh(self.reducer, seed), sample)
        mcs = self.min_cluster_size or default_min_cluster_size(len(sample))
        clusterer = make_clusterer(mcs) if self.clusterer is None else fresh(self.clusterer, seed)
        candidates, info, groups = candidate_groupings(
            embedding, sample, clusterer, self.min_personas, self.max_personas, seed
        )
        info.update(min_cluster_size=int(mcs), sample_size=int(len(sample)))
        return index, embedding, candidates, groups, info

    def _votes(self, fit, scaled: np.ndarray, reference: np.ndarray) -> dict[int, np.ndarray]:
        """One fit's personas at each of its counts, carried onto the ``reference`` users by
        :func:`~personas.grouping.vote`: every fit then labels the same users."""
        index, _, candidates, _, _ = fit
        return {k: vote(scaled[index], labels, reference) for k, labels in candidates.items()}

    def _fit_assigner(self, reference: np.ndarray, labels: np.ndarray) -> None:
        self.reference_ = reference
        self.reference_labels_ = labels
        # brute force, not the k-d tree scikit-learn picks by itself: in ~14 dimensions the tree
        # prunes little, and one matrix product per batch was 4x faster at 1M users (the same
        # neighbours, except which of equally distant ones is taken; docs/benchmarks.md)
        self._knn = KNeighborsClassifier(
            n_neighbors=min(ASSIGN_NEIGHBOURS, len(reference)), algorithm="brute"
        ).fit(reference, labels)

    def _vote(self, scaled: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        proba = self._knn.predict_proba(scaled)
        best = proba.argmax(axis=1)
        return self._knn.classes_[best], proba[np.arange(len(best)), best]

    def predict_with_confidence(self, X) -> tuple[np.ndarray, np.ndarray]:
        """Persona label and confidence (share of agreeing neighbours, 0..1) for each row.

        Rows are prepared, scaled and assigned :data:`ASSIGN_CHUNK` at a time: each user's
        answer depends on the fitted model only, and the prepared copies of a whole 10M-user
        table would take several times the table's memory.
        """
        check_is_fitted(self, "reference_")
        rows = X.iloc if isinstance(X, pd.DataFrame) else X
        labels = np.empty(len(X), dtype=np.int64)
        confidence = np.empty(len(X), dtype="float64")
        for start in range(0, len(X), ASSIGN_CHUNK):
            scaled = self.scaler_.transform(self._prepare(rows[start : start + ASSIGN_CHUNK]))
            end = start + len(scaled)
            labels[start:end], confidence[start:end] = self._vote(scaled)
        return labels, confidence

    def predict(self, X) -> np.ndarray:
        """Persona of each row of ``X``, prepared with what :meth:`fit` learned."""
        return self.predict_with_confidence(X)[0]

    def _prepare(self, X, fitting: bool = False) -> np.ndarray:
        """``X`` as the model's numeric matrix: through the preprocessor (if any), checked like
        any scikit-learn input, missing values filled with the fitted medians. Fitting learns
        the preprocessor's state and the medians; later calls reuse them, so users assigned
        later are prepared as the fitted ones were, whatever the other users given with them."""
        if fitting:
            self.preprocessor_ = (
                None if self.preprocessor is None else clone(self.preprocessor).fit(X)
            )
        if self.preprocessor_ is not None:
            X = self.preprocessor_.transform(X)
        try:
            X = validate_data(
                self, X, reset=fitting, dtype="float64", ensure_all_finite="allow-nan"
            )
        except ValueError as exc:
            raise InputError(
                f"{str(exc).strip()} (compute the users' features as for the "
                "users the model was fitted on)"
            ) from None
        if fitting:
            self.medians_ = column_medians(X)
        return np.where(np.isnan(X), self.medians_, X)

    # -- persistence: JSON + Parquet, no pickle --------------------------------------------------
    def save(self, folder: str | Path, versions: dict | None = None) -> Path:
        """Write ``model.json`` and ``reference.parquet`` into ``folder``.

        The user's reducer and clusterer are not saved (assigning needs neither); ``info``
        names them.
        """
        check_is_fitted(self, "reference_")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        params = {
            k: v
            for k, v in self.get_params(deep=False).items()
            if k not in ("reducer", "clusterer", "preprocessor")
        }
        state = {
            "params": params,
            "features": list(getattr(self, "feature_names_in_", [])),
            "preprocessor": (None if self.preprocessor_ is None else self.preprocessor_.to_dict()),
            "medians": self.medians_.tolist(),
            "scaler_mean": self.scaler_.mean_.tolist(),
            "scaler_scale": self.scaler_.scale_.tolist(),
            "info": self.info_,
            "versions": versions or {},
        }
        (folder / "model.json").write_text(json.dumps(state, indent=2), encoding="utf-8")
        reference = pd.DataFrame(
            self.reference_, columns=[f"f{i}" for i in range(self.reference_.shape[1])]
        )
        reference["label"] = self.reference_labels_
        reference.to_parquet(folder / "reference.parquet", index=False)
        checksums = {name: file_digest(folder / name) for name in MODEL_FILES}
        (folder / MANIFEST).write_text(json.dumps(checksums, indent=2), encoding="utf-8")
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> PersonaModel:
        """Load a model written by :meth:`save`; refuse a folder whose files were changed or
        cut short since (:func:`check_model_files`) with an InputError naming the file.

        A model saved before the medians and the preprocessor were kept fills missing values
        with the feature means (its input had none) and takes the model matrix itself.
        """
        folder = Path(folder)
        try:
            check_model_files(folder)
            state = json.loads((folder / "model.json").read_text(encoding="utf-8"))
            reference = pd.read_parquet(folder / "reference.parquet")
            return cls._from_saved(state, reference)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            if isinstance(exc, InputError):
                raise
            raise InputError(
                f"model folder {str(folder)!r} does not hold a saved persona model "
                f"({exc.__class__.__name__}); point --model at the model/ folder "
                "of a run",
                path=str(folder),
            ) from None

    @classmethod
    def _from_saved(cls, state: dict, reference: pd.DataFrame) -> PersonaModel:
        sizes = {len(state["scaler_mean"]), len(state["scaler_scale"]), reference.shape[1] - 1}
        if len(sizes) != 1 or "label" not in reference:
            raise ValueError("the saved model's parts do not fit together")
        prepared = state.get("preprocessor")
        model = cls(**state["params"], preprocessor=FeatureMatrix() if prepared else None)
        model.preprocessor_ = FeatureMatrix.from_dict(prepared) if prepared else None
        if state["features"]:
            model.feature_names_in_ = np.array(state["features"], dtype=object)
        model.n_features_in_ = len(state["scaler_mean"])
        model.medians_ = np.array(state.get("medians", state["scaler_mean"]), dtype="float64")
        model.scaler_ = StandardScaler()
        model.scaler_.mean_ = np.array(state["scaler_mean"])
        model.scaler_.scale_ = np.array(state["scaler_scale"])
        model.scaler_.var_ = model.scaler_.scale_**2
        model.scaler_.n_features_in_ = model.n_features_in_
        model.info_ = state["info"]
        labels = reference.pop("label").to_numpy(dtype=np.int64)
        model._fit_assigner(reference.to_numpy(dtype="float64"), labels)
        return model


MODEL_FILES = ("model.json", "reference.parquet")
MANIFEST = "manifest.json"  # the SHA-256 of each of MODEL_FILES, written last by save()


def file_digest(path: Path) -> str:
    import hashlib

    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def check_model_files(folder: Path) -> None:
    """Refuse a model folder whose files changed after :meth:`PersonaModel.save` wrote them
    (edited, truncated or half copied): assigning users with it would give wrong personas.

    A folder without a manifest (saved by an older version) is read as it is.
    """
    try:
        expected = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return
    for name in MODEL_FILES:
        if not (folder / name).exists():
            raise InputError(
                f"model folder {str(folder)!r} lacks {name}; copy the whole model "
                "folder of a run, or run personas again",
                path=str(folder),
            )
        if file_digest(folder / name) != expected.get(name):
            raise InputError(
                f"model folder {str(folder)!r} has changed since the model was "
                f"saved ({name} differs from its checksum in {MANIFEST}); copy it "
                "again from its run, or run personas again",
                path=str(folder),
            )


def map_2d(
    scaled_sample: np.ndarray, embedding: np.ndarray, seed: int, max_points: int = 3000
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (into the sample) and 2-D coordinates for the persona map.

    With a 2-D embedding the map is the embedding itself; otherwise a 2-D UMAP of up to
    ``max_points`` sample rows, with :data:`MAP_EPOCHS` rounds: on the 100k planted sample 100
    drew the same picture as 200 (the same groups, apart and placed alike) in 0.6 s instead of
    1.1 s.
    """
    rng = np.random.RandomState(seed)
    rows = draw_sample(len(scaled_sample), max_points, rng)
    if embedding.shape[1] == 2:
        return rows, embedding[rows]
    return rows, embed(scaled_sample[rows], 2, 15, seed, n_epochs=MAP_EPOCHS)
