"""Other ways to merge HDBSCAN's micro-groups, against the model's own (Ward on their median
centres), on the same groups: one fixed sample of each world, three UMAP layouts, the groups of
each merged into the planted count exactly as ``grouping.merge_by_ward`` merges them (the
grouped users only; noise users join afterwards by the vote of their neighbours), and an oracle
that gives each group its majority planted archetype.

    .venv/bin/python bench/merge_variants.py
    .venv/bin/python bench/merge_variants.py --consensus   # three more layouts: consensus rules

Prints per world each merge's mean ARI and the worst agreement between its layouts, then the
means over worlds. ``--consensus`` instead compares, on two sets of three layouts per world, the
model's consensus (persona numbers matched, then a majority vote) with evidence accumulation
(average linkage on how often two users share a persona across the layouts), by ARI and by the
agreement of the two sets. Layouts are cached in bench/data/merge-layouts/. Figures in
docs/model-variants.md ("Fourth sitting").
"""

from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import pdist, squareform
from sklearn.metrics import adjusted_rand_score
from sklearn.neighbors import NearestNeighbors
from sklearn.preprocessing import QuantileTransformer, StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parent))
from worlds import ROOT, fixed_sample, world_data  # noqa: E402

from personas.grouping import consensus, join_noise, merge_by_ward, relabel_by_size  # noqa: E402
from personas.model import default_min_cluster_size, embed, make_clusterer  # noqa: E402

CACHE = ROOT / "bench" / "data" / "merge-layouts"
WORLDS = "19,28,22,15,2,0,18,11,6,14,21,23,1,5"  # bench/model_variants.py's 14


def layouts(world: int, seeds: tuple[int, ...]) -> dict:
    """The fixed sample of ``world``, its planted personas, and per UMAP seed the layout and its
    HDBSCAN groups (-1: noise), computed once and cached."""
    path = CACHE / f"world-{world}-{'-'.join(map(str, seeds))}.npz"
    if not path.exists():
        data = world_data(world, 20_000)
        model, sample, truth, planted = fixed_sample(data)
        mcs = default_min_cluster_size(len(sample))
        found = [
            embed(sample, model.n_components, model.n_neighbors, seed, model.n_epochs)
            for seed in seeds
        ]
        groups = [make_clusterer(mcs).fit_predict(layout) for layout in found]
        CACHE.mkdir(parents=True, exist_ok=True)
        np.savez(
            path, sample=sample, truth=truth, planted=planted, k=data.k,
            layouts=np.array(found), groups=np.array(groups), order=data.world.order_table,
        )  # fmt: skip
    return dict(np.load(path, allow_pickle=True))


# -- the merges: each takes the scaled sample, its groups (-1 noise) and the count -------------


def renamed(labels: np.ndarray, ids: np.ndarray, personas: np.ndarray) -> np.ndarray:
    """``labels`` with group ``ids[i]`` renamed ``personas[i]``; noise stays -1."""
    lookup = np.full(int(ids.max()) + 2, -1, dtype=np.int64)
    lookup[ids] = personas
    return relabel_by_size(np.where(labels >= 0, lookup[labels], -1))


def cut(condensed: np.ndarray, method: str, k: int) -> np.ndarray:
    return fcluster(linkage(condensed, method), k, criterion="maxclust") - 1


def medians(X: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ids = np.unique(labels[labels >= 0])
    return ids, np.array([np.median(X[labels == i], axis=0) for i in ids])


def mean_ward(X, labels, k, layout):
    ids = np.unique(labels[labels >= 0])
    centres = np.array([X[labels == i].mean(axis=0) for i in ids])
    return renamed(labels, ids, cut(centres, "ward", k))


def median_average(X, labels, k, layout):
    ids, centres = medians(X, labels)
    return renamed(labels, ids, cut(centres, "average", k))


def spread_scaled(spread: str, method: str):
    """Distance between two groups: the squared gap of their medians over the sum of their
    squared spreads (IQR / 1.349 or standard deviation, at least 0.1), averaged over features:
    a wide archetype's pieces count as close, two tight archetypes as far."""

    def merge(X, labels, k, layout):
        ids, centres = medians(X, labels)
        if spread == "iqr":
            q75, q25 = zip(*(np.percentile(X[labels == i], [75, 25], axis=0) for i in ids))
            scale = (np.array(q75) - np.array(q25)) / 1.349
        else:
            scale = np.array([X[labels == i].std(axis=0) for i in ids])
        s2 = np.maximum(scale, 0.1) ** 2
        gap = (centres[:, None] - centres[None]) ** 2 / (s2[:, None] + s2[None])
        distances = np.sqrt(gap.mean(axis=-1))
        np.fill_diagonal(distances, 0)
        return renamed(labels, ids, cut(squareform(distances, checks=False), method, k))

    return merge


def pooled_spread_ward(X, labels, k, layout):
    """Ward on medians, each feature divided by its median spread within the groups."""
    ids, centres = medians(X, labels)
    q75, q25 = zip(*(np.percentile(X[labels == i], [75, 25], axis=0) for i in ids))
    pooled = np.maximum(np.median((np.array(q75) - np.array(q25)) / 1.349, axis=0), 0.05)
    return renamed(labels, ids, cut(centres / pooled, "ward", k))


def energy_average(X, labels, k, layout, per_group: int = 150):
    """Average linkage on the energy distance between groups (up to 150 members each)."""
    from sklearn.metrics import pairwise_distances

    rng = np.random.RandomState(0)
    ids = np.unique(labels[labels >= 0])
    members = []
    for i in ids:
        rows = np.flatnonzero(labels == i)
        members.append(X[rng.choice(rows, min(per_group, len(rows)), replace=False)])
    within = [pairwise_distances(m).mean() for m in members]
    n = len(ids)
    distances = np.zeros((n, n))
    for a in range(n):
        for b in range(a + 1, n):
            between = 2 * pairwise_distances(members[a], members[b]).mean()
            distances[a, b] = distances[b, a] = max(between - within[a] - within[b], 0.0)
    return renamed(labels, ids, cut(squareform(distances, checks=False), "average", k))


def connectivity(X, labels, neighbours: int = 15) -> tuple[np.ndarray, np.ndarray]:
    """Group x group: kNN edges between their members (scaled features) over sqrt(size x size)."""
    ids = np.unique(labels[labels >= 0])
    rows = np.flatnonzero(labels >= 0)
    position = np.searchsorted(ids, labels[rows])
    _, near = NearestNeighbors(n_neighbors=neighbours + 1).fit(X[rows]).kneighbors(X[rows])
    edges = np.zeros((len(ids), len(ids)))
    np.add.at(edges, (np.repeat(position, neighbours), position[near[:, 1:]].ravel()), 1)
    edges = edges + edges.T
    np.fill_diagonal(edges, 0)
    sizes = np.bincount(position, minlength=len(ids))
    return ids, edges / np.sqrt(np.outer(sizes, sizes))


def connectivity_average(X, labels, k, layout):
    ids, near = connectivity(X, labels)
    distances = 1 - near / near.max()
    np.fill_diagonal(distances, 0)
    return renamed(labels, ids, cut(squareform(distances, checks=False), "average", k))


def connected_medians(X, labels, k, layout):
    """Average linkage on the medians' distance shrunk where the groups are kNN neighbours."""
    ids, near = connectivity(X, labels)
    _, centres = medians(X, labels)
    distances = squareform(pdist(centres)) / (1 + 4 * near / near.max())
    np.fill_diagonal(distances, 0)
    return renamed(labels, ids, cut(squareform(distances, checks=False), "average", k))


def ward_then_regroup(X, labels, k, layout, rounds: int = 10):
    """The model's merge, then k-medians with the groups as atoms: each group moves to the
    persona whose members' median is nearest its own, until none moves."""
    merged = merge_by_ward(X, labels, k)
    ids, centres = medians(X, labels)
    persona = np.array([merged[labels == i][0] for i in ids])
    for _ in range(rounds):
        hubs = np.array(
            [np.median(X[np.isin(labels, ids[persona == p])], axis=0) for p in np.unique(persona)]
        )
        moved = ((centres[:, None] - hubs[None]) ** 2).sum(axis=-1).argmin(axis=1)
        if (moved == persona).all() or len(np.unique(moved)) < len(hubs):
            break
        persona = moved
    return renamed(labels, ids, persona)


def layout_ward(X, labels, k, layout):
    return merge_by_ward(layout, labels, k)


def layout_and_features_ward(X, labels, k, layout):
    """Ward on medians in the features and the layout side by side, each with equal weight."""
    scaled = layout / layout.std(axis=0) * np.sqrt(X.shape[1] / layout.shape[1])
    return merge_by_ward(np.hstack([X, scaled]), labels, k)


def largest_groups(share: float):
    """Ward on the groups above the ``share`` quantile of group sizes; the rest join by vote."""

    def merge(X, labels, k, layout):
        ids, sizes = np.unique(labels[labels >= 0], return_counts=True)
        kept = ids[sizes >= np.quantile(sizes, share)]
        return merge_by_ward(X, np.where(np.isin(labels, kept), labels, -1), k)

    return merge


def quantile_ward(distribution: str):
    def merge(X, labels, k, layout):
        ranks = QuantileTransformer(
            n_quantiles=200, output_distribution=distribution, random_state=0
        ).fit_transform(X)
        return merge_by_ward(StandardScaler().fit_transform(ranks), labels, k)

    return merge


def clipped_ward(X, labels, k, layout):
    return merge_by_ward(np.clip(X, -3, 3), labels, k)


MERGES = {
    "Ward on median centres (the model)": lambda X, labels, k, layout: merge_by_ward(X, labels, k),
    "Ward on mean centres": mean_ward,
    "average linkage on median centres": median_average,
    "spread-scaled gaps (IQR), average linkage": spread_scaled("iqr", "average"),
    "spread-scaled gaps (sd), average linkage": spread_scaled("sd", "average"),
    "spread-scaled gaps (IQR), Ward": spread_scaled("iqr", "ward"),
    "Ward, features over their pooled spread": pooled_spread_ward,
    "energy distance, average linkage": energy_average,
    "kNN connectivity, average linkage": connectivity_average,
    "median distance shrunk by connectivity": connected_medians,
    "the model's merge, then k-medians of groups": ward_then_regroup,
    "Ward on median centres in the layout": layout_ward,
    "Ward in layout and features": layout_and_features_ward,
    "Ward on the largest 75 % of groups": largest_groups(0.25),
    "Ward on the largest 50 % of groups": largest_groups(0.5),
    "Ward after a uniform quantile transform": quantile_ward("uniform"),
    "Ward after a normal quantile transform": quantile_ward("normal"),
    "Ward on features clipped to +-3": clipped_ward,
}


def oracle(labels: np.ndarray, truth: np.ndarray, planted: np.ndarray) -> np.ndarray:
    """Each group to its most common planted archetype (the ceiling of any merge of them)."""
    out = np.full(len(labels), -1, dtype=np.int64)
    names = {name: i for i, name in enumerate(np.unique(truth))}
    for group in np.unique(labels[labels >= 0]):
        inside = truth[(labels == group) & planted]
        top = collections.Counter(inside).most_common(1)
        out[labels == group] = names[top[0][0]] if top else len(names) + group
    return relabel_by_size(out)


def compare_merges(worlds: list[int]) -> None:
    scores, agreement = collections.defaultdict(list), collections.defaultdict(list)
    for world in worlds:
        z = layouts(world, (1, 2, 3))
        X, truth, planted, k = z["sample"], z["truth"], z["planted"], int(z["k"])
        cells = []
        for name in [*MERGES, "oracle"]:
            runs = []
            for groups, layout in zip(z["groups"], z["layouts"]):
                groups = relabel_by_size(groups.astype(np.int64))
                if name == "oracle":
                    merged = oracle(groups, truth, planted)
                else:
                    merged = MERGES[name](X, groups, k, layout)
                runs.append(join_noise(X, merged))
                scores[name].append(adjusted_rand_score(truth[planted], runs[-1][planted]))
            worst = min(
                adjusted_rand_score(a, b) for i, a in enumerate(runs) for b in runs[i + 1 :]
            )
            agreement[name].append(worst)
            cells.append(f"{np.mean(scores[name][-3:]):.3f}/{worst:.2f}")
        kind = "orders" if bool(z["order"]) else "events"
        print(f"world {world} ({kind}): " + " ".join(cells), flush=True)
    print("\nmerge | mean ARI | worst ARI | worst layout agreement: mean / worst")
    for name in [*MERGES, "oracle"]:
        s, a = np.array(scores[name]), np.array(agreement[name])
        print(f"{name} | {s.mean():.3f} | {s.min():.3f} | {a.mean():.3f} / {a.min():.2f}")


def co_association(labelings: list[np.ndarray], k: int) -> np.ndarray:
    """Average linkage on 1 - the share of ``labelings`` in which two rows share a persona."""
    together = np.zeros((len(labelings[0]),) * 2, dtype=np.float32)
    for labels in labelings:
        together += labels[:, None] == labels[None, :]
    distances = 1 - together / len(labelings)
    np.fill_diagonal(distances, 0)
    return relabel_by_size(cut(squareform(distances, checks=False), "average", k))


def compare_consensus(worlds: list[int], counts=range(4, 9)) -> None:
    scores = collections.defaultdict(list)
    for world in worlds:
        first, second = layouts(world, (1, 2, 3)), layouts(world, (4, 5, 6))
        X, truth, planted, k = first["sample"], first["truth"], first["planted"], int(first["k"])
        found = collections.defaultdict(list)
        for z in (first, second):
            fits = [
                {c: join_noise(X, merge_by_ward(X, relabel_by_size(g.astype(np.int64)), c))
                 for c in counts}
                for g in z["groups"]
            ]  # fmt: skip
            found["the model's vote at the planted count"].append(
                consensus([f[k] for f in fits])[0]
            )
            found["co-association at the planted count"].append(
                co_association([f[k] for f in fits], k)
            )
            found["co-association over counts 4-8"].append(
                co_association([f[c] for f in fits for c in counts], k)
            )
        cells = []
        for name, (a, b) in found.items():
            ari = np.mean([adjusted_rand_score(truth[planted], x[planted]) for x in (a, b)])
            scores[name].append((ari, adjusted_rand_score(a, b)))
            cells.append(f"{ari:.3f}/{scores[name][-1][1]:.2f}")
        print(f"world {world}: " + " ".join(cells), flush=True)
    print("\nconsensus | mean ARI | worst ARI | agreement of two layout sets: mean / worst")
    for name, values in scores.items():
        v = np.array(values)
        print(f"{name} | {v[:, 0].mean():.3f} | {v[:, 0].min():.3f} | ", end="")
        print(f"{v[:, 1].mean():.3f} / {v[:, 1].min():.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worlds", default=WORLDS)
    parser.add_argument("--consensus", action="store_true", help="compare consensus rules")
    args = parser.parse_args()
    worlds = [int(w) for w in args.worlds.split(",")]
    (compare_consensus if args.consensus else compare_merges)(worlds)


if __name__ == "__main__":
    main()
