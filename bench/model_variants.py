"""Grouping variants of PersonaModel on the bench worlds (seeds 0,1), scored like
bench/model_quality.py; the record of what was tried is docs/model-variants.md.

    .venv/bin/python bench/model_variants.py default,eom_mcs2,eom_mcs1,leaf_ms25,noumap_eom_mcs2,nn100
    .venv/bin/python bench/model_variants.py default,nn100 --worlds 0,2 --users 100000

Variants replace HDBSCAN's settings (``make_clusterer``) or PersonaModel's arguments.
UMAP embeddings are cached on disk (emb/) keyed by the exact sample rows, UMAP settings and seed,
so clusterer-only variants reuse the default's layouts; the fit time reported adds back the
recorded UMAP time of a cached layout (it is what a fresh fit would cost).
Rows go to results.jsonl (one per world x variant).
"""

import argparse
import hashlib
import json
import sys
import time
import warnings
from pathlib import Path

BENCH = Path(__file__).resolve().parent
HERE = BENCH / "data" / "variants"  # cached layouts and results, git-ignored
HERE.mkdir(parents=True, exist_ok=True)
sys.path.insert(0, str(BENCH))
import numpy as np  # noqa: E402
from sklearn.metrics import adjusted_rand_score  # noqa: E402
from sklearn.preprocessing import FunctionTransformer, StandardScaler  # noqa: E402
from worlds import kmeans_told_k, planted_ari, world_data  # noqa: E402

import personas.model as m  # noqa: E402
from personas.features import model_matrix  # noqa: E402
from personas.model import FeatureMatrix  # noqa: E402

warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings("ignore", category=UserWarning)

EMB = HERE / "emb"
EMB.mkdir(exist_ok=True)
ORIG_EMBED = m.embed
ORIG_MAKE = m.make_clusterer
ORIG_GROUPINGS = m.candidate_groupings
ORIG_WARD = __import__("personas.grouping", fromlist=["x"]).merge_by_ward
ORIG_CLUSTER = __import__("personas.grouping", fromlist=["x"]).cluster
STATE = {"saved": 0.0, "infos": [], "embed_s": 0.0}


def cached_embed(scaled, n_components, n_neighbors, seed, n_epochs):
    h = hashlib.sha1(np.ascontiguousarray(scaled).tobytes()).hexdigest()[:16]
    stem = EMB / f"{h}_c{n_components}_n{n_neighbors}_s{seed}_e{n_epochs}"
    if stem.with_suffix(".npy").exists():
        t = time.perf_counter()
        out = np.load(stem.with_suffix(".npy"))
        took = json.loads(stem.with_suffix(".json").read_text())["seconds"]
        STATE["saved"] += took - (time.perf_counter() - t)
        STATE["embed_s"] += took
        return out
    t = time.perf_counter()
    out = ORIG_EMBED(scaled, n_components, n_neighbors, seed, n_epochs)
    took = time.perf_counter() - t
    np.save(stem.with_suffix(".npy"), out)
    stem.with_suffix(".json").write_text(json.dumps({"seconds": took}))
    STATE["embed_s"] += took
    return out


def recording_groupings(embedding, features, clusterer, min_k, max_k, seed=0):
    out = ORIG_GROUPINGS(embedding, features, clusterer, min_k, max_k, seed)
    STATE["infos"].append({"found": out[1]["clusters_found"], "noise": out[1]["noise_share"]})
    return out


m.embed = cached_embed
m.candidate_groupings = recording_groupings


def hdb(method="leaf", ms=10, share=None, eps=0.0):
    """make_clusterer replacement; ``share`` overrides the min_cluster_size rule (share of sample)."""

    def make(mcs):
        import hdbscan

        if share is not None:
            mcs = max(10, int(share * 5000))  # sample_size is 5000 in every variant here
        return hdbscan.HDBSCAN(
            min_cluster_size=mcs,
            min_samples=ms,
            cluster_selection_method=method,
            cluster_selection_epsilon=eps,
        )

    return make


# name -> (make_clusterer, PersonaModel kwargs)
VARIANTS = {
    "default": (None, {}),
    "eom_mcs2": (hdb("eom", 10, 0.02), {}),
    "eom_mcs4": (hdb("eom", 10, 0.04), {}),
    "eom_mcs2_ms25": (hdb("eom", 25, 0.02), {}),
    "eom_mcs4_ms25": (hdb("eom", 25, 0.04), {}),
    "eom_mcs2_ms5": (hdb("eom", 5, 0.02), {}),
    "leaf_mcs2": (hdb("leaf", 10, 0.02), {}),
    "leaf_ms25": (hdb("leaf", 25, None), {}),
    "leaf_eps05": (hdb("leaf", 10, None, 0.5), {}),
    "eom_mcs1": (hdb("eom", 10, 0.01), {}),
    "nn15": (None, {"n_neighbors": 15}),
    "nn100": (None, {"n_neighbors": 100}),
    "nc10": (None, {"n_components": 10}),
    "nn100_eom_mcs2": (hdb("eom", 10, 0.02), {"n_neighbors": 100}),
    # HDBSCAN straight on the scaled features (no UMAP)
    "noumap_eom_mcs2": (hdb("eom", 10, 0.02), {"reducer": FunctionTransformer()}),
    "noumap_leaf": (None, {"reducer": FunctionTransformer()}),
    "wward": (None, {}),  # Ward merging weighted by group size
    "kmmerge": (None, {}),  # groups merged by size-weighted k-means of their centres
    "treeall": (None, {}),  # every count cut from HDBSCAN's condensed tree
    "reliab": (None, {}),  # shares weighted by their reliability (reliability())
    "reliab_low": (None, {}),  # the same, only where the reliability is below 0.5
    # refinements of the agreed personas (refine_*): see refine()
    "refine_km": (None, {}),
    "refine_gmm": (None, {}),
    "refine_prop": (None, {}),
    # steadier fits: larger samples, more fits, longer layouts (the seed problem of docs/model.md)
    "ss10k": (None, {"sample_size": 10_000}),
    "ss20k": (None, {"sample_size": 20_000}),
    "fits9": (None, {"n_fits": 9}),
    "fits15": (None, {"n_fits": 15}),
    "adapt15": (None, {"max_fits": 15}),
    "fixed5": (None, {"max_fits": 5}),  # the default until 2026-12-04 evening: no extra rounds
    "ep200": (None, {"n_epochs": 200}),
    "meanward": (None, {}),  # Ward merges of the mean centres (the default until 2026-12-04)
}


def centres_and_sizes(features, labels):
    """The groups (-1 = noise left out), their centres in ``features`` and their sizes."""
    ids = np.unique(labels[labels >= 0])
    centres = np.array([features[labels == i].mean(axis=0) for i in ids])
    sizes = np.array([np.sum(labels == i) for i in ids], dtype=float)
    return ids, centres, sizes


def merged(labels, ids, groups):
    """``labels`` with group ``ids[i]`` renamed ``groups[i]``, numbered by size; noise stays."""
    import personas.grouping as g

    lookup = np.full(int(ids.max()) + 2, -1, dtype=np.int64)
    lookup[ids] = groups
    return g.relabel_by_size(np.where(labels >= 0, lookup[labels], -1))


def mean_ward(features, labels, k):
    """Ward merging of the groups' mean centres, each one point: the default's merge until
    2026-12-04, when median centres replaced it (docs/model-variants.md)."""
    from scipy.cluster.hierarchy import fcluster, linkage

    ids = np.unique(labels[labels >= 0])
    if len(ids) <= k:
        return labels.copy()
    centres = np.array([features[labels == i].mean(axis=0) for i in ids])
    return merged(labels, ids, fcluster(linkage(centres, method="ward"), k, "maxclust") - 1)


def weighted_ward(features, labels, k):
    """Ward merging with each group's size as its weight (Lance-Williams on the group centres)."""
    ids, centres, sizes = centres_and_sizes(features, labels)
    if len(ids) <= k:
        return labels.copy()
    members = [[i] for i in range(len(ids))]
    sq = ((centres[:, None, :] - centres[None, :, :]) ** 2).sum(-1)
    cost = sizes[:, None] * sizes[None, :] / (sizes[:, None] + sizes[None, :]) * sq
    alive = np.ones(len(ids), bool)
    np.fill_diagonal(cost, np.inf)
    while alive.sum() > k:
        masked = np.where(alive[:, None] & alive[None, :], cost, np.inf)
        a, b = np.unravel_index(np.argmin(masked), masked.shape)
        na, nb = sizes[a], sizes[b]
        new = ((na + sizes) * cost[a] + (nb + sizes) * cost[b] - sizes * cost[a, b]) / (
            na + nb + sizes
        )
        cost[a, :] = cost[:, a] = new
        cost[a, a] = np.inf
        sizes[a] = na + nb
        members[a] += members[b]
        alive[b] = False
        cost[b, :] = cost[:, b] = np.inf
    groups = np.empty(len(ids), dtype=np.int64)
    for group, kept in enumerate(np.flatnonzero(alive)):
        groups[members[kept]] = group
    return merged(labels, ids, groups)


def kmeans_merge(features, labels, k):
    """Groups merged into ``k`` by k-means of their centres, each weighted by its size."""
    from sklearn.cluster import KMeans

    ids, centres, sizes = centres_and_sizes(features, labels)
    if len(ids) <= k:
        return labels.copy()
    groups = KMeans(k, n_init=10, random_state=0).fit_predict(centres, sample_weight=sizes)
    return merged(labels, ids, groups)


LAST = {}


def tree_merge(features, labels, k):
    """Every count from HDBSCAN's condensed tree (as counts above the groups are reached)."""
    import personas.grouping as g

    tree = LAST["clusterer"].condensed_tree_.to_pandas()
    return g.cut_condensed_tree(tree, len(labels), k)


def stashing_cluster(clusterer, embedding):
    LAST["clusterer"] = clusterer
    return ORIG_CLUSTER(clusterer, embedding)


def reliability(features, columns) -> np.ndarray:
    """Per model column, its reliability (personas.features.share_reliability) where it is a
    share with an evidence count, else 1."""
    from personas.features import share_reliability

    known = share_reliability(features, list(columns))
    return np.array([known.get(c, 1.0) for c in columns])


class WeightedScaler(StandardScaler):
    """StandardScaler whose output columns are multiplied by ``WEIGHTS``."""

    WEIGHTS = None

    def fit(self, X, y=None):
        super().fit(X)
        self.scale_ = self.scale_ / np.maximum(self.WEIGHTS, 1e-6)
        return self


def refine(variant, model, scaled):
    """Labels of every row of ``scaled`` after refining the model's agreed personas."""
    from sklearn.cluster import KMeans
    from sklearn.mixture import GaussianMixture

    ref, lab = model.reference_, model.reference_labels_
    ks = np.unique(lab)
    centres = np.array([ref[lab == p].mean(axis=0) for p in ks])
    if variant == "refine_km":
        km = KMeans(len(ks), init=centres, n_init=1).fit(ref)
        return km.predict(scaled)
    if variant == "refine_gmm":
        gm = GaussianMixture(len(ks), covariance_type="diag", means_init=centres, random_state=0)
        return gm.fit(ref).predict(scaled)
    if variant == "refine_prop":
        import personas.grouping as g

        for _ in range(10):
            new = g.vote(ref, lab, ref)
            if (new == lab).all():
                break
            lab = new
        return g.vote(ref, lab, scaled)
    raise KeyError(variant)


def kmeans_ref(world, users, scaled, d):
    path = HERE / "kmeans.json"
    cache = json.loads(path.read_text()) if path.exists() else {}
    key = f"{world}_{users}"
    if key not in cache:
        cache[key] = planted_ari(d, kmeans_told_k(scaled, d.k))
        path.write_text(json.dumps(cache))
    return cache[key]


def run(variant, worlds, users, seeds, out):
    import personas.grouping as g

    make, kwargs = VARIANTS[variant]
    m.make_clusterer = make or ORIG_MAKE
    merges = {
        "wward": weighted_ward,
        "kmmerge": kmeans_merge,
        "treeall": tree_merge,
        "meanward": mean_ward,
    }
    g.merge_by_ward = merges.get(variant, ORIG_WARD)
    g.cluster = stashing_cluster
    for w in worlds:
        d = world_data(w, users)
        X, columns = model_matrix(d.features)
        WeightedScaler.WEIGHTS = reliability(d.features, columns)
        if variant == "reliab_low":  # only shares that are mostly noise (reliability below 0.5)
            WeightedScaler.WEIGHTS = np.where(
                WeightedScaler.WEIGHTS < 0.5, WeightedScaler.WEIGHTS, 1
            )
        m.StandardScaler = WeightedScaler if variant.startswith("reliab") else StandardScaler
        km = kmeans_ref(w, users, StandardScaler().fit_transform(X), d) if users == 20000 else None
        labels, aris, secs, found, stab, diag, umap_s = [], [], [], [], [], [], []
        # as a run fits: through FeatureMatrix (noisy shares weighted), except the reliab variants,
        # which weigh the bare matrix themselves
        table = X if variant.startswith("reliab") else d.features
        prep = {} if variant.startswith("reliab") else {"preprocessor": FeatureMatrix()}
        for s in seeds:
            STATE.update(saved=0.0, infos=[], embed_s=0.0)
            t = time.perf_counter()
            model = m.PersonaModel(random_state=s, **prep, **kwargs).fit(table)
            lab = model.predict(table)
            if variant.startswith("refine_"):
                lab = refine(variant, model, model.scaler_.transform(model._prepare(table)))
            secs.append(time.perf_counter() - t + STATE["saved"])
            umap_s.append(STATE["embed_s"])
            labels.append(lab)
            aris.append(planted_ari(d, lab))
            found.append(int(len(np.unique(lab))))
            stab.append(model.stability_)
            diag.append(STATE["infos"])
        row = {
            "variant": variant,
            "world": w,
            "users": users,
            "planted": d.k,
            "ari": [round(a, 4) for a in aris],
            "found": found,
            "agreement": round(float(adjusted_rand_score(labels[0], labels[1])), 4),
            "agreements": [  # every pair of seeds, when more than two are given
                round(float(adjusted_rand_score(labels[i], labels[j])), 4)
                for i in range(len(labels))
                for j in range(i + 1, len(labels))
            ],
            "kmeans": None if km is None else round(km, 4),
            "fit_s": round(float(np.mean(secs)), 1),
            "umap_s": round(float(np.mean(umap_s)), 1),
            "stability": stab,
            "groups": [[i["found"] for i in dg] for dg in diag],
            "noise": round(float(np.mean([i["noise"] for dg in diag for i in dg])), 3),
        }
        print(json.dumps(row), flush=True)
        with open(out, "a") as fh:
            fh.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("variants")
    p.add_argument("--worlds", default="19,28,22,15,2,0,18,11,6,14,21,23,1,5")
    p.add_argument("--users", type=int, default=20000)
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--out", default=str(HERE / "results.jsonl"))
    a = p.parse_args()
    for v in a.variants.split(","):
        run(
            v,
            [int(w) for w in a.worlds.split(",")],
            a.users,
            [int(s) for s in a.seeds.split(",")],
            a.out,
        )
