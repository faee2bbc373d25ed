"""PersonaModel: scale -> UMAP -> HDBSCAN -> persona count control -> assign everyone.

The model is fitted on a random sample of users (UMAP is the costly step) and then assigns every
user to the persona of its nearest fitted neighbours in the scaled feature space, with the share of
agreeing neighbours as the confidence. That rule needs only the scaled sample and its labels, so a
saved model is a folder of JSON and Parquet, with no pickle.

Fitting, step by step (measurements on planted samples are in docs/model.md):

1. UMAP embeds the scaled sample. Its neighbour graph is computed exactly by scikit-learn and
   handed to UMAP (``precomputed_knn``): that skips pynndescent, whose numba compilation costs
   ~20 s in every fresh process, and UMAP's small-data path, which calls a Python distance
   function n^2 times.
2. HDBSCAN, with ``leaf`` selection and a small ``min_samples``, finds many small, dense, pure
   groups in the embedding and leaves the users between them as noise.
3. Count control. More groups than ``max_personas``: they are merged by Ward linkage of their
   centroids in the scaled feature space, for every count in [min_personas, max_personas].
   Fewer than ``min_personas``: HDBSCAN's condensed tree is cut lower, splitting along its
   hierarchy.
4. Each candidate is refined by k-means in the scaled feature space, started from its own
   centres. The merged groups are right in the large but their edges are inherited from
   whichever small groups happened to be joined; the refinement moves every fitted user,
   noise included, to its nearest persona centre. On the 100k planted sample it raised the
   lowest agreement between seeds from 0.86 to 0.92 (docs/model.md, ablations). A start from
   merged groups can also lock k-means into a poor local optimum (two planted personas kept
   together while another is cut in two), and whether it does changed from seed to seed; so
   k-means also runs from ``REFINE_RESTARTS`` k-means++ starts and the lowest within-persona
   spread (inertia) wins. On the 20k planted sample that lifted the 7-persona candidate's
   silhouette by ~0.02 (and its ARI against the planted personas from 0.79 to 0.89) in three
   seeds out of five.
5. The count is chosen by silhouette, measured on the users HDBSCAN found in dense groups (the
   noise users sit between personas and blur every candidate alike; leaving them out of the
   score raised the mean ARI against planted personas from 0.87 to 0.90 at 100k). The scores
   of neighbouring counts are close (0.001-0.01 apart), and taking the highest let different
   seeds settle on different counts, the model's main source of instability. So the fewest
   personas whose score is within ``COUNT_TOLERANCE`` (2) standard errors of the best wins; the
   standard error is that of the per-user difference between the two candidates' silhouettes
   over the same users. With both changes every one of 10 seeds chose the same count on the
   planted samples, and the lowest agreement between seeds at 20k users rose from 0.82 to 0.95.
"""

from __future__ import annotations

import functools
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.metrics import pairwise_distances
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from .errors import InputError, TooFewUsersError

MIN_USERS = 50           # below this there is nothing to cluster
ASSIGN_NEIGHBOURS = 15   # neighbours voting on a user's persona
ASSIGN_CHUNK = 100_000   # users assigned per batch, to bound memory
MIN_SAMPLES = 10         # HDBSCAN density smoothing: small, so clusters come out small and pure
SILHOUETTE_POINTS = 3000 # sample rows scoring each candidate persona count
REFINE_RESTARTS = 10     # k-means++ starts tried besides the merged groups' own centres
COUNT_TOLERANCE = 2.0    # standard errors a larger persona count must win by
MAP_EPOCHS = 100         # UMAP rounds of the 2-D persona map (a picture, not the model)


def require_users(found: int, source: str | None = None) -> None:
    """Raise TooFewUsersError below :data:`MIN_USERS` users (naming the file when known)."""
    if found >= MIN_USERS:
        return
    if source is None:
        message = (f"found {found} users; persona discovery needs at least {MIN_USERS} (use a "
                   "longer window or a larger export)")
    else:
        message = (f"events file {source!r} has {found} users after cleaning; persona "
                   f"discovery needs at least {MIN_USERS}; use a longer window or a larger export")
    raise TooFewUsersError(message, found=found, minimum=MIN_USERS, path=source)


def draw_sample(n_rows: int, size: int, rng: np.random.RandomState) -> np.ndarray:
    """Sorted row indices of a uniform sample of ``size`` rows (all rows when fewer)."""
    if n_rows <= size:
        return np.arange(n_rows)
    return np.sort(rng.choice(n_rows, size=size, replace=False))


UMAP_MODULES = ("umap.umap_", "umap.layouts", "umap.spectral", "umap.utils", "umap.distances",
                "umap.sparse", "pynndescent.distances", "pynndescent.utils",
                "pynndescent.sparse", "pynndescent.rp_trees", "pynndescent.pynndescent_")


@functools.cache
def cache_numba_compilation() -> int:
    """Turn on numba's on-disk cache for umap-learn's and pynndescent's compiled functions.

    Most of them are compiled without ``cache=True``, so every fresh process (each notebook kernel,
    each CLI run) compiled them again: ~10 s here for a small fit. With the cache, the compiled
    machine code is written once (beside the module, or in numba's user cache folder when that is
    read-only) and loaded afterwards. Done once per process (every fit embeds twice: the model
    and the map). Returns the number of functions switched over.
    """
    import importlib

    from numba.core.caching import NullCache
    from numba.core.dispatcher import Dispatcher

    switched = 0
    for name in UMAP_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        for obj in vars(module).values():
            if isinstance(obj, Dispatcher) and isinstance(obj._cache, NullCache):
                obj.enable_caching()
                switched += 1
    return switched


def embed(scaled: np.ndarray, n_components: int, n_neighbors: int, seed: int,
          n_epochs: int) -> np.ndarray:
    """UMAP embedding of ``scaled`` (min_dist=0 packs groups tightly, as clustering wants).

    The exact neighbour graph comes from scikit-learn (a tree or BLAS search, well under a second
    for the sample sizes fitted here) and is handed to UMAP, see the module docstring.
    """
    import umap  # imported here: it compiles with numba, and only fitting needs it
    from sklearn.neighbors import NearestNeighbors

    cache_numba_compilation()
    n_neighbors = min(n_neighbors, len(scaled) - 1)
    distances, indices = NearestNeighbors(n_neighbors=n_neighbors).fit(scaled).kneighbors(scaled)
    reducer = umap.UMAP(n_components=n_components, n_neighbors=n_neighbors, min_dist=0.0,
                        n_epochs=n_epochs, random_state=seed, n_jobs=1,
                        precomputed_knn=(indices, distances))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*n_jobs value.*")
        warnings.filterwarnings("ignore", message=".*precomputed_knn.*")
        return np.asarray(reducer.fit_transform(scaled), dtype="float64")


def make_clusterer(min_cluster_size: int):
    import hdbscan

    return hdbscan.HDBSCAN(min_cluster_size=min_cluster_size, min_samples=MIN_SAMPLES,
                           cluster_selection_method="leaf")


def cut_condensed_tree(tree: pd.DataFrame, n_points: int, k: int) -> np.ndarray:
    """Labels from cutting HDBSCAN's condensed tree into (at most) ``k`` clusters.

    Starting from the root, the cluster that splits earliest (lowest lambda, i.e. at the largest
    distance) is replaced by its children until there are ``k``. Points that fall out of the tree
    above the cut are noise (-1). Labels are numbered by decreasing size.
    """
    clusters = tree[tree["child_size"] > 1]
    children: dict[int, list[int]] = {}
    split_at: dict[int, float] = {}
    for parent, child, lam in zip(clusters["parent"], clusters["child"], clusters["lambda_val"]):
        children.setdefault(int(parent), []).append(int(child))
        split_at[int(parent)] = float(lam)
    root = n_points
    frontier = [root]
    while len(frontier) < k:
        splittable = [node for node in frontier if node in children]
        if not splittable:
            break
        node = min(splittable, key=lambda c: (split_at[c], c))
        frontier.remove(node)
        frontier.extend(children[node])
    # map every cluster node to the frontier node above it (or -1 above the cut)
    owner: dict[int, int] = {}
    stack = [(root, -1)]
    frontier_set = set(frontier)
    while stack:
        node, current = stack.pop()
        current = node if node in frontier_set else current
        owner[node] = current
        stack.extend((child, current) for child in children.get(node, []))
    points = tree[tree["child_size"] == 1]
    raw = np.full(n_points, -1, dtype=np.int64)
    raw[points["child"].to_numpy()] = [owner.get(int(p), -1) for p in points["parent"]]
    return relabel_by_size(raw)


def relabel_by_size(raw: np.ndarray) -> np.ndarray:
    """Renumber labels 0..k-1 by decreasing size (ties by first label); -1 stays -1."""
    ids, sizes = np.unique(raw[raw >= 0], return_counts=True)
    order = ids[np.lexsort((ids, -sizes))]
    mapping = {old: new for new, old in enumerate(order)}
    return np.array([mapping.get(v, -1) for v in raw], dtype=np.int64)


def merge_by_ward(features: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Merge clusters into ``k`` by Ward linkage of their centroids (sizes as weights)."""
    from scipy.cluster.hierarchy import fcluster, linkage

    ids = np.unique(labels[labels >= 0])
    if len(ids) <= k:
        return labels.copy()
    centroids = np.array([features[labels == i].mean(axis=0) for i in ids])
    groups = fcluster(linkage(centroids, method="ward"), k, criterion="maxclust") - 1
    lookup = np.full(int(ids.max()) + 2, -1, dtype=np.int64)
    lookup[ids] = groups
    return relabel_by_size(np.where(labels >= 0, lookup[labels], -1))


def refine(features: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Move every row to its nearest persona centre: k-means with as many personas as groups.

    k-means runs from the groups' centres and from :data:`REFINE_RESTARTS` k-means++ starts;
    the run with the lowest inertia wins (the groups' start when tied). ``labels`` may hold -1
    (noise): those rows do not shape the starting centres but are assigned like everyone else.
    Deterministic: the k-means++ starts have a fixed seed, so equal input gives equal output.
    """
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    ids = np.unique(labels[labels >= 0])
    if len(ids) < 2:
        return np.zeros(len(features), dtype=np.int64)
    centres = np.array([features[labels == i].mean(axis=0) for i in ids])
    # one thread: the runs take ~10 ms each on a 5,000-row sample, and k-means' OpenMP threads
    # competing with UMAP's numba threads or other work made them up to 20x slower
    with threadpool_limits(limits=1):
        fitted = KMeans(n_clusters=len(ids), init=centres, n_init=1).fit(features)
        if REFINE_RESTARTS > 0 and len(features) > len(ids):
            restarted = KMeans(n_clusters=len(ids), n_init=REFINE_RESTARTS,
                               random_state=0).fit(features)
            if restarted.inertia_ < fitted.inertia_:
                fitted = restarted
    return relabel_by_size(fitted.labels_.astype(np.int64))


def silhouettes(distances: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Silhouette of every row, from the rows' pairwise ``distances`` (all -1 when there are
    fewer than two labels). The candidates of one fit are scored on the same rows, so their
    distances are computed once: 0.2 s instead of 0.6 s for five candidates on 3,000 rows."""
    from sklearn.metrics import silhouette_samples

    if len(np.unique(labels)) < 2:
        return np.full(len(labels), -1.0)
    return silhouette_samples(distances, labels, metric="precomputed")


def choose_count(per_row: dict[int, np.ndarray]) -> tuple[int, dict[int, float]]:
    """The fewest personas whose mean silhouette is within :data:`COUNT_TOLERANCE` standard
    errors of the best one's, and the standard error of each count's gap to the best.

    ``per_row`` maps each persona count to its silhouettes over the same rows; the standard
    error is that of the mean per-row difference, so what the rows share cancels.
    """
    scores = {k: float(np.mean(v)) for k, v in per_row.items()}
    top = max(scores, key=lambda k: (scores[k], -k))
    errors = {}
    for k, values in per_row.items():
        gap = per_row[top] - values
        errors[k] = float(np.std(gap, ddof=1) / np.sqrt(len(gap))) if len(gap) > 1 else 0.0
    best = min(k for k in scores if scores[top] - scores[k] <= COUNT_TOLERANCE * errors[k])
    return best, errors


def cluster_with_count_control(embedding: np.ndarray, features: np.ndarray, clusterer,
                               min_k: int, max_k: int, seed: int = 0) -> tuple[np.ndarray, dict]:
    """Cluster the embedding; bring the persona count into [min_k, max_k]; refine.

    Returns a persona for every row of ``features`` (no -1) and what was done. Too many clusters
    are merged by Ward linkage in ``features``, one candidate per allowed count, each refined by
    k-means; silhouette over the rows HDBSCAN put in a cluster picks the count: the fewest
    personas within :data:`COUNT_TOLERANCE` standard errors of the best score (see
    :func:`choose_count`). Too few are split along HDBSCAN's condensed tree, then refined.
    """
    clusterer.fit(embedding)
    raw = relabel_by_size(np.asarray(clusterer.labels_, dtype=np.int64))
    found = int(raw.max()) + 1
    dense = raw >= 0
    info: dict = {"clusters_found": found, "noise_share": round(float(np.mean(~dense)), 4)}
    if found > max_k:
        candidates = {k: refine(features, merge_by_ward(features, raw, k))
                      for k in range(min_k, max_k + 1)}
        judged = dense if dense.sum() > max_k else np.ones(len(raw), dtype=bool)
        rows = np.flatnonzero(judged)
        if len(rows) > SILHOUETTE_POINTS:   # the same rows score every candidate
            rows = np.sort(check_random_state(seed).choice(rows, SILHOUETTE_POINTS,
                                                           replace=False))
        distances = pairwise_distances(features[rows])
        per_row = {k: silhouettes(distances, lab[rows]) for k, lab in candidates.items()}
        best, errors = choose_count(per_row)
        labels = candidates[best]
        info.update(action="merged",
                    silhouette={str(k): round(float(np.mean(v)), 4) for k, v in per_row.items()},
                    silhouette_se={str(k): round(v, 4) for k, v in errors.items()})
    elif found >= min_k:
        labels = refine(features, raw)
        info["action"] = "kept"
    else:
        tree = clusterer.condensed_tree_.to_pandas()
        labels = refine(features, cut_condensed_tree(tree, len(embedding), min_k))
        info["action"] = ("split" if labels.max() + 1 >= min_k
                          else "split (hierarchy too shallow)")
    info["personas"] = int(labels.max()) + 1
    return labels, info


class PersonaModel(ClusterMixin, BaseEstimator):
    """Find personas in a user x feature matrix; assign any user to one.

    Parameters
    ----------
    n_components, n_neighbors
        UMAP embedding size and neighbourhood (see :class:`personas.params.PersonaParams`).
    min_personas, max_personas
        Persona count bounds (see the module docstring for how they are enforced).
    min_cluster_size
        HDBSCAN's smallest cluster; 0 = 0.5 % of the fitted sample (at least 10).
    sample_size
        Users the model is fitted on.
    n_epochs
        UMAP's optimisation rounds. Its own default is 500 below 10,000 points; on the planted
        samples (10 seeds each) 100 gave the same persona counts, agreement with the planted
        personas and stability across seeds as 200, in 2.2 s of fitting instead of 3.7 s; 50
        let two seeds in five pick 8 personas instead of 7.
    reducer, clusterer
        Optional replacements for UMAP and HDBSCAN (objects with ``fit_transform`` / ``fit``,
        the clusterer exposing ``labels_`` and ``condensed_tree_``).
    random_state
        Seed of the sample draw and the UMAP layout.

    Attributes
    ----------
    scaler_ : StandardScaler fitted on all users
    sample_index_ : rows of X the model was fitted on
    embedding_ : UMAP embedding of the sample
    labels_ : persona of each sample row, as :meth:`predict` gives it
    cluster_labels_ : HDBSCAN's own groups in the embedding (-1 = noise), before count control
    reference_ : scaled features of the sample, used by :meth:`predict`
    reference_labels_ : persona of each reference row after count control and refinement
    info_ : clusters found, count-control action, noise share
    """

    def __init__(self, n_components=5, n_neighbors=30, min_personas=4, max_personas=8,
                 min_cluster_size=0, sample_size=5_000, n_epochs=100, reducer=None,
                 clusterer=None, random_state=None):
        self.n_components = n_components
        self.n_neighbors = n_neighbors
        self.min_personas = min_personas
        self.max_personas = max_personas
        self.min_cluster_size = min_cluster_size
        self.sample_size = sample_size
        self.n_epochs = n_epochs
        self.reducer = reducer
        self.clusterer = clusterer
        self.random_state = random_state

    def fit(self, X, y=None):
        X = self._as_matrix(X, fitting=True)
        require_users(len(X))
        rng = check_random_state(self.random_state)
        seed = int(rng.randint(0, 2**31 - 1))
        self.scaler_ = StandardScaler().fit(X)
        scaled = self.scaler_.transform(X)
        self.sample_index_ = draw_sample(len(X), self.sample_size, rng)
        sample = scaled[self.sample_index_]
        if self.reducer is None:
            self.embedding_ = embed(sample, self.n_components, self.n_neighbors, seed,
                                    self.n_epochs)
        else:
            self.embedding_ = np.asarray(self.reducer.fit_transform(sample), dtype="float64")
        mcs = self.min_cluster_size or max(10, int(0.005 * len(sample)))
        clusterer = self.clusterer if self.clusterer is not None else make_clusterer(mcs)
        personas, self.info_ = cluster_with_count_control(
            self.embedding_, sample, clusterer, self.min_personas, self.max_personas, seed)
        self.cluster_labels_ = relabel_by_size(np.asarray(clusterer.labels_, dtype=np.int64))
        self.info_["min_cluster_size"] = int(mcs)
        self.info_["sample_size"] = int(len(sample))
        self._fit_assigner(sample, personas)
        self.labels_, _ = self._vote(sample)
        return self

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
        labels = np.empty(len(scaled), dtype=np.int64)
        confidence = np.empty(len(scaled), dtype="float64")
        classes = self._knn.classes_
        for start in range(0, len(scaled), ASSIGN_CHUNK):
            proba = self._knn.predict_proba(scaled[start:start + ASSIGN_CHUNK])
            best = proba.argmax(axis=1)
            labels[start:start + len(best)] = classes[best]
            confidence[start:start + len(best)] = proba[np.arange(len(best)), best]
        return labels, confidence

    def predict_with_confidence(self, X) -> tuple[np.ndarray, np.ndarray]:
        """Persona label and confidence (share of agreeing neighbours, 0..1) for each row."""
        check_is_fitted(self, "reference_")
        return self._vote(self.scaler_.transform(self._as_matrix(X)))

    def predict(self, X) -> np.ndarray:
        return self.predict_with_confidence(X)[0]

    def _as_matrix(self, X, fitting: bool = False) -> np.ndarray:
        if isinstance(X, pd.DataFrame):
            names = [str(c) for c in X.columns]
            if fitting:
                self.feature_names_in_ = np.array(names, dtype=object)
            elif hasattr(self, "feature_names_in_") and names != list(self.feature_names_in_):
                missing = sorted(set(self.feature_names_in_) - set(names))
                raise InputError(f"the users to assign lack the model's features "
                                 f"{', '.join(missing) or '(in this order)'}; compute them "
                                 "from the same kind of event log the model was fitted on")
            X = X.to_numpy(dtype="float64")
        X = np.asarray(X, dtype="float64")
        if fitting:
            self.n_features_in_ = X.shape[1]
        return X

    # -- persistence: JSON + Parquet, no pickle --------------------------------------------------
    def save(self, folder: str | Path, versions: dict | None = None) -> Path:
        """Write ``model.json`` and ``reference.parquet`` into ``folder``."""
        check_is_fitted(self, "reference_")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        params = {k: v for k, v in self.get_params().items() if k not in ("reducer", "clusterer")}
        state = {
            "params": params,
            "features": list(getattr(self, "feature_names_in_", [])),
            "scaler_mean": self.scaler_.mean_.tolist(),
            "scaler_scale": self.scaler_.scale_.tolist(),
            "info": self.info_,
            "versions": versions or {},
        }
        (folder / "model.json").write_text(json.dumps(state, indent=2), encoding="utf-8")
        reference = pd.DataFrame(self.reference_, columns=[f"f{i}" for i in
                                                           range(self.reference_.shape[1])])
        reference["label"] = self.reference_labels_
        reference.to_parquet(folder / "reference.parquet", index=False)
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> "PersonaModel":
        """Load a model written by :meth:`save`."""
        folder = Path(folder)
        try:
            state = json.loads((folder / "model.json").read_text(encoding="utf-8"))
            reference = pd.read_parquet(folder / "reference.parquet")
        except (OSError, ValueError) as exc:
            raise InputError(f"model folder {str(folder)!r} does not hold a saved persona model "
                             f"({exc.__class__.__name__}); point --model at the model/ folder "
                             "of a run", path=str(folder)) from None
        model = cls(**state["params"])
        if state["features"]:
            model.feature_names_in_ = np.array(state["features"], dtype=object)
        model.n_features_in_ = len(state["scaler_mean"])
        model.scaler_ = StandardScaler()
        model.scaler_.mean_ = np.array(state["scaler_mean"])
        model.scaler_.scale_ = np.array(state["scaler_scale"])
        model.scaler_.var_ = model.scaler_.scale_ ** 2
        model.scaler_.n_features_in_ = model.n_features_in_
        model.info_ = state["info"]
        labels = reference.pop("label").to_numpy(dtype=np.int64)
        model._fit_assigner(reference.to_numpy(dtype="float64"), labels)
        return model


def map_2d(scaled_sample: np.ndarray, embedding: np.ndarray, seed: int, max_points: int = 3000
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
