"""How much UMAP's seed alone moves the model's personas: one fixed sample of a world's users,
three layouts, the planted count, against k-means and Ward on the same scaled users.

    .venv/bin/python bench/layout_noise.py --world 19

Figures in docs/model-variants.md ("Third sitting").
"""

import argparse
import sys
from pathlib import Path

import numpy as np
from sklearn.cluster import AgglomerativeClustering, KMeans
from sklearn.metrics import adjusted_rand_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
from worlds import fixed_sample, world_data  # noqa: E402

from personas.grouping import candidate_groupings  # noqa: E402
from personas.model import default_min_cluster_size, embed, make_clusterer  # noqa: E402


def pairs(labels: list[np.ndarray]) -> list[float]:
    return [
        round(adjusted_rand_score(labels[i], labels[j]), 3)
        for i in range(len(labels))
        for j in range(i + 1, len(labels))
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--world", type=int, default=19)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--epochs", type=int, default=0, help="UMAP rounds (0: the model's)")
    parser.add_argument("--neighbors", type=int, default=0, help="UMAP neighbours (0: the model's)")
    args = parser.parse_args()
    data = world_data(args.world, args.users)
    k = data.k
    model, sample, truth, planted = fixed_sample(data)

    def ari(labels: np.ndarray) -> float:
        return round(adjusted_rand_score(truth[planted], labels[planted]), 3)

    mcs = default_min_cluster_size(len(sample))
    layouts = []
    for seed in (1, 2, 3):
        embedding = embed(
            sample,
            model.n_components,
            args.neighbors or model.n_neighbors,
            seed,
            args.epochs or model.n_epochs,
        )
        candidates, info, _ = candidate_groupings(
            embedding, sample, make_clusterer(mcs), k, k, seed
        )
        layouts.append(candidates[k])
        print(
            f"UMAP seed {seed}: ARI {ari(candidates[k])}, {info['clusters_found']} micro-groups, "
            f"{info['noise_share']:.0%} noise"
        )
    print("layouts agree:", pairs(layouts))
    kmeans = [KMeans(k, n_init=4, random_state=s).fit_predict(sample) for s in (1, 2, 3)]
    print("k-means ARI:", [ari(x) for x in kmeans], "agree:", pairs(kmeans))
    print("Ward ARI:", ari(AgglomerativeClustering(k, linkage="ward").fit_predict(sample)))


if __name__ == "__main__":
    main()
