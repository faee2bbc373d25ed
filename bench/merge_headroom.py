"""How much the merge of HDBSCAN's micro-groups loses: on one fixed sample of each world, three
UMAP layouts, their micro-groups (noise users joined by vote) merged into the planted count by
Ward on the group mean centres (the model's merge until 2026-12-04), by spectral clustering of
how often the groups are each other's neighbours (15 or 30 neighbours in the scaled features,
or in the layout), by average linkage on that connectivity, and by an oracle that gives each
group its majority planted archetype (the ceiling of any merge of these groups).

    .venv/bin/python bench/merge_headroom.py --worlds 19,0,2,15,28,18,11,22,6,23,1

Prints per world each merge's mean ARI and the worst agreement between its three layouts, then
the means; figures in docs/model-variants.md ("Third sitting").
"""

import argparse
import collections
import sys
from pathlib import Path

import numpy as np
from sklearn.cluster import AgglomerativeClustering, SpectralClustering
from sklearn.metrics import adjusted_rand_score
from sklearn.neighbors import NearestNeighbors

sys.path.insert(0, str(Path(__file__).resolve().parent))
from worlds import fixed_sample, world_data  # noqa: E402

from personas.grouping import vote  # noqa: E402
from personas.model import default_min_cluster_size, embed, make_clusterer  # noqa: E402


def connectivity(points: np.ndarray, groups: np.ndarray, neighbours: int) -> np.ndarray:
    """Group x group: kNN edges between their members over sqrt(size x size)."""
    n = groups.max() + 1
    _, near = NearestNeighbors(n_neighbors=neighbours + 1).fit(points).kneighbors(points)
    edges = np.zeros((n, n))
    np.add.at(edges, (np.repeat(groups, neighbours), groups[near[:, 1:]].ravel()), 1)
    edges = edges + edges.T
    np.fill_diagonal(edges, 0)
    sizes = np.bincount(groups, minlength=n)
    return edges / np.sqrt(np.outer(sizes, sizes))


def merges(sample, layout, groups, truth, planted, k) -> dict[str, np.ndarray]:
    """Each merge's persona per micro-group."""
    n = groups.max() + 1
    centres = np.array([sample[groups == c].mean(axis=0) for c in range(n)])

    def spectral(affinity):
        return SpectralClustering(k, affinity="precomputed", random_state=0).fit_predict(
            affinity + 1e-9
        )

    near = connectivity(sample, groups, 15)
    majority = [
        collections.Counter(truth[(groups == c) & planted]).most_common(1)[0][0]
        if ((groups == c) & planted).any()
        else "none"
        for c in range(n)
    ]
    return {
        "Ward on mean centres (the model until 2026-12-04)": AgglomerativeClustering(
            k, linkage="ward"
        ).fit_predict(centres),
        "spectral, 15 neighbours": spectral(near),
        "spectral, 30 neighbours": spectral(connectivity(sample, groups, 30)),
        "spectral, layout neighbours": spectral(connectivity(layout, groups, 15)),
        "average linkage, 15 neighbours": AgglomerativeClustering(
            k, linkage="average", metric="precomputed"
        ).fit_predict(1 - near / near.max()),
        "oracle (majority archetype)": np.unique(majority, return_inverse=True)[1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worlds", default="19,0,2,15,28,18,11,22,6,23,1")
    parser.add_argument("--users", type=int, default=20_000)
    args = parser.parse_args()
    scores = collections.defaultdict(list)
    for world in (int(w) for w in args.worlds.split(",")):
        data = world_data(world, args.users)
        model, sample, truth, planted = fixed_sample(data)
        mcs = default_min_cluster_size(len(sample))
        labels = collections.defaultdict(list)
        for seed in (1, 2, 3):
            layout = embed(sample, model.n_components, model.n_neighbors, seed, model.n_epochs)
            groups = make_clusterer(mcs).fit_predict(layout)
            grouped = groups >= 0
            groups[~grouped] = vote(sample[grouped], groups[grouped], sample[~grouped])
            for name, persona in merges(sample, layout, groups, truth, planted, data.k).items():
                labels[name].append(persona[groups])
                scores[name].append(adjusted_rand_score(truth[planted], persona[groups][planted]))
        cells = []
        for name, runs in labels.items():
            agree = min(
                adjusted_rand_score(a, b) for i, a in enumerate(runs) for b in runs[i + 1 :]
            )
            cells.append(f"{name} {np.mean(scores[name][-3:]):.3f}/{agree:.2f}")
        print(f"world {world}: " + "; ".join(cells), flush=True)
    for name, values in scores.items():
        print(f"{name}: mean ARI {np.mean(values):.3f}, worst {min(values):.3f}")


if __name__ == "__main__":
    main()
