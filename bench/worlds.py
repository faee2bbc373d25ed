"""Many random worlds: the data behind every model default (see personas/worlds.py).

Each world's log is written once to ``bench/data/worlds/`` and its features (as ``personas run``
computes them: ``load_events`` -> ``compute_features``) cached beside it, so trying a model
setting on 30 worlds costs only the fits. Used by ``bench/model_quality.py``, which writes
docs/model.md, and handy on its own:

    from worlds import world_data, kmeans_told_k
    data = world_data(7, 20_000)
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from personas.features import BY_NAME, compute_features, model_matrix  # noqa: E402
from personas.load import load_events  # noqa: E402
from personas.params import PersonaParams  # noqa: E402
from personas.worlds import World, draw_world, write_world  # noqa: E402

FOLDER = ROOT / "bench" / "data" / "worlds"


@dataclass
class WorldData:
    world: World
    features: pd.DataFrame  # compute_features' table (catalogue, role and event counts)
    truth: np.ndarray  # planted persona per row ("noise" = planted noise)
    feature_s: float  # seconds to load the log and compute the features

    @property
    def X(self) -> np.ndarray:
        return model_matrix(self.features)[0]

    @property
    def planted(self) -> np.ndarray:
        return self.truth != "noise"

    @property
    def k(self) -> int:
        return len(np.unique(self.truth[self.planted]))


def world_data(
    seed: int, users: int, folder: Path = FOLDER, order_table: bool | None = None
) -> WorldData:
    """World ``seed`` with ``users`` users: written and featurised once, then read from disk.
    ``order_table`` forces the kind of log (see ``draw_world``); keep such worlds in a
    ``folder`` of their own, as the cache knows them by seed and size only."""
    world = draw_world(seed, order_table)
    stem = f"world-{seed}-{users}"
    cached = folder / f"{stem}.features.parquet"
    truth_path = folder / f"{stem}.truth.csv"
    if not (cached.exists() and truth_path.exists()):
        events, truth_path, params = write_world(world, folder, users)
        start = time.perf_counter()
        log = load_events(PersonaParams(events_path=str(events), **params))
        features, _ = compute_features(log)
        log.con.close()
        features.attrs = {}
        features["__seconds"] = time.perf_counter() - start
        features.to_parquet(cached)
    features = pd.read_parquet(cached)
    feature_s = float(features.pop("__seconds").iloc[0])
    truth = pd.read_csv(truth_path, dtype={"user_id": str}).set_index("user_id")["persona"]
    aligned = truth.reindex(features.index.astype(str))
    if aligned.isna().any():
        raise SystemExit(
            f"{truth_path}: no planted persona for some users; delete {folder} and rerun"
        )
    return WorldData(world, features, aligned.to_numpy(dtype=object), feature_s)


def planted_ari(data: WorldData, labels: np.ndarray) -> float:
    """ARI of ``labels`` against the planted personas, planted noise users left out."""
    keep = data.planted
    return float(adjusted_rand_score(data.truth[keep], np.asarray(labels)[keep]))


def catalogue_matrix(features: pd.DataFrame) -> np.ndarray:
    """Every catalogue feature of the table, on the model's scale (log1p where the catalogue says),
    missing values at the median, standardised: what "plain k-means on all features" sees."""
    from sklearn.preprocessing import StandardScaler

    columns = [c for c in features.columns if c in BY_NAME]
    out = np.empty((len(features), len(columns)))
    for j, name in enumerate(columns):
        values = features[name].to_numpy(dtype="float64", copy=True)
        if BY_NAME[name].transform == "log1p":
            values = np.log1p(np.clip(values, 0, None))
        values[np.isnan(values)] = np.nanmedian(values) if (~np.isnan(values)).any() else 0.0
        out[:, j] = values
    keep = out.std(axis=0) > 0
    return StandardScaler().fit_transform(out[:, keep])


def kmeans_told_k(X: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """k-means told the planted count, 10 starts."""
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(X)


def kmeans_by_silhouette(X: np.ndarray, ks=range(4, 9), seed: int = 0) -> tuple[np.ndarray, int]:
    """k-means at each count of ``ks``, the count with the best silhouette (on 3,000 rows)."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    rng = np.random.default_rng(seed)
    rows = rng.choice(len(X), min(3000, len(X)), replace=False)
    best = None
    for k in ks:
        labels = KMeans(n_clusters=k, n_init=4, random_state=seed).fit_predict(X)
        score = silhouette_score(X[rows], labels[rows])
        if best is None or score > best[0]:
            best = (score, labels, k)
    return best[1], best[2]


def supervised_ceiling(data: WorldData, max_users: int = 20_000) -> float:
    """HistGradientBoosting on the planted labels (all catalogue features), 3-fold
    cross-validated, noise left out: how separable the archetypes are at all."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    X = catalogue_matrix(data.features)[data.planted]
    y = data.truth[data.planted]
    if len(y) > max_users:
        rows = np.random.default_rng(0).choice(len(y), max_users, replace=False)
        X, y = X[rows], y[rows]
    predicted = cross_val_predict(
        HistGradientBoostingClassifier(random_state=0),
        X,
        y,
        cv=StratifiedKFold(3, shuffle=True, random_state=0),
    )
    return float(adjusted_rand_score(y, predicted))


def fixed_sample(data: WorldData, seed: int = 5) -> tuple:
    """One sample of the world's users as a fit sees it (``sample_size`` of them, scaled and
    weighted as a run's model prepares them), their planted personas, and which are planted (not
    noise): for comparing layouts and merges on the same users. Returns (model, sample, truth,
    planted), ``model`` giving the default UMAP settings."""
    from personas.model import FeatureMatrix, PersonaModel, draw_sample

    model = PersonaModel(random_state=0, preprocessor=FeatureMatrix(), n_fits=1).fit(data.features)
    scaled = model.scaler_.transform(model._prepare(data.features))
    rows = draw_sample(len(scaled), model.sample_size, np.random.RandomState(seed))
    truth = data.truth[rows]
    return model, scaled[rows], truth, truth != "noise"
